"""Guided sampling: the sample op's draws, sharpened towards one of R conditions of each row.

Each row b is drawn for its ``target`` condition y among R conditions (e.g. the classes of a
class-conditional model: R hidden-state streams per row, each with its own h0 and cond). All R
streams read the same drawn values. At step t, with p_r(v) = softmax(logits_r) and the posterior
over conditions given the values so far

    pi_r ∝ prior_r * prod_{s<t} p_r(x_s)                  (Bayes' rule, from the R streams)
    p_mix(v) = sum_r pi_r p_r(v)                          (the model's own unconditional p(v | x_<t))

the value is drawn from the logits

    logits_y + w * (log p_y(v) - log p_mix(v))            (w = ``guidance``)

at ``temperature``, by the op's inverse-CDF draw with the op's Philox uniforms. That is
classifier-free guidance (Ho & Salimans, 2022: p_y^(1+w) / p_mix^w) with the unconditional model
taken as the exact mixture of the conditional ones rather than a second, separately trained
model; equivalently classifier guidance (Dhariwal & Nichol, 2021) by the model's own Bayes
classifier log p(y | x_<=t). With w = 0 the logits are logits_y themselves: the draws are the op's.

Not fused: a step loop in PyTorch over B*R rows, on any device, R times the op's arithmetic plus
a few small kernels per step. Known values (completion) are forced and count in the posterior
like drawn ones.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import _checks, gru_cell
from ..rng import sample_uniforms
from .naive import draw
from .op import _checked


def sample_guided(h0: Tensor, emb: Tensor, w_hh: Tensor, b_hh: Tensor | None, w_out: Tensor, b_out: Tensor | None,
                  steps: int, *, target: Tensor, guidance: float, cond: Tensor | None = None,
                  log_prior: Tensor | None = None, lag_emb: Tensor | None = None, lags=(), temperature: float = 1.0,
                  seed: int = 0, known: Tensor | None = None, row_offset: int = 0, cell: str = "gru",
                  c0: Tensor | None = None, precision: str = "fp32") -> Tensor:
    """Draw ``steps`` values per row for condition ``target`` of R, guided by weight ``guidance``.

    Args as :func:`rnngen.sample` (emb, w_hh, b_hh, w_out, b_out, lag_emb, lags, temperature,
    seed, known, row_offset, cell, precision), but per condition:
        h0: [B, R, H] initial hidden state of each row's R condition streams (c0 likewise).
        cond: [B, R, G*H] conditioning gates of each stream (None: zeros).
        target: [B] integers in 0..R-1, the condition each row is drawn for.
        guidance: w >= 0 (0: the op's draws).
        log_prior: [R] log prior of the conditions (None: uniform); only its differences matter.

    Returns: LongTensor [B, T], the same values for the same seed wherever it runs (on the CPU;
    a GPU's float32 sums run in another order, as for the op).
    """
    _checks.tensor("h0", h0, None, dtype=None)
    if h0.dim() != 3 or h0.shape[1] < 1:
        raise ValueError(f"h0 must have shape [B, R, H] (R >= 1 conditions per row), got {list(h0.shape)}")
    B, R = h0.shape[:2]
    guidance = _checks.guidance(guidance)
    if not isinstance(target, Tensor) or target.dtype.is_floating_point or target.dtype.is_complex \
            or target.dtype == torch.bool:
        raise TypeError(f"target must be an integer Tensor, got {getattr(target, 'dtype', type(target).__name__)}")
    if target.shape != (B,):
        raise ValueError(f"target must have shape [B] = [{B}], got {list(target.shape)}")
    if B and not (0 <= int(target.min()) and int(target.max()) < R):
        raise ValueError(f"target must be in 0..{R - 1} (R = h0.shape[1]), got {int(target.min())}..{int(target.max())}")
    for name, x in (("cond", cond), ("c0", c0)):
        if x is not None and (not isinstance(x, Tensor) or x.dim() != 3 or tuple(x.shape[:2]) != (B, R)):
            raise ValueError(f"{name} must have shape [B, R, ...] = [{B}, {R}, ...] like h0, "
                             f"got {list(getattr(x, 'shape', []))}")
    if log_prior is not None:
        _checks.tensor("log_prior", log_prior, (R,), dtype=None)
    if known is not None and (not isinstance(known, Tensor) or known.dim() != 2 or known.shape[0] != B):
        raise ValueError(f"known must have shape [B, T] = [{B}, {steps}], got {list(getattr(known, 'shape', []))}")

    def flat(x):  # [B, R, ...] -> [B*R, ...]: row b's streams adjacent
        return None if x is None else x.reshape(B * R, *x.shape[2:])

    (spec, h, c, emb, lag_emb, lags, cond, w_hh, b_hh, w_out, b_out, known, temperature, seed, device) = _checked(
        flat(h0), emb, w_hh, b_hh, w_out, b_out, steps, flat(cond), lag_emb, lags, temperature, seed,
        None if known is None else known.repeat_interleave(R, 0), None, row_offset, cell, flat(c0), precision)
    if known is not None:
        known = known[::R]
        K = w_out.shape[1]
        if bool(((known < -1) | (known >= K)).any()):
            raise ValueError(f"known values must lie in 0..{K - 1} (or -1 for 'draw')")
    target = target.to(device).long()
    cond = cond.view(B, R, -1)
    w_hh, w_out = (_checks.weight_in(precision, w.detach()) for w in (w_hh, w_out))
    dtype = gru_cell.compute_dtype(h.dtype)  # as the reference kernel: float32 or float64 arithmetic
    h, emb, lag_emb, cond, w_hh, b_hh, w_out, b_out = (
        None if x is None else x.detach().to(dtype) for x in (h, emb, lag_emb, cond, w_hh, b_hh, w_out, b_out))
    c = c.detach().to(dtype) if spec.has_cell_state else None
    values = torch.empty(B, steps, dtype=torch.int64, device=device)
    if B == 0:
        return values
    C = w_out.shape[0]
    # float32 state and logits as the op; posterior bookkeeping in float64 (sums of 784 log-probs).
    log_post = (torch.zeros(B, R, dtype=torch.float64, device=device) if log_prior is None
                else log_prior.to(device, torch.float64).expand(B, R).clone())
    u = sample_uniforms(seed, B, steps, row_offset, device=device)
    rows = torch.arange(B, device=device)
    own = rows * R + target  # each row's target stream among the B*R
    with torch.no_grad():
        for t in range(steps):
            k = t % C
            logits = F.linear(h, w_out[k], b_out[k]).float()  # [B*R, K]
            chosen = logits[own]
            if guidance:
                logp = F.log_softmax(logits, -1).view(B, R, -1).double()
                posterior = log_post - torch.logsumexp(log_post, 1, keepdim=True)
                log_mix = torch.logsumexp(posterior[:, :, None] + logp, 1)  # [B, K]
                chosen = (chosen.double() + guidance * (logp[rows, target] - log_mix)).float()
            v = draw(chosen, temperature, u[:, t])
            if known is not None:
                v = torch.where(known[:, t] >= 0, known[:, t], v)
            values[:, t] = v
            if guidance:
                log_post += logp.gather(2, v[:, None, None].expand(B, R, 1))[:, :, 0]
            if t + 1 < steps:
                # A row's table rows are gathered once and broadcast over its R streams; the sums
                # run in the op's order (emb + cond, then each lag), so w = 0 draws the op's values.
                gi = emb[k][v][:, None] + cond
                for j, lag in enumerate(lags):
                    s = t + 1 - lag
                    if s >= 0:
                        gi = gi + lag_emb[j][s % C][values[:, s]][:, None]
                h, c = spec.step(gi.view(B * R, -1), F.linear(h, w_hh, b_hh), h, c)
    return values
