"""FusedPixelRNN: a drop-in for nn.RNN (Elman, tanh or relu; unidirectional) on the fused scan op.

Same constructor (``nonlinearity`` fourth, as nn.RNN takes it), parameter names, shapes and
initialisation as nn.RNN, so state_dicts move both ways; same forward signature and shapes
(batched, unbatched, PackedSequence). Shared machinery: rnngen/nn/rnn_base.py.
"""

from __future__ import annotations

from torch import nn

from .rnn_base import _FusedRNNBase


class FusedPixelRNN(_FusedRNNBase):
    _mode = "RNN"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, backend: str = "auto", **kwargs):
        # nn.RNN's checks before nn.RNNBase's, with its messages
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'.")
        self._unexpected("FusedPixelRNN", kwargs)
        super().__init__(f"rnn_{nonlinearity}", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, device, dtype, backend)
        self.nonlinearity = nonlinearity

    @classmethod
    def from_rnn(cls, rnn: nn.RNN, backend: str = "auto") -> FusedPixelRNN:
        """A FusedPixelRNN with the same configuration and (copied) weights as ``rnn``."""
        p = next(rnn.parameters())
        module = cls(rnn.input_size, rnn.hidden_size, rnn.num_layers, rnn.nonlinearity, rnn.bias, rnn.batch_first,
                     rnn.dropout, rnn.bidirectional, device=p.device, dtype=p.dtype, backend=backend)
        module.load_state_dict(rnn.state_dict())
        return module

    def _extra_repr_cell(self) -> str:
        return f", nonlinearity={self.nonlinearity!r}" if self.nonlinearity != "tanh" else ""
