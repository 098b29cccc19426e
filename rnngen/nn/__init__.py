"""nn modules: the nn.GRU drop-in and the article's generator, both running on the fused ops."""

from .generator import RNNImageGenerator
from .gru import FusedPixelGRU, RNNInputError

__all__ = ["FusedPixelGRU", "RNNImageGenerator", "RNNInputError"]
