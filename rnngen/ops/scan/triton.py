"""Triton kernels of the scan op: one program per 16-row batch tile runs all T steps.

Forward: h [BLOCK_B, HP] lives in registers for the whole sequence; each step computes the
hidden gates tl.dot(h, W_g^T) + b_g, reads the step's input gates and writes h_t (and, when a
backward follows, the hidden gates). Backward: the reverse loop carries dL/dh in registers,
writes dgi_t and dgh_t, and dL/dh_{t-1} = dL/dh_t * z + sum_g dgh_g @ W_g; the weight
gradient is one GEMM over the saved dgh after the kernel. W_hh is held on chip or streamed
per the rule in rnngen/ops/triton_common.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from ...dispatch import register_kernel
from .. import triton_common as tc
from ..triton_common import cast_for, get_chunk, gru_step_backward, gru_update, load_w, load_w_t, put_chunk
from . import naive


@triton.jit
def _scan_forward_kernel(gi_ptr, h0_ptr, w_ptr, b_ptr, out_ptr, gates_ptr, B, T, H,
                         SAVE_GATES: tl.constexpr, BLOCK_B: tl.constexpr, HP: tl.constexpr,
                         BLOCK_N: tl.constexpr, NK: tl.constexpr, ON_CHIP: tl.constexpr):
    pid = tl.program_id(0)
    rows = (pid * BLOCK_B + tl.arange(0, BLOCK_B)).to(tl.int64)
    rmask = rows < B
    cols = tl.arange(0, HP)
    cmask = cols < H
    cn = tl.arange(0, BLOCK_N)
    G = 3 * H
    h = tl.load(h0_ptr + rows[:, None] * H + cols[None, :], mask=rmask[:, None] & cmask[None, :],
                other=0.0).to(tl.float32)
    if ON_CHIP:  # W_hh^T's three gate blocks and b_hh, loaded once for all T steps
        wmask = cmask[:, None] & cmask[None, :]
        w_r = load_w_t(w_ptr, 0, H, cols, cols, wmask)
        w_z = load_w_t(w_ptr, 1, H, cols, cols, wmask)
        w_n = load_w_t(w_ptr, 2, H, cols, cols, wmask)
        b_r = tl.load(b_ptr + cols, mask=cmask, other=0.0).to(tl.float32)
        b_z = tl.load(b_ptr + H + cols, mask=cmask, other=0.0).to(tl.float32)
        b_n = tl.load(b_ptr + 2 * H + cols, mask=cmask, other=0.0).to(tl.float32)
    for t in range(T):
        step = rows * T + t  # [BLOCK_B] int64: row b, step t
        h_next = h
        for jj in range(NK):  # chunks of BLOCK_N hidden units (one chunk when on chip)
            j = jj * BLOCK_N + cn
            jmask = j < H
            m = rmask[:, None] & jmask[None, :]
            if not ON_CHIP:  # stream this chunk's [HP, BLOCK_N] tiles of W_hh^T (L2-resident)
                tmask = cmask[:, None] & jmask[None, :]
                w_r = load_w_t(w_ptr, 0, H, cols, j, tmask)
                w_z = load_w_t(w_ptr, 1, H, cols, j, tmask)
                w_n = load_w_t(w_ptr, 2, H, cols, j, tmask)
                b_r = tl.load(b_ptr + j, mask=jmask, other=0.0).to(tl.float32)
                b_z = tl.load(b_ptr + H + j, mask=jmask, other=0.0).to(tl.float32)
                b_n = tl.load(b_ptr + 2 * H + j, mask=jmask, other=0.0).to(tl.float32)
            g_r = tl.dot(h, w_r, input_precision="ieee") + b_r[None, :]
            g_z = tl.dot(h, w_z, input_precision="ieee") + b_z[None, :]
            g_n = tl.dot(h, w_n, input_precision="ieee") + b_n[None, :]
            gofs = step[:, None] * G + j[None, :]
            if SAVE_GATES:
                tl.store(gates_ptr + gofs, cast_for(g_r, gates_ptr), mask=m)
                tl.store(gates_ptr + gofs + H, cast_for(g_z, gates_ptr), mask=m)
                tl.store(gates_ptr + gofs + 2 * H, cast_for(g_n, gates_ptr), mask=m)
            i_r = tl.load(gi_ptr + gofs, mask=m, other=0.0).to(tl.float32)
            i_z = tl.load(gi_ptr + gofs + H, mask=m, other=0.0).to(tl.float32)
            i_n = tl.load(gi_ptr + gofs + 2 * H, mask=m, other=0.0).to(tl.float32)
            hj = gru_update(i_r, i_z, i_n, g_r, g_z, g_n, get_chunk(h, jj, BLOCK_B, NK, BLOCK_N))
            hj = tl.where(m, hj, 0.0)  # padded rows and units stay exactly 0
            tl.store(out_ptr + step[:, None] * H + j[None, :], cast_for(hj, out_ptr), mask=m)
            h_next = put_chunk(h_next, jj, hj, BLOCK_B, NK, BLOCK_N)
        h = h_next


@triton.jit
def _scan_backward_kernel(grad_ptr, gi_ptr, gates_ptr, hprev_ptr, w_ptr, dgi_ptr, dgh_ptr, dh0_ptr,
                          B, T, H, BLOCK_B: tl.constexpr, HP: tl.constexpr, BLOCK_N: tl.constexpr,
                          NK: tl.constexpr, ON_CHIP: tl.constexpr):
    pid = tl.program_id(0)
    rows = (pid * BLOCK_B + tl.arange(0, BLOCK_B)).to(tl.int64)
    rmask = rows < B
    cols = tl.arange(0, HP)
    cmask = cols < H
    full = rmask[:, None] & cmask[None, :]
    cn = tl.arange(0, BLOCK_N)
    G = 3 * H
    if ON_CHIP:  # W_hh's gate blocks (not transposed: dL/dh = dgh @ W), loaded once
        wmask = cmask[:, None] & cmask[None, :]
        w_r = load_w(w_ptr, 0, H, cols, cols, wmask)
        w_z = load_w(w_ptr, 1, H, cols, cols, wmask)
        w_n = load_w(w_ptr, 2, H, cols, cols, wmask)
    dh = tl.zeros((BLOCK_B, HP), dtype=tl.float32)
    for s in range(T):
        t = T - 1 - s
        step = rows * T + t
        dh += tl.load(grad_ptr + step[:, None] * H + cols[None, :], mask=full, other=0.0).to(tl.float32)
        d_r = tl.zeros((BLOCK_B, HP), dtype=tl.float32)  # this step's dgh, gate by gate
        d_z = tl.zeros((BLOCK_B, HP), dtype=tl.float32)
        d_n = tl.zeros((BLOCK_B, HP), dtype=tl.float32)
        direct = tl.zeros((BLOCK_B, HP), dtype=tl.float32)  # dL/dh_t * z
        for jj in range(NK):
            j = jj * BLOCK_N + cn
            m = rmask[:, None] & (j < H)[None, :]
            gofs = step[:, None] * G + j[None, :]
            i_r = tl.load(gi_ptr + gofs, mask=m, other=0.0).to(tl.float32)
            i_z = tl.load(gi_ptr + gofs + H, mask=m, other=0.0).to(tl.float32)
            i_n = tl.load(gi_ptr + gofs + 2 * H, mask=m, other=0.0).to(tl.float32)
            g_r = tl.load(gates_ptr + gofs, mask=m, other=0.0).to(tl.float32)
            g_z = tl.load(gates_ptr + gofs + H, mask=m, other=0.0).to(tl.float32)
            g_n = tl.load(gates_ptr + gofs + 2 * H, mask=m, other=0.0).to(tl.float32)
            hp = tl.load(hprev_ptr + step[:, None] * H + j[None, :], mask=m, other=0.0).to(tl.float32)
            da_r, da_z, da_n, dg_n, dd = gru_step_backward(get_chunk(dh, jj, BLOCK_B, NK, BLOCK_N),
                                                           i_r, i_z, i_n, g_r, g_z, g_n, hp)
            da_r = tl.where(m, da_r, 0.0)
            da_z = tl.where(m, da_z, 0.0)
            da_n = tl.where(m, da_n, 0.0)
            dg_n = tl.where(m, dg_n, 0.0)
            tl.store(dgi_ptr + gofs, cast_for(da_r, dgi_ptr), mask=m)
            tl.store(dgi_ptr + gofs + H, cast_for(da_z, dgi_ptr), mask=m)
            tl.store(dgi_ptr + gofs + 2 * H, cast_for(da_n, dgi_ptr), mask=m)
            tl.store(dgh_ptr + gofs, da_r, mask=m)
            tl.store(dgh_ptr + gofs + H, da_z, mask=m)
            tl.store(dgh_ptr + gofs + 2 * H, dg_n, mask=m)
            d_r = put_chunk(d_r, jj, da_r, BLOCK_B, NK, BLOCK_N)
            d_z = put_chunk(d_z, jj, da_z, BLOCK_B, NK, BLOCK_N)
            d_n = put_chunk(d_n, jj, dg_n, BLOCK_B, NK, BLOCK_N)
            direct = put_chunk(direct, jj, tl.where(m, dd, 0.0), BLOCK_B, NK, BLOCK_N)
        dh_next = direct
        for kk in range(NK):  # dL/dh_{t-1}, BLOCK_N units at a time
            k = kk * BLOCK_N + cn
            if not ON_CHIP:
                tmask = cmask[:, None] & (k < H)[None, :]
                w_r = load_w(w_ptr, 0, H, cols, k, tmask)
                w_z = load_w(w_ptr, 1, H, cols, k, tmask)
                w_n = load_w(w_ptr, 2, H, cols, k, tmask)
            acc = tl.dot(d_r, w_r, input_precision="ieee")
            acc += tl.dot(d_z, w_z, input_precision="ieee")
            acc += tl.dot(d_n, w_n, input_precision="ieee")
            dh_next = put_chunk(dh_next, kk, get_chunk(direct, kk, BLOCK_B, NK, BLOCK_N) + acc, BLOCK_B, NK, BLOCK_N)
        dh = dh_next
    tl.store(dh0_ptr + rows[:, None] * H + cols[None, :], cast_for(dh, dh0_ptr), mask=full)


def _launch_args(H):
    cfg = tc.hidden_tiles(H)
    return dict(BLOCK_B=tc.BLOCK_B, HP=cfg["HP"], BLOCK_N=cfg["BLOCK_N"], NK=cfg["NK"], ON_CHIP=cfg["ON_CHIP"],
                num_warps=cfg["num_warps"], num_stages=cfg["num_stages"])


@register_kernel("triton", "scan_forward", dtypes=tc.SUPPORTED_DTYPES)
def scan_forward(gi, h0, w_hh, b_hh, out, gates):
    B, T, H = out.shape
    if tc.too_large(H, "scan_forward"):
        return naive.scan_forward(gi, h0, w_hh, b_hh, out, gates)
    if B == 0:
        return
    _scan_forward_kernel[tc.grid(B)](gi, h0, w_hh, b_hh, out, gates, B, T, H, SAVE_GATES=gates.numel() > 0,
                                     **_launch_args(H))


@register_kernel("triton", "scan_backward", dtypes=tc.SUPPORTED_DTYPES)
def scan_backward(grad_out, gi, h0, w_hh, b_hh, out, gates, d_gi_out, d_h0_out, d_w_hh_out, d_b_hh_out):
    B, T, H = out.shape
    if tc.too_large(H, "scan_backward"):
        return naive.scan_backward(grad_out, gi, h0, w_hh, b_hh, out, gates, d_gi_out, d_h0_out, d_w_hh_out,
                                   d_b_hh_out)
    h_prev = torch.cat([h0[:, None], out[:, :-1]], dim=1).float()  # [B, T, H]
    if not gates.numel():  # not kept by the forward: recompute them all with one GEMM
        gates = F.linear(h_prev, w_hh.float(), b_hh.float())
    d_gh = torch.empty(B, T, 3 * H, dtype=torch.float32, device=gi.device)
    if B:
        _scan_backward_kernel[tc.grid(B)](grad_out, gi, gates, h_prev, w_hh, d_gi_out, d_gh, d_h0_out, B, T, H,
                                          **_launch_args(H))
    d_gh = d_gh.reshape(B * T, 3 * H)
    d_w_hh_out.copy_(d_gh.T @ h_prev.reshape(B * T, H))
    d_b_hh_out.copy_(d_gh.sum(0))
