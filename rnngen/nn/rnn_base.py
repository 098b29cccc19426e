"""The machinery the nn.GRU / nn.LSTM / nn.RNN drop-ins share, parametrised by the cell.

``_FusedRNNBase`` holds what FusedPixelGRU, FusedPixelLSTM and FusedPixelRNN have in common:
nn.RNNBase's constructor checks, parameter names, shapes and initialisation, the forward's
checks and messages (batched, unbatched, PackedSequence), and the layer loop: per layer one GEMM
for the input gates of all steps plus one ``rnngen.scan`` with the module's cell. A subclass
names its cell and nn module, and says how its state ``hx`` is given: a Tensor h (GRU, Elman
RNN) or a tuple (h, c) (LSTM, whose cell state comes back beside h).
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
from ..ops import cells, scan


def recurrence_dtype(device_type: str, param_dtype: torch.dtype) -> torch.dtype:
    """The dtype the drop-ins run their recurrence in: under CUDA autocast the autocast dtype
    (float16 by default), as nn.GRU / nn.LSTM / nn.RNN do through cuDNN (its autocast rule casts
    the input, the state and the weights); elsewhere the parameters' dtype (on the CPU, also under
    autocast: rnngen's CPU kernels are float32/float64, so a bfloat16 recurrence would fall back
    to the reference; nn.GRU keeps float32 there too, while nn.LSTM and nn.RNN return bfloat16)."""
    if device_type == "cuda" and param_dtype == torch.float32 and torch.is_autocast_enabled("cuda"):
        return torch.get_autocast_dtype("cuda")
    return param_dtype


class RNNInputError(ValueError, RuntimeError):
    """Bad input to a drop-in module. It is a ValueError like the rest of rnngen's input errors,
    and a RuntimeError, the type nn.GRU raises for the same mistakes, so code written for
    nn.GRU keeps catching it."""


def _check_rnn_args(input_size, hidden_size, num_layers, bias, batch_first, dropout, stacklevel: int = 3) -> None:
    """nn.RNNBase's checks, in its order, with its exception types and messages (PyTorch's own
    module tests match them), and its warning for dropout with a single layer."""
    if not isinstance(dropout, numbers.Number) or isinstance(dropout, bool) or not 0 <= dropout <= 1:
        raise ValueError("dropout should be a number in range [0, 1] representing the probability of an "
                         "element being zeroed")
    if dropout > 0 and num_layers == 1:
        warnings.warn("dropout option adds dropout after all but last recurrent layer, so non-zero dropout "
                      f"expects num_layers greater than 1, but got dropout={dropout} and num_layers={num_layers}",
                      stacklevel=stacklevel)
    for name, value, kind in (("bias", bias, bool), ("batch_first", batch_first, bool),
                              ("input_size", input_size, int), ("hidden_size", hidden_size, int),
                              ("num_layers", num_layers, int)):
        if not isinstance(value, kind):  # as nn.GRU: True passes as the int 1
            raise TypeError(f"{name} should be of type {kind.__name__}, got: {type(value).__name__}")
        if kind is int and value <= 0:
            raise ValueError(f"{name} must be greater than zero")


def _each(fn, h: Tensor | None, c: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
    """fn applied to each state present (c is None for a cell without a cell state)."""
    return None if h is None else fn(h), None if c is None else fn(c)


class _FusedRNNBase(nn.Module):
    """A unidirectional multi-layer RNN of ``cell`` over the fused scan op; see the module doc.

    Subclasses set ``_mode`` (the nn module they stand in for: "GRU", "LSTM" or "RNN", used in
    nn's messages) and call ``__init__`` with their cell's name."""

    _mode: str

    def __init__(self, cell: str, input_size: int, hidden_size: int, num_layers: int, bias: bool,
                 batch_first: bool, dropout: float, bidirectional: bool, device, dtype, backend: str) -> None:
        super().__init__()
        # stacklevel 4: the warning points at the user's line (user -> subclass -> here -> check).
        _check_rnn_args(input_size, hidden_size, num_layers, bias, batch_first, dropout, stacklevel=4)
        if bidirectional:
            raise ValueError(f"bidirectional=True is not supported by {type(self).__name__} (a raster-order "
                             f"generator runs forward only); use nn.{self._mode} for a bidirectional {self._mode}")
        self._cell = cells.get(cell)
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional = False
        self.backend = dispatch.check_name(backend)
        factory = {"device": device, "dtype": dtype}
        gates = self._cell.gates * hidden_size
        for layer in range(num_layers):
            in_size = input_size if layer == 0 else hidden_size
            self.register_parameter(f"weight_ih_l{layer}", nn.Parameter(torch.empty(gates, in_size, **factory)))
            self.register_parameter(f"weight_hh_l{layer}", nn.Parameter(torch.empty(gates, hidden_size, **factory)))
            if bias:
                self.register_parameter(f"bias_ih_l{layer}", nn.Parameter(torch.empty(gates, **factory)))
                self.register_parameter(f"bias_hh_l{layer}", nn.Parameter(torch.empty(gates, **factory)))
        self.reset_parameters()

    @staticmethod
    def _unexpected(name: str, kwargs: dict) -> None:
        if kwargs:
            raise TypeError(f"{name} got an unexpected keyword argument {next(iter(kwargs))!r}")

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.hidden_size)  # nn.RNNBase's initialisation, every cell
        for weight in self.parameters():
            nn.init.uniform_(weight, -bound, bound)

    def flatten_parameters(self) -> None:
        """No-op, for code written for nn's RNNs (the fused ops need no flat weight buffer)."""

    @property
    def all_weights(self) -> list[list[Tensor]]:
        per_layer = 4 if self.bias else 2
        flat = self._flat_weights
        return [flat[i:i + per_layer] for i in range(0, len(flat), per_layer)]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        s += self._extra_repr_cell()
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        return s + f", backend={self.backend!r}"

    def _extra_repr_cell(self) -> str:
        return ""

    # ------------------------------------------------------------------ state (hx) handling

    def _hx_tensors(self, hx) -> tuple[Tensor | None, Tensor | None]:
        """``hx`` as (h, c): c is None for a cell without a cell state. The type checks."""
        if hx is None:
            return None, None
        if self._cell.has_cell_state:
            if not (isinstance(hx, (tuple, list)) and len(hx) == 2 and isinstance(hx[0], Tensor)
                    and isinstance(hx[1], Tensor)):
                got = type(hx).__name__
                if isinstance(hx, (tuple, list)):
                    got += " of " + ", ".join(type(t).__name__ for t in hx)
                raise TypeError(f"hx must be a tuple (h_0, c_0) of two Tensors for an {self._mode}, got {got}")
            return hx[0], hx[1]
        if not isinstance(hx, Tensor):
            article = "an" if self._mode == "RNN" else "a"
            raise TypeError(f"hx must be a Tensor ({article} {self._mode} has no cell state), got {type(hx).__name__}")
        return hx, None

    def _check_hx_dims(self, h: Tensor | None, c: Tensor | None, dims: int) -> None:
        """nn's check that hx has as many dimensions as the input (3 batched, 2 unbatched)."""
        if h is None:
            return
        kind = "batched 3-D" if dims == 3 else "unbatched 2-D"
        if c is not None:
            if h.dim() != dims or c.dim() != dims:
                raise RNNInputError(f"For {kind} input, hx and cx should also be {dims}-D but got "
                                    f"({h.dim()}-D, {c.dim()}-D) tensors")
        elif h.dim() != dims:
            raise RNNInputError(f"For {kind} input, hx should also be {dims}-D but got {h.dim()}-D tensor")

    def _state_out(self, h_n: Tensor, c_n: Tensor | None):
        return h_n if c_n is None else (h_n, c_n)

    # ------------------------------------------------------------------ forward

    def forward(self, input, hx=None):
        # The checks and messages are nn's (same exception types, same text).
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        if not isinstance(input, Tensor):
            raise TypeError(f"input must be a Tensor or PackedSequence, got {type(input).__name__}")
        h, c = self._hx_tensors(hx)
        if input.dim() not in (2, 3):
            # nn.RNN's message alone says "tensor"
            tensor = " tensor" if self._mode == "RNN" else ""
            raise RNNInputError(f"{self._mode}: Expected input to be 2D or 3D, got {input.dim()}D{tensor} instead")
        unbatched = input.dim() == 2
        self._check_hx_dims(h, c, 2 if unbatched else 3)
        if unbatched:
            input = input.unsqueeze(0 if self.batch_first else 1)
            h, c = _each(lambda t: t.unsqueeze(1), h, c)
        x = input if self.batch_first else input.transpose(0, 1)
        output, h_n, c_n = self._run(x, h, c)
        if not self.batch_first:
            output = output.transpose(0, 1)
        if unbatched:
            output = output.squeeze(0 if self.batch_first else 1)
            h_n, c_n = _each(lambda t: t.squeeze(1), h_n, c_n)
        return output, self._state_out(h_n, c_n)

    def _forward_packed(self, packed: PackedSequence, hx):
        """A PackedSequence runs padded to its longest length, in its sorted row order: the
        recurrence is causal, so steps past a row's end never change its earlier states; h_n
        (and the LSTM's c_n) is taken at each row's last real step. The padding and packing are
        gathers over indices of static shape ([T, B] and [N]), so torch.compile(fullgraph=True)
        traces them."""
        data, batch_sizes = packed.data, packed.batch_sizes
        h, c = self._hx_tensors(hx)
        if data.dim() != 2:
            raise RNNInputError(f"input must have 2 dimensions, got {data.dim()}")
        self._check_hx_dims(h, c, 3)
        T = batch_sizes.shape[0]
        if packed.sorted_indices is not None:
            B = packed.sorted_indices.shape[0]
        elif h is not None:
            B = h.shape[1]
        else:
            B = int(batch_sizes[0])
        sizes = batch_sizes.to(data.device)
        starts = torch.cumsum(sizes, 0) - sizes  # where step t's rows begin in data
        rows = torch.arange(B, device=data.device)
        valid = rows[None, :] < sizes[:, None]  # [T, B]: row b has a step t
        where = (starts[:, None] + rows[None, :]).clamp(max=data.shape[0] - 1)
        x = torch.where(valid[..., None], data[where.reshape(-1)].reshape(T, B, -1), 0)  # padding: exact zeros
        if packed.sorted_indices is not None:
            h, c = _each(lambda t: t.index_select(1, packed.sorted_indices), h, c)
        lengths = valid.sum(0)  # [B], sorted order: longest first
        output, h_n, c_n = self._run(x.transpose(0, 1), h, c, lengths=lengths)
        # Back to the packed layout: packed row i is step t of row i - starts[t].
        step = torch.arange(T, device=data.device).repeat_interleave(sizes, output_size=data.shape[0])
        out_data = output[torch.arange(data.shape[0], device=data.device) - starts[step], step]
        if packed.unsorted_indices is not None:
            h_n, c_n = _each(lambda t: t.index_select(1, packed.unsorted_indices), h_n, c_n)
        return (PackedSequence(out_data, batch_sizes, packed.sorted_indices, packed.unsorted_indices),
                self._state_out(h_n, c_n))

    def _run(self, x: Tensor, h: Tensor | None, c: Tensor | None, lengths: Tensor | None = None):
        """x: [B, T, input_size] -> ([B, T, H], h_n [num_layers, B, H], c_n [num_layers, B, H] or None)."""
        B, T, size = x.shape
        weight = self.weight_ih_l0
        name = type(self).__name__
        if x.dtype != weight.dtype and not torch.is_autocast_enabled(x.device.type):
            raise RNNInputError(f"RNN input dtype ({x.dtype}) does not match weight dtype ({weight.dtype}). "
                                f"Convert input: input.to({weight.dtype}), or convert model: model.to({x.dtype})")
        if size != self.input_size:
            raise RNNInputError(f"input.size(-1) must be equal to input_size. Expected {self.input_size}, got {size}")
        expected = (self.num_layers, B, self.hidden_size)
        lstm = self._cell.has_cell_state
        # nn.LSTM names the two states hidden[0] and hidden[1]; nn.GRU and nn.RNN say "hidden"
        for which, t in (("[0]" if lstm else "", h), ("[1]", c)):
            if t is not None and tuple(t.shape) != expected:
                raise RNNInputError(f"Expected hidden{which} size {expected}, got {list(t.shape)}")
        if T == 0:
            raise RNNInputError(f"{name}: expected sequence length to be larger than 0")
        for which, t in (("hx", h), ("cx", c)):
            if t is not None and t.dtype != weight.dtype:
                raise RNNInputError(f"{name}: {which} dtype ({t.dtype}) does not match weight dtype ({weight.dtype})")
        for which, t in (("input", x), ("hx", h), ("cx", c)):
            if t is not None and t.device != weight.device:
                raise RNNInputError(f"{name}: {which} is on {t.device} but the parameters are on {weight.device}")
        last = None if lengths is None else lengths - 1
        rows = None if last is None else torch.arange(B, device=x.device)
        dtype = recurrence_dtype(x.device.type, weight.dtype)
        h_n, c_n = [], []
        for layer in range(self.num_layers):
            w_ih, w_hh = getattr(self, f"weight_ih_l{layer}"), getattr(self, f"weight_hh_l{layer}")
            b_ih = getattr(self, f"bias_ih_l{layer}") if self.bias else None
            b_hh = getattr(self, f"bias_hh_l{layer}") if self.bias else None
            gi = F.linear(x.to(w_ih.dtype), w_ih, b_ih).to(dtype)  # under autocast F.linear may return bf16
            if dtype != w_hh.dtype:  # CUDA autocast: the recurrence in its dtype (the gradients reach w_hh)
                w_hh, b_hh = w_hh.to(dtype), None if b_hh is None else b_hh.to(dtype)
            h0 = None if h is None else h[layer].to(dtype)
            if lstm:
                c0 = None if c is None else c[layer].to(dtype)
                out, states = scan(gi, h0, w_hh, b_hh, cell=self._cell.name, c0=c0, return_cell_state=True,
                                   backend=self.backend)
                c_n.append(states[:, -1] if last is None else states[rows, last])
            else:
                out = scan(gi, h0, w_hh, b_hh, cell=self._cell.name, backend=self.backend)
            h_n.append(out[:, -1] if last is None else out[rows, last])
            x = out
            if self.dropout and self.training and layer + 1 < self.num_layers:
                x = F.dropout(x, self.dropout, training=True)
        return x, torch.stack(h_n), torch.stack(c_n) if lstm else None

    @property
    def _flat_weights_names(self) -> list[str]:
        """nn's names of the parameters, layer by layer (code written for nn's RNNs reads them)."""
        names = ["weight_ih_l{}", "weight_hh_l{}"] + (["bias_ih_l{}", "bias_hh_l{}"] if self.bias else [])
        return [n.format(layer) for layer in range(self.num_layers) for n in names]

    @property
    def _flat_weights(self) -> list[Tensor]:
        return [getattr(self, name) for name in self._flat_weights_names]

    def __prepare_scriptable__(self):
        # torch.jit.script calls this first: a clear refusal instead of an error deep in TorchScript.
        raise RuntimeError(f"{type(self).__name__} does not support torch.jit.script (TorchScript cannot compile "
                           "the fused ops' Python dispatch); use torch.jit.trace, torch.compile or torch.export")
