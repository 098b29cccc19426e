"""Reference kernels of the decode op (the article's generator): a plain loop, explicit BPTT.

Forward, per step t (h_{-1} = h0):
    x_t = W_out h_{t-1} + b_out          (the output of step t)
    h_t = GRU(W_ih x_t + b_ih, h_{t-1})
Backward, the spec for the fused kernels: the gates of all steps are recomputed at once from
the saved outputs and hidden states (two GEMMs); the reverse loop carries dL/dh through
    dx_t      = dL/dout_t + dgi_t @ W_ih
    dh_{t-1}  = dh_t * z_t + dgh_t @ W_hh + dx_t @ W_out
and every weight gradient is one GEMM over all steps after the loop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...dispatch import register_kernel
from .. import gru_cell


@register_kernel("reference", "decode_forward")
def decode_forward(h0, w_ih, b_ih, w_hh, b_hh, w_out, b_out, out, hidden):
    """Fill out [B, T, C] with every step's output and hidden [B, T, H] with the state after it."""
    dtype = gru_cell.compute_dtype(h0.dtype)
    h, w_ih, b_ih, w_hh, b_hh, w_out, b_out = (x.to(dtype) for x in (h0, w_ih, b_ih, w_hh, b_hh, w_out, b_out))
    for t in range(out.shape[1]):
        x = F.linear(h, w_out, b_out)
        h = gru_cell.step(F.linear(x, w_ih, b_ih), h, w_hh, b_hh)
        out[:, t] = x
        hidden[:, t] = h


@register_kernel("reference", "decode_backward")
def decode_backward(grad_out, grad_hidden, h0, w_ih, b_ih, w_hh, b_hh, w_out, b_out, out, hidden,
                    d_h0, d_w_ih, d_b_ih, d_w_hh, d_b_hh, d_w_out, d_b_out):
    """Fill the gradients of (h0, w_ih, ..., b_out) for upstream grads of (out, hidden)."""
    dtype = gru_cell.compute_dtype(h0.dtype)
    g_out, g_hid, h0_, w_ih_, b_ih_, w_hh_, b_hh_, w_out_, out, hidden = (
        x.to(dtype) for x in (grad_out, grad_hidden, h0, w_ih, b_ih, w_hh, b_hh, w_out, out, hidden))
    B, T, C = out.shape
    H = h0.shape[1]
    h_prev = torch.cat([h0_[:, None], hidden[:, :-1]], dim=1)
    r, z, n, gh_n = gru_cell.gates(F.linear(out, w_ih_, b_ih_), F.linear(h_prev, w_hh_, b_hh_))
    d_gi = torch.empty(B, T, 3 * H, dtype=dtype, device=h0.device)
    d_gh = torch.empty_like(d_gi)
    d_x = torch.empty_like(out)
    dh = torch.zeros_like(h0_)
    for t in reversed(range(T)):
        dh = dh + g_hid[:, t]
        dgi, dgh, dh_direct = gru_cell.step_backward(dh, r[:, t], z[:, t], n[:, t], gh_n[:, t], h_prev[:, t])
        dx = g_out[:, t] + dgi @ w_ih_
        dh = dh_direct + dgh @ w_hh_ + dx @ w_out_
        d_gi[:, t], d_gh[:, t], d_x[:, t] = dgi, dgh, dx
    d_gi, d_gh, d_x = d_gi.reshape(B * T, 3 * H), d_gh.reshape(B * T, 3 * H), d_x.reshape(B * T, C)
    h_prev, out = h_prev.reshape(B * T, H), out.reshape(B * T, C)
    grads = (dh, d_gi.T @ out, d_gi.sum(0), d_gh.T @ h_prev, d_gh.sum(0), d_x.T @ h_prev, d_x.sum(0))
    for dst, src in zip((d_h0, d_w_ih, d_b_ih, d_w_hh, d_b_hh, d_w_out, d_b_out), grads):
        dst.copy_(src)
