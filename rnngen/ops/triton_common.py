"""What the Triton kernels of every op share: the cells' steps, tile sizing, chunk helpers.

Cells
-----
Every kernel is written once for all the cells (rnngen/ops/cells.py) and specialised by
constexprs (:func:`cell_args`): CELL (GRU 0, LSTM 1, RNN_TANH 2, RNN_RELU 3), NG (the gate
blocks: 3, 4, 1, 1), HAS_C (the LSTM's cell state c, carried in registers beside h with the
same [BLOCK_B, HP] shape, and dL/dc beside dL/dh in the reverse loops) and DIRECT (the GRU's
backward: its gate n hidden gradient is r * da_n, not da_n, and dL/dh' * z reaches dL/dh without
passing through W_hh; for the other cells the input and hidden gate gradients are one ``da`` and
all of dL/dh_{t-1} is da @ W_hh). The kernels hold the gates as 4-tuples (gate k < NG; the
unused slots alias gate 0 and are never read), load, dot and store them with the ``*_gates``
helpers below, and call the cell only through :func:`cell_update` and
:func:`cell_step_backward`: each cell's step and step backward are the jit functions beside
them (gru_update, lstm_update, elman_update, ...). A new cell is its two step functions, one
branch in each of those two dispatchers and a row in :func:`cell_args`; every kernel (scan,
decode, sample; forward and backward) then runs it with the same loops, tiling and masking.

Tile design (all three ops, forward and backward)
--------------------------------------------------
One program per tile of BLOCK_B = 16 batch rows loops over all T steps inside the kernel. The
hidden state is a register tensor ``h`` [BLOCK_B, HP] (HP = H rounded up to a power of two,
at least 16; padded rows and columns are masked to 0) that never leaves the chip between steps;
only the per-step inputs and outputs touch global memory. Each step computes the hidden gates
with ``tl.dot(h, W_g^T)`` (one dot per gate g), so ``h`` is both the dot operand and the operand
of the elementwise gate math. Every dot has all dimensions >= 16 (the GPU's minimum; why the
batch tile is 16 rows even for B = 1) and goes through :func:`mma` as :func:`dot_mode` says: the
forward kernels multiply bf16/fp16 inputs on tensor cores (float32 accumulation), float32 in IEEE
float32 unless torch allows TF32; everything else (the state, the gate math) is float32.

Two ways to hold W_hh, chosen from H and the cell's gate count NG alone (:func:`hidden_tiles`,
no autotuning):

* **on chip in one program** (NG * HP^2 <= ON_CHIP_FLOATS = 16384 floats, 64 KiB: HP <= 64 for
  the GRU (48 KiB) and the LSTM (4 blocks, 64 KiB), HP <= 128 for the Elman cells (1 block)): the
  NG [HP, HP] float32 gate blocks of W_hh^T and b_hh are loaded once before the time loop.
  Triton keeps these loop-invariant dot operands in shared memory and h, the gates and the step's
  inputs in registers. Compiled offline for sm_90 (Triton 3.9, 8 warps, num_stages=1;
  tests/triton_gpu_compile.py), the kernels use at their largest on-chip HP: the GRU's 52-84 KiB
  of shared memory (HP = 64) and no register spills, the LSTM's 68-100 KiB (HP = 64) with at
  most 68 bytes of spills, the Elman cells' 72-104 KiB (HP = 128) and no spills. One more
  doubling of the GRU (HP = 128: 192 KiB for W_hh alone) would not leave room for the rest.
  The backward kernels hold W_hh (not transposed) the same way and carry dL/dh [BLOCK_B, HP]
  (and the LSTM's dL/dc) in registers through the reverse loop.
* **split over cooperating programs** (above that, up to HP = MAX_HP = 1024 for every cell):
  each program holds a slice of the units; rnngen/ops/triton_split.py. (Until 2026-12-05 one
  program streamed W_hh from L2 in chunks each step instead, up to HP = 512; on an H200 that
  was slower than PyTorch's eager loop at H = 256.)
* Beyond MAX_HP the launchers fall back to the reference kernel with a warning.
"""

from __future__ import annotations

import warnings

import torch
import triton
import triton.language as tl

from .cells import CELLS

BLOCK_B = 16
ON_CHIP_FLOATS = 16384
MAX_HP = 1024
TILE_FLOATS = 8192  # the largest weight tile a kernel streams (the sampler's output head)
SUPPORTED_DTYPES = (torch.float32, torch.bfloat16, torch.float16)

# The kernels' CELL constexpr.
GRU = tl.constexpr(0)
LSTM = tl.constexpr(1)
RNN_TANH = tl.constexpr(2)
RNN_RELU = tl.constexpr(3)
CELL_IDS = {"gru": 0, "lstm": 1, "rnn_tanh": 2, "rnn_relu": 3}


def cell_args(cell: str) -> dict:
    """The constexprs that specialise a kernel for ``cell`` (see the module docstring)."""
    spec = CELLS[cell]
    return dict(CELL=CELL_IDS[cell], NG=spec.gates, HAS_C=spec.has_cell_state, DIRECT=cell == "gru")


def pow2(n: int) -> int:
    """n rounded up to a power of two, at least 16 (tl.dot's minimum dimension on a GPU)."""
    return max(16, triton.next_power_of_2(int(n)))


def hidden_tiles(H: int, gates: int = 3) -> dict | None:
    """The one-program configuration for hidden size H of a cell with ``gates`` gate blocks (the
    GRU's 3 by default): HP (padded H), num_warps and num_stages; None when the gate blocks of
    W_hh do not fit on chip (NG * HP^2 > ON_CHIP_FLOATS), where the launchers split W_hh over
    programs (rnngen/ops/triton_split.py). num_stages=1: nothing is streamed in the time loop."""
    HP = pow2(H)
    if gates * HP * HP > ON_CHIP_FLOATS:
        return None
    return dict(HP=HP, num_warps=4 if HP == 16 else 8, num_stages=1)


def _floor_pow2(n: int) -> int:
    return 1 << (max(int(n), 1).bit_length() - 1)


def too_large(H: int, kernel: str, cell: str = "gru") -> bool:
    """True (after one warning) when H exceeds what the Triton kernels hold (HP = MAX_HP, every
    cell); the launcher then runs the reference kernel instead."""
    if pow2(H) <= MAX_HP:
        return False
    warnings.warn(f"rnngen: hidden size {H} exceeds the Triton kernels' limit ({MAX_HP}); "
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
def relu(x):
    return tl.where(x < 0.0, 0.0, x)  # a NaN stays NaN, as torch.relu


# ---- the cells' steps (rnngen/ops/cells.py; csrc/cpu/cells.h) --------------------------------


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
def lstm_update(i_i, i_f, i_g, i_o, g_i, g_f, g_g, g_o, c):
    """(h', c'): c' = f * c + i * g, h' = o * tanh(c') (nn.LSTM's cell, gates i | f | g | o)."""
    i = sigmoid(i_i + g_i)
    f = sigmoid(i_f + g_f)
    g = tanh(i_g + g_g)
    o = sigmoid(i_o + g_o)
    c_new = f * c + i * g
    return o * tanh(c_new), c_new


@triton.jit
def lstm_step_backward(dh, dc, i_i, i_f, i_g, i_o, g_i, g_f, g_g, g_o, c_prev, c_new):
    """One LSTM step's backward from dL/dh' and dL/dc': the gate gradients (da_i, da_f, da_g,
    da_o), the input's and the hidden gates' alike, and dL/dc (c_new: the saved c')."""
    i = sigmoid(i_i + g_i)
    f = sigmoid(i_f + g_f)
    g = tanh(i_g + g_g)
    o = sigmoid(i_o + g_o)
    tc = tanh(c_new)
    d = dc + dh * o * (1.0 - tc * tc)  # dL/dc' in all
    return d * g * i * (1.0 - i), d * c_prev * f * (1.0 - f), d * i * (1.0 - g * g), dh * tc * o * (1.0 - o), d * f


@triton.jit
def elman_update(i, g, RELU: tl.constexpr):
    """h' = tanh(gi + gh) or relu(gi + gh) (nn.RNN's cell, one gate block)."""
    if RELU:
        return relu(i + g)
    else:
        return tanh(i + g)


@triton.jit
def elman_step_backward(dh, h_new, RELU: tl.constexpr):
    """The gate gradient (the input's and the hidden gate's alike) from dL/dh' and h'."""
    if RELU:
        return tl.where(h_new > 0.0, dh, 0.0)
    else:
        return dh * (1.0 - h_new * h_new)


@triton.jit
def cell_update(CELL: tl.constexpr, i, g, h, c):
    """One step of the cell on a chunk of units: (h', c') from the input gates i and the hidden
    gates g (4-tuples, gate k < the cell's NG) and the chunk's previous h and c (c: the LSTM's cell
    state; the other cells return the c they were given, a placeholder)."""
    if CELL == GRU:
        h_new = gru_update(i[0], i[1], i[2], g[0], g[1], g[2], h)
        c_new = c
    elif CELL == LSTM:
        h_new, c_new = lstm_update(i[0], i[1], i[2], i[3], g[0], g[1], g[2], g[3], c)
    else:
        h_new = elman_update(i[0], g[0], CELL == RNN_RELU)
        c_new = c
    return h_new, c_new


@triton.jit
def cell_step_backward(CELL: tl.constexpr, NG: tl.constexpr, dh, dc, gi_ptr, gh_ptr, gofs, hprev_ptr, hnew_ptr,
                       cprev_ptr, cnew_ptr, sofs, H, mask):
    """One step's backward on a chunk of units from dL/dh' (dh) and the LSTM's dL/dc' (dc),
    loading what the cell needs: its input and hidden gates at gi_ptr / gh_ptr + gofs (+ k * H
    for gate k), and the states h_{t-1}, h_t, c_{t-1}, c_t at hprev_ptr / hnew_ptr / cprev_ptr /
    cnew_ptr + sofs (pointers a cell does not read may be anything).

    Returns (da, dg, direct, dc): the input gate gradients and the hidden gate gradients
    (4-tuples, gate k < NG; the same values but for the GRU's gate n), the part of dL/dh that
    bypasses W_hh (the GRU's dh * z; a placeholder for cells without DIRECT) and dL/dc (the LSTM;
    a placeholder otherwise)."""
    if CELL == GRU:
        i = load_gates(gi_ptr, gofs, H, mask, NG)
        g = load_gates(gh_ptr, gofs, H, mask, NG)
        hp = tl.load(hprev_ptr + sofs, mask=mask, other=0.0).to(tl.float32)
        da_r, da_z, da_n, dg_n, direct = gru_step_backward(dh, i[0], i[1], i[2], g[0], g[1], g[2], hp)
        da = (da_r, da_z, da_n, da_r)
        dg = (da_r, da_z, dg_n, da_r)
        dc_prev = dc
    elif CELL == LSTM:
        i = load_gates(gi_ptr, gofs, H, mask, NG)
        g = load_gates(gh_ptr, gofs, H, mask, NG)
        cp = tl.load(cprev_ptr + sofs, mask=mask, other=0.0).to(tl.float32)
        cn = tl.load(cnew_ptr + sofs, mask=mask, other=0.0).to(tl.float32)
        da_i, da_f, da_g, da_o, dc_prev = lstm_step_backward(dh, dc, i[0], i[1], i[2], i[3], g[0], g[1], g[2], g[3],
                                                             cp, cn)
        da = (da_i, da_f, da_g, da_o)
        dg = da
        direct = dh
    else:
        hn = tl.load(hnew_ptr + sofs, mask=mask, other=0.0).to(tl.float32)
        d = elman_step_backward(dh, hn, CELL == RNN_RELU)
        da = (d, d, d, d)
        dg = da
        direct = dh
        dc_prev = dc
    return da, dg, direct, dc_prev


@triton.jit
def step_backward(CELL: tl.constexpr, NG: tl.constexpr, DIRECT: tl.constexpr, HAS_C: tl.constexpr, dh, dc, grad_ptr,
                  gradc_ptr, gi_ptr, gh_ptr, gofs, hprev_ptr, hnew_ptr, cprev_ptr, cnew_ptr, sofs, H, m):
    """A reverse loop's step on a block of units (offsets gofs into the gates, sofs into the
    states, mask m): adds the step's upstream dL/dh_t (and the LSTM's dL/dc_t) at grad_ptr /
    gradc_ptr + sofs to dh (dc), then :func:`cell_step_backward`. Returns (da, dg, direct, dc)
    with everything outside m zero (dg is da but for the GRU)."""
    dh += tl.load(grad_ptr + sofs, mask=m, other=0.0).to(tl.float32)
    if HAS_C:
        dc += tl.load(gradc_ptr + sofs, mask=m, other=0.0).to(tl.float32)
    da, dg, direct, dc = cell_step_backward(CELL, NG, dh, dc, gi_ptr, gh_ptr, gofs, hprev_ptr, hnew_ptr, cprev_ptr,
                                            cnew_ptr, sofs, H, m)
    da = where_gates(m, da, NG)
    dg = where_gates(m, dg, NG) if DIRECT else da
    if DIRECT:
        direct = tl.where(m, direct, 0.0)
    if HAS_C:
        dc = tl.where(m, dc, 0.0)
    return da, dg, direct, dc


# ---- gate blocks: 4-tuples, gate k < NG (the unused slots alias gate 0 and are never read) ----


@triton.jit
def load_gates(ptr, ofs, H, mask, NG: tl.constexpr):
    """The gate blocks of a [..., NG * H] tensor at ptr + ofs + k * H, as float32."""
    x0 = tl.load(ptr + ofs, mask=mask, other=0.0).to(tl.float32)
    x1 = x0
    x2 = x0
    x3 = x0
    if NG > 1:
        x1 = tl.load(ptr + ofs + H, mask=mask, other=0.0).to(tl.float32)
    if NG > 2:
        x2 = tl.load(ptr + ofs + 2 * H, mask=mask, other=0.0).to(tl.float32)
    if NG > 3:
        x3 = tl.load(ptr + ofs + 3 * H, mask=mask, other=0.0).to(tl.float32)
    return x0, x1, x2, x3


@triton.jit
def store_gates(ptr, ofs, H, mask, x, NG: tl.constexpr):
    """Store the gate blocks x at ptr + ofs + k * H in ptr's element type."""
    tl.store(ptr + ofs, cast_for(x[0], ptr), mask=mask)
    if NG > 1:
        tl.store(ptr + ofs + H, cast_for(x[1], ptr), mask=mask)
    if NG > 2:
        tl.store(ptr + ofs + 2 * H, cast_for(x[2], ptr), mask=mask)
    if NG > 3:
        tl.store(ptr + ofs + 3 * H, cast_for(x[3], ptr), mask=mask)


@triton.jit
def where_gates(mask, x, NG: tl.constexpr):
    """x with the elements outside mask set to 0."""
    x0 = tl.where(mask, x[0], 0.0)
    x1 = x0
    x2 = x0
    x3 = x0
    if NG > 1:
        x1 = tl.where(mask, x[1], 0.0)
    if NG > 2:
        x2 = tl.where(mask, x[2], 0.0)
    if NG > 3:
        x3 = tl.where(mask, x[3], 0.0)
    return x0, x1, x2, x3


@triton.jit
def add_gates(x, y, NG: tl.constexpr):
    """x + y gate by gate."""
    s0 = x[0] + y[0]
    s1 = s0
    s2 = s0
    s3 = s0
    if NG > 1:
        s1 = x[1] + y[1]
    if NG > 2:
        s2 = x[2] + y[2]
    if NG > 3:
        s3 = x[3] + y[3]
    return s0, s1, s2, s3


@triton.jit
def load_w_t(w_ptr, g, H, ld, k, j, mask):
    """The [len(k), len(j)] tile of gate g's block of W [NG*H, ld] transposed: W[g*H + j, k]."""
    return tl.load(w_ptr + (g * H + j)[None, :] * ld + k[:, None], mask=mask, other=0.0).to(tl.float32)


@triton.jit
def load_w(w_ptr, g, H, ld, j, k, mask):
    """The [len(j), len(k)] tile of gate g's block of W [NG*H, ld]: W[g*H + j, k]."""
    return tl.load(w_ptr + (g * H + j)[:, None] * ld + k[None, :], mask=mask, other=0.0).to(tl.float32)


@triton.jit
def load_gates_w_t(w_ptr, H, ld, k, j, mask, NG: tl.constexpr):
    """Every gate's [len(k), len(j)] tile of W [NG*H, ld] transposed (load_w_t)."""
    w0 = load_w_t(w_ptr, 0, H, ld, k, j, mask)
    w1 = w0
    w2 = w0
    w3 = w0
    if NG > 1:
        w1 = load_w_t(w_ptr, 1, H, ld, k, j, mask)
    if NG > 2:
        w2 = load_w_t(w_ptr, 2, H, ld, k, j, mask)
    if NG > 3:
        w3 = load_w_t(w_ptr, 3, H, ld, k, j, mask)
    return w0, w1, w2, w3


@triton.jit
def load_gates_w(w_ptr, H, ld, j, k, mask, NG: tl.constexpr):
    """Every gate's [len(j), len(k)] tile of W [NG*H, ld] (load_w)."""
    w0 = load_w(w_ptr, 0, H, ld, j, k, mask)
    w1 = w0
    w2 = w0
    w3 = w0
    if NG > 1:
        w1 = load_w(w_ptr, 1, H, ld, j, k, mask)
    if NG > 2:
        w2 = load_w(w_ptr, 2, H, ld, j, k, mask)
    if NG > 3:
        w3 = load_w(w_ptr, 3, H, ld, j, k, mask)
    return w0, w1, w2, w3


# How the kernels multiply (the DOT constexpr, :func:`dot_mode`).
DOT_IEEE, DOT_TF32, DOT_BF16, DOT_FP16, DOT_BF16_EMULATED, DOT_FP16_EMULATED = range(6)


def dot_mode(dtype: torch.dtype, device: torch.device, backward: bool = False) -> int:
    """The DOT constexpr for inputs of ``dtype`` on ``device``. Forward kernels: bfloat16 and
    float16 inputs on tensor cores (operands in that type, float32 accumulation; Triton's CPU
    interpreter gets the same rounding of the operands and a float32 product, as its own
    bfloat16 dot is not usable). Backward kernels keep float32 operands for them: gate gradients
    rounded to bfloat16 broke the accuracy rule (at most twice a PyTorch run's error in that
    dtype) at small sizes. float32 inputs: IEEE float32, or TF32 where torch's own switch allows
    it (``torch.backends.cuda.matmul.allow_tf32``)."""
    gpu = device.type != "cpu"
    if dtype == torch.bfloat16 and not backward:
        return DOT_BF16 if gpu else DOT_BF16_EMULATED
    if dtype == torch.float16 and not backward:
        return DOT_FP16 if gpu else DOT_FP16_EMULATED
    return DOT_TF32 if gpu and torch.backends.cuda.matmul.allow_tf32 else DOT_IEEE


@triton.jit
def mma(x, w, acc, DOT: tl.constexpr):
    """x @ w (+ acc) in float32, the operands as :func:`dot_mode` says."""
    if DOT == 2:
        return tl.dot(x.to(tl.bfloat16), w.to(tl.bfloat16), acc)
    elif DOT == 3:
        return tl.dot(x.to(tl.float16), w.to(tl.float16), acc)
    elif DOT == 4:  # (the interpreter's own float32 -> bfloat16 conversion truncates)
        return tl.dot(bf16_rounded(x), bf16_rounded(w), acc, input_precision="ieee")
    elif DOT == 5:
        return tl.dot(x.to(tl.float16).to(tl.float32), w.to(tl.float16).to(tl.float32), acc,
                      input_precision="ieee")
    elif DOT == 1:
        return tl.dot(x, w, acc, input_precision="tf32")
    else:
        return tl.dot(x, w, acc, input_precision="ieee")


@triton.jit
def dot_gates(x, w, b, NG: tl.constexpr, DOT: tl.constexpr):
    """x @ w_k + b_k for every gate k (b: bias vectors over the columns)."""
    y0 = mma(x, w[0], None, DOT) + b[0][None, :]
    y1 = y0
    y2 = y0
    y3 = y0
    if NG > 1:
        y1 = mma(x, w[1], None, DOT) + b[1][None, :]
    if NG > 2:
        y2 = mma(x, w[2], None, DOT) + b[2][None, :]
    if NG > 3:
        y3 = mma(x, w[3], None, DOT) + b[3][None, :]
    return y0, y1, y2, y3


@triton.jit
def dot_sum(d, w, NG: tl.constexpr, DOT: tl.constexpr):
    """sum over the gates k of d_k @ w_k, accumulated in gate order."""
    acc = mma(d[0], w[0], None, DOT)
    if NG > 1:
        acc = mma(d[1], w[1], acc, DOT)
    if NG > 2:
        acc = mma(d[2], w[2], acc, DOT)
    if NG > 3:
        acc = mma(d[3], w[3], acc, DOT)
    return acc


@triton.jit
def zero_gates(BLOCK_B: tl.constexpr, HP: tl.constexpr, NG: tl.constexpr):
    """[BLOCK_B, HP] float32 zeros for every gate (register accumulators)."""
    x0 = tl.zeros((BLOCK_B, HP), dtype=tl.float32)
    x1 = x0
    x2 = x0
    x3 = x0
    if NG > 1:
        x1 = tl.zeros((BLOCK_B, HP), dtype=tl.float32)
    if NG > 2:
        x2 = tl.zeros((BLOCK_B, HP), dtype=tl.float32)
    if NG > 3:
        x3 = tl.zeros((BLOCK_B, HP), dtype=tl.float32)
    return x0, x1, x2, x3


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
def cast_for(x, ptr):
    """float32 x converted to the element type of ``ptr``, rounded to nearest even.

    For bfloat16 the rounding is done on the float32 bits first (the result is then exactly
    representable): Triton's interpreter truncates float32 -> bfloat16 (a NaN with only low
    mantissa bits would become inf), a GPU rounds; this way both store the value PyTorch would
    (up to bfloat16 subnormals, which the interpreter flushes to zero)."""
    if ptr.dtype.element_ty == tl.bfloat16:
        return tl.where(x == x, bf16_rounded(x), float("nan")).to(tl.bfloat16)
    else:
        return x.to(ptr.dtype.element_ty)


@triton.jit
def bf16_rounded(x):
    """float32 x rounded to the nearest bfloat16 (ties to even), as float32, done on the bits (a NaN
    may come out as an infinity: callers that care keep NaN themselves)."""
    bits = x.to(tl.uint32, bitcast=True)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return bits.to(tl.float32, bitcast=True)
