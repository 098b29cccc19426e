"""What the Triton kernels of every op share: gate math, tile sizing, chunk helpers.

Tile design (all three ops, forward and backward)
--------------------------------------------------
One program per tile of BLOCK_B = 16 batch rows loops over all T steps inside the kernel. The
hidden state is a register tensor ``h`` [BLOCK_B, HP] (HP = H rounded up to a power of two,
at least 16; padded rows and columns are masked to 0) that never leaves the chip between steps;
only the per-step inputs and outputs touch global memory. Each step computes the hidden gates
with ``tl.dot(h, W_g^T)`` (one dot per gate g = r, z, n), so ``h`` is both the dot operand and
the operand of the elementwise gate math. Every dot has all dimensions >= 16 (the GPU's
minimum; why the batch tile is 16 rows even for B = 1) and runs in float32 with
``input_precision="ieee"`` (no TF32): bf16/fp16 inputs are cast to float32 when loaded.

Two ways to hold W_hh, chosen from H alone (:func:`hidden_tiles`, no autotuning):

* **on chip** (HP <= ON_CHIP_MAX_HP = 64): the three [HP, HP] float32 gate blocks of W_hh^T
  (3 * 64 * 64 * 4 B = 48 KiB) and b_hh are loaded once before the time loop. Triton keeps
  these loop-invariant dot operands in shared memory and h, the gates and the step's inputs
  in registers. Compiled offline for sm_90 (Triton 3.9, 8 warps, num_stages=1), the kernels
  use 53-86 KiB of shared memory at HP = 64 and no register spills (4 bytes in sample). One
  more doubling (HP = 128: 192 KiB for W_hh alone) would not leave room for the rest.
* **streamed** (64 < HP <= STREAMED_MAX_HP = 512): each step walks the hidden units in
  chunks of BLOCK_N columns and loads the [HP, BLOCK_N] tile of each gate block from global
  memory (L2-resident after the first step: 3H^2 * 4 B = 3 MiB at H = 512) for
  ``tl.dot(h, tile)``; ``h`` stays whole in registers and the chunk's new units are written
  into the next state in registers (:func:`put_chunk`), so the state still never leaves the
  chip. BLOCK_N keeps a tile at <= 8192 floats (32 KiB): 64 at HP = 128, 32 at 256, 16 at
  512. Offline sm_90 compiles: 106-199 KiB of shared memory up to HP = 512, with some register
  spills (under 6 KiB per thread) in the backward kernels and sample; HP = 1024 needs
  262-393 KiB, more than an H100 block may have (227 KiB).
* Beyond STREAMED_MAX_HP the launchers fall back to the reference kernel with a warning.

The backward kernels use the same split: the reverse loop carries dL/dh [BLOCK_B, HP] in
registers and multiplies the gate gradients by W_hh (not transposed) in the same chunks.
"""

from __future__ import annotations

import warnings

import torch
import triton
import triton.language as tl

BLOCK_B = 16
ON_CHIP_MAX_HP = 64
STREAMED_MAX_HP = 512
TILE_FLOATS = 8192
SUPPORTED_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def pow2(n: int) -> int:
    """n rounded up to a power of two, at least 16 (tl.dot's minimum dimension on a GPU)."""
    return max(16, triton.next_power_of_2(int(n)))


def hidden_tiles(H: int) -> dict | None:
    """The tile configuration for hidden size H, or None when H is too large for the kernels.

    Returns HP (padded H), BLOCK_N (units per chunk), NK (chunks; 1 means W_hh stays on chip),
    ON_CHIP, num_warps and num_stages. num_stages=1: Triton's default software pipelining (3
    stages) would multi-buffer the streamed weight tiles in shared memory, which at H = 256
    needs more than an H100's 227 KiB per block."""
    HP = pow2(H)
    if HP > STREAMED_MAX_HP:
        return None
    if HP <= ON_CHIP_MAX_HP:
        return dict(HP=HP, BLOCK_N=HP, NK=1, ON_CHIP=True, num_warps=4 if HP == 16 else 8, num_stages=1)
    block_n = max(16, min(64, TILE_FLOATS // HP))
    return dict(HP=HP, BLOCK_N=block_n, NK=HP // block_n, ON_CHIP=False, num_warps=8, num_stages=1)


def too_large(H: int, kernel: str) -> bool:
    """True (after one warning) when H exceeds what the Triton kernels hold; the launcher then
    runs the reference kernel instead."""
    if hidden_tiles(H) is not None:
        return False
    warnings.warn(f"rnngen: hidden size {H} exceeds the Triton kernels' limit ({STREAMED_MAX_HP}); "
                  f"{kernel} runs the reference kernel instead", RuntimeWarning, stacklevel=3)
    return True


def grid(B: int) -> tuple[int]:
    return (triton.cdiv(B, BLOCK_B),)


@triton.jit
def sigmoid(x):
    return 1.0 / (1.0 + tl.exp(-x))


@triton.jit
def tanh(x):
    # libdevice.tanh fails in the interpreter, so tanh is built from exp: 2 sigmoid(2x) - 1, which
    # loses the relative accuracy near 0 to cancellation (1.7e-4 relative error at x = 1e-4), so
    # |x| < 0.625 takes Cephes' odd polynomial x + x^3 P(x^2) instead, as the CPU kernels do.
    z = x * x
    p = ((((-5.70498872745e-3 * z + 2.06390887954e-2) * z - 5.37397155531e-2) * z + 1.33314422036e-1) * z
         - 3.33332819422e-1) * z * x + x
    return tl.where(tl.abs(x) < 0.625, p, 2.0 * sigmoid(2.0 * x) - 1.0)


@triton.jit
def gru_update(i_r, i_z, i_n, g_r, g_z, g_n, h):
    """h' = (1 - z) * n + z * h (nn.GRU's cell; b_hh's n part stays inside the r product)."""
    r = sigmoid(i_r + g_r)
    z = sigmoid(i_z + g_z)
    n = tanh(i_n + r * g_n)
    return (1.0 - z) * n + z * h


@triton.jit
def gru_step_backward(dh, i_r, i_z, i_n, g_r, g_z, g_n, h_prev):
    """One step's backward (rnngen/ops/gru_cell.step_backward): from dL/dh' return the input
    gate gradients (da_r, da_z, da_n), the n part of the hidden gate gradient (da_n * r) and
    the direct part dL/dh' * z of dL/dh."""
    r = sigmoid(i_r + g_r)
    z = sigmoid(i_z + g_z)
    n = tanh(i_n + r * g_n)
    dn = dh * (1.0 - z)
    dz = dh * (h_prev - n)
    da_n = dn * (1.0 - n * n)
    da_z = dz * z * (1.0 - z)
    da_r = da_n * g_n * r * (1.0 - r)
    return da_r, da_z, da_n, da_n * r, dh * z


@triton.jit
def get_chunk(x, j, BLOCK_B: tl.constexpr, NK: tl.constexpr, BLOCK_N: tl.constexpr):
    """Columns [j * BLOCK_N, (j + 1) * BLOCK_N) of the register tensor x [BLOCK_B, NK * BLOCK_N]."""
    if NK == 1:
        return x
    else:
        x3 = tl.reshape(x, (BLOCK_B, NK, BLOCK_N))
        sel = tl.arange(0, NK)[None, :, None] == j
        return tl.sum(tl.where(sel, x3, 0.0), axis=1)


@triton.jit
def put_chunk(x, j, v, BLOCK_B: tl.constexpr, NK: tl.constexpr, BLOCK_N: tl.constexpr):
    """x [BLOCK_B, NK * BLOCK_N] with columns [j * BLOCK_N, (j + 1) * BLOCK_N) replaced by v."""
    if NK == 1:
        return v
    else:
        x3 = tl.reshape(x, (BLOCK_B, NK, BLOCK_N))
        sel = tl.arange(0, NK)[None, :, None] == j
        x3 = tl.where(sel, v[:, None, :], x3)
        return tl.reshape(x3, (BLOCK_B, NK * BLOCK_N))


@triton.jit
def load_w_t(w_ptr, g, H, k, j, mask):
    """The [len(k), len(j)] tile of gate g's block of W [3H, H] transposed: W[g*H + j, k]."""
    return tl.load(w_ptr + (g * H + j)[None, :] * H + k[:, None], mask=mask, other=0.0).to(tl.float32)


@triton.jit
def load_w(w_ptr, g, H, j, k, mask):
    """The [len(j), len(k)] tile of gate g's block of W [3H, H]: W[g*H + j, k]."""
    return tl.load(w_ptr + (g * H + j)[:, None] * H + k[None, :], mask=mask, other=0.0).to(tl.float32)


@triton.jit
def cast_for(x, ptr):
    """float32 x converted to the element type of ``ptr``, rounded to nearest even.

    For bfloat16 the rounding is done on the float32 bits first (the result is then exactly
    representable): Triton's interpreter truncates float32 -> bfloat16 (a NaN with only low
    mantissa bits would become inf), a GPU rounds; this way both store the value PyTorch would
    (up to bfloat16 subnormals, which the interpreter flushes to zero)."""
    if ptr.dtype.element_ty == tl.bfloat16:
        bits = x.to(tl.uint32, bitcast=True)
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
        return tl.where(x == x, bits.to(tl.float32, bitcast=True), float("nan")).to(tl.bfloat16)
    else:
        return x.to(ptr.dtype.element_ty)
