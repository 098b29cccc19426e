from .op import sample

__all__ = ["sample"]
