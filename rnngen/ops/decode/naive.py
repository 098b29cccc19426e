"""Reference kernels of the decode op (the article's generator): a plain loop, explicit BPTT.

Forward, per step t (h_{-1} = h0):
    x_t = W_out h_{t-1} + b_out          (the output of step t)
    h_t = cell(W_ih x_t + b_ih, h_{t-1})     (LSTM: (h_t, c_t) from (h_{t-1}, c_{t-1}))
Backward, the spec for the fused kernels: the gates of all steps are recomputed at once from
the saved outputs and hidden states (two GEMMs); the reverse loop carries dL/dh (and dL/dc) through
    dx_t      = dL/dout_t + dgi_t @ W_ih
    dh_{t-1}  = direct_t + dgh_t @ W_hh + dx_t @ W_out          (direct: dh_t * z_t for the GRU, else 0)
and every weight gradient is one GEMM over all steps after the loop.

Kernels of a cell without a cell state take (h0, w_ih, ..., out, hidden); the LSTM's take c0
after h0 and fill every step's cell state c_hidden after hidden.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F

from ...dispatch import register_kernel
from .. import gru_cell
from ..cells import CELLS, kernel_for


def _forward(cell, h0, c0, w_ih, b_ih, w_hh, b_hh, w_out, b_out, out, hidden, c_hidden):
    """Fill out [B, T, C] with every step's output, hidden [B, T, H] with the state after it and,
    for the LSTM, c_hidden with the cell state after it."""
    dtype = gru_cell.compute_dtype(h0.dtype)
    h, w_ih, b_ih, w_hh, b_hh, w_out, b_out = (x.to(dtype) for x in (h0, w_ih, b_ih, w_hh, b_hh, w_out, b_out))
    c = c0.to(dtype) if cell.has_cell_state else None
    for t in range(out.shape[1]):
        x = F.linear(h, w_out, b_out)
        h, c = cell.step(F.linear(x, w_ih, b_ih), F.linear(h, w_hh, b_hh), h, c)
        out[:, t] = x
        hidden[:, t] = h
        if cell.has_cell_state:
            c_hidden[:, t] = c


def _backward(cell, grad_out, grad_hidden, grad_c, h0, c0, w_ih, b_ih, w_hh, b_hh, w_out, b_out, out, hidden,
              c_hidden, d_h0, d_c0, d_w_ih, d_b_ih, d_w_hh, d_b_hh, d_w_out, d_b_out):
    """Fill the gradients of (h0, c0, w_ih, ..., b_out) for upstream grads of (out, hidden, c_hidden)."""
    dtype = gru_cell.compute_dtype(h0.dtype)
    g_out, g_hid, h0_, w_ih_, b_ih_, w_hh_, b_hh_, w_out_, out, hidden = (
        x.to(dtype) for x in (grad_out, grad_hidden, h0, w_ih, b_ih, w_hh, b_hh, w_out, out, hidden))
    B, T, C = out.shape
    H = h0.shape[1]
    G = w_hh.shape[0]
    h_prev = torch.cat([h0_[:, None], hidden[:, :-1]], dim=1)
    gi, gh = F.linear(out, w_ih_, b_ih_), F.linear(h_prev, w_hh_, b_hh_)
    if cell.has_cell_state:
        g_c, c_hidden = grad_c.to(dtype), c_hidden.to(dtype)
        c_prev = torch.cat([c0.to(dtype)[:, None], c_hidden[:, :-1]], dim=1)
    d_gi = torch.empty(B, T, G, dtype=dtype, device=h0.device)
    d_gh = torch.empty_like(d_gi)
    d_x = torch.empty_like(out)
    dh = torch.zeros_like(h0_)
    dc = torch.zeros_like(h0_) if cell.has_cell_state else None
    for t in reversed(range(T)):
        dh = dh + g_hid[:, t]
        if dc is not None:
            dc = dc + g_c[:, t]
        dgi, dgh, dh_direct, dc = cell.step_backward(
            dh, dc, gi[:, t], gh[:, t], h_prev[:, t], c_prev[:, t] if dc is not None else None, hidden[:, t],
            c_hidden[:, t] if dc is not None else None)
        dx = g_out[:, t] + dgi @ w_ih_
        dh = dh_direct + dgh @ w_hh_ + dx @ w_out_
        d_gi[:, t], d_gh[:, t], d_x[:, t] = dgi, dgh, dx
    d_gi, d_gh, d_x = d_gi.reshape(B * T, G), d_gh.reshape(B * T, G), d_x.reshape(B * T, C)
    h_prev, out = h_prev.reshape(B * T, H), out.reshape(B * T, C)
    grads = (dh, dc, d_gi.T @ out, d_gi.sum(0), d_gh.T @ h_prev, d_gh.sum(0), d_x.T @ h_prev, d_x.sum(0))
    for dst, src in zip((d_h0, d_c0, d_w_ih, d_b_ih, d_w_hh, d_b_hh, d_w_out, d_b_out), grads):
        if dst is not None:
            dst.copy_(src)


def _register(cell):
    forward = kernel_for(cell, "decode_forward", _forward)
    backward = kernel_for(cell, "decode_backward", _backward)
    register_kernel("reference", "decode_forward", cell=cell.name)(forward)
    register_kernel("reference", "decode_backward", cell=cell.name)(backward)
    return forward, backward


_KERNELS = {name: _register(cell) for name, cell in CELLS.items()}
# The GRU's kernels by name (the Triton kernels run them beyond the sizes they hold).
decode_forward, decode_backward = _KERNELS["gru"]
