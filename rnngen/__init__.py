"""rnngen: fused GRU kernels for pixel-by-pixel (raster-order) image generation.

Layers: ops (``rnngen.ops``: scan, decode, sample, registered with torch.library) -> backends
(``rnngen.dispatch``: reference, cpu, triton, cuda) -> modules (``rnngen.nn``) -> image models
(``rnngen.models``), data (``rnngen.data``), training (``rnngen.training``) -> CLI.
"""

from .dispatch import BackendUnavailableError, backend_status, backends
from .data import load_dataset
from .models import GeneratorGAN, GeneratorVAE, PixelGRU, SeedVAE, load_model
from .nn import FusedPixelGRU, FusedPixelLSTM, FusedPixelRNN, RNNImageGenerator, RNNInputError
from .ops import decode, philox_uniform, sample, sample_guided, sample_uniforms, scan

__version__ = "0.1.0"

__all__ = [
    "scan", "decode", "sample", "sample_guided", "philox_uniform", "sample_uniforms",
    "FusedPixelGRU", "FusedPixelLSTM", "FusedPixelRNN", "RNNImageGenerator", "RNNInputError",
    "PixelGRU", "GeneratorVAE", "SeedVAE", "GeneratorGAN", "load_model", "load_dataset",
    "backends", "backend_status", "BackendUnavailableError", "__version__",
]
