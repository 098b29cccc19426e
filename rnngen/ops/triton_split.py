"""W_hh split over cooperating programs: the Triton kernels' path for hidden sizes whose W_hh does
not fit one program (triton_common.py's on-chip rule: the GRU beyond HP = 64).

Why
---
One program per 16-row batch tile runs on one SM. Holding all of W_hh it is limited to HP = 64
(the GRU); streaming W_hh from L2 every step it re-reads 3 H^2 floats a step through one SM's
load path, which made the kernels slower than PyTorch's own eager loop at H = 256 on an H200.

Design
------
A grid (NSPLIT, batch tiles). Program (p, tile) owns the hidden units [p * BLOCK_N, (p + 1) *
BLOCK_N) of its batch tile: it keeps those units' rows of every gate block of W_hh (an
[HP, BLOCK_N] slice per gate) on chip for all T steps (``ON_CHIP``) or, when even a slice is too
large (HP = 1024 for the GRU), streams it in [BLOCK_K, BLOCK_N] chunks, which spreads the L2
traffic over NSPLIT SMs. Its units' cell state (the LSTM's c) and their part of the step's
gradients never leave it. What the programs need of each other is exchanged through a small
float32 buffer in global memory, double-buffered by step parity: the forward's h_t (every
program needs all of h_t for its gates' dot), the backward's gate gradients dgh_t (every program
needs all of them for its units of dL/dh_{t-1} = dgh_t @ W_hh). Loads from the exchange buffer
bypass L1 (``cache_modifier=".cg"``): L1 is not coherent between SMs.

The step barrier (:func:`step_barrier`)
---------------------------------------
After writing its part of step t, every program of a batch tile adds 1 to the tile's counter
(release, GPU scope) and spins until the counter reaches NSPLIT * (t + 1) (acquire loads).
Correct with two buffers: a program reads slot t % 2 in step t and writes slot (t + 1) % 2; it
can write slot t % 2 again only in step t + 1, after the barrier of step t, which no program
passes before every program of the tile has arrived there, i.e. finished its reads of step t. The
counter only grows, so a fast program cannot pass a later barrier on an earlier count. The
``tl.debug_barrier()`` before the release orders the stores of all the program's threads before
its one thread's atomic; the one after the spin makes every thread wait for the acquire.
(The spin on a scalar atomic costs a block barrier per iteration, Triton issue 7125; it spins
only while another SM is still finishing its step.)

The spin only terminates if every program of the grid is resident at once. The launcher asks
for that through Triton's ``launch_cooperative_grid`` (CUDA's cooperative launch: the driver
refuses a grid that cannot be co-resident instead of running it); a refused grid, the CPU
interpreter (which runs the programs one after another) and any device where the cooperative
launch fails run the same kernel once per step instead (``COOP=False``: no barrier, the kernel
boundary orders the steps, and the state a program keeps between steps goes through the same
buffers). Both run one and the same step body, so the interpreter checks the GPU's arithmetic,
its exchange and its buffer indexing; only the spin itself runs on a GPU alone (and, with one
program per tile, in the interpreter: tests/test_triton.py).
"""

from __future__ import annotations

import warnings

import torch
import triton
import triton.language as tl

from .triton_common import MAX_HP, _floor_pow2, dot_gates, dot_sum, mma, load_gates_w, load_gates_w_t, pow2, zero_gates

# One program's slice of W_hh held on chip: at most 96 KiB of float32 (the rest of an H100
# block's 227 KiB holds the exchanged h or gate gradients, the dot operands and the spills).
SLICE_FLOATS = 24576
MAX_BLOCK_N = 64
BLOCK_K = 128  # the contraction chunk of a streamed slice


def split_tiles(H: int, gates: int) -> dict | None:
    """The split for hidden size H of a cell with ``gates`` gate blocks, or None beyond MAX_HP.

    BLOCK_N (units per program) is the largest power of two from 16 to 64, at most HP / 2, whose
    slice of all gates (gates * HP * BLOCK_N floats) fits SLICE_FLOATS; the slice then stays on
    chip. When even 16 units do not fit, they are streamed in BLOCK_K chunks (ON_CHIP False).
    NSPLIT = HP / BLOCK_N programs share a batch tile."""
    HP = pow2(H)
    if HP > MAX_HP:
        return None
    block_n = min(MAX_BLOCK_N, HP // 2, _floor_pow2(SLICE_FLOATS // (gates * HP)))
    on_chip = block_n >= 16
    block_n = max(16, block_n)
    return dict(HP=HP, BLOCK_N=block_n, NSPLIT=HP // block_n, BLOCK_K=min(BLOCK_K, HP), ON_CHIP=on_chip,
                num_warps=8, num_stages=1)


# Kernels (with their launch constants) whose cooperative launch a device refused: they run a
# launch per step from then on, with one warning.
_REFUSED: set = set()


def run_steps(kernel, grid: tuple[int, int], steps: int, args: tuple, device: torch.device, **consts) -> None:
    """Run ``steps`` steps of a split kernel over ``grid`` = (NSPLIT, batch tiles).

    The kernel takes, after ``args``: the tiles' barrier counters, the first step and the end
    step, and the constexpr COOP. On a GPU it runs all steps in one cooperative launch, its
    programs meeting at :func:`step_barrier` after each step; where that launch is refused, and
    in Triton's CPU interpreter, it runs one launch per step (COOP=False)."""
    if steps <= 0:
        return
    sync = torch.zeros(grid[1], dtype=torch.int32, device=device)
    if grid[0] == 1:  # one program per tile waits for nobody at its barrier: one launch anywhere
        kernel[grid](*args, sync, 0, steps, COOP=True, **consts)
        return
    key = (kernel.fn.__name__, grid, tuple(sorted(consts.items())), str(device))
    if device.type != "cpu" and key not in _REFUSED:  # on CPU tensors Triton runs its interpreter
        try:
            kernel[grid](*args, sync, 0, steps, COOP=True, launch_cooperative_grid=True, **consts)
            return
        except RuntimeError as err:  # "too many blocks in cooperative launch", or no cooperative launch at all
            _REFUSED.add(key)
            warnings.warn(f"rnngen: {kernel.fn.__name__} cannot run its {grid[0] * grid[1]} programs at once on this "
                          f"device ({err}); it runs one launch per step instead", RuntimeWarning, stacklevel=3)
    for s in range(steps):
        kernel[grid](*args, sync, s, s + 1, COOP=False, **consts)


@triton.jit
def unit_block(B, H, BLOCK_B: tl.constexpr, HP: tl.constexpr, BLOCK_N: tl.constexpr):
    """This program's place in the split grid: (p, tile, BP, rows, rmask, j, jmask, m, own): its
    split index and batch tile, the padded batch BP, its rows and units j with their masks, the
    mask m of both, and the offsets own of its block in an exchange slot (rows of HP floats)."""
    p = tl.program_id(0)
    tile = tl.program_id(1)
    rows = (tile * BLOCK_B + tl.arange(0, BLOCK_B)).to(tl.int64)
    rmask = rows < B
    j = p * BLOCK_N + tl.arange(0, BLOCK_N)
    jmask = j < H
    return (p, tile, tl.num_programs(1) * BLOCK_B, rows, rmask, j, jmask, rmask[:, None] & jmask[None, :],
            rows[:, None] * HP + j[None, :])


@triton.jit
def step_barrier(sync_ptr, target):
    """Wait until the tile's counter reaches ``target`` after adding this program's 1 (the
    module docstring says why this is correct and when it may be used)."""
    tl.debug_barrier()
    tl.atomic_add(sync_ptr, 1, sem="release", scope="gpu")
    seen = tl.atomic_add(sync_ptr, 0, sem="acquire", scope="gpu")
    while seen < target:
        seen = tl.atomic_add(sync_ptr, 0, sem="acquire", scope="gpu")
    tl.debug_barrier()


@triton.jit
def dot_gates_acc(acc, x, w, NG: tl.constexpr, DOT: tl.constexpr):
    """acc_k + x @ w_k for every gate k."""
    y0 = mma(x, w[0], acc[0], DOT)
    y1 = y0
    y2 = y0
    y3 = y0
    if NG > 1:
        y1 = mma(x, w[1], acc[1], DOT)
    if NG > 2:
        y2 = mma(x, w[2], acc[2], DOT)
    if NG > 3:
        y3 = mma(x, w[3], acc[3], DOT)
    return y0, y1, y2, y3


@triton.jit
def add_bias(x, b, NG: tl.constexpr):
    """x_k + b_k for every gate k (b: bias vectors over the columns)."""
    y0 = x[0] + b[0][None, :]
    y1 = y0
    y2 = y0
    y3 = y0
    if NG > 1:
        y1 = x[1] + b[1][None, :]
    if NG > 2:
        y2 = x[2] + b[2][None, :]
    if NG > 3:
        y3 = x[3] + b[3][None, :]
    return y0, y1, y2, y3


@triton.jit
def hidden_gates(hin_ptr, rows, w, b, w_ptr, H, j, jmask, BLOCK_B: tl.constexpr, HP: tl.constexpr,
                 BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, ON_CHIP: tl.constexpr, NG: tl.constexpr,
                 DOT: tl.constexpr):
    """The hidden gates h @ W_g^T + b_g of the units j for every gate g, h [BLOCK_B, HP] read from
    the exchange slot at hin_ptr (rows of HP floats; padded rows and units hold 0). On chip: one
    dot per gate with the slices w; streamed: BLOCK_K units of h and of the slices at a time."""
    if ON_CHIP:
        cols = tl.arange(0, HP)
        h = tl.load(hin_ptr + rows[:, None] * HP + cols[None, :], cache_modifier=".cg")
        return dot_gates(h, w, b, NG, DOT)
    else:
        acc = zero_gates(BLOCK_B, BLOCK_N, NG)
        for kk in range(HP // BLOCK_K):
            k = kk * BLOCK_K + tl.arange(0, BLOCK_K)
            hk = tl.load(hin_ptr + rows[:, None] * HP + k[None, :], cache_modifier=".cg")
            wk = load_gates_w_t(w_ptr, H, H, k, j, (k < H)[:, None] & jmask[None, :], NG)
            acc = dot_gates_acc(acc, hk, wk, NG, DOT)
        return add_bias(acc, b, NG)  # after the dot, as on chip


@triton.jit
def exchanged_gates(ein_ptr, rows, cols, HP: tl.constexpr, NG: tl.constexpr, NE: tl.constexpr):
    """The gate blocks [BLOCK_B, len(cols)] of the exchanged gate gradients at ein_ptr (rows of NE
    floats, gate g at columns g * HP + cols)."""
    base = ein_ptr + rows[:, None] * NE + cols[None, :]
    e0 = tl.load(base, cache_modifier=".cg")
    e1 = e0
    e2 = e0
    e3 = e0
    if NG > 1:
        e1 = tl.load(base + HP, cache_modifier=".cg")
    if NG > 2:
        e2 = tl.load(base + 2 * HP, cache_modifier=".cg")
    if NG > 3:
        e3 = tl.load(base + 3 * HP, cache_modifier=".cg")
    return e0, e1, e2, e3


@triton.jit
def hidden_grad(ein_ptr, rows, w, w_ptr, H, j, jmask, BLOCK_B: tl.constexpr, HP: tl.constexpr,
                BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, ON_CHIP: tl.constexpr, NG: tl.constexpr,
                NE: tl.constexpr, DOT: tl.constexpr):
    """sum_g dgh_g @ W_g[:, j]: the units j of the part of dL/dh_{t-1} that passes through W_hh,
    from the gate gradients dgh at ein_ptr (rows of NE floats, gate g at columns g * HP + ...),
    gate by gate in gate order."""
    if ON_CHIP:
        return dot_sum(exchanged_gates(ein_ptr, rows, tl.arange(0, HP), HP, NG, NE), w, NG, DOT)
    acc = tl.zeros((BLOCK_B, BLOCK_N), dtype=tl.float32)
    for kk in range(HP // BLOCK_K):
        i = kk * BLOCK_K + tl.arange(0, BLOCK_K)
        wk = load_gates_w(w_ptr, H, H, i, j, (i < H)[:, None] & jmask[None, :], NG)
        acc += dot_sum(exchanged_gates(ein_ptr, rows, i, HP, NG, NE), wk, NG, DOT)
    return acc
