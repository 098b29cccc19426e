"""Triton kernels of the sample op: W_hh on chip in one program per 16-row batch tile, or split
over cooperating programs (rnngen/ops/triton_split.py; the rule: triton_common.hidden_tiles).

Per step t (channel ch = t % C): logits = h @ W_out[ch]^T + b_out[ch] ([BLOCK_B, KP], K padded to
a power of two KP >= 16, padded values masked out), the contract's draw with
u = tl.rand(seed, (row_offset + b) * T + t), the known value where one is forced, then
h = cell(emb[ch][value] + cond + lagged, h) with h (and the LSTM's c) kept in registers throughout.
Lagged inputs (NL lags, a constexpr; NL = 0 compiles to the kernel without them): lagged is the
row lag_emb[j][s % C][values[s]] of each lag j with s = t + 1 - lags[j] >= 0, added after
emb + cond in the order of ``lags``, values[s] read back from the kernel's own output. One
kernel for every cell, specialised by the cell's constexprs (rnngen/ops/triton_common.py: CELL,
NG gate blocks, HAS_C); the LSTM's entry point also takes c0 after h0 (rnngen/ops/sample/naive.py).

What lives where (one program a tile): h, the logits and the CDF are registers, W_hh on chip.
The head W_out[ch]^T is loaded once with W_hh when there is
one channel and it is small (HP * KP <= HEAD_ON_CHIP_FLOATS = 4096 floats, e.g. H = 64 with
K = 64 or H = 16 with K = 256), otherwise streamed each step in [HP, BLOCK_K] tiles (at most
8192 floats). The input table emb [C, K, NG*H] is not kept on chip: each step gathers only the
BLOCK_B drawn rows of it (NG*H values per row, L2-resident), which is cheaper in registers than
holding K x NG*H values for a lookup; the lagged tables lag_emb [NL, C, K, NG*H] likewise.

The draw (the reference's rnngen/ops/sample/naive.draw): e = exp((l - max) / temperature)
(division rounded as IEEE, tl.div_rn), cdf = tl.cumsum(e) in float32, value = the number of
k < K-1 with cdf[k] <= u * cdf[K-1]: the first k with cdf[k] > u * cdf[K-1], else K-1, and 0
when the logits hold a NaN (every comparison with a NaN threshold is false).
"""

from __future__ import annotations

import functools
import warnings

import torch
import triton
import triton.language as tl

from ...dispatch import register_kernel
from .. import triton_common as tc
from .. import triton_split as ts
from ..cells import CELLS, kernel_for
from ..triton_common import (
    add_gates,
    cell_update,
    dot_gates,
    load_gates,
    load_gates_w_t,
    mma,
    put_chunk,
)
from ..scan import triton as scan_triton
from . import naive

HEAD_ON_CHIP_FLOATS = 4096
MAX_KP = 4096


@triton.jit
def _add_lagged(i, lagemb_ptr, lags_ptr, val_ptr, value, t, rows, rmask, j, m, T, H, C, K, NL: tl.constexpr,
                NG: tl.constexpr):
    """The input gates i (4-tuple, a chunk of units j) plus the rows of the NL lagged tables
    lag_emb [NL, C, K, NG*H] for the values lags[lag] steps before step t + 1, in the order of
    lags; a lag not reached yet (s < 0) adds nothing, as in the reference. Step t's own value is
    ``value`` (registers); earlier ones are read back from val_ptr past L1 (the split kernel's
    program 0 stored them, on another SM). Unrolled (static_range): offline sm_90 compiles of the
    streamed kernels spill far less than with a loop carrying the gates."""
    for lag in tl.static_range(NL):
        s = t + 1 - tl.load(lags_ptr + lag)  # the step of the lagged value (uniform over the tile)
        if s >= 0:
            earlier = (rows * 0 + s) < t  # [BLOCK_B]: step t's own value is not stored yet
            v = tl.load(val_ptr + rows * T + s, mask=rmask & earlier, other=0, cache_modifier=".cg")
            v = tl.where(s == t, value, v)
            row = ((lag * C + s % C) * K + v) * (NG * H)
            i = add_gates(i, load_gates(lagemb_ptr, row[:, None] + j[None, :], H, m, NG), NG)
    return i


@triton.jit
def _draw(logits, known_ptr, step, rmask, kall, K, temperature, seed, row_offset, rows, T, t,
          HAS_KNOWN: tl.constexpr):
    """Step t's values [BLOCK_B] from the logits [BLOCK_B, KP] (the module docstring's draw),
    or the known value where one is forced."""
    valid = (kall < K)[None, :]
    logits = tl.where(valid, logits, float("-inf"))
    top = tl.max(logits, axis=1)
    shifted = logits - top[:, None]
    e = tl.exp(tl.div_rn(shifted, tl.zeros_like(shifted) + temperature))
    e = tl.where(valid, e, 0.0)
    cdf = tl.cumsum(e, axis=1)
    total = tl.sum(tl.where(kall[None, :] == K - 1, cdf, 0.0), axis=1)
    u = tl.rand(seed, (row_offset + rows) * T + t)
    threshold = u * total
    below = (kall[None, :] < K - 1) & (cdf <= threshold[:, None])
    value = tl.sum(below.to(tl.int64), axis=1)
    if HAS_KNOWN:
        forced = tl.load(known_ptr + step, mask=rmask, other=-1)
        value = tl.where(forced >= 0, forced, value)
    return value


@triton.jit
def _sample_kernel(h0_ptr, c0_ptr, emb_ptr, lagemb_ptr, lags_ptr, cond_ptr, whh_ptr, bhh_ptr, wout_ptr, bout_ptr,
                   known_ptr, val_ptr, temperature, seed, row_offset, B, T, H, C, K, HAS_KNOWN: tl.constexpr,
                   NL: tl.constexpr, BLOCK_B: tl.constexpr, HP: tl.constexpr, KP: tl.constexpr, BLOCK_K: tl.constexpr,
                   NKK: tl.constexpr, HEAD_ON_CHIP: tl.constexpr, CELL: tl.constexpr, NG: tl.constexpr,
                   HAS_C: tl.constexpr, DIRECT: tl.constexpr, DOT: tl.constexpr):
    """All T draws for one batch tile, W_hh on chip."""
    pid = tl.program_id(0)
    rows = (pid * BLOCK_B + tl.arange(0, BLOCK_B)).to(tl.int64)
    rmask = rows < B
    cols = tl.arange(0, HP)
    cmask = cols < H
    ck = tl.arange(0, BLOCK_K)
    kall = tl.arange(0, KP)
    G = NG * H
    m = rmask[:, None] & cmask[None, :]
    h = tl.load(h0_ptr + rows[:, None] * H + cols[None, :], mask=m, other=0.0).to(tl.float32)
    c = h  # the LSTM's cell state; a placeholder the other cells never read
    if HAS_C:
        c = tl.load(c0_ptr + rows[:, None] * H + cols[None, :], mask=m, other=0.0).to(tl.float32)
    w = load_gates_w_t(whh_ptr, H, H, cols, cols, cmask[:, None] & cmask[None, :], NG)
    b = load_gates(bhh_ptr, cols, H, cmask, NG)
    if HEAD_ON_CHIP:  # one channel: W_out^T [HP, KP] and b_out, loaded once
        w_o = tl.load(wout_ptr + kall[None, :] * H + cols[:, None], mask=cmask[:, None] & (kall < K)[None, :],
                      other=0.0).to(tl.float32)
        b_o = tl.load(bout_ptr + kall, mask=kall < K, other=0.0).to(tl.float32)
    for t in range(T):
        ch = t % C  # the channel
        step = rows * T + t
        logits = tl.zeros((BLOCK_B, KP), dtype=tl.float32)
        for kk in range(NKK):  # the logits, BLOCK_K values at a time
            if HEAD_ON_CHIP:
                lk = mma(h, w_o, None, DOT) + b_o[None, :]
            else:
                k = kk * BLOCK_K + ck
                kmask = k < K
                wo = tl.load(wout_ptr + (ch * K + k)[None, :] * H + cols[:, None],
                             mask=cmask[:, None] & kmask[None, :], other=0.0).to(tl.float32)
                bo = tl.load(bout_ptr + ch * K + k, mask=kmask, other=0.0).to(tl.float32)
                lk = mma(h, wo, None, DOT) + bo[None, :]
            logits = put_chunk(logits, kk, lk, BLOCK_B, NKK, BLOCK_K)
        value = _draw(logits, known_ptr, step, rmask, kall, K, temperature, seed, row_offset, rows, T, t, HAS_KNOWN)
        tl.store(val_ptr + step, value, mask=rmask)
        if NL > 0:
            # The lagged values are read back from val_ptr (a register history would need the
            # largest lag's worth of columns, e.g. 257 for 256-wide images); a row's value may be
            # stored and loaded by different threads: the barrier makes the store visible.
            tl.debug_barrier()
        # the next state: input gates = emb[ch][value] + cond (+ the lagged rows), gathered row by row
        row_in = (ch * K + value) * G
        g = dot_gates(h, w, b, NG, DOT)
        i = add_gates(load_gates(emb_ptr, row_in[:, None] + cols[None, :], H, m, NG),
                      load_gates(cond_ptr, rows[:, None] * G + cols[None, :], H, m, NG), NG)
        i = _add_lagged(i, lagemb_ptr, lags_ptr, val_ptr, value, t, rows, rmask, cols, m, T, H, C, K, NL, NG)
        h, c = cell_update(CELL, i, g, h, c)
        h = tl.where(m, h, 0.0)
        if HAS_C:
            c = tl.where(m, c, 0.0)


@triton.jit
def _sample_split_kernel(emb_ptr, lagemb_ptr, lags_ptr, cond_ptr, whh_ptr, bhh_ptr, wout_ptr, bout_ptr, known_ptr,
                         val_ptr, temperature, seed, row_offset, hbuf_ptr, cbuf_ptr, lbuf_ptr, B, T, H, C, K, sync_ptr,
                         q_begin, q_end, COOP: tl.constexpr, HAS_KNOWN: tl.constexpr, NL: tl.constexpr,
                         BLOCK_B: tl.constexpr, HP: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                         ON_CHIP: tl.constexpr, KP: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_H: tl.constexpr,
                         CELL: tl.constexpr, NG: tl.constexpr, HAS_C: tl.constexpr, DIRECT: tl.constexpr,
                         DOT: tl.constexpr):
    """Half-steps [q_begin, q_end) (2 T in all) for the units of program_id(0) in the batch tile
    program_id(1), W_hh split over the programs (rnngen/ops/triton_split.py; hbuf and cbuf as in
    the scan's split forward). Half-step 2t: the programs share out the logits of step t, BLOCK_V
    values per chunk, from h_{t-1} (each chunk one program's, in BLOCK_H units of h at a time),
    into lbuf [BP, KP]. Half-step 2t + 1: every program reads all of them and makes the same draw
    (program 0 stores it), then steps its units. A barrier after each half-step."""
    p, tile, BP, rows, rmask, j, jmask, m, own = ts.unit_block(B, H, BLOCK_B, HP, BLOCK_N)
    cols = tl.arange(0, HP)
    kall = tl.arange(0, KP)
    G = NG * H
    b = load_gates(bhh_ptr, j, H, jmask, NG)
    w = b
    if ON_CHIP:
        w = load_gates_w_t(whh_ptr, H, H, cols, j, (cols < H)[:, None] & jmask[None, :], NG)
    c = tl.zeros((BLOCK_B, BLOCK_N), dtype=tl.float32)  # a placeholder but for the LSTM
    if HAS_C:
        c = tl.load(cbuf_ptr + own)
    for q in range(q_begin, q_end):
        t = q // 2
        ch = t % C  # the channel
        hin = hbuf_ptr + (t % 2) * BP * HP
        step = rows * T + t
        if q % 2 == 0:  # this program's chunks of step t's logits
            for kk in range(p, KP // BLOCK_V, tl.num_programs(0)):
                k = kk * BLOCK_V + tl.arange(0, BLOCK_V)
                kmask = k < K
                lk = tl.zeros((BLOCK_B, BLOCK_V), dtype=tl.float32)
                for hh in range(HP // BLOCK_H):
                    kh = hh * BLOCK_H + tl.arange(0, BLOCK_H)
                    hk = tl.load(hin + rows[:, None] * HP + kh[None, :], cache_modifier=".cg")
                    wo = tl.load(wout_ptr + (ch * K + k)[None, :] * H + kh[:, None],
                                 mask=(kh < H)[:, None] & kmask[None, :], other=0.0).to(tl.float32)
                    lk = mma(hk, wo, lk, DOT)
                bo = tl.load(bout_ptr + ch * K + k, mask=kmask, other=0.0).to(tl.float32)
                tl.store(lbuf_ptr + rows[:, None] * KP + k[None, :], lk + bo[None, :])
        else:  # the draw, then this program's units of h_t
            logits = tl.load(lbuf_ptr + rows[:, None] * KP + kall[None, :], cache_modifier=".cg")
            value = _draw(logits, known_ptr, step, rmask, kall, K, temperature, seed, row_offset, rows, T, t,
                          HAS_KNOWN)
            if p == 0:
                tl.store(val_ptr + step, value, mask=rmask)
            row_in = (ch * K + value) * G
            i = add_gates(load_gates(emb_ptr, row_in[:, None] + j[None, :], H, m, NG),
                          load_gates(cond_ptr, rows[:, None] * G + j[None, :], H, m, NG), NG)
            i = _add_lagged(i, lagemb_ptr, lags_ptr, val_ptr, value, t, rows, rmask, j, m, T, H, C, K, NL, NG)
            g = ts.hidden_gates(hin, rows, w, b, whh_ptr, H, j, jmask, BLOCK_B, HP, BLOCK_N, BLOCK_K, ON_CHIP, NG, DOT)
            hj, c = cell_update(CELL, i, g, tl.load(hin + own, cache_modifier=".cg"), c)
            tl.store(hbuf_ptr + ((t + 1) % 2) * BP * HP + own, tl.where(m, hj, 0.0))
            if HAS_C:
                c = tl.where(m, c, 0.0)
        if COOP:
            ts.step_barrier(sync_ptr + tile, tl.num_programs(0) * (q + 1))
    if HAS_C:
        tl.store(cbuf_ptr + own, c)


@functools.lru_cache(maxsize=64)
def _lag_steps(lags: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """``lags`` as an int64 tensor on ``device``, made once per lag set and device: a model's lags
    are fixed, so later calls copy nothing to the device, and a call inside a CUDA graph capture
    (after a warm-up call, as capture needs anyway) records no host-to-device copy. Read only."""
    return torch.tensor(lags, dtype=torch.int64, device=device)


def _sample(cell, h0, c0, emb, lag_emb, lags, cond, w_hh, b_hh, w_out, b_out, temperature, seed, row_offset, known,
            values):
    """Every cell's sampler; c0 is the LSTM's (None for the other cells); lag_emb [L, C, K, G*H]
    with lags a list of L ints >= 1 (rnngen/ops/sample/naive.py)."""
    (B, T), (C, K, H) = values.shape, w_out.shape
    KP = tc.pow2(K)
    args = (CELLS[cell], h0, c0, emb, lag_emb, lags, cond, w_hh, b_hh, w_out, b_out, temperature, seed, row_offset,
            known, values)
    if tc.too_large(H, "sample", cell):
        return naive._sample(*args)
    if KP > MAX_KP:
        warnings.warn(f"rnngen: the Triton sample kernel takes at most {MAX_KP} values, got {K}; "
                      "sample runs the reference kernel instead", RuntimeWarning, stacklevel=3)
        return naive._sample(*args)
    if B == 0:
        return
    # the lags as a device tensor (not constexprs): one compiled kernel per number of lags NL
    lag_steps = _lag_steps(tuple(lags), values.device) if lags else values
    split = _split_args(H, K, cell)
    if split is not None:
        nsplit, consts = split
        tiles = triton.cdiv(B, tc.BLOCK_B)
        hbuf = scan_triton._padded(h0, 2, tiles, consts["HP"])  # slot 0: h0
        cbuf = hbuf if c0 is None else scan_triton._padded(c0, 1, tiles, consts["HP"])
        lbuf = torch.empty(tiles * tc.BLOCK_B, KP, dtype=torch.float32, device=values.device)
        ts.run_steps(_sample_split_kernel, (nsplit, tiles), 2 * T,
                     (emb, lag_emb if lags else emb, lag_steps, cond, w_hh, b_hh, w_out, b_out,
                      values if known is None else known, values, float(temperature), int(seed), int(row_offset),
                      hbuf, cbuf, lbuf, B, T, H, C, K), values.device,
                     HAS_KNOWN=known is not None, NL=len(lags), DOT=tc.dot_mode(w_hh.dtype, w_hh.device), **consts)
        return
    _sample_kernel[tc.grid(B)](
        h0, h0 if c0 is None else c0, emb, lag_emb if lags else emb, lag_steps, cond, w_hh, b_hh, w_out, b_out,
        values if known is None else known, values, float(temperature), int(seed), int(row_offset), B, T, H, C, K,
        HAS_KNOWN=known is not None, NL=len(lags), DOT=tc.dot_mode(w_hh.dtype, w_hh.device),
        **_launch_args(H, C, K, cell))


def _split_args(H, K, cell):
    """The split kernel's (NSPLIT, constants) for H, or None when W_hh fits one program. The
    logits are dealt out in chunks of BLOCK_V values (16 to 64, one chunk a program where K
    allows), each computed in [BLOCK_H, BLOCK_V] tiles of W_out^T of at most TILE_FLOATS."""
    gates = CELLS[cell].gates
    if tc.hidden_tiles(H, gates) is not None:
        return None
    cfg = ts.split_tiles(H, gates)
    KP = tc.pow2(K)
    block_v = max(16, min(64, KP // cfg["NSPLIT"]))
    return cfg["NSPLIT"], dict(BLOCK_B=tc.BLOCK_B, HP=cfg["HP"], BLOCK_N=cfg["BLOCK_N"], BLOCK_K=cfg["BLOCK_K"],
                               ON_CHIP=cfg["ON_CHIP"], KP=KP, BLOCK_V=block_v,
                               BLOCK_H=min(cfg["HP"], tc.TILE_FLOATS // block_v), num_warps=cfg["num_warps"],
                               num_stages=cfg["num_stages"], **tc.cell_args(cell))


def _launch_args(H, C, K, cell="gru"):
    cfg = tc.hidden_tiles(H, CELLS[cell].gates)
    HP, KP = cfg["HP"], tc.pow2(K)
    head_on_chip = C == 1 and HP * KP <= HEAD_ON_CHIP_FLOATS
    block_k = KP if head_on_chip else max(16, min(KP, tc.TILE_FLOATS // HP))
    return dict(BLOCK_B=tc.BLOCK_B, HP=HP, KP=KP, BLOCK_K=block_k, NKK=KP // block_k, HEAD_ON_CHIP=head_on_chip,
                num_warps=cfg["num_warps"], num_stages=cfg["num_stages"], **tc.cell_args(cell))


def _register(cell):
    kernel = kernel_for(cell, "sample", _sample)
    register_kernel("triton", "sample", dtypes=tc.SUPPORTED_DTYPES, cell=cell)(kernel)
    return kernel


_KERNELS = {cell: _register(cell) for cell in CELLS}
sample = _KERNELS["gru"]
