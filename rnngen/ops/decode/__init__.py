from .op import decode

__all__ = ["decode"]
