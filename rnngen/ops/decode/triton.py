"""Triton kernels of the decode op: W_hh on chip in one program per 16-row batch tile, or split
over cooperating programs (rnngen/ops/triton_split.py; the rule: triton_common.hidden_tiles).

One forward and one backward kernel for every cell, specialised by the cell's constexprs
(rnngen/ops/triton_common.py: CELL, NG gate blocks, HAS_C, DIRECT).

Forward, per step: x_t = h @ W_out^T + b_out (stored as the output), then the input gates
x_t @ W_ih^T + b_ih and the hidden gates h @ W_hh^T + b_hh feed the cell's update; h (and the
LSTM's c) never leaves the registers. The small heads W_out^T [HP, CP] and W_ih^T [CP, NG x HP]
(C padded to CP >= 16) are loaded once with W_hh (the split kernels: W_ih^T's slice once, W_out
streamed in chunks with the exchanged h). The kernels take C up to MAX_CP = 16 (decode's outputs
are a few continuous channels); larger C runs the reference.

Backward: the gates of all steps are recomputed by two GEMMs before the kernel (as the
reference does); the reverse loop carries dL/dh (and dL/dc) in registers and writes dgi_t, dgh_t
and dx_t = dL/dout_t + dgi_t @ W_ih, with dL/dh_{t-1} = direct_t + dgh_t @ W_hh + dx_t @ W_out
(direct: the GRU's dL/dh_t * z, none for the other cells). Every weight gradient is one GEMM over
all steps after the kernel.

The kernel entry points take the arguments the op passes for the cell (rnngen/ops/decode/naive.py):
the LSTM's also c0 after h0 and c_hidden after hidden (forward), grad_c after grad_hidden, c0 after
h0, c_hidden after hidden and d_c0 after d_h0 (backward).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from ...dispatch import register_kernel
from .. import triton_common as tc
from .. import triton_split as ts
from ..cells import CELLS, kernel_for
from ..triton_common import (cast_for, cell_update, dot_gates, dot_sum, load_gates, load_gates_w,
                             load_gates_w_t, mma, step_backward, store_gates)
from . import naive
from ..scan import triton as scan_triton

MAX_CP = 16


@triton.jit
def _decode_forward_kernel(h0_ptr, c0_ptr, wih_ptr, bih_ptr, whh_ptr, bhh_ptr, wout_ptr, bout_ptr, out_ptr, hid_ptr,
                           chid_ptr, B, T, H, C, BLOCK_B: tl.constexpr, HP: tl.constexpr, CP: tl.constexpr,
                           CELL: tl.constexpr, NG: tl.constexpr, HAS_C: tl.constexpr, DIRECT: tl.constexpr,
                           DOT: tl.constexpr):
    """All T steps for one batch tile, every weight on chip."""
    pid = tl.program_id(0)
    rows = (pid * BLOCK_B + tl.arange(0, BLOCK_B)).to(tl.int64)
    rmask = rows < B
    cols = tl.arange(0, HP)
    cmask = cols < H
    cc = tl.arange(0, CP)
    ccmask = cc < C
    m = rmask[:, None] & cmask[None, :]
    h = tl.load(h0_ptr + rows[:, None] * H + cols[None, :], mask=m, other=0.0).to(tl.float32)
    c = h  # the LSTM's cell state; a placeholder the other cells never read
    if HAS_C:
        c = tl.load(c0_ptr + rows[:, None] * H + cols[None, :], mask=m, other=0.0).to(tl.float32)
    w = load_gates_w_t(whh_ptr, H, H, cols, cols, cmask[:, None] & cmask[None, :], NG)
    b = load_gates(bhh_ptr, cols, H, cmask, NG)
    u = load_gates_w_t(wih_ptr, H, C, cc, cols, ccmask[:, None] & cmask[None, :], NG)  # W_ih^T [CP, HP]
    bi = load_gates(bih_ptr, cols, H, cmask, NG)
    w_o = tl.load(wout_ptr + cc[None, :] * H + cols[:, None], mask=cmask[:, None] & ccmask[None, :],
                  other=0.0).to(tl.float32)  # W_out^T [HP, CP]
    b_o = tl.load(bout_ptr + cc, mask=ccmask, other=0.0).to(tl.float32)
    for t in range(T):
        step = rows * T + t
        x = mma(h, w_o, None, DOT) + b_o[None, :]  # [BLOCK_B, CP], 0 beyond C
        tl.store(out_ptr + step[:, None] * C + cc[None, :], cast_for(x, out_ptr),
                 mask=rmask[:, None] & ccmask[None, :])
        i = dot_gates(x, u, bi, NG, DOT)
        g = dot_gates(h, w, b, NG, DOT)
        h, c = cell_update(CELL, i, g, h, c)
        h = tl.where(m, h, 0.0)
        sofs = step[:, None] * H + cols[None, :]
        tl.store(hid_ptr + sofs, cast_for(h, hid_ptr), mask=m)
        if HAS_C:
            c = tl.where(m, c, 0.0)
            tl.store(chid_ptr + sofs, cast_for(c, chid_ptr), mask=m)


@triton.jit
def _decode_backward_kernel(gout_ptr, ghid_ptr, gc_ptr, gi_ptr, gh_ptr, hprev_ptr, hid_ptr, cprev_ptr, chid_ptr,
                            wih_ptr, whh_ptr, wout_ptr, dgi_ptr, dgh_ptr, dx_ptr, dh0_ptr, dc0_ptr, B, T, H, C,
                            BLOCK_B: tl.constexpr, HP: tl.constexpr, CP: tl.constexpr, CELL: tl.constexpr,
                            NG: tl.constexpr, HAS_C: tl.constexpr, DIRECT: tl.constexpr, DOT: tl.constexpr):
    """The reverse loop over all T steps for one batch tile, every weight on chip."""
    pid = tl.program_id(0)
    rows = (pid * BLOCK_B + tl.arange(0, BLOCK_B)).to(tl.int64)
    rmask = rows < B
    cols = tl.arange(0, HP)
    cmask = cols < H
    m = rmask[:, None] & cmask[None, :]
    cc = tl.arange(0, CP)
    ccmask = cc < C
    xm = rmask[:, None] & ccmask[None, :]
    G = NG * H
    u = load_gates_w(wih_ptr, H, C, cols, cc, cmask[:, None] & ccmask[None, :], NG)  # [HP, CP]: dx = dgi @ W_ih
    w = load_gates_w(whh_ptr, H, H, cols, cols, cmask[:, None] & cmask[None, :], NG)
    w_o = tl.load(wout_ptr + cc[:, None] * H + cols[None, :], mask=ccmask[:, None] & cmask[None, :],
                  other=0.0).to(tl.float32)  # W_out [CP, HP]
    dh = tl.zeros((BLOCK_B, HP), dtype=tl.float32)
    dc = dh  # the LSTM's dL/dc; a placeholder the other cells never read
    if HAS_C:
        dc = tl.zeros((BLOCK_B, HP), dtype=tl.float32)
    for s in range(T):
        t = T - 1 - s
        step = rows * T + t
        gofs = step[:, None] * G + cols[None, :]
        sofs = step[:, None] * H + cols[None, :]
        da, dg, direct, dc = step_backward(CELL, NG, DIRECT, HAS_C, dh, dc, ghid_ptr, gc_ptr, gi_ptr, gh_ptr, gofs,
                                           hprev_ptr, hid_ptr, cprev_ptr, chid_ptr, sofs, H, m)
        store_gates(dgi_ptr, gofs, H, m, da, NG)
        if DIRECT:  # else dgh = dgi: the launcher reads d_gi for both
            store_gates(dgh_ptr, gofs, H, m, dg, NG)
        dx = tl.load(gout_ptr + step[:, None] * C + cc[None, :], mask=xm, other=0.0).to(tl.float32)
        dx += dot_sum(da, u, NG, DOT)
        tl.store(dx_ptr + step[:, None] * C + cc[None, :], dx, mask=xm)
        dh = dot_sum(dg, w, NG, DOT)
        dh += mma(dx, w_o, None, DOT)
        if DIRECT:
            dh = direct + dh
    tl.store(dh0_ptr + rows[:, None] * H + cols[None, :], cast_for(dh, dh0_ptr), mask=m)
    if HAS_C:
        tl.store(dc0_ptr + rows[:, None] * H + cols[None, :], cast_for(dc, dc0_ptr), mask=m)


@triton.jit
def _head(hin_ptr, rows, wout_ptr, b_o, H, C, cc, ccmask, BLOCK_B: tl.constexpr, HP: tl.constexpr,
          CP: tl.constexpr, BLOCK_K: tl.constexpr, DOT: tl.constexpr):
    """x = h @ W_out^T + b_out [BLOCK_B, CP] (0 beyond C) from h in the exchange slot at hin_ptr,
    BLOCK_K units at a time; every program of a tile computes it (it is small) instead of
    exchanging it."""
    x = tl.zeros((BLOCK_B, CP), dtype=tl.float32)
    for kk in range(HP // BLOCK_K):
        k = kk * BLOCK_K + tl.arange(0, BLOCK_K)
        hk = tl.load(hin_ptr + rows[:, None] * HP + k[None, :], cache_modifier=".cg")
        wk = tl.load(wout_ptr + cc[None, :] * H + k[:, None], mask=(k < H)[:, None] & ccmask[None, :],
                     other=0.0).to(tl.float32)  # W_out^T [BLOCK_K, CP]
        x = mma(hk, wk, x, DOT)
    return x + b_o[None, :]


@triton.jit
def _decode_forward_split_kernel(wih_ptr, bih_ptr, whh_ptr, bhh_ptr, wout_ptr, bout_ptr, out_ptr, hid_ptr, chid_ptr,
                                 hbuf_ptr, cbuf_ptr, B, T, H, C, sync_ptr, t_begin, t_end, COOP: tl.constexpr,
                                 BLOCK_B: tl.constexpr, HP: tl.constexpr, CP: tl.constexpr, BLOCK_N: tl.constexpr,
                                 BLOCK_K: tl.constexpr, ON_CHIP: tl.constexpr, CELL: tl.constexpr,
                                 NG: tl.constexpr, HAS_C: tl.constexpr, DIRECT: tl.constexpr, DOT: tl.constexpr):
    """Steps [t_begin, t_end) of the forward for the units of program_id(0) in the batch tile
    program_id(1) (rnngen/ops/triton_split.py): the scan's split forward (its hbuf and cbuf) with
    the output head x_t = h_{t-1} @ W_out^T + b_out computed by every program (program 0 stores it)
    and the input gates x_t @ W_ih^T + b_ih of its units."""
    p, tile, BP, rows, rmask, j, jmask, m, own = ts.unit_block(B, H, BLOCK_B, HP, BLOCK_N)
    cols = tl.arange(0, HP)
    cc = tl.arange(0, CP)
    ccmask = cc < C
    b = load_gates(bhh_ptr, j, H, jmask, NG)
    bi = load_gates(bih_ptr, j, H, jmask, NG)
    u = load_gates_w_t(wih_ptr, H, C, cc, j, ccmask[:, None] & jmask[None, :], NG)  # W_ih^T slices [CP, BLOCK_N]
    b_o = tl.load(bout_ptr + cc, mask=ccmask, other=0.0).to(tl.float32)
    w = b
    if ON_CHIP:
        w = load_gates_w_t(whh_ptr, H, H, cols, j, (cols < H)[:, None] & jmask[None, :], NG)
    c = tl.zeros((BLOCK_B, BLOCK_N), dtype=tl.float32)  # a placeholder but for the LSTM
    if HAS_C:
        c = tl.load(cbuf_ptr + own)
    for t in range(t_begin, t_end):
        hin = hbuf_ptr + (t % 2) * BP * HP
        step = rows * T + t
        x = _head(hin, rows, wout_ptr, b_o, H, C, cc, ccmask, BLOCK_B, HP, CP, BLOCK_K, DOT)
        if p == 0:
            tl.store(out_ptr + step[:, None] * C + cc[None, :], cast_for(x, out_ptr),
                     mask=rmask[:, None] & ccmask[None, :])
        i = dot_gates(x, u, bi, NG, DOT)
        g = ts.hidden_gates(hin, rows, w, b, whh_ptr, H, j, jmask, BLOCK_B, HP, BLOCK_N, BLOCK_K, ON_CHIP, NG, DOT)
        hj, c = cell_update(CELL, i, g, tl.load(hin + own, cache_modifier=".cg"), c)
        hj = tl.where(m, hj, 0.0)
        sofs = step[:, None] * H + j[None, :]
        tl.store(hid_ptr + sofs, cast_for(hj, hid_ptr), mask=m)
        tl.store(hbuf_ptr + ((t + 1) % 2) * BP * HP + own, hj)
        if HAS_C:
            c = tl.where(m, c, 0.0)
            tl.store(chid_ptr + sofs, cast_for(c, chid_ptr), mask=m)
        if COOP:
            ts.step_barrier(sync_ptr + tile, tl.num_programs(0) * (t + 1))
    if HAS_C:
        tl.store(cbuf_ptr + own, c)


@triton.jit
def _decode_backward_split_kernel(gout_ptr, ghid_ptr, gc_ptr, gi_ptr, gh_ptr, hprev_ptr, hid_ptr, cprev_ptr,
                                  chid_ptr, wih_ptr, whh_ptr, wout_ptr, dgi_ptr, dgh_ptr, dx_ptr, dh0_ptr, dc0_ptr,
                                  ebuf_ptr, dbuf_ptr, B, T, H, C, sync_ptr, s_begin, s_end, COOP: tl.constexpr,
                                  BLOCK_B: tl.constexpr, HP: tl.constexpr, CP: tl.constexpr, BLOCK_N: tl.constexpr,
                                  BLOCK_K: tl.constexpr, ON_CHIP: tl.constexpr, CELL: tl.constexpr,
                                  NG: tl.constexpr, HAS_C: tl.constexpr, DIRECT: tl.constexpr, DOT: tl.constexpr):
    """Iterations [s_begin, s_end) of the reverse loop (T + 1 in all; the scan's split backward and
    its buffers). The exchange slot holds a step's dgh (gate blocks at g * HP) and, for the GRU,
    its dgi after them (the other cells' dgi is their dgh). Iteration s first forms, from the
    slot of step t + 1, dx_{t+1} = dL/dout_{t+1} + dgi_{t+1} @ W_ih in every program (program 0
    stores it) and its units of dL/dh_t = direct + dgh_{t+1} @ W_hh + dx_{t+1} @ W_out +
    dL/dhidden_t; then step t's backward."""
    p, tile, BP, rows, rmask, j, jmask, m, own = ts.unit_block(B, H, BLOCK_B, HP, BLOCK_N)
    NE = (2 if DIRECT else 1) * NG * HP  # an exchanged row: dgh, then (the GRU) dgi
    cols = tl.arange(0, HP)
    cc = tl.arange(0, CP)
    ccmask = cc < C
    xm = rmask[:, None] & ccmask[None, :]
    G = NG * H
    w_o = tl.load(wout_ptr + cc[:, None] * H + j[None, :], mask=ccmask[:, None] & jmask[None, :],
                  other=0.0).to(tl.float32)  # W_out[:, j] [CP, BLOCK_N]
    dd = tl.load(dbuf_ptr + own)
    w = (dd, dd, dd, dd)
    if ON_CHIP:
        w = load_gates_w(whh_ptr, H, H, cols, j, (cols < H)[:, None] & jmask[None, :], NG)
    dc = dd
    if HAS_C:
        dc = tl.load(dbuf_ptr + BP * HP + own)
    for s in range(s_begin, s_end):
        t = T - 1 - s
        dh = dd
        if s > 0:
            ein = ebuf_ptr + ((s - 1) % 2) * BP * NE
            dx = tl.load(gout_ptr + (rows * T + t + 1)[:, None] * C + cc[None, :], mask=xm, other=0.0).to(tl.float32)
            for kk in range(HP // BLOCK_K):
                k = kk * BLOCK_K + tl.arange(0, BLOCK_K)
                dgi = ts.exchanged_gates(ein + (NG * HP if DIRECT else 0), rows, k, HP, NG, NE)
                u = load_gates_w(wih_ptr, H, C, k, cc, (k < H)[:, None] & ccmask[None, :], NG)  # [BLOCK_K, CP]
                dx += dot_sum(dgi, u, NG, DOT)
            if p == 0:
                tl.store(dx_ptr + (rows * T + t + 1)[:, None] * C + cc[None, :], dx, mask=xm)
            dh += ts.hidden_grad(ein, rows, w, whh_ptr, H, j, jmask, BLOCK_B, HP, BLOCK_N, BLOCK_K, ON_CHIP, NG, NE,
                                 DOT)
            dh += mma(dx, w_o, None, DOT)
        if t >= 0:
            step = rows * T + t
            gofs = step[:, None] * G + j[None, :]
            sofs = step[:, None] * H + j[None, :]
            da, dg, direct, dc = step_backward(CELL, NG, DIRECT, HAS_C, dh, dc, ghid_ptr, gc_ptr, gi_ptr, gh_ptr,
                                               gofs, hprev_ptr, hid_ptr, cprev_ptr, chid_ptr, sofs, H, m)
            store_gates(dgi_ptr, gofs, H, m, da, NG)
            eofs = rows[:, None] * NE + j[None, :]
            eout = ebuf_ptr + (s % 2) * BP * NE
            store_gates(eout, eofs, HP, eofs >= 0, dg, NG)
            if DIRECT:  # else dgh = dgi: the launcher reads d_gi for both
                store_gates(dgh_ptr, gofs, H, m, dg, NG)
                store_gates(eout + NG * HP, eofs, HP, eofs >= 0, da, NG)
            dd = direct if DIRECT else tl.zeros((BLOCK_B, BLOCK_N), dtype=tl.float32)
            if COOP:
                ts.step_barrier(sync_ptr + tile, tl.num_programs(0) * (s + 1))
        else:
            tl.store(dh0_ptr + rows[:, None] * H + j[None, :], cast_for(dh, dh0_ptr), mask=m)
            if HAS_C:
                tl.store(dc0_ptr + rows[:, None] * H + j[None, :], cast_for(dc, dc0_ptr), mask=m)
    tl.store(dbuf_ptr + own, dd)
    if HAS_C:
        tl.store(dbuf_ptr + BP * HP + own, dc)


def _fits(H, C, kernel, cell):
    if tc.too_large(H, kernel, cell):
        return False
    if tc.pow2(C) > MAX_CP:
        warnings.warn(f"rnngen: decode's Triton kernels take at most {MAX_CP} output channels, got {C}; "
                      f"{kernel} runs the reference kernel instead", RuntimeWarning, stacklevel=3)
        return False
    return True


def _split_args(H, C, cell):
    """The split kernels' (NSPLIT, constants) for H, or None when W_hh fits one program."""
    gates = CELLS[cell].gates
    if tc.hidden_tiles(H, gates) is not None:
        return None
    cfg = ts.split_tiles(H, gates)
    return cfg["NSPLIT"], dict(BLOCK_B=tc.BLOCK_B, HP=cfg["HP"], CP=tc.pow2(C), BLOCK_N=cfg["BLOCK_N"],
                               BLOCK_K=cfg["BLOCK_K"], ON_CHIP=cfg["ON_CHIP"], num_warps=cfg["num_warps"],
                               num_stages=cfg["num_stages"], **tc.cell_args(cell))


def _launch_args(H, C, cell="gru"):
    cfg = tc.hidden_tiles(H, CELLS[cell].gates)
    return dict(BLOCK_B=tc.BLOCK_B, HP=cfg["HP"], CP=tc.pow2(C), num_warps=cfg["num_warps"],
                num_stages=cfg["num_stages"], **tc.cell_args(cell))


def _forward(cell, h0, c0, w_ih, b_ih, w_hh, b_hh, w_out, b_out, out, hidden, c_hidden):
    """Every cell's forward; c0 and c_hidden are the LSTM's (None for the other cells)."""
    B, T, C = out.shape
    H = h0.shape[1]
    if not _fits(H, C, "decode_forward", cell):
        return naive._forward(CELLS[cell], h0, c0, w_ih, b_ih, w_hh, b_hh, w_out, b_out, out, hidden, c_hidden)
    if B == 0:
        return
    split = _split_args(H, C, cell)
    if split is not None:
        nsplit, consts = split
        tiles = triton.cdiv(B, tc.BLOCK_B)
        hbuf = scan_triton._padded(h0, 2, tiles, consts["HP"])  # slot 0: h0
        cbuf = hbuf if c0 is None else scan_triton._padded(c0, 1, tiles, consts["HP"])
        c_hidden = hidden if c_hidden is None else c_hidden  # a placeholder the kernel never touches
        ts.run_steps(_decode_forward_split_kernel, (nsplit, tiles), T,
                     (w_ih, b_ih, w_hh, b_hh, w_out, b_out, out, hidden, c_hidden, hbuf, cbuf, B, T, H, C),
                     h0.device, DOT=tc.dot_mode(w_hh.dtype, w_hh.device), **consts)
        return
    c0, c_hidden = (h0, hidden) if c0 is None else (c0, c_hidden)  # placeholders the kernel never touches
    _decode_forward_kernel[tc.grid(B)](h0, c0, w_ih, b_ih, w_hh, b_hh, w_out, b_out, out, hidden, c_hidden,
                                       B, T, H, C, DOT=tc.dot_mode(w_hh.dtype, w_hh.device), **_launch_args(H, C, cell))


def _backward(cell, grad_out, grad_hidden, grad_c, h0, c0, w_ih, b_ih, w_hh, b_hh, w_out, b_out, out, hidden,
              c_hidden, d_h0, d_c0, d_w_ih, d_b_ih, d_w_hh, d_b_hh, d_w_out, d_b_out):
    """Every cell's backward; grad_c, c0, c_hidden and d_c0 are the LSTM's (None for the others)."""
    B, T, C = out.shape
    H = h0.shape[1]
    G = w_hh.shape[0]
    if not _fits(H, C, "decode_backward", cell):
        return naive._backward(CELLS[cell], grad_out, grad_hidden, grad_c, h0, c0, w_ih, b_ih, w_hh, b_hh, w_out,
                               b_out, out, hidden, c_hidden, d_h0, d_c0, d_w_ih, d_b_ih, d_w_hh, d_b_hh, d_w_out,
                               d_b_out)
    f32 = torch.float32
    out32 = out.to(f32)
    h_prev = torch.cat([h0[:, None], hidden[:, :-1]], dim=1).to(f32)
    # every step's input and hidden gates, recomputed by two GEMMs (the reference's spec)
    gi = F.linear(out32, w_ih.to(f32), b_ih.to(f32))
    gh = F.linear(h_prev, w_hh.to(f32), b_hh.to(f32))
    if c0 is None:  # placeholders the kernel never touches
        grad_c, c_prev, c_hidden, d_c0 = grad_hidden, h_prev, hidden, d_h0
    else:
        c_prev = torch.cat([c0[:, None], c_hidden[:, :-1]], dim=1).to(f32)
    d_gi = torch.empty(B, T, G, dtype=f32, device=h0.device)
    d_gh = torch.empty_like(d_gi) if tc.cell_args(cell)["DIRECT"] else d_gi  # the other cells' dgh is dgi
    d_x = torch.empty(B, T, C, dtype=f32, device=h0.device)
    split = _split_args(H, C, cell)
    if B and split is not None:
        nsplit, consts = split
        tiles = triton.cdiv(B, tc.BLOCK_B)
        bp, hp = tiles * tc.BLOCK_B, consts["HP"]
        ebuf = torch.empty(2, bp, (2 if consts["DIRECT"] else 1) * CELLS[cell].gates * hp, dtype=f32,
                           device=h0.device)
        dbuf = torch.zeros(2, bp, hp, dtype=f32, device=h0.device)
        ts.run_steps(_decode_backward_split_kernel, (nsplit, tiles), T + 1,
                     (grad_out, grad_hidden, grad_c, gi, gh, h_prev, hidden, c_prev, c_hidden, w_ih, w_hh, w_out, d_gi,
                      d_gh, d_x, d_h0, d_c0, ebuf, dbuf, B, T, H, C), h0.device,
                     DOT=tc.dot_mode(w_hh.dtype, w_hh.device, backward=True), **consts)
    elif B:
        _decode_backward_kernel[tc.grid(B)](grad_out, grad_hidden, grad_c, gi, gh, h_prev, hidden, c_prev, c_hidden,
                                            w_ih, w_hh, w_out, d_gi, d_gh, d_x, d_h0, d_c0, B, T, H, C,
                                            DOT=tc.dot_mode(w_hh.dtype, w_hh.device, backward=True),
                                            **_launch_args(H, C, cell))
    d_gi, d_gh, d_x = d_gi.reshape(B * T, G), d_gh.reshape(B * T, G), d_x.reshape(B * T, C)
    h_prev, out32 = h_prev.reshape(B * T, H), out32.reshape(B * T, C)
    grads = (d_gi.T @ out32, d_gi.sum(0), d_gh.T @ h_prev, d_gh.sum(0), d_x.T @ h_prev, d_x.sum(0))
    for dst, src in zip((d_w_ih, d_b_ih, d_w_hh, d_b_hh, d_w_out, d_b_out), grads):
        dst.copy_(src)


def _register(cell):
    forward = kernel_for(cell, "decode_forward", _forward)
    backward = kernel_for(cell, "decode_backward", _backward)
    register_kernel("triton", "decode_forward", dtypes=tc.SUPPORTED_DTYPES, cell=cell)(forward)
    register_kernel("triton", "decode_backward", dtypes=tc.SUPPORTED_DTYPES, cell=cell)(backward)
    return forward, backward


_KERNELS = {cell: _register(cell) for cell in CELLS}
decode_forward, decode_backward = _KERNELS["gru"]
