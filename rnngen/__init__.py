"""rnngen: fused GRU kernels for pixel-by-pixel (raster-order) image generation.

Layers: ops (``rnngen.ops``: scan, decode, sample, registered with torch.library) -> backends
(``rnngen.dispatch``: reference, cpu, triton, cuda) -> modules (``rnngen.nn``) -> CLI.
"""

from .dispatch import BackendUnavailableError, backend_status, backends
from .nn import FusedPixelGRU, RNNImageGenerator, RNNInputError
from .ops import decode, philox_uniform, sample, sample_uniforms, scan

__version__ = "0.1.0"

__all__ = [
    "scan", "decode", "sample", "philox_uniform", "sample_uniforms",
    "FusedPixelGRU", "RNNImageGenerator", "RNNInputError",
    "backends", "backend_status", "BackendUnavailableError", "__version__",
]
