"""FusedPixelLSTM: a drop-in for nn.LSTM (unidirectional, no projections) on the fused scan op.

Same constructor, parameter names, shapes and initialisation as nn.LSTM, so state_dicts move both
ways; same forward signature and shapes: ``hx`` is the tuple (h_0, c_0) and the result is
(output, (h_n, c_n)), batched, unbatched or PackedSequence (c_n, like h_n, at each row's last
step). Shared machinery: rnngen/nn/rnn_base.py.

``proj_size > 0`` is refused: with projections the recurrent input is W_hr h, not h, a different
recurrence from the one the scan op runs (W_hh [4H, H] on the unprojected state).
"""

from __future__ import annotations

from torch import nn

from .rnn_base import _FusedRNNBase


class FusedPixelLSTM(_FusedRNNBase):
    _mode = "LSTM"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, device=None, dtype=None, backend: str = "auto", **kwargs):
        self._unexpected("FusedPixelLSTM", kwargs)
        super().__init__("lstm", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device, dtype, backend)
        # nn.RNNBase's checks of proj_size come after the others, so they do here too.
        if isinstance(proj_size, bool) or not isinstance(proj_size, int):
            raise TypeError(f"proj_size should be of type int, got: {type(proj_size).__name__}")
        if proj_size < 0:
            raise ValueError("proj_size should be a positive integer or zero to disable projections")
        if proj_size >= hidden_size:
            raise ValueError("proj_size has to be smaller than hidden_size")
        if proj_size > 0:
            raise ValueError(f"proj_size={proj_size} is not supported by FusedPixelLSTM (a projected LSTM feeds "
                             "W_hr h back, which the fused scan does not run); use proj_size=0, or nn.LSTM")
        self.proj_size = 0

    @classmethod
    def from_lstm(cls, lstm: nn.LSTM, backend: str = "auto") -> FusedPixelLSTM:
        """A FusedPixelLSTM with the same configuration and (copied) weights as ``lstm``."""
        p = next(lstm.parameters())
        module = cls(lstm.input_size, lstm.hidden_size, lstm.num_layers, lstm.bias, lstm.batch_first,
                     lstm.dropout, lstm.bidirectional, lstm.proj_size, device=p.device, dtype=p.dtype,
                     backend=backend)
        module.load_state_dict(lstm.state_dict())
        return module
