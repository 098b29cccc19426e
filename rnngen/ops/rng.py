"""The sampling RNG of the design contract, in plain PyTorch.

One uniform per (row, step): u = tl.rand(seed, offset) with offset = row * T + t, i.e. Triton's
Philox4x32-10 keyed by the seed's two 32-bit halves, counter (offset_lo, offset_hi, 0, 0), the
first output word turned into a float in [0, 1). Every backend (Triton, C++ CPU, CUDA) computes
exactly this, so one seed draws the same image everywhere.

All arithmetic is int64 on values below 2**32; the 32x32-bit products are split into 16-bit
halves so no intermediate overflows int64.
"""

from __future__ import annotations

import torch

_M32 = 0xFFFFFFFF
_M16 = 0xFFFF
PHILOX_ROUND_A = 0xD2511F53
PHILOX_ROUND_B = 0xCD9E8D57
PHILOX_KEY_A = 0x9E3779B9
PHILOX_KEY_B = 0xBB67AE85
PHILOX_ROUNDS = 10
# The largest float32 scale with (2**31 - 1) * scale < 1 (Triton's constant); applied in float32.
UNIFORM_SCALE = 4.6566127342e-10


def _mul_hi_lo(a: torch.Tensor, b: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(high 32 bits, low 32 bits) of a * b for a (int64 tensor) and b below 2**32."""
    a_hi, a_lo = a >> 16, a & _M16
    b_hi, b_lo = b >> 16, b & _M16
    mid = a_hi * b_lo + a_lo * b_hi  # < 2**33
    low = a_lo * b_lo + ((mid & _M16) << 16)  # < 2**33
    high = a_hi * b_hi + (mid >> 16) + (low >> 32)
    return high & _M32, low & _M32


def philox_first_word(seed: int, offset: torch.Tensor) -> torch.Tensor:
    """Philox4x32-10's first output word (as int64 in [0, 2**32)) for every offset."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if offset.dtype != torch.int64:
        raise TypeError(f"offset must be an int64 tensor, got {offset.dtype}")
    seed %= 2**64
    k0, k1 = seed & _M32, seed >> 32
    c0 = offset & _M32
    c1 = (offset >> 32) & _M32
    c2 = torch.zeros_like(c0)
    c3 = torch.zeros_like(c0)
    for _ in range(PHILOX_ROUNDS):
        hi_b, lo_b = _mul_hi_lo(c2, PHILOX_ROUND_B)
        hi_a, lo_a = _mul_hi_lo(c0, PHILOX_ROUND_A)
        c0, c1, c2, c3 = hi_b ^ c1 ^ k0, lo_b, hi_a ^ c3 ^ k1, lo_a
        k0 = (k0 + PHILOX_KEY_A) & _M32
        k1 = (k1 + PHILOX_KEY_B) & _M32
    return c0


def philox_uniform(seed: int, offset: torch.Tensor) -> torch.Tensor:
    """float32 uniforms in [0, 1), equal bit for bit to Triton's ``tl.rand(seed, offset)``."""
    word = philox_first_word(seed, offset)
    signed = torch.where(word >= 2**31, word - 2**32, word)  # read as int32
    signed = torch.where(signed < 0, -signed - 1, signed)  # bitwise NOT of a negative
    return signed.to(torch.float32) * torch.tensor(UNIFORM_SCALE, dtype=torch.float32)


def sample_uniforms(seed: int, batch: int, steps: int, row_offset: int = 0,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """The [batch, steps] uniforms the sample op draws with: offset = (row_offset + b) * steps + t."""
    rows = torch.arange(row_offset, row_offset + batch, dtype=torch.int64, device=device)
    cols = torch.arange(steps, dtype=torch.int64, device=device)
    return philox_uniform(seed, rows[:, None] * steps + cols[None, :])
