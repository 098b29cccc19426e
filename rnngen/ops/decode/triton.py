"""Triton kernels of the decode op: one program per 16-row batch tile runs all T steps.

Forward, per step: x_t = h @ W_out^T + b_out (stored as the output), then the input gates
x_t @ W_ih^T + b_ih and the hidden gates h @ W_hh^T + b_hh feed the GRU update; h never leaves
the registers. W_hh is held on chip or streamed per the rule in rnngen/ops/triton_common.py;
the small heads W_out^T [HP, CP] and W_ih^T [CP, 3 x HP] (C padded to CP >= 16) are loaded
once with it when W_hh is on chip, and streamed with it otherwise. The kernels take C up to
MAX_CP = 16 (decode's outputs are a few continuous channels); larger C runs the reference.

Backward: the gates of all steps are recomputed by two GEMMs before the kernel (as the
reference does); the reverse loop carries dL/dh in registers and writes dgi_t, dgh_t and
dx_t = dL/dout_t + dgi_t @ W_ih, with dL/dh_{t-1} = dL/dh_t * z + dgh_t @ W_hh + dx_t @ W_out.
Every weight gradient is one GEMM over all steps after the kernel.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from ...dispatch import register_kernel
from .. import triton_common as tc
from ..triton_common import cast_for, get_chunk, gru_step_backward, gru_update, load_w, load_w_t, put_chunk
from . import naive

MAX_CP = 16


@triton.jit
def _decode_forward_kernel(h0_ptr, wih_ptr, bih_ptr, whh_ptr, bhh_ptr, wout_ptr, bout_ptr, out_ptr, hid_ptr,
                           B, T, H, C, BLOCK_B: tl.constexpr, HP: tl.constexpr, CP: tl.constexpr,
                           BLOCK_N: tl.constexpr, NK: tl.constexpr, ON_CHIP: tl.constexpr):
    pid = tl.program_id(0)
    rows = (pid * BLOCK_B + tl.arange(0, BLOCK_B)).to(tl.int64)
    rmask = rows < B
    cols = tl.arange(0, HP)
    cmask = cols < H
    cc = tl.arange(0, CP)
    ccmask = cc < C
    cn = tl.arange(0, BLOCK_N)
    h = tl.load(h0_ptr + rows[:, None] * H + cols[None, :], mask=rmask[:, None] & cmask[None, :],
                other=0.0).to(tl.float32)
    if ON_CHIP:  # every weight, loaded once for all T steps
        wmask = cmask[:, None] & cmask[None, :]
        w_r = load_w_t(whh_ptr, 0, H, cols, cols, wmask)
        w_z = load_w_t(whh_ptr, 1, H, cols, cols, wmask)
        w_n = load_w_t(whh_ptr, 2, H, cols, cols, wmask)
        b_r = tl.load(bhh_ptr + cols, mask=cmask, other=0.0).to(tl.float32)
        b_z = tl.load(bhh_ptr + H + cols, mask=cmask, other=0.0).to(tl.float32)
        b_n = tl.load(bhh_ptr + 2 * H + cols, mask=cmask, other=0.0).to(tl.float32)
        imask = ccmask[:, None] & cmask[None, :]
        u_r = tl.load(wih_ptr + cols[None, :] * C + cc[:, None], mask=imask, other=0.0).to(tl.float32)
        u_z = tl.load(wih_ptr + (H + cols)[None, :] * C + cc[:, None], mask=imask, other=0.0).to(tl.float32)
        u_n = tl.load(wih_ptr + (2 * H + cols)[None, :] * C + cc[:, None], mask=imask, other=0.0).to(tl.float32)
        c_r = tl.load(bih_ptr + cols, mask=cmask, other=0.0).to(tl.float32)
        c_z = tl.load(bih_ptr + H + cols, mask=cmask, other=0.0).to(tl.float32)
        c_n = tl.load(bih_ptr + 2 * H + cols, mask=cmask, other=0.0).to(tl.float32)
        w_o = tl.load(wout_ptr + cc[None, :] * H + cols[:, None], mask=cmask[:, None] & ccmask[None, :],
                      other=0.0).to(tl.float32)  # W_out^T [HP, CP]
    b_o = tl.load(bout_ptr + cc, mask=ccmask, other=0.0).to(tl.float32)
    for t in range(T):
        step = rows * T + t
        if not ON_CHIP:
            w_o = tl.load(wout_ptr + cc[None, :] * H + cols[:, None], mask=cmask[:, None] & ccmask[None, :],
                          other=0.0).to(tl.float32)
        x = tl.dot(h, w_o, input_precision="ieee") + b_o[None, :]  # [BLOCK_B, CP], 0 beyond C
        tl.store(out_ptr + step[:, None] * C + cc[None, :], cast_for(x, out_ptr),
                 mask=rmask[:, None] & ccmask[None, :])
        h_next = h
        for jj in range(NK):
            j = jj * BLOCK_N + cn
            jmask = j < H
            m = rmask[:, None] & jmask[None, :]
            if not ON_CHIP:
                tmask = cmask[:, None] & jmask[None, :]
                w_r = load_w_t(whh_ptr, 0, H, cols, j, tmask)
                w_z = load_w_t(whh_ptr, 1, H, cols, j, tmask)
                w_n = load_w_t(whh_ptr, 2, H, cols, j, tmask)
                b_r = tl.load(bhh_ptr + j, mask=jmask, other=0.0).to(tl.float32)
                b_z = tl.load(bhh_ptr + H + j, mask=jmask, other=0.0).to(tl.float32)
                b_n = tl.load(bhh_ptr + 2 * H + j, mask=jmask, other=0.0).to(tl.float32)
                imask = ccmask[:, None] & jmask[None, :]
                u_r = tl.load(wih_ptr + j[None, :] * C + cc[:, None], mask=imask, other=0.0).to(tl.float32)
                u_z = tl.load(wih_ptr + (H + j)[None, :] * C + cc[:, None], mask=imask, other=0.0).to(tl.float32)
                u_n = tl.load(wih_ptr + (2 * H + j)[None, :] * C + cc[:, None], mask=imask,
                              other=0.0).to(tl.float32)
                c_r = tl.load(bih_ptr + j, mask=jmask, other=0.0).to(tl.float32)
                c_z = tl.load(bih_ptr + H + j, mask=jmask, other=0.0).to(tl.float32)
                c_n = tl.load(bih_ptr + 2 * H + j, mask=jmask, other=0.0).to(tl.float32)
            i_r = tl.dot(x, u_r, input_precision="ieee") + c_r[None, :]
            i_z = tl.dot(x, u_z, input_precision="ieee") + c_z[None, :]
            i_n = tl.dot(x, u_n, input_precision="ieee") + c_n[None, :]
            g_r = tl.dot(h, w_r, input_precision="ieee") + b_r[None, :]
            g_z = tl.dot(h, w_z, input_precision="ieee") + b_z[None, :]
            g_n = tl.dot(h, w_n, input_precision="ieee") + b_n[None, :]
            hj = gru_update(i_r, i_z, i_n, g_r, g_z, g_n, get_chunk(h, jj, BLOCK_B, NK, BLOCK_N))
            hj = tl.where(m, hj, 0.0)
            tl.store(hid_ptr + step[:, None] * H + j[None, :], cast_for(hj, hid_ptr), mask=m)
            h_next = put_chunk(h_next, jj, hj, BLOCK_B, NK, BLOCK_N)
        h = h_next


@triton.jit
def _decode_backward_kernel(gout_ptr, ghid_ptr, gi_ptr, gh_ptr, hprev_ptr, wih_ptr, whh_ptr, wout_ptr,
                            dgi_ptr, dgh_ptr, dx_ptr, dh0_ptr, B, T, H, C, BLOCK_B: tl.constexpr,
                            HP: tl.constexpr, CP: tl.constexpr, BLOCK_N: tl.constexpr, NK: tl.constexpr,
                            ON_CHIP: tl.constexpr):
    pid = tl.program_id(0)
    rows = (pid * BLOCK_B + tl.arange(0, BLOCK_B)).to(tl.int64)
    rmask = rows < B
    cols = tl.arange(0, HP)
    cmask = cols < H
    full = rmask[:, None] & cmask[None, :]
    cc = tl.arange(0, CP)
    ccmask = cc < C
    cn = tl.arange(0, BLOCK_N)
    G = 3 * H
    imask = cmask[:, None] & ccmask[None, :]
    if ON_CHIP:  # every weight, loaded once; W_ih's gate blocks as [HP, CP] (dx = dgi @ W_ih)
        u_r = tl.load(wih_ptr + cols[:, None] * C + cc[None, :], mask=imask, other=0.0).to(tl.float32)
        u_z = tl.load(wih_ptr + (H + cols)[:, None] * C + cc[None, :], mask=imask, other=0.0).to(tl.float32)
        u_n = tl.load(wih_ptr + (2 * H + cols)[:, None] * C + cc[None, :], mask=imask, other=0.0).to(tl.float32)
        wmask = cmask[:, None] & cmask[None, :]
        w_r = load_w(whh_ptr, 0, H, cols, cols, wmask)
        w_z = load_w(whh_ptr, 1, H, cols, cols, wmask)
        w_n = load_w(whh_ptr, 2, H, cols, cols, wmask)
        w_o = tl.load(wout_ptr + cc[:, None] * H + cols[None, :], mask=ccmask[:, None] & cmask[None, :],
                      other=0.0).to(tl.float32)  # W_out [CP, HP]
    dh = tl.zeros((BLOCK_B, HP), dtype=tl.float32)
    for s in range(T):
        t = T - 1 - s
        step = rows * T + t
        dh += tl.load(ghid_ptr + step[:, None] * H + cols[None, :], mask=full, other=0.0).to(tl.float32)
        d_r = tl.zeros((BLOCK_B, HP), dtype=tl.float32)  # dgi (r, z, n) and dgh's n part
        d_z = tl.zeros((BLOCK_B, HP), dtype=tl.float32)
        d_n = tl.zeros((BLOCK_B, HP), dtype=tl.float32)
        e_n = tl.zeros((BLOCK_B, HP), dtype=tl.float32)
        direct = tl.zeros((BLOCK_B, HP), dtype=tl.float32)
        for jj in range(NK):
            j = jj * BLOCK_N + cn
            m = rmask[:, None] & (j < H)[None, :]
            gofs = step[:, None] * G + j[None, :]
            i_r = tl.load(gi_ptr + gofs, mask=m, other=0.0)
            i_z = tl.load(gi_ptr + gofs + H, mask=m, other=0.0)
            i_n = tl.load(gi_ptr + gofs + 2 * H, mask=m, other=0.0)
            g_r = tl.load(gh_ptr + gofs, mask=m, other=0.0)
            g_z = tl.load(gh_ptr + gofs + H, mask=m, other=0.0)
            g_n = tl.load(gh_ptr + gofs + 2 * H, mask=m, other=0.0)
            hp = tl.load(hprev_ptr + step[:, None] * H + j[None, :], mask=m, other=0.0)
            da_r, da_z, da_n, dg_n, dd = gru_step_backward(get_chunk(dh, jj, BLOCK_B, NK, BLOCK_N),
                                                           i_r, i_z, i_n, g_r, g_z, g_n, hp)
            da_r = tl.where(m, da_r, 0.0)
            da_z = tl.where(m, da_z, 0.0)
            da_n = tl.where(m, da_n, 0.0)
            dg_n = tl.where(m, dg_n, 0.0)
            tl.store(dgi_ptr + gofs, da_r, mask=m)
            tl.store(dgi_ptr + gofs + H, da_z, mask=m)
            tl.store(dgi_ptr + gofs + 2 * H, da_n, mask=m)
            tl.store(dgh_ptr + gofs, da_r, mask=m)
            tl.store(dgh_ptr + gofs + H, da_z, mask=m)
            tl.store(dgh_ptr + gofs + 2 * H, dg_n, mask=m)
            d_r = put_chunk(d_r, jj, da_r, BLOCK_B, NK, BLOCK_N)
            d_z = put_chunk(d_z, jj, da_z, BLOCK_B, NK, BLOCK_N)
            d_n = put_chunk(d_n, jj, da_n, BLOCK_B, NK, BLOCK_N)
            e_n = put_chunk(e_n, jj, dg_n, BLOCK_B, NK, BLOCK_N)
            direct = put_chunk(direct, jj, tl.where(m, dd, 0.0), BLOCK_B, NK, BLOCK_N)
        xm = rmask[:, None] & ccmask[None, :]
        if not ON_CHIP:
            u_r = tl.load(wih_ptr + cols[:, None] * C + cc[None, :], mask=imask, other=0.0).to(tl.float32)
            u_z = tl.load(wih_ptr + (H + cols)[:, None] * C + cc[None, :], mask=imask, other=0.0).to(tl.float32)
            u_n = tl.load(wih_ptr + (2 * H + cols)[:, None] * C + cc[None, :], mask=imask,
                          other=0.0).to(tl.float32)
        dx = tl.load(gout_ptr + step[:, None] * C + cc[None, :], mask=xm, other=0.0).to(tl.float32)
        dx += tl.dot(d_r, u_r, input_precision="ieee")
        dx += tl.dot(d_z, u_z, input_precision="ieee")
        dx += tl.dot(d_n, u_n, input_precision="ieee")
        tl.store(dx_ptr + step[:, None] * C + cc[None, :], dx, mask=xm)
        dh_next = direct
        for kk in range(NK):
            k = kk * BLOCK_N + cn
            if not ON_CHIP:
                kmask = (k < H)[None, :]
                tmask = cmask[:, None] & kmask
                w_r = load_w(whh_ptr, 0, H, cols, k, tmask)
                w_z = load_w(whh_ptr, 1, H, cols, k, tmask)
                w_n = load_w(whh_ptr, 2, H, cols, k, tmask)
                w_o = tl.load(wout_ptr + cc[:, None] * H + k[None, :], mask=ccmask[:, None] & kmask,
                              other=0.0).to(tl.float32)
            acc = tl.dot(d_r, w_r, input_precision="ieee")
            acc += tl.dot(d_z, w_z, input_precision="ieee")
            acc += tl.dot(e_n, w_n, input_precision="ieee")
            acc += tl.dot(dx, w_o, input_precision="ieee")
            dh_next = put_chunk(dh_next, kk, get_chunk(direct, kk, BLOCK_B, NK, BLOCK_N) + acc, BLOCK_B, NK, BLOCK_N)
        dh = dh_next
    tl.store(dh0_ptr + rows[:, None] * H + cols[None, :], cast_for(dh, dh0_ptr), mask=full)


def _fits(H, C, kernel):
    if tc.too_large(H, kernel):
        return False
    if tc.pow2(C) > MAX_CP:
        warnings.warn(f"rnngen: decode's Triton kernels take at most {MAX_CP} output channels, got {C}; "
                      f"{kernel} runs the reference kernel instead", RuntimeWarning, stacklevel=3)
        return False
    return True


def _launch_args(H, C):
    cfg = tc.hidden_tiles(H)
    return dict(BLOCK_B=tc.BLOCK_B, HP=cfg["HP"], CP=tc.pow2(C), BLOCK_N=cfg["BLOCK_N"], NK=cfg["NK"],
                ON_CHIP=cfg["ON_CHIP"], num_warps=cfg["num_warps"], num_stages=cfg["num_stages"])


@register_kernel("triton", "decode_forward", dtypes=tc.SUPPORTED_DTYPES)
def decode_forward(h0, w_ih, b_ih, w_hh, b_hh, w_out, b_out, out, hidden):
    B, T, C = out.shape
    H = h0.shape[1]
    if not _fits(H, C, "decode_forward"):
        return naive.decode_forward(h0, w_ih, b_ih, w_hh, b_hh, w_out, b_out, out, hidden)
    if B == 0:
        return
    _decode_forward_kernel[tc.grid(B)](h0, w_ih, b_ih, w_hh, b_hh, w_out, b_out, out, hidden, B, T, H, C,
                                       **_launch_args(H, C))


@register_kernel("triton", "decode_backward", dtypes=tc.SUPPORTED_DTYPES)
def decode_backward(grad_out, grad_hidden, h0, w_ih, b_ih, w_hh, b_hh, w_out, b_out, out, hidden,
                    d_h0, d_w_ih, d_b_ih, d_w_hh, d_b_hh, d_w_out, d_b_out):
    B, T, C = out.shape
    H = h0.shape[1]
    if not _fits(H, C, "decode_backward"):
        return naive.decode_backward(grad_out, grad_hidden, h0, w_ih, b_ih, w_hh, b_hh, w_out, b_out, out, hidden,
                                     d_h0, d_w_ih, d_b_ih, d_w_hh, d_b_hh, d_w_out, d_b_out)
    f32 = torch.float32
    out32 = out.to(f32)
    h_prev = torch.cat([h0[:, None], hidden[:, :-1]], dim=1).to(f32)
    # every step's input and hidden gates, recomputed by two GEMMs (the reference's spec)
    gi = F.linear(out32, w_ih.to(f32), b_ih.to(f32))
    gh = F.linear(h_prev, w_hh.to(f32), b_hh.to(f32))
    d_gi = torch.empty(B, T, 3 * H, dtype=f32, device=h0.device)
    d_gh = torch.empty_like(d_gi)
    d_x = torch.empty(B, T, C, dtype=f32, device=h0.device)
    if B:
        _decode_backward_kernel[tc.grid(B)](grad_out, grad_hidden, gi, gh, h_prev, w_ih, w_hh, w_out, d_gi, d_gh,
                                            d_x, d_h0, B, T, H, C, **_launch_args(H, C))
    d_gi, d_gh, d_x = d_gi.reshape(B * T, 3 * H), d_gh.reshape(B * T, 3 * H), d_x.reshape(B * T, C)
    h_prev, out32 = h_prev.reshape(B * T, H), out32.reshape(B * T, C)
    grads = (d_gi.T @ out32, d_gi.sum(0), d_gh.T @ h_prev, d_gh.sum(0), d_x.T @ h_prev, d_x.sum(0))
    for dst, src in zip((d_w_ih, d_b_ih, d_w_hh, d_b_hh, d_w_out, d_b_out), grads):
        dst.copy_(src)
