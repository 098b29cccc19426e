"""One GRU step and its backward in plain PyTorch: the math every reference kernel shares.

Exactly nn.GRU's cell, gate order r, z, n; b_hh's n part stays inside the r product:

    r = sigmoid(gi_r + gh_r)    z = sigmoid(gi_z + gh_z)    n = tanh(gi_n + r * gh_n)
    h' = (1 - z) * n + z * h
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gates(gi: torch.Tensor, gh: torch.Tensor):
    """(r, z, n, gh_n) from the input gates gi and hidden gates gh (both [..., 3H])."""
    i_r, i_z, i_n = gi.chunk(3, dim=-1)
    h_r, h_z, h_n = gh.chunk(3, dim=-1)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return r, z, n, h_n


def step(gi: torch.Tensor, h: torch.Tensor, w_hh: torch.Tensor, b_hh: torch.Tensor) -> torch.Tensor:
    """h' for input gates gi [B, 3H] and hidden state h [B, H]."""
    r, z, n, _ = gates(gi, F.linear(h, w_hh, b_hh))
    return (1 - z) * n + z * h


def step_backward(dh, r, z, n, gh_n, h_prev):
    """Backpropagate dL/dh' through one step.

    Returns (dgi, dgh, dh_direct): the gradients of the input gates and hidden gates (each
    [B, 3H]) and the part of dL/dh that does not pass through W_hh; the caller adds
    ``dgh @ W_hh`` to get the full dL/dh."""
    dn = dh * (1 - z)
    dz = dh * (h_prev - n)
    da_n = dn * (1 - n * n)
    da_z = dz * z * (1 - z)
    da_r = da_n * gh_n * r * (1 - r)
    dgi = torch.cat([da_r, da_z, da_n], dim=-1)
    dgh = torch.cat([da_r, da_z, da_n * r], dim=-1)
    return dgi, dgh, dh * z


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype the reference computes in: float64 stays, everything else runs in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32
