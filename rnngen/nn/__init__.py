"""nn modules: the nn.GRU / nn.LSTM / nn.RNN drop-ins and the article's generator, all running on
the fused ops."""

from .generator import RNNImageGenerator
from .gru import FusedPixelGRU
from .lstm import FusedPixelLSTM
from .rnn import FusedPixelRNN
from .rnn_base import RNNInputError

__all__ = ["FusedPixelGRU", "FusedPixelLSTM", "FusedPixelRNN", "RNNImageGenerator", "RNNInputError"]
