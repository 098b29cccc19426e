"""Reference kernels of the scan op: a plain loop forward, explicit backpropagation through time.

The backward is the specification the fused backward kernels follow:
1. take every step's hidden gates gh = h_prev @ W_hh^T + b_hh from the forward, which keeps them
   when a backward will follow (else recompute them at once: one GEMM, all h_prev are known);
2. walk time backwards carrying dL/dh; each step yields the gate gradients dgi_t, dgh_t and
   dL/dh_{t-1} = dh * z + dgh_t @ W_hh (one small product per step: the sequential part);
3. the weight gradient is one GEMM over all steps after the loop: dW_hh = dgh^T @ h_prev.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...dispatch import register_kernel
from .. import gru_cell


@register_kernel("reference", "scan_forward")
def scan_forward(gi, h0, w_hh, b_hh, out, gates):
    """Fill out [B, T, H] with the hidden states of the GRU driven by input gates gi [B, T, 3H],
    and gates [B, T, 3H] with every step's hidden gates W_hh h_{t-1} + b_hh (unless it is empty)."""
    dtype = gru_cell.compute_dtype(gi.dtype)
    gi, h, w_hh, b_hh = (x.to(dtype) for x in (gi, h0, w_hh, b_hh))
    for t in range(gi.shape[1]):
        gh = F.linear(h, w_hh, b_hh)
        if gates.numel():
            gates[:, t] = gh
        r, z, n, _ = gru_cell.gates(gi[:, t], gh)
        h = (1 - z) * n + z * h
        out[:, t] = h


@register_kernel("reference", "scan_backward")
def scan_backward(grad_out, gi, h0, w_hh, b_hh, out, gates, d_gi_out, d_h0_out, d_w_hh_out, d_b_hh_out):
    """Fill the gradients of (gi, h0, w_hh, b_hh) for the upstream gradient grad_out [B, T, H];
    the hidden gates come from ``gates`` when the forward kept them, else are recomputed."""
    dtype = gru_cell.compute_dtype(gi.dtype)
    grad_out, gi_, h0_, w, b, out, gates = (x.to(dtype) for x in (grad_out, gi, h0, w_hh, b_hh, out, gates))
    B, T, H = out.shape
    h_prev = torch.cat([h0_[:, None], out[:, :-1]], dim=1)
    r, z, n, gh_n = gru_cell.gates(gi_, gates if gates.numel() else F.linear(h_prev, w, b))
    d_gi = torch.empty_like(gi_)
    d_gh = torch.empty_like(gi_)
    dh = torch.zeros_like(h0_)
    for t in reversed(range(T)):
        dh = dh + grad_out[:, t]
        dgi, dgh, dh_direct = gru_cell.step_backward(dh, r[:, t], z[:, t], n[:, t], gh_n[:, t], h_prev[:, t])
        d_gi[:, t] = dgi
        d_gh[:, t] = dgh
        dh = dh_direct + dgh @ w
    d_gh = d_gh.reshape(B * T, 3 * H)
    d_w = d_gh.T @ h_prev.reshape(B * T, H)
    d_b = d_gh.sum(0)
    for dst, src in ((d_gi_out, d_gi), (d_h0_out, dh), (d_w_hh_out, d_w), (d_b_hh_out, d_b)):
        dst.copy_(src)
