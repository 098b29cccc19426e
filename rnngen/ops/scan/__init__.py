from .op import scan

__all__ = ["scan"]
