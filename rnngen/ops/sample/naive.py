"""Reference kernel of the sample op: categorical generation with the contract's RNG.

Per step t (h_0 = h0), channel c = t % C:
    logits = W_out[c] h_t + b_out[c]                           (float32)
    value  = known[t] if known[t] >= 0 else draw(logits, temperature, u[t])
    h_{t+1} = cell(emb[c][value] + cond + lagged, h_t)          (LSTM: (h, c) together)
lagged = sum over j with s = t + 1 - lags[j] >= 0 of lag_emb[j][s % C][values[s]] (0 without lags),
added in the order of ``lags``.
draw: e = exp((logits - max) / temperature), cdf = cumsum(e) in increasing value order (float32
results; torch.cumsum on the CPU accumulates in double, a fused kernel in float32: they can
differ only on a draw within rounding of a boundary); the value is the first k with
cdf[k] > u * cdf[K-1] (K-1 if rounding leaves none). Scaling u by the sum instead of normalising
e saves a division per value and never picks a value of probability 0.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F

from ...dispatch import register_kernel
from .. import gru_cell
from ..cells import CELLS, kernel_for
from ..rng import sample_uniforms


def draw(logits: torch.Tensor, temperature: float, u: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draw per row of float32 logits [B, K] at ``temperature`` with uniforms u [B].

    The max is subtracted before dividing, so a tiny temperature gives the argmax, not inf - inf."""
    e = torch.exp((logits - logits.max(dim=-1, keepdim=True).values) / temperature)
    cdf = torch.cumsum(e, dim=-1)
    threshold = u * cdf[:, -1]
    return (cdf[:, :-1] <= threshold[:, None]).sum(dim=-1)


def _sample(cell, h0, c0, emb, lag_emb, lags, cond, w_hh, b_hh, w_out, b_out, temperature, seed, row_offset, known,
            values):
    """Fill values [B, T] (int64). emb [C, K, G*H], lag_emb [L, C, K, G*H] with lags a list of L
    ints >= 1, w_out [C, K, H], b_out [C, K], cond [B, G*H], known [B, T] int64 with -1 where the
    value is to be drawn (or None); c0 [B, H] for the LSTM."""
    dtype = gru_cell.compute_dtype(h0.dtype)
    h, emb, lag_emb, cond, w_hh, b_hh, w_out, b_out = (
        x.to(dtype) for x in (h0, emb, lag_emb, cond, w_hh, b_hh, w_out, b_out))
    c = c0.to(dtype) if cell.has_cell_state else None
    (B, steps), C = values.shape, w_out.shape[0]
    u = sample_uniforms(seed, B, steps, row_offset, device=h.device)
    for t in range(steps):
        c_ = t % C
        v = draw(F.linear(h, w_out[c_], b_out[c_]).float(), temperature, u[:, t])
        if known is not None:
            v = torch.where(known[:, t] >= 0, known[:, t], v)
        values[:, t] = v
        if t + 1 < steps:
            gi = emb[c_][v] + cond
            for j, lag in enumerate(lags):
                s = t + 1 - lag
                if s >= 0:
                    gi = gi + lag_emb[j][s % C][values[:, s]]
            h, c = cell.step(gi, F.linear(h, w_hh, b_hh), h, c)


def _register(cell):
    kernel = kernel_for(cell, "sample", _sample)
    register_kernel("reference", "sample", cell=cell.name)(kernel)
    return kernel


_KERNELS = {name: _register(cell) for name, cell in CELLS.items()}
# The GRU's kernel by name (the Triton kernel runs it beyond the sizes it holds).
sample = _KERNELS["gru"]
