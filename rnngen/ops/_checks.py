"""Argument checks shared by the public op functions: run before any kernel, naming the argument."""

from __future__ import annotations

import math

import torch

FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def tensor(name: str, value, shape: tuple | None, *, dtype: torch.dtype | None = None,
           floating: bool = True) -> torch.Tensor:
    """Check ``value`` is a tensor of ``shape`` (None: any shape; None entries: any size) and dtype."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if floating and value.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if dtype is not None and value.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype} (like the other inputs), got {value.dtype}")
    if shape is None:
        return value
    if value.dim() != len(shape) or any(s is not None and s != v for s, v in zip(shape, value.shape)):
        want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        raise ValueError(f"{name} must have shape {want}, got {list(value.shape)}")
    return value


def recurrent_weight(w_hh, gates: int = 3) -> int:
    """Check w_hh is [gates * H, H] (nn.GRU's weight_hh_l0: 3 gate blocks; nn.LSTM's 4,
    nn.RNN's 1) and return H."""
    tensor("w_hh", w_hh, (None, None))
    H = w_hh.shape[1]
    if H < 1 or w_hh.shape[0] != gates * H:
        blocks = "H" if gates == 1 else f"{gates}H"
        raise ValueError(f"w_hh must have shape [{blocks}, H] with H >= 1, got {list(w_hh.shape)}")
    return H


def cell_state(cell, c0, h0: torch.Tensor) -> torch.Tensor:
    """The initial cell state for ``cell``: c0 checked like h0 ([B, H], h0's dtype), zeros for
    None; an empty tensor for a cell without one (which must get None)."""
    if not cell.has_cell_state:
        if c0 is not None:
            raise ValueError(f"c0 is only for a cell with a cell state (lstm), got cell={cell.name!r}")
        return h0.new_empty(0)
    if c0 is None:
        return torch.zeros_like(h0)
    return tensor("c0", c0, tuple(h0.shape), dtype=h0.dtype)


def same_device(**tensors: torch.Tensor | None) -> torch.device:
    """The one device all given tensors live on (None entries are skipped)."""
    device = None
    first = None
    for name, t in tensors.items():
        if t is None:
            continue
        if device is None:
            device, first = t.device, name
        elif t.device != device:
            raise ValueError(f"{name} is on {t.device} but {first} is on {device}; "
                             "all inputs must be on one device")
    return device


def positive_int(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, torch.Tensor) and value.dim() == 0 and torch.jit.is_tracing():
        value = int(value)  # torch.jit.trace hands sizes over as 0-d tensors
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def bias(name: str, value, size: int, like: torch.Tensor) -> torch.Tensor:
    """A bias vector of ``size``; None means zeros (so kernels always get a tensor)."""
    if value is None:
        return like.new_zeros(size)
    return tensor(name, value, (size,), dtype=like.dtype)


PRECISIONS = ("fp32", "bf16")


def precision(value, dtype: torch.dtype | None = None) -> str:
    """Check the ``precision`` option: "fp32" (the default) or "bf16" (float32 inputs only;
    ``dtype``, when given, is the inputs')."""
    if not isinstance(value, str) or value not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(map(repr, PRECISIONS))}, got {value!r}")
    if value == "bf16" and dtype is not None and dtype != torch.float32:
        raise ValueError(f"precision='bf16' needs float32 inputs (it rounds float32 weights to bfloat16), "
                         f"got dtype {dtype}")
    return value


class _RoundToBF16(torch.autograd.Function):
    """The weight rounded to the nearest bfloat16 (ties to even), kept as float32; the gradient
    passes through unchanged (straight-through), in float32."""

    @staticmethod
    def forward(w):
        return w.to(torch.bfloat16).to(w.dtype)

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, grad):
        return grad


def weight_in(precision: str, w: torch.Tensor) -> torch.Tensor:
    """A weight as the kernels take it under ``precision``: as is for "fp32"; for "bf16" its
    values rounded to bfloat16 (still a float32 tensor: every backend runs its float32 kernel on
    it, and the CPU kernels store such weights in half the bytes, see csrc/cpu/gru_kernels.h)."""
    if precision == "fp32":
        return w
    if torch.is_grad_enabled() and w.requires_grad:
        return _RoundToBF16.apply(w)
    return w.detach().to(torch.bfloat16).to(w.dtype)  # no autograd node: cheaper per call


def guidance(value) -> float:
    """Check the ``guidance`` weight of guided sampling: a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (math.isfinite(value) and value >= 0):
        raise ValueError(f"guidance must be a finite number >= 0, got {value!r}")
    return float(value)
