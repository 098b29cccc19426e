"""Reference kernels of the scan op: a plain loop forward, explicit backpropagation through time.

The backward is the specification the fused backward kernels follow:
1. take every step's hidden gates gh = h_prev @ W_hh^T + b_hh from the forward, which keeps them
   when a backward will follow (else recompute them at once: one GEMM, all h_prev are known);
2. walk time backwards carrying dL/dh (and, for the LSTM, dL/dc); each step yields the gate
   gradients dgi_t, dgh_t and dL/dh_{t-1} = direct + dgh_t @ W_hh (one small product per step:
   the sequential part; direct is dh * z for the GRU and 0 for the other cells);
3. the weight gradient is one GEMM over all steps after the loop: dW_hh = dgh^T @ h_prev.

Kernels of a cell without a cell state take (gi, h0, w_hh, b_hh, out, gates); the LSTM's also
take c0 after h0 and fill every step's cell state c_out after out (see ``cell_kernel_args``).
"""

from __future__ import annotations


import torch
import torch.nn.functional as F

from ...dispatch import register_kernel
from .. import gru_cell
from ..cells import CELLS, kernel_for


def _forward(cell, gi, h0, c0, w_hh, b_hh, out, c_out, gates):
    """Fill out [B, T, H] with the hidden states driven by input gates gi [B, T, G*H], c_out with
    the cell states (LSTM), and gates [B, T, G*H] with every step's hidden gates W_hh h_{t-1} +
    b_hh (unless it is empty)."""
    dtype = gru_cell.compute_dtype(gi.dtype)
    gi, h, w_hh, b_hh = (x.to(dtype) for x in (gi, h0, w_hh, b_hh))
    c = c0.to(dtype) if cell.has_cell_state else None
    for t in range(gi.shape[1]):
        gh = F.linear(h, w_hh, b_hh)
        if gates.numel():
            gates[:, t] = gh
        h, c = cell.step(gi[:, t], gh, h, c)
        out[:, t] = h
        if cell.has_cell_state:
            c_out[:, t] = c


def _backward(cell, grad_out, grad_c, gi, h0, c0, w_hh, b_hh, out, c_out, gates, d_gi_out, d_h0_out, d_c0_out,
              d_w_hh_out, d_b_hh_out):
    """Fill the gradients of (gi, h0, c0, w_hh, b_hh) for upstream gradients of the hidden states
    (grad_out [B, T, H]) and, for the LSTM, of the cell states (grad_c); the hidden gates come
    from ``gates`` when the forward kept them, else are recomputed."""
    dtype = gru_cell.compute_dtype(gi.dtype)
    grad_out, gi_, h0_, w, b, out, gates = (x.to(dtype) for x in (grad_out, gi, h0, w_hh, b_hh, out, gates))
    B, T, H = out.shape
    G = gi.shape[2]
    h_prev = torch.cat([h0_[:, None], out[:, :-1]], dim=1)
    gh = gates if gates.numel() else F.linear(h_prev, w, b)
    if cell.has_cell_state:
        grad_c, c_out = grad_c.to(dtype), c_out.to(dtype)
        c_prev = torch.cat([c0.to(dtype)[:, None], c_out[:, :-1]], dim=1)
    d_gi = torch.empty_like(gi_)
    d_gh = torch.empty(B, T, G, dtype=dtype, device=gi.device)
    dh = torch.zeros_like(h0_)
    dc = torch.zeros_like(h0_) if cell.has_cell_state else None
    for t in reversed(range(T)):
        dh = dh + grad_out[:, t]
        if cell.has_cell_state:
            dc = dc + grad_c[:, t]
        dgi, dgh, dh_direct, dc = cell.step_backward(
            dh, dc, gi_[:, t], gh[:, t], h_prev[:, t], c_prev[:, t] if dc is not None else None, out[:, t],
            c_out[:, t] if dc is not None else None)
        d_gi[:, t] = dgi
        d_gh[:, t] = dgh
        dh = dh_direct + dgh @ w
    d_gh = d_gh.reshape(B * T, G)
    d_w = d_gh.T @ h_prev.reshape(B * T, H)
    d_b = d_gh.sum(0)
    for dst, src in ((d_gi_out, d_gi), (d_h0_out, dh), (d_c0_out, dc), (d_w_hh_out, d_w), (d_b_hh_out, d_b)):
        if dst is not None:
            dst.copy_(src)


def _register(cell):
    forward = kernel_for(cell, "scan_forward", _forward)
    backward = kernel_for(cell, "scan_backward", _backward)
    register_kernel("reference", "scan_forward", cell=cell.name)(forward)
    register_kernel("reference", "scan_backward", cell=cell.name)(backward)
    return forward, backward


_KERNELS = {name: _register(cell) for name, cell in CELLS.items()}
# The GRU's kernels by name (the Triton kernels run them beyond the sizes they hold).
scan_forward, scan_backward = _KERNELS["gru"]
