"""Triton kernels of the scan op: W_hh on chip in one program per 16-row batch tile, or split over
cooperating programs (rnngen/ops/triton_split.py; the rule: triton_common.hidden_tiles).

One forward and one backward kernel for every cell, specialised by the cell's constexprs
(rnngen/ops/triton_common.py: CELL, NG gate blocks, HAS_C, DIRECT). Forward: h [BLOCK_B, HP]
(and the LSTM's c) lives in registers for the whole sequence; each step computes the hidden
gates tl.dot(h, W_g^T) + b_g, reads the step's input gates and writes h_t (the LSTM also c_t;
and, when a backward follows, the hidden gates). Backward: the reverse loop carries dL/dh (and
dL/dc) in registers, writes dgi_t and dgh_t, and dL/dh_{t-1} = direct + sum_g dgh_g @ W_g (direct:
the GRU's dL/dh_t * z, none for the other cells); the weight gradient is one GEMM over the saved
dgh after the kernel. The split kernels do the same for their slice of the units.

The kernel entry points take the arguments the op passes for the cell (rnngen/ops/scan/naive.py):
(gi, h0, w_hh, b_hh, out, gates) for the GRU and the Elman cells, the LSTM's also c0 after h0
and c_out after out.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from ...dispatch import register_kernel
from .. import triton_common as tc
from .. import triton_split as ts
from ..cells import CELLS, kernel_for
from ..triton_common import (cast_for, cell_update, dot_gates, dot_sum, load_gates, load_gates_w,
                             load_gates_w_t, step_backward, store_gates)
from . import naive


@triton.jit
def _scan_forward_kernel(gi_ptr, h0_ptr, c0_ptr, w_ptr, b_ptr, out_ptr, cout_ptr, gates_ptr, B, T, H,
                         SAVE_GATES: tl.constexpr, BLOCK_B: tl.constexpr, HP: tl.constexpr, CELL: tl.constexpr,
                         NG: tl.constexpr, HAS_C: tl.constexpr, DIRECT: tl.constexpr, DOT: tl.constexpr):
    """All T steps of the forward for one batch tile, W_hh^T's gate blocks and b_hh on chip."""
    pid = tl.program_id(0)
    rows = (pid * BLOCK_B + tl.arange(0, BLOCK_B)).to(tl.int64)
    rmask = rows < B
    cols = tl.arange(0, HP)
    cmask = cols < H
    G = NG * H
    m = rmask[:, None] & cmask[None, :]
    h = tl.load(h0_ptr + rows[:, None] * H + cols[None, :], mask=m, other=0.0).to(tl.float32)
    c = h  # the LSTM's cell state; a placeholder the other cells never read
    if HAS_C:
        c = tl.load(c0_ptr + rows[:, None] * H + cols[None, :], mask=m, other=0.0).to(tl.float32)
    w = load_gates_w_t(w_ptr, H, H, cols, cols, cmask[:, None] & cmask[None, :], NG)
    b = load_gates(b_ptr, cols, H, cmask, NG)
    for t in range(T):
        step = rows * T + t  # [BLOCK_B] int64: row b, step t
        g = dot_gates(h, w, b, NG, DOT)
        gofs = step[:, None] * G + cols[None, :]
        if SAVE_GATES:
            store_gates(gates_ptr, gofs, H, m, g, NG)
        i = load_gates(gi_ptr, gofs, H, m, NG)
        h, c = cell_update(CELL, i, g, h, c)
        h = tl.where(m, h, 0.0)  # padded rows and units stay exactly 0
        sofs = step[:, None] * H + cols[None, :]
        tl.store(out_ptr + sofs, cast_for(h, out_ptr), mask=m)
        if HAS_C:
            c = tl.where(m, c, 0.0)
            tl.store(cout_ptr + sofs, cast_for(c, cout_ptr), mask=m)


@triton.jit
def _scan_backward_kernel(grad_ptr, gradc_ptr, gi_ptr, gates_ptr, hprev_ptr, out_ptr, cprev_ptr, cout_ptr, w_ptr,
                          dgi_ptr, dgh_ptr, dh0_ptr, dc0_ptr, B, T, H, STORE_DGH: tl.constexpr,
                          BLOCK_B: tl.constexpr, HP: tl.constexpr, CELL: tl.constexpr, NG: tl.constexpr,
                          HAS_C: tl.constexpr, DIRECT: tl.constexpr, DOT: tl.constexpr):
    """The reverse loop over all T steps for one batch tile, W_hh's gate blocks on chip."""
    pid = tl.program_id(0)
    rows = (pid * BLOCK_B + tl.arange(0, BLOCK_B)).to(tl.int64)
    rmask = rows < B
    cols = tl.arange(0, HP)
    cmask = cols < H
    m = rmask[:, None] & cmask[None, :]
    G = NG * H
    w = load_gates_w(w_ptr, H, H, cols, cols, cmask[:, None] & cmask[None, :], NG)  # dL/dh = dgh @ W
    dh = tl.zeros((BLOCK_B, HP), dtype=tl.float32)
    dc = dh  # the LSTM's dL/dc; a placeholder the other cells never read
    if HAS_C:
        dc = tl.zeros((BLOCK_B, HP), dtype=tl.float32)
    for s in range(T):
        t = T - 1 - s
        step = rows * T + t
        gofs = step[:, None] * G + cols[None, :]
        sofs = step[:, None] * H + cols[None, :]
        da, dg, direct, dc = step_backward(CELL, NG, DIRECT, HAS_C, dh, dc, grad_ptr, gradc_ptr, gi_ptr, gates_ptr,
                                           gofs, hprev_ptr, out_ptr, cprev_ptr, cout_ptr, sofs, H, m)
        store_gates(dgi_ptr, gofs, H, m, da, NG)
        if STORE_DGH:  # else dgi_ptr (float32) holds dgh too
            store_gates(dgh_ptr, gofs, H, m, dg, NG)
        dh = dot_sum(dg, w, NG, DOT)
        if DIRECT:
            dh = direct + dh
    tl.store(dh0_ptr + rows[:, None] * H + cols[None, :], cast_for(dh, dh0_ptr), mask=m)
    if HAS_C:
        tl.store(dc0_ptr + rows[:, None] * H + cols[None, :], cast_for(dc, dc0_ptr), mask=m)


@triton.jit
def _scan_forward_split_kernel(gi_ptr, w_ptr, b_ptr, out_ptr, cout_ptr, gates_ptr, hbuf_ptr, cbuf_ptr, B, T, H,
                               sync_ptr, t_begin, t_end, COOP: tl.constexpr, SAVE_GATES: tl.constexpr,
                               BLOCK_B: tl.constexpr, HP: tl.constexpr, BLOCK_N: tl.constexpr,
                               BLOCK_K: tl.constexpr, ON_CHIP: tl.constexpr, CELL: tl.constexpr, NG: tl.constexpr,
                               HAS_C: tl.constexpr, DIRECT: tl.constexpr, DOT: tl.constexpr):
    """Steps [t_begin, t_end) of the forward for the units of program_id(0) in the batch tile
    program_id(1) (rnngen/ops/triton_split.py). hbuf [2, BP, HP] float32: slot t % 2 holds h_{t-1}
    (the launcher writes h0 into slot 0); cbuf [BP, HP]: the LSTM's c between launches."""
    p, tile, BP, rows, rmask, j, jmask, m, own = ts.unit_block(B, H, BLOCK_B, HP, BLOCK_N)
    cols = tl.arange(0, HP)
    G = NG * H
    b = load_gates(b_ptr, j, H, jmask, NG)
    w = b  # the slices of W_hh^T on chip; streamed in hidden_gates otherwise
    if ON_CHIP:
        w = load_gates_w_t(w_ptr, H, H, cols, j, (cols < H)[:, None] & jmask[None, :], NG)
    c = tl.zeros((BLOCK_B, BLOCK_N), dtype=tl.float32)  # a placeholder but for the LSTM
    if HAS_C:
        c = tl.load(cbuf_ptr + own)
    for t in range(t_begin, t_end):
        hin = hbuf_ptr + (t % 2) * BP * HP
        g = ts.hidden_gates(hin, rows, w, b, w_ptr, H, j, jmask, BLOCK_B, HP, BLOCK_N, BLOCK_K, ON_CHIP, NG, DOT)
        step = rows * T + t
        gofs = step[:, None] * G + j[None, :]
        if SAVE_GATES:
            store_gates(gates_ptr, gofs, H, m, g, NG)
        i = load_gates(gi_ptr, gofs, H, m, NG)
        hj, c = cell_update(CELL, i, g, tl.load(hin + own, cache_modifier=".cg"), c)
        hj = tl.where(m, hj, 0.0)  # padded rows and units stay exactly 0
        sofs = step[:, None] * H + j[None, :]
        tl.store(out_ptr + sofs, cast_for(hj, out_ptr), mask=m)
        tl.store(hbuf_ptr + ((t + 1) % 2) * BP * HP + own, hj)
        if HAS_C:
            c = tl.where(m, c, 0.0)
            tl.store(cout_ptr + sofs, cast_for(c, cout_ptr), mask=m)
        if COOP:
            ts.step_barrier(sync_ptr + tile, tl.num_programs(0) * (t + 1))
    if HAS_C:
        tl.store(cbuf_ptr + own, c)


@triton.jit
def _scan_backward_split_kernel(grad_ptr, gradc_ptr, gi_ptr, gates_ptr, hprev_ptr, out_ptr, cprev_ptr, cout_ptr,
                                w_ptr, dgi_ptr, dgh_ptr, dh0_ptr, dc0_ptr, ebuf_ptr, dbuf_ptr, B, T, H, sync_ptr,
                                s_begin, s_end, COOP: tl.constexpr, STORE_DGH: tl.constexpr, BLOCK_B: tl.constexpr,
                                HP: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr,
                                ON_CHIP: tl.constexpr, CELL: tl.constexpr, NG: tl.constexpr, HAS_C: tl.constexpr,
                                DIRECT: tl.constexpr, DOT: tl.constexpr):
    """Iterations [s_begin, s_end) of the reverse loop (T + 1 in all) for the units of
    program_id(0) in the batch tile program_id(1). Iteration s first completes dL/dh_t (t = T - 1 -
    s) of its units from the gate gradients the programs exchanged in iteration s - 1 (ebuf [2, BP,
    NG * HP] float32, slot s % 2), then runs step t's backward and exchanges its gate gradients;
    the last iteration (t = -1) writes dL/dh0. dbuf [2, BP, HP] keeps the units' direct part of
    dL/dh (the GRU's dh * z) and the LSTM's dL/dc between launches."""
    p, tile, BP, rows, rmask, j, jmask, m, own = ts.unit_block(B, H, BLOCK_B, HP, BLOCK_N)
    cols = tl.arange(0, HP)
    G = NG * H
    dd = tl.load(dbuf_ptr + own)
    w = (dd, dd, dd, dd)  # the slices of W_hh on chip; streamed in hidden_grad otherwise
    if ON_CHIP:
        w = load_gates_w(w_ptr, H, H, cols, j, (cols < H)[:, None] & jmask[None, :], NG)
    dc = dd  # the LSTM's dL/dc; a placeholder the other cells never read
    if HAS_C:
        dc = tl.load(dbuf_ptr + BP * HP + own)
    for s in range(s_begin, s_end):
        t = T - 1 - s
        dh = dd
        if s > 0:
            dh += ts.hidden_grad(ebuf_ptr + ((s - 1) % 2) * BP * (NG * HP), rows, w, w_ptr, H, j, jmask, BLOCK_B, HP,
                                 BLOCK_N, BLOCK_K, ON_CHIP, NG, NG * HP, DOT)
        if t >= 0:
            step = rows * T + t
            gofs = step[:, None] * G + j[None, :]
            sofs = step[:, None] * H + j[None, :]
            da, dg, direct, dc = step_backward(CELL, NG, DIRECT, HAS_C, dh, dc, grad_ptr, gradc_ptr, gi_ptr,
                                               gates_ptr, gofs, hprev_ptr, out_ptr, cprev_ptr, cout_ptr, sofs, H, m)
            store_gates(dgi_ptr, gofs, H, m, da, NG)
            if STORE_DGH:  # else dgi_ptr (float32) holds dgh too
                store_gates(dgh_ptr, gofs, H, m, dg, NG)
            eofs = rows[:, None] * (NG * HP) + j[None, :]
            store_gates(ebuf_ptr + (s % 2) * BP * (NG * HP), eofs, HP, eofs >= 0, dg, NG)
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


def _split_args(H, cell):
    """The split kernels' (NSPLIT, constants) for H, or None when W_hh fits one program."""
    gates = CELLS[cell].gates
    if tc.hidden_tiles(H, gates) is not None:
        return None
    cfg = ts.split_tiles(H, gates)
    return cfg["NSPLIT"], dict(BLOCK_B=tc.BLOCK_B, HP=cfg["HP"], BLOCK_N=cfg["BLOCK_N"], BLOCK_K=cfg["BLOCK_K"],
                               ON_CHIP=cfg["ON_CHIP"], num_warps=cfg["num_warps"], num_stages=cfg["num_stages"],
                               **tc.cell_args(cell))


def _launch_args(H, cell="gru"):
    cfg = tc.hidden_tiles(H, CELLS[cell].gates)
    return dict(BLOCK_B=tc.BLOCK_B, HP=cfg["HP"], num_warps=cfg["num_warps"], num_stages=cfg["num_stages"],
                **tc.cell_args(cell))


def _forward(cell, gi, h0, c0, w_hh, b_hh, out, c_out, gates):
    """Every cell's forward; c0 and c_out are the LSTM's (None for the other cells)."""
    B, T, H = out.shape
    if tc.too_large(H, "scan_forward", cell):
        return naive._forward(CELLS[cell], gi, h0, c0, w_hh, b_hh, out, c_out, gates)
    if B == 0:
        return
    split = _split_args(H, cell)
    if split is not None:
        nsplit, consts = split
        tiles = triton.cdiv(B, tc.BLOCK_B)
        hbuf = _padded(h0, 2, tiles, consts["HP"])  # slot 0: h0
        cbuf = hbuf if c0 is None else _padded(c0, 1, tiles, consts["HP"])
        c_out = out if c_out is None else c_out  # a placeholder the kernel never touches
        ts.run_steps(_scan_forward_split_kernel, (nsplit, tiles), T,
                     (gi, w_hh, b_hh, out, c_out, gates, hbuf, cbuf, B, T, H), gi.device,
                     SAVE_GATES=gates.numel() > 0, DOT=tc.dot_mode(w_hh.dtype, w_hh.device), **consts)
        return
    c0, c_out = (h0, out) if c0 is None else (c0, c_out)  # placeholders the kernel never touches
    _scan_forward_kernel[tc.grid(B)](gi, h0, c0, w_hh, b_hh, out, c_out, gates, B, T, H,
                                     SAVE_GATES=gates.numel() > 0, DOT=tc.dot_mode(w_hh.dtype, w_hh.device),
                                     **_launch_args(H, cell))


def _padded(x, slots, tiles, HP):
    """A float32 [slots, tiles * BLOCK_B, HP] zero buffer with x [B, H] in slot 0."""
    buf = torch.zeros(slots, tiles * tc.BLOCK_B, HP, dtype=torch.float32, device=x.device)
    buf[0, :x.shape[0], :x.shape[1]] = x
    return buf


def _backward(cell, grad_out, grad_c, gi, h0, c0, w_hh, b_hh, out, c_out, gates, d_gi_out, d_h0_out, d_c0_out,
              d_w_hh_out, d_b_hh_out):
    """Every cell's backward; grad_c, c0, c_out and d_c0_out are the LSTM's (None for the others)."""
    B, T, H = out.shape
    G = w_hh.shape[0]
    if tc.too_large(H, "scan_backward", cell):
        return naive._backward(CELLS[cell], grad_out, grad_c, gi, h0, c0, w_hh, b_hh, out, c_out, gates, d_gi_out,
                               d_h0_out, d_c0_out, d_w_hh_out, d_b_hh_out)
    h_prev = torch.cat([h0[:, None], out[:, :-1]], dim=1).float()  # [B, T, H]
    if not gates.numel():  # not kept by the forward: recompute them all with one GEMM
        gates = F.linear(h_prev, w_hh.float(), b_hh.float())
    if c0 is None:  # placeholders the kernel never touches
        grad_c, c_prev, c_out, d_c0_out = grad_out, h_prev, out, d_h0_out
    else:
        c_prev = torch.cat([c0[:, None], c_out[:, :-1]], dim=1).float()
    # the hidden gate gradients in float32 for dW_hh: their own buffer, but for a cell whose dgh
    # equals dgi (not the GRU) with float32 inputs, where d_gi_out holds them already
    store_dgh = tc.cell_args(cell)["DIRECT"] or d_gi_out.dtype != torch.float32
    d_gh = torch.empty(B, T, G, dtype=torch.float32, device=gi.device) if store_dgh else d_gi_out
    split = _split_args(H, cell)
    if B and split is not None:
        nsplit, consts = split
        tiles = triton.cdiv(B, tc.BLOCK_B)
        bp = tiles * tc.BLOCK_B
        ebuf = torch.empty(2, bp, CELLS[cell].gates * consts["HP"], dtype=torch.float32, device=gi.device)
        dbuf = torch.zeros(2, bp, consts["HP"], dtype=torch.float32, device=gi.device)
        ts.run_steps(_scan_backward_split_kernel, (nsplit, tiles), T + 1,
                     (grad_out, grad_c, gi, gates, h_prev, out, c_prev, c_out, w_hh, d_gi_out, d_gh, d_h0_out,
                      d_c0_out, ebuf, dbuf, B, T, H), gi.device, STORE_DGH=store_dgh,
                     DOT=tc.dot_mode(w_hh.dtype, w_hh.device, backward=True), **consts)
    elif B:
        _scan_backward_kernel[tc.grid(B)](grad_out, grad_c, gi, gates, h_prev, out, c_prev, c_out, w_hh, d_gi_out,
                                          d_gh, d_h0_out, d_c0_out, B, T, H, STORE_DGH=store_dgh,
                                          DOT=tc.dot_mode(w_hh.dtype, w_hh.device, backward=True),
                                          **_launch_args(H, cell))
    d_gh = d_gh.reshape(B * T, G)
    d_w_hh_out.copy_(d_gh.T @ h_prev.reshape(B * T, H))
    d_b_hh_out.copy_(d_gh.sum(0))


def _register(cell):
    forward = kernel_for(cell, "scan_forward", _forward)
    backward = kernel_for(cell, "scan_backward", _backward)
    register_kernel("triton", "scan_forward", dtypes=tc.SUPPORTED_DTYPES, cell=cell)(forward)
    register_kernel("triton", "scan_backward", dtypes=tc.SUPPORTED_DTYPES, cell=cell)(backward)
    return forward, backward


_KERNELS = {cell: _register(cell) for cell in CELLS}
scan_forward, scan_backward = _KERNELS["gru"]
