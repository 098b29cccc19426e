"""FusedPixelGRU: a drop-in for nn.GRU (unidirectional) that runs through the fused scan op.

Same constructor, parameter names, shapes and initialisation as nn.GRU, so state_dicts move both
ways; same forward signature and shapes (batched, unbatched, PackedSequence). Each layer is one
GEMM for the input gates of all steps plus one ``rnngen.scan``; because it never calls nn.GRU,
``torch.compile(fullgraph=True)`` traces straight through it. The machinery is shared with
FusedPixelLSTM and FusedPixelRNN (rnngen/nn/rnn_base.py).
"""

from __future__ import annotations

from torch import nn

from .rnn_base import RNNInputError, _FusedRNNBase

__all__ = ["FusedPixelGRU", "RNNInputError"]  # RNNInputError: its old home, still importable here


class FusedPixelGRU(_FusedRNNBase):
    _mode = "GRU"

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, backend: str = "auto", **kwargs):
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        self._unexpected("FusedPixelGRU", kwargs)
        super().__init__("gru", input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         device, dtype, backend)

    @classmethod
    def from_gru(cls, gru: nn.GRU, backend: str = "auto") -> FusedPixelGRU:
        """A FusedPixelGRU with the same configuration and (copied) weights as ``gru``."""
        p = next(gru.parameters())
        module = cls(gru.input_size, gru.hidden_size, gru.num_layers, gru.bias, gru.batch_first,
                     gru.dropout, gru.bidirectional, device=p.device, dtype=p.dtype, backend=backend)
        module.load_state_dict(gru.state_dict())
        return module
