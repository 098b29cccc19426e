"""FusedPixelGRU: a drop-in for nn.GRU (unidirectional) that runs through the fused scan op.

Same constructor, parameter names, shapes and initialisation as nn.GRU, so state_dicts move both
ways; same forward signature and shapes (batched, unbatched, PackedSequence). Each layer is one
GEMM for the input gates of all steps plus one ``rnngen.scan``; because it never calls nn.GRU,
``torch.compile(fullgraph=True)`` traces straight through it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from .. import dispatch
from ..ops import scan


class RNNInputError(ValueError, RuntimeError):
    """Bad input to a drop-in module. It is a ValueError like the rest of rnngen's input errors,
    and a RuntimeError, the type nn.GRU raises for the same mistakes, so code written for
    nn.GRU keeps catching it."""


class FusedPixelGRU(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, backend: str = "auto"):
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
            raise ValueError(f"dropout must be a number in [0, 1], got {dropout!r}")
        if bidirectional:
            raise ValueError("bidirectional=True is not supported by FusedPixelGRU (a raster-order "
                             "generator runs forward only); use nn.GRU for a bidirectional GRU")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional = False
        self.backend = dispatch.check_name(backend)
        factory = {"device": device, "dtype": dtype}
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else hidden_size
            self.register_parameter(f"weight_ih_l{layer}", nn.Parameter(torch.empty(3 * hidden_size, in_size, **factory)))
            self.register_parameter(f"weight_hh_l{layer}", nn.Parameter(torch.empty(3 * hidden_size, hidden_size, **factory)))
            if bias:
                self.register_parameter(f"bias_ih_l{layer}", nn.Parameter(torch.empty(3 * hidden_size, **factory)))
                self.register_parameter(f"bias_hh_l{layer}", nn.Parameter(torch.empty(3 * hidden_size, **factory)))
        self.reset_parameters()

    @classmethod
    def from_gru(cls, gru: nn.GRU, backend: str = "auto") -> "FusedPixelGRU":
        """A FusedPixelGRU with the same configuration and (copied) weights as ``gru``."""
        p = next(gru.parameters())
        module = cls(gru.input_size, gru.hidden_size, gru.num_layers, gru.bias, gru.batch_first,
                     gru.dropout, gru.bidirectional, device=p.device, dtype=p.dtype, backend=backend)
        module.load_state_dict(gru.state_dict())
        return module

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)  # nn.GRU's initialisation
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def flatten_parameters(self) -> None:
        """No-op, for code written for nn.GRU (the fused ops need no flat weight buffer)."""

    @property
    def all_weights(self) -> list[list[Tensor]]:
        names = ["weight_ih_l{}", "weight_hh_l{}"] + (["bias_ih_l{}", "bias_hh_l{}"] if self.bias else [])
        return [[getattr(self, n.format(layer)) for n in names] for layer in range(self.num_layers)]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        return s + f", backend={self.backend!r}"

    def forward(self, input, hx: Tensor | None = None):
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        if not isinstance(input, Tensor):
            raise TypeError(f"input must be a Tensor or PackedSequence, got {type(input).__name__}")
        if hx is not None and not isinstance(hx, Tensor):
            raise TypeError(f"hx must be a Tensor (a GRU has no cell state), got {type(hx).__name__}")
        if input.dim() not in (2, 3):
            raise RNNInputError(f"FusedPixelGRU: input must be 2-D (unbatched) or 3-D, got {input.dim()}-D")
        unbatched = input.dim() == 2
        if unbatched:
            if hx is not None and hx.dim() != 2:
                raise RNNInputError(f"FusedPixelGRU: for unbatched 2-D input, hx must be 2-D, got {hx.dim()}-D")
            input, hx = input.unsqueeze(0 if self.batch_first else 1), None if hx is None else hx.unsqueeze(1)
        elif hx is not None and hx.dim() != 3:
            raise RNNInputError(f"FusedPixelGRU: for batched 3-D input, hx must be 3-D, got {hx.dim()}-D")
        x = input if self.batch_first else input.transpose(0, 1)
        output, h_n = self._run(x, hx, lengths=None)
        if not self.batch_first:
            output = output.transpose(0, 1)
        if unbatched:
            output, h_n = output.squeeze(0 if self.batch_first else 1), h_n.squeeze(1)
        return output, h_n

    def _forward_packed(self, packed: PackedSequence, hx: Tensor | None):
        # Rows run padded to the longest length: the recurrence is causal, so steps past a row's
        # end never change its earlier states; h_n is taken at each row's last real step.
        if hx is not None and hx.dim() != 3:
            raise RNNInputError(f"FusedPixelGRU: for PackedSequence input, hx must be 3-D, got {hx.dim()}-D")
        x, lengths = pad_packed_sequence(packed, batch_first=True)  # rows in the caller's order
        output, h_n = self._run(x, hx, lengths=lengths)
        order = packed.sorted_indices
        if order is not None:  # lengths live on the CPU, the indices with the data
            output, lengths = output[order], lengths[order.cpu()]
        data = pack_padded_sequence(output, lengths, batch_first=True, enforce_sorted=True).data
        return PackedSequence(data, packed.batch_sizes, packed.sorted_indices, packed.unsorted_indices), h_n

    def _run(self, x: Tensor, hx: Tensor | None, lengths: Tensor | None):
        """x: [B, T, input_size] -> ([B, T, H], h_n [num_layers, B, H])."""
        B, T, size = x.shape
        weight = self.weight_ih_l0
        if x.dtype != weight.dtype:
            raise RNNInputError(f"FusedPixelGRU: input dtype ({x.dtype}) does not match weight dtype "
                                f"({weight.dtype}); convert the input or the module")
        if size != self.input_size:
            raise RNNInputError(f"FusedPixelGRU: input.size(-1) must be equal to input_size. "
                                f"Expected {self.input_size}, got {size}")
        if T == 0:
            raise RNNInputError("FusedPixelGRU: expected sequence length to be larger than 0")
        expected = (self.num_layers, B, self.hidden_size)
        if hx is not None and tuple(hx.shape) != expected:
            raise RNNInputError(f"FusedPixelGRU: expected hidden size {expected}, got {list(hx.shape)}")
        if hx is not None and hx.dtype != weight.dtype:
            raise RNNInputError(f"FusedPixelGRU: hx dtype ({hx.dtype}) does not match weight dtype ({weight.dtype})")
        for name, t in (("input", x), ("hx", hx)):
            if t is not None and t.device != weight.device:
                raise RNNInputError(f"FusedPixelGRU: {name} is on {t.device} but the parameters are on {weight.device}")
        last = None if lengths is None else (lengths - 1).to(x.device)
        h_n = []
        for layer in range(self.num_layers):
            w_ih, w_hh = getattr(self, f"weight_ih_l{layer}"), getattr(self, f"weight_hh_l{layer}")
            b_ih = getattr(self, f"bias_ih_l{layer}") if self.bias else None
            b_hh = getattr(self, f"bias_hh_l{layer}") if self.bias else None
            gi = F.linear(x, w_ih, b_ih).to(w_hh.dtype)  # under autocast F.linear may return bf16
            out = scan(gi, None if hx is None else hx[layer].to(w_hh.dtype), w_hh, b_hh, backend=self.backend)
            h_n.append(out[:, -1] if last is None else out[torch.arange(B, device=x.device), last])
            x = out
            if self.dropout and self.training and layer + 1 < self.num_layers:
                x = F.dropout(x, self.dropout, training=True)
        return x, torch.stack(h_n)
