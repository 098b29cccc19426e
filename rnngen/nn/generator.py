"""RNNImageGenerator: the article's model, run by the fused decode op.

Same attribute names, shapes, creation order and hence initialisation as the article's class
(``fc_init`` z -> h, ``rnn`` a GRUCell with one input, ``fc_out`` h -> 1): a state_dict of the
article's model loads as is. ``forward(z)`` gives the article's image [B, H, W] in value and
gradient, as one fused op instead of H*W Python steps.

``cell`` swaps the GRU for another of the ops' cells ("lstm", "rnn_tanh", "rnn_relu"): ``rnn``
is then an nn.LSTMCell or nn.RNNCell (nonlinearity tanh or relu) with one input, so that cell's
version of the article's model (rnngen.nn.baselines) loads as is. The noise sets h_0 through
``fc_init`` for every cell; the LSTM's cell state starts at zero.
"""

from __future__ import annotations

from torch import Tensor, nn

from .. import dispatch
from ..ops import _checks, cells, decode


def make_cell_module(cell: str, input_size: int, hidden_size: int, **factory) -> nn.Module:
    """The nn cell module (nn.GRUCell, nn.LSTMCell, nn.RNNCell) whose parameters ``cell`` uses."""
    name = cells.get(cell).name
    if name == "gru":
        return nn.GRUCell(input_size, hidden_size, **factory)
    if name == "lstm":
        return nn.LSTMCell(input_size, hidden_size, **factory)
    return nn.RNNCell(input_size, hidden_size, nonlinearity=name.removeprefix("rnn_"), **factory)


def image_shape(image_size) -> tuple[int, int]:
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in size):
        raise ValueError(f"image_size must be an int or a pair of positive ints, got {image_size!r}")
    return size


class RNNImageGenerator(nn.Module):
    def __init__(self, z_dim: int, h_dim: int, image_size, backend: str = "auto", device=None, dtype=None,
                 precision: str = "fp32", cell: str = "gru"):
        """``precision``: decode's option ("fp32", or "bf16": the GRU and output weights rounded
        to bfloat16 in the loop, everything else float32; see rnngen.decode). fc_init is an
        ordinary float Linear either way. ``cell``: "gru" (the article's), "lstm", "rnn_tanh"
        or "rnn_relu"."""
        super().__init__()
        _checks.positive_int("z_dim", z_dim)
        _checks.positive_int("h_dim", h_dim)
        self.z_dim, self.h_dim, self.image_size = z_dim, h_dim, image_shape(image_size)
        self.backend = dispatch.check_name(backend)
        self.precision = _checks.precision(precision)  # the dtype is checked by decode
        self.cell = cells.get(cell).name
        factory = {"device": device, "dtype": dtype}
        self.fc_init = nn.Linear(z_dim, h_dim, **factory)
        self.rnn = make_cell_module(self.cell, 1, h_dim, **factory)  # parameters only
        self.fc_out = nn.Linear(h_dim, 1, **factory)

    def forward(self, z: Tensor) -> Tensor:
        _checks.tensor("z", z, (None, self.z_dim), dtype=self.fc_init.weight.dtype)
        height, width = self.image_size
        rnn = self.rnn
        out = decode(self.fc_init(z), rnn.weight_ih, rnn.bias_ih, rnn.weight_hh, rnn.bias_hh,
                     self.fc_out.weight, self.fc_out.bias, height * width, cell=self.cell, backend=self.backend,
                     precision=self.precision)
        return out.view(z.shape[0], height, width)

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, h_dim={self.h_dim}, image_size={self.image_size}, backend={self.backend!r}" + (
            f", precision={self.precision!r}" if self.precision != "fp32" else "") + (
            f", cell={self.cell!r}" if self.cell != "gru" else "")
