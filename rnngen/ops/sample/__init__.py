from .guided import sample_guided
from .op import sample

__all__ = ["sample", "sample_guided"]
