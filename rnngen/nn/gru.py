"""FusedPixelGRU: a drop-in for nn.GRU (unidirectional) that runs through the fused scan op.

Same constructor, parameter names, shapes and initialisation as nn.GRU, so state_dicts move both
ways; same forward signature and shapes (batched, unbatched, PackedSequence). Each layer is one
GEMM for the input gates of all steps plus one ``rnngen.scan``; because it never calls nn.GRU,
``torch.compile(fullgraph=True)`` traces straight through it.
"""

from __future__ import annotations

import math
import numbers
import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence

from .. import dispatch
from ..ops import scan


class RNNInputError(ValueError, RuntimeError):
    """Bad input to a drop-in module. It is a ValueError like the rest of rnngen's input errors,
    and a RuntimeError, the type nn.GRU raises for the same mistakes, so code written for
    nn.GRU keeps catching it."""


def _check_rnn_args(input_size, hidden_size, num_layers, bias, batch_first, dropout) -> None:
    """nn.RNNBase's checks, in its order, with its exception types and messages (PyTorch's own
    module tests match them), and its warning for dropout with a single layer."""
    if not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
        raise ValueError("dropout should be a number in range [0, 1] representing the probability of an "
                         "element being zeroed")
    if dropout > 0 and num_layers == 1:
        warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                      f"expects num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                      stacklevel=3)
    for name, value, kind in (("bias", bias, bool), ("batch_first", batch_first, bool),
                              ("input_size", input_size, int), ("hidden_size", hidden_size, int),
                              ("num_layers", num_layers, int)):
        if not isinstance(value, kind):  # as nn.GRU: True passes as the int 1
            raise TypeError(f"{name} should be of type {kind.__name__}, got: {type(value).__name__}")
        if kind is int and value <= 0:
            raise ValueError(f"{name} must be greater than zero")


class FusedPixelGRU(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 device=None, dtype=None, backend: str = "auto", **kwargs):
        super().__init__()
        if "proj_size" in kwargs:
            raise ValueError("proj_size argument is only supported for LSTM, not RNN or GRU")
        if kwargs:
            raise TypeError(f"FusedPixelGRU got an unexpected keyword argument {next(iter(kwargs))!r}")
        _check_rnn_args(input_size, hidden_size, num_layers, bias, batch_first, dropout)
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
        per_layer = 4 if self.bias else 2
        flat = self._flat_weights
        return [flat[i:i + per_layer] for i in range(0, len(flat), per_layer)]

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
        # The checks and messages are nn.GRU's (same exception types, same text).
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        if not isinstance(input, Tensor):
            raise TypeError(f"input must be a Tensor or PackedSequence, got {type(input).__name__}")
        if hx is not None and not isinstance(hx, Tensor):
            raise TypeError(f"hx must be a Tensor (a GRU has no cell state), got {type(hx).__name__}")
        if input.dim() not in (2, 3):
            raise RNNInputError(f"GRU: Expected input to be 2D or 3D, got {input.dim()}D instead")
        unbatched = input.dim() == 2
        if unbatched:
            if hx is not None and hx.dim() != 2:
                raise RNNInputError(f"For unbatched 2-D input, hx should also be 2-D but got {hx.dim()}-D tensor")
            input, hx = input.unsqueeze(0 if self.batch_first else 1), None if hx is None else hx.unsqueeze(1)
        elif hx is not None and hx.dim() != 3:
            raise RNNInputError(f"For batched 3-D input, hx should also be 3-D but got {hx.dim()}-D tensor")
        x = input if self.batch_first else input.transpose(0, 1)
        output, h_n = self._run(x, hx)
        if not self.batch_first:
            output = output.transpose(0, 1)
        if unbatched:
            output, h_n = output.squeeze(0 if self.batch_first else 1), h_n.squeeze(1)
        return output, h_n

    def _forward_packed(self, packed: PackedSequence, hx: Tensor | None):
        """A PackedSequence runs padded to its longest length, in its sorted row order: the
        recurrence is causal, so steps past a row's end never change its earlier states; h_n is
        taken at each row's last real step. The padding and packing are gathers over indices
        of static shape ([T, B] and [N]), so torch.compile(fullgraph=True) traces them."""
        data, batch_sizes = packed.data, packed.batch_sizes
        if hx is not None and not isinstance(hx, Tensor):
            raise TypeError(f"hx must be a Tensor (a GRU has no cell state), got {type(hx).__name__}")
        if data.dim() != 2:
            raise RNNInputError(f"input must have 2 dimensions, got {data.dim()}")
        if hx is not None and hx.dim() != 3:
            raise RNNInputError(f"For batched 3-D input, hx should also be 3-D but got {hx.dim()}-D tensor")
        T = batch_sizes.shape[0]
        if packed.sorted_indices is not None:
            B = packed.sorted_indices.shape[0]
        elif hx is not None:
            B = hx.shape[1]
        else:
            B = int(batch_sizes[0])
        sizes = batch_sizes.to(data.device)
        starts = torch.cumsum(sizes, 0) - sizes  # where step t's rows begin in data
        rows = torch.arange(B, device=data.device)
        valid = rows[None, :] < sizes[:, None]  # [T, B]: row b has a step t
        where = (starts[:, None] + rows[None, :]).clamp(max=data.shape[0] - 1)
        x = torch.where(valid[..., None], data[where.reshape(-1)].reshape(T, B, -1), 0)  # padding: exact zeros
        if hx is not None and packed.sorted_indices is not None:
            hx = hx.index_select(1, packed.sorted_indices)
        lengths = valid.sum(0)  # [B], sorted order: longest first
        output, h_n = self._run(x.transpose(0, 1), hx, lengths=lengths)
        # Back to the packed layout: packed row i is step t of row i - starts[t].
        step = torch.arange(T, device=data.device).repeat_interleave(sizes, output_size=data.shape[0])
        out_data = output[torch.arange(data.shape[0], device=data.device) - starts[step], step]
        if packed.unsorted_indices is not None:
            h_n = h_n.index_select(1, packed.unsorted_indices)
        return PackedSequence(out_data, batch_sizes, packed.sorted_indices, packed.unsorted_indices), h_n

    def _run(self, x: Tensor, hx: Tensor | None, lengths: Tensor | None = None):
        """x: [B, T, input_size] -> ([B, T, H], h_n [num_layers, B, H])."""
        B, T, size = x.shape
        weight = self.weight_ih_l0
        if x.dtype != weight.dtype and not torch.is_autocast_enabled(x.device.type):
            raise RNNInputError(f"RNN input dtype ({x.dtype}) does not match weight dtype ({weight.dtype}). "
                                f"Convert input: input.to({weight.dtype}), or convert model: model.to({x.dtype})")
        if size != self.input_size:
            raise RNNInputError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got {size}")
        expected = (self.num_layers, B, self.hidden_size)
        if hx is not None and tuple(hx.shape) != expected:
            raise RNNInputError(f"Expected hidden size {expected}, got {list(hx.shape)}")
        if T == 0:
            raise RNNInputError("FusedPixelGRU: expected sequence length to be larger than 0")
        if hx is not None and hx.dtype != weight.dtype:
            raise RNNInputError(f"FusedPixelGRU: hx dtype ({hx.dtype}) does not match weight dtype ({weight.dtype})")
        for name, t in (("input", x), ("hx", hx)):
            if t is not None and t.device != weight.device:
                raise RNNInputError(f"FusedPixelGRU: {name} is on {t.device} but the parameters are on {weight.device}")
        last = None if lengths is None else lengths - 1
        h_n = []
        for layer in range(self.num_layers):
            w_ih, w_hh = getattr(self, f"weight_ih_l{layer}"), getattr(self, f"weight_hh_l{layer}")
            b_ih = getattr(self, f"bias_ih_l{layer}") if self.bias else None
            b_hh = getattr(self, f"bias_hh_l{layer}") if self.bias else None
            gi = F.linear(x.to(w_ih.dtype), w_ih, b_ih).to(w_hh.dtype)  # under autocast F.linear may return bf16
            out = scan(gi, None if hx is None else hx[layer].to(w_hh.dtype), w_hh, b_hh, backend=self.backend)
            h_n.append(out[:, -1] if last is None else out[torch.arange(B, device=x.device), last])
            x = out
            if self.dropout and self.training and layer + 1 < self.num_layers:
                x = F.dropout(x, self.dropout, training=True)
        return x, torch.stack(h_n)

    @property
    def _flat_weights_names(self) -> list[str]:
        """nn.GRU's names of the parameters, layer by layer (code written for nn.GRU reads them)."""
        names = ["weight_ih_l{}", "weight_hh_l{}"] + (["bias_ih_l{}", "bias_hh_l{}"] if self.bias else [])
        return [n.format(layer) for layer in range(self.num_layers) for n in names]

    @property
    def _flat_weights(self) -> list[Tensor]:
        return [getattr(self, name) for name in self._flat_weights_names]

    def __prepare_scriptable__(self):
        # torch.jit.script calls this first: a clear refusal instead of an error deep in TorchScript.
        raise RuntimeError("FusedPixelGRU does not support torch.jit.script (TorchScript cannot compile the "
                           "fused ops' Python dispatch); use torch.jit.trace, torch.compile or torch.export")
