"""The fused ops (scan, decode, sample): public functions, torch.library registration, references."""

from .decode import decode
from .rng import philox_uniform, sample_uniforms
from .sample import sample, sample_guided
from .scan import scan

__all__ = ["scan", "decode", "sample", "sample_guided", "philox_uniform", "sample_uniforms"]
