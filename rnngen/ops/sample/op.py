"""The sample op: categorical pixel-by-pixel generation, each drawn value fed back as input.

At step t (channel c = t % C) the head W_out[c] turns h_t into logits over K values; a value is
drawn by inverse CDF with the contract's Philox uniform ``tl.rand(seed, (row_offset + b) * T + t)``
(or taken from ``known``); its gate row ``emb[c][value]`` plus the row's conditioning vector,
plus a row of each lagged table for the values ``lags`` steps back (a pixel-RNN's neighbours
from the row above), is the next input of the cell. Same seed, same image, on every backend.
No gradient.
Registered as ``torch.ops.rnngen.sample``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ... import dispatch
from .. import _checks, cells
from . import naive  # noqa: F401  (registers the reference kernel)


_MIN_TEMPERATURE = torch.finfo(torch.float32).tiny
MAX_LAGS = 16  # lagged tables per op: the CUDA kernel keeps the lags in its parameters


def sample(h0: Tensor, emb: Tensor, w_hh: Tensor, b_hh: Tensor | None, w_out: Tensor,
           b_out: Tensor | None, steps: int, *, cond: Tensor | None = None, lag_emb: Tensor | None = None,
           lags=(), temperature: float = 1.0,
           seed: int = 0, known: Tensor | None = None, mask: Tensor | None = None,
           row_offset: int = 0, cell: str = "gru", c0: Tensor | None = None, backend: str = "auto",
           precision: str = "fp32") -> Tensor:
    """Draw ``steps`` categorical values per row.

    Args:
        h0: [B, H] initial hidden state.
        emb: [K, G*H] (or [C, K, G*H] for C channels) input gate row of each value:
            W_ih's column for that one-hot input with b_ih folded in (G = 3 gate blocks for the
            GRU, 4 for the LSTM, 1 for the Elman RNN).
        w_hh, b_hh: [G*H, H], [G*H] recurrent weight and bias.
        w_out, b_out: [K, H], [K] (or [C, K, H], [C, K]) output heads.
        steps: number of values T per row (H*W*C for an image).
        cond: [B, G*H] conditioning gates added to every step's input gates (class or latent).
        lag_emb, lags: lagged inputs. ``lags``: L distinct ints >= 1 (at most 16); ``lag_emb``:
            [L, K, G*H] (or [L, C, K, G*H]), one table per lag. The input gates of step s + 1
            then also hold ``lag_emb[j][c'][values[s + 1 - lags[j]]]`` for every j with
            s + 1 - lags[j] >= 0, c' that value's channel ((s + 1 - lags[j]) % C): with lags
            W - 1, W, W + 1 a raster-order model of W-wide images sees the three pixels above the
            one it draws. None and () (the default): none.
        temperature: > 0; logits are divided by it.
        seed: any int (taken mod 2**64).
        known, mask: [B, T] values to force (completion). With ``mask`` (bool), values where it
            is True are forced; without it, entries >= 0 are forced and -1 means "draw".
        row_offset: index of this batch's first row in a larger batch (sharded sampling draws
            the same numbers as one big batch).
        cell: "gru" (default), "lstm", "rnn_tanh" or "rnn_relu" (rnngen/ops/cells.py).
        c0: [B, H] initial cell state of the LSTM, or None for zeros (other cells: None).
        precision: "fp32" (default), or "bf16" (float32 inputs only): w_hh and w_out are rounded
            to bfloat16 once; everything else (emb, cond, biases, states, logits, the draw) stays
            float32. Every backend computes exactly that, so a seed draws the same values on
            each; the CPU kernel stores the rounded weights in half the bytes, which is faster at
            small batches.

    Returns: LongTensor [B, T] of values in 0..K-1.
    """
    (spec, h0, c0, emb, lag_emb, lags, cond, w_hh, b_hh, w_out, b_out, known, temperature, seed, device) = _checked(
        h0, emb, w_hh, b_hh, w_out, b_out, steps, cond, lag_emb, lags, temperature, seed, known, mask, row_offset,
        cell, c0, precision)
    name = dispatch.resolve(backend, device, "sample", w_hh.dtype, spec.name)
    w_hh, w_out = (_checks.weight_in(precision, w.detach()) for w in (w_hh, w_out))
    if lag_emb is None:  # the kernels always get a table: [0, C, K, G*H] for no lags
        lag_emb = emb.new_empty(0, *emb.shape)
    args = [x.detach() for x in (h0, c0, emb, lag_emb)]
    args += [lags] + [x.detach() for x in (cond, w_hh, b_hh, w_out, b_out)]
    return dispatch.run_op(torch.ops.rnngen.sample, _sample_body, *args, steps, temperature, seed, row_offset, known,
                           spec.name, name)


def _checked(h0, emb, w_hh, b_hh, w_out, b_out, steps, cond, lag_emb, lags, temperature, seed, known, mask,
             row_offset, cell, c0, precision):
    """Every argument of :func:`sample` checked (each error names its argument) and put in the
    kernels' form: the channel dimension always there, b_out, cond and c0 filled in, ``mask`` folded
    into ``known``, the seed as the int64 with its bits, the temperature a float."""
    spec = cells.get(cell)
    H = _checks.recurrent_weight(w_hh, spec.gates)
    G = spec.gates * H
    dtype = w_hh.dtype
    _checks.tensor("w_out", w_out, None)
    if w_out.dim() not in (2, 3) or w_out.shape[-1] != H:
        raise ValueError(f"w_out must have shape [K, H] or [C, K, H] with H={H}, got {list(w_out.shape)}")
    lead = tuple(w_out.shape[:-1])  # (K,) or (C, K)
    K = lead[-1]
    _checks.positive_int("w_out.shape[-2] (number of values K)", K)
    if w_out.dim() == 3:
        _checks.positive_int("w_out.shape[0] (number of channels C)", w_out.shape[0])
    _checks.tensor("w_out", w_out, (*lead, H), dtype=dtype)
    _checks.tensor("emb", emb, (*lead, G), dtype=dtype)
    b_out = w_out.new_zeros(lead) if b_out is None else _checks.tensor("b_out", b_out, lead, dtype=dtype)
    lags, lag_emb = _check_lags(lags, lag_emb, tuple(emb.shape), dtype, w_out.dim() == 2)
    if w_out.dim() == 2:  # one channel: the op always takes a channel dimension
        w_out, emb, b_out = w_out[None], emb[None], b_out[None]
    _checks.tensor("h0", h0, (None, H), dtype=dtype)
    B = h0.shape[0]
    c0 = _checks.cell_state(spec, c0, h0)
    b_hh = _checks.bias("b_hh", b_hh, G, w_hh)
    cond = h0.new_zeros(B, G) if cond is None else _checks.tensor("cond", cond, (B, G), dtype=dtype)
    _checks.positive_int("steps", steps)
    if steps % w_out.shape[0]:
        raise ValueError(f"steps must be a multiple of the number of channels C={w_out.shape[0]} "
                         f"(T = H * W * C), got {steps}")
    if torch.compiler.is_compiling():
        # Dynamo may pass a temperature or seed that changes between calls as a symbolic number;
        # checking it this way keeps the graph whole.
        torch._check(temperature > 0, lambda: "temperature must be > 0")
    else:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            raise TypeError(f"temperature must be a float, got {type(temperature).__name__}")
        if not (math.isfinite(temperature) and temperature >= _MIN_TEMPERATURE):
            raise ValueError(f"temperature must be a finite number >= {_MIN_TEMPERATURE:.3g} (float32's "
                             f"smallest normal; logits are divided by it in float32), got {temperature}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    _checks.positive_int("row_offset", row_offset, minimum=0)
    _checks.precision(precision, dtype)
    if (row_offset + B) * steps >= 2**63:
        raise ValueError(f"(row_offset + B) * steps must be below 2**63, got ({row_offset} + {B}) * {steps}")
    if mask is not None:
        if known is None:
            raise ValueError("mask was given without known: pass the known values too")
        _checks.tensor("mask", mask, (B, steps), dtype=torch.bool, floating=False)
    if known is not None:
        _checks.tensor("known", known, (B, steps), floating=False)
        if known.dtype.is_floating_point or known.dtype.is_complex or known.dtype == torch.bool:
            raise TypeError(f"known must be an integer tensor, got dtype {known.dtype}")
        known = known.to(torch.int64)
    device = _checks.same_device(h0=h0, c0=c0, emb=emb, lag_emb=lag_emb, cond=cond, w_hh=w_hh, b_hh=b_hh, w_out=w_out,
                                 b_out=b_out, known=known, mask=mask)
    if mask is not None:
        known = torch.where(mask, known, -1)
    if isinstance(seed, int):  # a symbolic seed (under torch.compile) is an int64 already
        seed = seed % 2**64
        seed = seed - 2**64 if seed >= 2**63 else seed  # the int64 with the same bits
    if isinstance(temperature, int):
        temperature = float(temperature)
    return spec, h0, c0, emb, lag_emb, lags, cond, w_hh, b_hh, w_out, b_out, known, temperature, seed, device


def _check_lags(lags, lag_emb, emb_shape: tuple, dtype, one_channel: bool) -> tuple[list[int], Tensor | None]:
    """``lags`` as a list of ints and ``lag_emb`` as [L, C, K, G*H], checked against emb's shape
    ``emb_shape`` (as given: [K, G*H] when ``one_channel``, else [C, K, G*H])."""
    if isinstance(lags, (str, bytes)) or not hasattr(lags, "__len__"):
        raise TypeError(f"lags must be a sequence of ints, got {type(lags).__name__}")
    lags = list(lags)
    for lag in lags:
        if isinstance(lag, bool) or not isinstance(lag, int):
            raise TypeError(f"lags must be ints, got {lag!r}")
        if lag < 1:
            raise ValueError(f"lags must be >= 1 (steps back), got {lag}")
    if len(set(lags)) != len(lags):
        raise ValueError(f"lags must be distinct, got {lags}")
    if len(lags) > MAX_LAGS:
        raise ValueError(f"lags: at most {MAX_LAGS} lags, got {len(lags)}")
    if lag_emb is None:
        if lags:
            raise ValueError(f"lags {lags} given without lag_emb: pass a table per lag")
        return lags, None
    _checks.tensor("lag_emb", lag_emb, None, dtype=dtype)
    want = (len(lags), *emb_shape)
    if tuple(lag_emb.shape) != want:
        raise ValueError(f"lag_emb must have shape [L, *emb.shape] = {list(want)} (L = len(lags) = {len(lags)}), "
                         f"got {list(lag_emb.shape)}")
    return lags, lag_emb[:, None] if one_channel else lag_emb


def _sample_body(h0: Tensor, c0: Tensor, emb: Tensor, lag_emb: Tensor, lags: list[int], cond: Tensor, w_hh: Tensor,
                 b_hh: Tensor, w_out: Tensor, b_out: Tensor, steps: int, temperature: float, seed: int,
                 row_offset: int, known: Tensor | None, cell: str, backend: str) -> Tensor:
    K = w_out.shape[1]
    if known is not None:
        bad = (known < -1) | (known >= K)
        if bool(bad.any()):  # checked here, on real values, so no kernel ever indexes out of range
            raise ValueError(f"known values must lie in 0..{K - 1} (or -1 for 'draw'); got "
                             f"{int(known[bad][0])}")
        known = known.contiguous()
    values = dispatch.new_output((h0.shape[0], steps), h0, dtype=torch.int64)
    states = (h0, c0) if cells.CELLS[cell].has_cell_state else (h0,)
    inputs = [a.contiguous() for a in (*states, emb, lag_emb)] + [list(lags)]
    inputs += [a.contiguous() for a in (cond, w_hh, b_hh, w_out, b_out)]
    dispatch.get_kernel(backend, "sample", cell)(*inputs, temperature, seed, row_offset, known, values)
    return values


_sample = torch.library.custom_op("rnngen::sample", _sample_body, mutates_args=())


@_sample.register_fake
def _(h0, c0, emb, lag_emb, lags, cond, w_hh, b_hh, w_out, b_out, steps, temperature, seed, row_offset, known, cell,
      backend):
    return h0.new_empty(h0.shape[0], steps, dtype=torch.int64)
