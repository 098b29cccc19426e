"""The fused CUDA kernels of csrc/cuda run on the CPU through a small emulation of CUDA threads,
barriers and warp shuffles (tests/cuda_emulation.h), compared with the reference.

This checks the kernels' logic where no GPU exists: indexing, padding, the batch tiles (a
partial last tile), barrier placement, the draw, with the recurrent weight in shared memory and
streamed from global memory. The host side is done here the way csrc/cuda/extension.cpp does it
(transposed, padded weights; the weight-gradient GEMMs after the reverse loops). Every cell runs:
the GRU on every shape below, the LSTM and the Elman cells (rnn_tanh, rnn_relu: the same kernels,
templates over the cell, csrc/cuda/cells.cuh) on two odd shapes each, against ATen's own cells
(tests/helpers.py truth_*_cell), forward and backward, the weights on chip and streamed, and
the sm_90 cluster variants (8 blocks run concurrently, their shared memories reachable from each
other). It does not check timing, the memory model (compute-sanitizer on a GPU does:
bench/gpu/run.sh), the launchers' device queries and cluster occupancy, nor nvcc's own
floating-point contractions (the host compiler's float math stands in). Skipped without a C++20
compiler or the CUDA headers.
"""

import functools
import os
import pathlib
import shutil
import subprocess

import pytest
import torch
import torch.nn.functional as F

from helpers import (CELL_GATES, assert_matches, gru_weights, rel_error, truth_decode, truth_decode_cell,
                     truth_sample, truth_sample_cell, truth_scan, truth_scan_cell)

ROOT = pathlib.Path(__file__).resolve().parents[1]
CXX = shutil.which("c++") or shutil.which("g++")
NVCC = shutil.which("nvcc")


def _cuda_include():
    for home in (os.environ.get("CUDA_HOME"), "/usr/local/cuda",
                 NVCC and str(pathlib.Path(os.path.realpath(NVCC)).parents[1])):
        if home and (pathlib.Path(home) / "include" / "cuda_runtime.h").is_file():
            return str(pathlib.Path(home) / "include")
    return None


CUDA_INCLUDE = _cuda_include()
pytestmark = pytest.mark.skipif(CXX is None or CUDA_INCLUDE is None, reason="needs a C++20 compiler and CUDA headers")
# the weights in shared memory (the plan for 2 multiprocessors and sm_90's 227 KB; every size
# here fits) or streamed from global memory (the path of large H, forced)
PATHS = {"on_chip": ["2", str(227 * 1024)], "streamed": ["2", str(227 * 1024), "streamed"],
         "cluster": ["2", str(227 * 1024)],  # the sm_90 variants: SMS here is the clusters that run at once
         "grid": ["8", str(227 * 1024)]}  # the grid-split variants: at most 8 blocks (SMS), all run at once
SUFFIX = {"cluster": "_cluster", "grid": "_grid"}


@functools.cache
def emulator(tmp: str) -> str:
    exe = pathlib.Path(tmp) / "cuda_emulation"
    subprocess.run([CXX, "-std=c++20", "-O1", "-pthread", f"-I{ROOT / 'csrc'}", f"-I{ROOT / 'tests'}",
                    f"-I{CUDA_INCLUDE}", str(ROOT / "tests" / "cuda_emulation_main.cpp"), "-o", str(exe)],
                   check=True, timeout=600)
    return str(exe)


def pad4(m: torch.Tensor) -> torch.Tensor:
    """extension.cpp's pad4: last dimension zero-padded to a multiple of 4, contiguous."""
    cols = m.shape[-1]
    return F.pad(m, (0, (-cols) % 4)).contiguous()


def run(kernel, path, tmp_path, dims, arrays, outputs):
    """Write dims and arrays, run the emulated kernel, read the outputs (name -> (dtype, shape))."""
    for name, a in arrays.items():
        a = a.detach().contiguous()
        a = a.to(torch.int64) if a.dtype in (torch.int64, torch.bool) else a.to(torch.float32)
        (tmp_path / name).write_bytes(a.numpy().tobytes())
    (tmp_path / "dims.txt").write_text(" ".join(str(d) for d in dims))
    log = subprocess.run([emulator(str(tmp_path.parent)), kernel, str(tmp_path), *PATHS[path]],
                         capture_output=True, text=True, timeout=600)
    assert log.returncode == 0, log.stdout + log.stderr
    plan = dict(kv.split("=") for kv in log.stdout.split())
    assert (plan["weights_on_chip"] == "1") == (path in ("on_chip", "cluster", "grid")), plan
    outs = {}
    for name, (dtype, shape) in outputs.items():
        outs[name] = torch.frombuffer(bytearray((tmp_path / name).read_bytes()), dtype=dtype).reshape(shape)
    return outs, plan


SHAPES = [(1, 3, 8), (3, 5, 16), (5, 7, 40), (17, 4, 12)]  # tiles of 1, 2, 4, 8 rows (B=5, 17: a partial last
# tile); H=40: padded columns
IDS = [f"B{b}-T{t}-H{h}" for b, t, h in SHAPES]


# H a multiple of 32; with 2 clusters at once (PATHS): B=5 two tiles of 4 rows, B=9 of 8 (the last one row),
# B=17 of 16 (kMaxClusterRows; the last one row)
CLUSTER_SHAPES = [(1, 3, 32), (5, 4, 64), (9, 2, 32), (17, 2, 32)]
CLUSTER_ROWS = {1: 1, 5: 4, 9: 8, 17: 16}
CLUSTER_IDS = [f"B{b}-T{t}-H{h}" for b, t, h in CLUSTER_SHAPES]


@pytest.mark.parametrize("B,T,H", CLUSTER_SHAPES, ids=CLUSTER_IDS)
def test_scan_cluster_emulated(B, T, H, tmp_path):
    """The sm_90 cluster variants of scan (8 blocks splitting W_hh, h and dgh exchanged between
    the blocks' shared memories)."""
    test_scan_forward_backward_emulated(B, T, H, "cluster", tmp_path)


GRID_SHAPES = [(1, 3, 32), (5, 4, 64), (9, 2, 32), (16, 3, 40)]  # B <= 16 (one tile); H=40: 5 blocks of 8 units
GRID_IDS = [f"B{b}-T{t}-H{h}" for b, t, h in GRID_SHAPES]


@pytest.mark.parametrize("B,T,H", GRID_SHAPES, ids=GRID_IDS)
def test_scan_grid_emulated(B, T, H, tmp_path):
    """The grid-split variants of scan (the whole grid of a cooperative launch splitting W_hh, h
    and dgh exchanged through a NaN-poisoned global buffer; what H >= 512 runs on a GPU)."""
    test_scan_forward_backward_emulated(B, T, H, "grid", tmp_path)


@pytest.mark.parametrize("path", ["on_chip", "streamed"])
@pytest.mark.parametrize("B,T,H", SHAPES, ids=IDS)
def test_scan_forward_backward_emulated(B, T, H, path, tmp_path):
    _, _, w_hh, b_hh = gru_weights(H, 1, torch.float32)
    gi, h0, g = torch.randn(B, T, 3 * H), torch.randn(B, H), torch.randn(B, T, H)
    dims = (B, T, H, 0, 0, 1.0, 0, 0, 0, 1)
    f32 = torch.float32
    suffix = SUFFIX.get(path, "")
    fwd, plan = run("scan_forward" + suffix, path, tmp_path, dims,
                    {"gi": gi, "h0": h0, "w_hh_t": pad4(w_hh.t()), "b_hh": pad4(b_hh)},
                    {"out": (f32, (B, T, H)), "gates": (f32, (B, T, 3 * H))})
    if path == "cluster":
        assert int(plan["rows"]) == CLUSTER_ROWS[B], plan
    g64 = [x.double() for x in (gi, h0, w_hh, b_hh)]
    assert_matches(fwd["out"], truth_scan(*g64), name="out")
    h_prev = torch.cat([h0[:, None], fwd["out"][:, :-1]], 1)
    assert_matches(fwd["gates"], F.linear(h_prev.double(), w_hh.double(), b_hh.double()), name="gates")

    bwd, _ = run("scan_backward" + suffix, path, tmp_path, dims,
                 {"grad_out": g, "gi": gi, "gh": fwd["gates"], "h0": h0, "out": fwd["out"], "w_hh": pad4(w_hh)},
                 {"d_gi": (f32, (B, T, 3 * H)), "d_gh": (f32, (B, T, 3 * H)), "d_h0": (f32, (B, H))})
    # the truth: autograd through the float64 loop
    x = [t.clone().requires_grad_() for t in g64]
    (truth_scan(*x) * g.double()).sum().backward()
    assert_matches(bwd["d_gi"], x[0].grad, name="d_gi")
    assert_matches(bwd["d_h0"], x[1].grad, name="d_h0")
    d_gh = bwd["d_gh"].reshape(B * T, 3 * H).double()
    # (the GEMMs after the loop, in float64 here: the kernels' float32 gradients are what is checked)
    assert_matches((d_gh.T @ h_prev.reshape(B * T, H).double()).float(), x[2].grad, name="d_w_hh")
    assert_matches(d_gh.sum(0).float(), x[3].grad, name="d_b_hh")


# ---- the tensor-core path of the forward cluster variants (16-row tiles, bf16/fp16 operands) ----

def _tf32(x):
    """x rounded to TF32 as cvt.rna.tf32.f32 does: to nearest, ties away from zero, 10 mantissa bits."""
    bits = x.float().view(torch.int32)
    return ((bits + 0x1000) & ~0x1FFF).view(torch.float32)


# operand code (launchers.h), rounding
OPERANDS = {"bf16": (1, lambda x: x.to(torch.bfloat16)), "fp16": (2, lambda x: x.to(torch.float16)),
            "tf32": (3, _tf32)}


def _gru_step_rounded(gi, h, w_hh, b_hh, rounded):
    """One GRU step whose hidden product has its operands (h and W_hh) rounded by ``rounded``,
    summed in float64: what mma_product computes, up to float32 accumulation."""
    gh = F.linear(rounded(h).double(), rounded(w_hh).double(), b_hh.double())
    i_r, i_z, i_n = gi.chunk(3, -1)
    g_r, g_z, g_n = gh.chunk(3, -1)
    r, z = torch.sigmoid(i_r + g_r), torch.sigmoid(i_z + g_z)
    n = torch.tanh(i_n + r * g_n)
    return (1 - z) * n + z * h, gh


@pytest.mark.parametrize("operand", sorted(OPERANDS))
@pytest.mark.parametrize("H", [32, 64])
def test_scan_forward_tensor_cores_emulated(operand, H, tmp_path):
    """scan forward's cluster variant on tensor cores (mma.sync m16n8k16 emulated lane by lane):
    B = 17 gives tiles of 16 rows (a full one and one of a single row, the rest zero); every row
    matches a float64 loop with the same operand rounding, and the float32 truth only to the
    operand type's precision (so the rounding did happen). H = 32: the GRU's 12 columns a block,
    a partial 8-column tile."""
    code, rounded = OPERANDS[operand]
    B, T = 17, 5
    _, _, w_hh, b_hh = gru_weights(H, 1, torch.float32)
    gi, h0 = torch.randn(B, T, 3 * H), torch.randn(B, H)
    (tmp_path / "operand.txt").write_text(str(code))
    fwd, plan = run("scan_forward_cluster", "cluster", tmp_path, (B, T, H, 0, 0, 1.0, 0, 0, 0, 1),
                    {"gi": gi, "h0": h0, "w_hh_t": pad4(w_hh.t()), "b_hh": pad4(b_hh)},
                    {"out": (torch.float32, (B, T, H)), "gates": (torch.float32, (B, T, 3 * H))})
    assert plan["rows"] == "16" and plan["tensor_cores"] == "1", plan
    h, outs, gates = h0.double(), [], []
    for t in range(T):
        h, gh = _gru_step_rounded(gi[:, t].double(), h, w_hh, b_hh, rounded)
        outs.append(h)
        gates.append(gh)
    assert rel_error(fwd["out"], torch.stack(outs, 1)) < 1e-4
    assert rel_error(fwd["gates"], torch.stack(gates, 1)) < 1e-4
    exact = truth_scan(*[x.double() for x in (gi, h0, w_hh, b_hh)])
    assert 1e-5 < rel_error(fwd["out"], exact) < 3e-2


@pytest.mark.parametrize("operand", sorted(OPERANDS))
@pytest.mark.parametrize("C", [1, 3])
def test_decode_forward_tensor_cores_emulated(operand, C, tmp_path):
    """decode forward's cluster variant on tensor cores: the hidden product on mma (operands
    rounded; TF32: m16n8k8), the outputs x_t and the input gates in float32, as a float64 loop
    doing the same."""
    code, rounded = OPERANDS[operand]
    B, T, H = 17, 4, 64
    w_ih, b_ih, w_hh, b_hh = gru_weights(H, C, torch.float32)
    w_out, b_out = torch.randn(C, H) / H**0.5, torch.randn(C)
    h0 = torch.randn(B, H)
    (tmp_path / "operand.txt").write_text(str(code))
    fwd, plan = run("decode_forward_cluster", "cluster", tmp_path, (B, T, H, C, 0, 1.0, 0, 0, 0, 0),
                    {"h0": h0, "w_ih": w_ih, "b_ih": b_ih, "w_hh_t": pad4(w_hh.t()), "b_hh": pad4(b_hh),
                     "w_out_t": pad4(w_out.t()), "b_out": pad4(b_out)},
                    {"out": (torch.float32, (B, T, C)), "hidden": (torch.float32, (B, T, H))})
    assert plan["rows"] == "16" and plan["tensor_cores"] == "1", plan
    h, outs, hs = h0.double(), [], []
    for _ in range(T):
        x = F.linear(h, w_out.double(), b_out.double())
        h, _ = _gru_step_rounded(F.linear(x, w_ih.double(), b_ih.double()), h, w_hh, b_hh, rounded)
        outs.append(x)
        hs.append(h)
    assert rel_error(fwd["out"], torch.stack(outs, 1)) < 1e-4
    assert rel_error(fwd["hidden"], torch.stack(hs, 1)) < 1e-4
    want_out, want_hidden = truth_decode(*[x.double() for x in (h0, w_ih, b_ih, w_hh, b_hh, w_out, b_out)], T)
    assert 1e-5 < rel_error(fwd["hidden"], want_hidden) < 3e-2


def test_float32_cluster_plan_keeps_float32_products(tmp_path):
    """Without an operand type (a float32 op) the 16-row tile stays on the float32 path."""
    B, T, H = 17, 3, 32
    _, _, w_hh, b_hh = gru_weights(H, 1, torch.float32)
    gi, h0 = torch.randn(B, T, 3 * H), torch.randn(B, H)
    fwd, plan = run("scan_forward_cluster", "cluster", tmp_path, (B, T, H, 0, 0, 1.0, 0, 0, 0, 1),
                    {"gi": gi, "h0": h0, "w_hh_t": pad4(w_hh.t()), "b_hh": pad4(b_hh)},
                    {"out": (torch.float32, (B, T, H))})
    assert plan["rows"] == "16" and plan["tensor_cores"] == "0", plan
    assert rel_error(fwd["out"], truth_scan(*[x.double() for x in (gi, h0, w_hh, b_hh)])) < 1e-5


@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("B,T,H", GRID_SHAPES, ids=GRID_IDS)
def test_decode_grid_emulated(B, T, H, C, tmp_path):
    """The grid-split variants of decode (every block of a cooperative launch: h, dgh and the dx
    shares exchanged through a NaN-poisoned global buffer)."""
    test_decode_forward_backward_emulated(B, T, H, C, "grid", tmp_path)


@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("B,T,H", CLUSTER_SHAPES, ids=CLUSTER_IDS)
def test_decode_cluster_emulated(B, T, H, C, tmp_path):
    """The sm_90 cluster variants of decode (8 blocks splitting W_hh; every block forms the same
    outputs x_t from the gathered h; the blocks' shares of dx_t summed in rank order)."""
    test_decode_forward_backward_emulated(B, T, H, C, "cluster", tmp_path)


@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("path", ["on_chip", "streamed"])
@pytest.mark.parametrize("B,T,H", SHAPES, ids=IDS)
def test_decode_forward_backward_emulated(B, T, H, C, path, tmp_path):
    w_ih, b_ih, w_hh, b_hh = gru_weights(H, C, torch.float32)
    w_out, b_out = torch.randn(C, H) / H**0.5, torch.randn(C)
    h0, g_out, g_hid = torch.randn(B, H), torch.randn(B, T, C), torch.randn(B, T, H)
    dims = (B, T, H, C, 0, 1.0, 0, 0, 0, 0)
    f32 = torch.float32
    suffix = SUFFIX.get(path, "")
    fwd, plan = run("decode_forward" + suffix, path, tmp_path, dims,
                    {"h0": h0, "w_ih": w_ih, "b_ih": b_ih, "w_hh_t": pad4(w_hh.t()), "b_hh": pad4(b_hh),
                     "w_out_t": pad4(w_out.t()), "b_out": pad4(b_out)},
                    {"out": (f32, (B, T, C)), "hidden": (f32, (B, T, H))})
    if path == "cluster":
        assert int(plan["rows"]) == CLUSTER_ROWS[B], plan
    p64 = [x.double() for x in (h0, w_ih, b_ih, w_hh, b_hh, w_out, b_out)]
    want_out, want_hidden = truth_decode(*p64, T)
    assert_matches(fwd["out"], want_out, name="out")
    assert_matches(fwd["hidden"], want_hidden, name="hidden")

    out, hidden = fwd["out"], fwd["hidden"]
    h_prev = torch.cat([h0[:, None], hidden[:, :-1]], 1)
    gi = F.linear(out, w_ih, b_ih)  # as the binding: every step's gates by two GEMMs
    gh = F.linear(h_prev, w_hh, b_hh)
    bwd, _ = run("decode_backward" + suffix, path, tmp_path, dims,
                 {"grad_out": g_out, "grad_hidden": g_hid, "gi": gi, "gh": gh, "h0": h0, "hidden": hidden,
                  "w_ih": w_ih, "w_hh": pad4(w_hh), "w_out": w_out},
                 {"d_gi": (f32, (B, T, 3 * H)), "d_gh": (f32, (B, T, 3 * H)), "d_x": (f32, (B, T, C)),
                  "d_h0": (f32, (B, H))})
    x = [t.clone().requires_grad_() for t in p64]
    o, hs = truth_decode(*x, T)
    ((o * g_out.double()).sum() + (hs * g_hid.double()).sum()).backward()
    d_gi = bwd["d_gi"].reshape(B * T, 3 * H).double()
    d_gh = bwd["d_gh"].reshape(B * T, 3 * H).double()
    d_x = bwd["d_x"].reshape(B * T, C).double()
    hp2, out2 = h_prev.reshape(B * T, H).double(), out.reshape(B * T, C).double()
    got = (bwd["d_h0"], d_gi.T @ out2, d_gi.sum(0), d_gh.T @ hp2, d_gh.sum(0), d_x.T @ hp2, d_x.sum(0))
    for name, gr, t in zip(("h0", "w_ih", "b_ih", "w_hh", "b_hh", "w_out", "b_out"), got, x):
        assert_matches(gr.float(), t.grad, name=f"d {name}")


@pytest.mark.parametrize("K", [1, 7, 70])
@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("path", ["on_chip", "streamed"])
@pytest.mark.parametrize("B,T,H", SHAPES, ids=IDS)
def test_sample_emulated(B, T, H, C, K, path, tmp_path):
    """The same values as the truth for the same seed (row offset, known values, channels)."""
    _, _, w_hh, b_hh = gru_weights(H, 1, torch.float32)
    h0, emb, cond = torch.randn(B, H), torch.randn(C, K, 3 * H), torch.randn(B, 3 * H) * 0.1
    w_out, b_out = torch.randn(C, K, H) * 2, torch.randn(C, K)
    steps = T * C
    known = torch.full((B, steps), -1)
    known[:, steps // 2] = K - 1
    seed, row_offset, temperature = 2**63 + 12345, 3, 0.7
    values, plan = run("sample", path, tmp_path, (B, steps, H, C, K, temperature, seed, row_offset, 1, 0),
                       {"h0": h0, "emb": emb, "cond": cond, "w_hh_t": pad4(w_hh.t()), "b_hh": pad4(b_hh),
                        "w_out_t": pad4(w_out.transpose(1, 2)), "b_out": pad4(b_out), "known": known},
                       {"values": (torch.int64, (B, steps))})
    got = values["values"]
    want = truth_sample(h0, emb, cond, w_hh, b_hh, w_out, b_out, steps, temperature, seed, row_offset, known)
    assert (got[:, steps // 2] == K - 1).all()
    assert torch.equal(got, want)


@pytest.mark.parametrize("path", ["on_chip", "streamed"])
def test_sample_emulated_nan_and_cold(path, tmp_path):
    """NaN logits draw 0; a temperature near zero gives the argmax (no inf - inf)."""
    B, T, H, K = 3, 4, 8, 5
    _, _, w_hh, b_hh = gru_weights(H, 1, torch.float32)
    base = {"h0": torch.randn(B, H), "emb": torch.randn(1, K, 3 * H), "cond": torch.zeros(B, 3 * H),
            "w_hh_t": pad4(w_hh.t()), "b_hh": pad4(b_hh), "w_out_t": pad4(torch.zeros(1, H, K))}
    b_out = torch.tensor([[0.0, 1.0, 3.0, 2.0, -1.0]])
    cold, _ = run("sample", path, tmp_path, (B, T, H, 1, K, 2e-38, 5, 0, 0, 0), {**base, "b_out": pad4(b_out)},
                  {"values": (torch.int64, (B, T))})
    assert (cold["values"] == 2).all()
    nan, _ = run("sample", path, tmp_path, (B, T, H, 1, K, 1.0, 5, 0, 0, 0),
                 {**base, "b_out": pad4(torch.full((1, K), float("nan")))}, {"values": (torch.int64, (B, T))})
    assert (nan["values"] == 0).all()


@pytest.mark.parametrize("K", [7, 70])
@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("B,T,H", [(1, 3, 32), (5, 4, 64), (17, 2, 32)], ids=["B1-T3-H32", "B5-T4-H64", "B17-T2-H32"])
def test_sample_cluster_emulated(B, T, H, C, K, tmp_path):
    """The sm_90 cluster variant (8 blocks splitting W_hh and the head, logits and h exchanged
    between the blocks' shared memories): the same values as the truth. K = 70 leaves the last
    blocks of the cluster without logit columns; B = 17 runs a cluster of 16 rows and one of 1."""
    _, _, w_hh, b_hh = gru_weights(H, 1, torch.float32)
    h0, emb, cond = torch.randn(B, H), torch.randn(C, K, 3 * H), torch.randn(B, 3 * H) * 0.1
    w_out, b_out = torch.randn(C, K, H) * 2, torch.randn(C, K)
    steps = T * C
    known = torch.full((B, steps), -1)
    known[:, -1] = 0
    seed, row_offset, temperature = 77, 2, 1.3
    arrays = {"h0": h0, "emb": emb, "cond": cond, "w_hh_t": pad4(w_hh.t()), "b_hh": pad4(b_hh),
              "w_out_t": pad4(w_out.transpose(1, 2)), "b_out": pad4(b_out), "known": known}
    dims = (B, steps, H, C, K, temperature, seed, row_offset, 1, 0)
    for name, a in arrays.items():
        (tmp_path / name).write_bytes(a.contiguous().numpy().tobytes())
    (tmp_path / "dims.txt").write_text(" ".join(str(d) for d in dims))
    log = subprocess.run([emulator(str(tmp_path.parent)), "sample_cluster", str(tmp_path), "2", str(227 * 1024)],
                         capture_output=True, text=True, timeout=600)
    assert log.returncode == 0, log.stdout + log.stderr
    got = torch.frombuffer(bytearray((tmp_path / "values").read_bytes()), dtype=torch.int64).reshape(B, steps)
    want = truth_sample(h0, emb, cond, w_hh, b_hh, w_out, b_out, steps, temperature, seed, row_offset, known)
    assert torch.equal(got, want)


@pytest.mark.parametrize("K", [7, 70])
@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("B,T,H", [(1, 3, 32), (5, 4, 64), (16, 2, 40)], ids=["B1-T3-H32", "B5-T4-H64", "B16-T2-H40"])
def test_sample_grid_emulated(B, T, H, C, K, tmp_path):
    """The grid-split variant of sample (every block of a cooperative launch: W_hh and the head's
    columns split over up to 8 blocks here, gates, logits and h exchanged through a NaN-poisoned
    global buffer): the same values as the truth. K = 7: most blocks hold no logit column."""
    _, _, w_hh, b_hh = gru_weights(H, 1, torch.float32)
    h0, emb, cond = torch.randn(B, H), torch.randn(C, K, 3 * H), torch.randn(B, 3 * H) * 0.1
    w_out, b_out = torch.randn(C, K, H) * 2, torch.randn(C, K)
    steps = T * C
    known = torch.full((B, steps), -1)
    known[:, -1] = 0
    seed, row_offset, temperature = 78, 1, 1.1
    values, plan = run("sample_grid", "grid", tmp_path, (B, steps, H, C, K, temperature, seed, row_offset, 1, 0),
                       {"h0": h0, "emb": emb, "cond": cond, "w_hh_t": pad4(w_hh.t()), "b_hh": pad4(b_hh),
                        "w_out_t": pad4(w_out.transpose(1, 2)), "b_out": pad4(b_out), "known": known},
                       {"values": (torch.int64, (B, steps))})
    assert int(plan["blocks"]) > 1, plan
    want = truth_sample(h0, emb, cond, w_hh, b_hh, w_out, b_out, steps, temperature, seed, row_offset, known)
    assert torch.equal(values["values"], want)


# ---- the other cells: the LSTM (4 gate blocks, a cell state) and the Elman cells (1 block) ----

CELLS = sorted(CELL_GATES)
# odd sizes: H=40 (padded columns: 4H, H not multiples of 4 * 8 either), B=3 (a partial tile of
# 2 rows); B=17: tiles of 8 rows, a single-row last tile
CELL_SHAPES = [(3, 7, 40), (17, 3, 12)]
CELL_IDS = [f"B{b}-T{t}-H{h}" for b, t, h in CELL_SHAPES]


def cell_weights(cell, H, in_size):
    """(w_ih [G, in], b_ih, w_hh [G, H], b_hh), G = gates * H, with nn.RNN/LSTM's scale."""
    G = CELL_GATES[cell] * H
    bound = 1 / H**0.5
    return tuple((torch.rand(*shape) * 2 - 1) * bound for shape in ((G, in_size), (G,), (G, H), (G,)))


def _cell_scan(cell, B, T, H, path, tmp_path, zero_grad_c=False):
    G, lstm = CELL_GATES[cell] * H, cell == "lstm"
    _, _, w_hh, b_hh = cell_weights(cell, H, 1)
    gi, h0, g = torch.randn(B, T, G), torch.randn(B, H), torch.randn(B, T, H)
    c0, gc = (torch.randn(B, H), torch.randn(B, T, H)) if lstm else (None, None)
    if zero_grad_c:
        gc = torch.zeros(B, T, H)
    dims = (B, T, H, 0, 0, 1.0, 0, 0, 0, 1)
    f32 = torch.float32
    suffix = SUFFIX.get(path, "")
    state = {"c0": c0} if lstm else {}
    fwd, _ = run(f"{cell}_scan_forward{suffix}", path, tmp_path, dims,
                 {"gi": gi, "h0": h0, **state, "w_hh_t": pad4(w_hh.t()), "b_hh": pad4(b_hh)},
                 {"out": (f32, (B, T, H)), "gates": (f32, (B, T, G)), **({"c_out": (f32, (B, T, H))} if lstm else {})})
    g64 = [x.double() if x is not None else None for x in (gi, h0, c0, w_hh, b_hh)]
    want_h, want_c = truth_scan_cell(cell, *g64)
    assert_matches(fwd["out"], want_h, name="out")
    if lstm:
        assert_matches(fwd["c_out"], want_c, name="c_out")
    h_prev = torch.cat([h0[:, None], fwd["out"][:, :-1]], 1)
    assert_matches(fwd["gates"], F.linear(h_prev.double(), w_hh.double(), b_hh.double()), name="gates")

    # the Elman cells' backward reads neither gi nor gh (not written: the emulator would not load them)
    inputs = {"grad_out": g, "h0": h0, "out": fwd["out"], "w_hh": pad4(w_hh)}
    if cell == "lstm":
        inputs.update(gi=gi, gh=fwd["gates"], c0=c0, c_out=fwd["c_out"])
        if not zero_grad_c:  # else absent: read as zero (the binding's empty grad_c)
            inputs["grad_c"] = gc
    bwd, _ = run(f"{cell}_scan_backward{suffix}", path, tmp_path, dims, inputs,
                 {"d_gi": (f32, (B, T, G)), "d_h0": (f32, (B, H)), **({"d_c0": (f32, (B, H))} if lstm else {})})
    assert not (tmp_path / "d_gh").exists() or cell == "gru"
    x = [t.clone().requires_grad_() if t is not None else None for t in g64]
    hs, cs = truth_scan_cell(cell, *x)
    loss = (hs * g.double()).sum() + ((cs * gc.double()).sum() if lstm else 0)
    loss.backward()
    assert_matches(bwd["d_gi"], x[0].grad, name="d_gi")
    assert_matches(bwd["d_h0"], x[1].grad, name="d_h0")
    if lstm:
        assert_matches(bwd["d_c0"], x[2].grad, name="d_c0")
    d_gh = bwd["d_gi"].reshape(B * T, G).double()  # the hidden-gate gradients are d_gi (binding: one GEMM)
    assert_matches((d_gh.T @ h_prev.reshape(B * T, H).double()).float(), x[3].grad, name="d_w_hh")
    assert_matches(d_gh.sum(0).float(), x[4].grad, name="d_b_hh")


@pytest.mark.parametrize("path", ["on_chip", "streamed"])
@pytest.mark.parametrize("B,T,H", CELL_SHAPES, ids=CELL_IDS)
@pytest.mark.parametrize("cell", CELLS)
def test_cell_scan_emulated(cell, B, T, H, path, tmp_path):
    """scan forward and backward of the LSTM and the Elman cells (LSTM, B=17 streamed: no upstream
    gradient of the cell states, read as zero)."""
    _cell_scan(cell, B, T, H, path, tmp_path, zero_grad_c=(cell == "lstm" and B == 17 and path == "streamed"))


@pytest.mark.parametrize("B,T,H", [(3, 3, 32), (16, 2, 40)], ids=["B3-T3-H32", "B16-T2-H40"])
@pytest.mark.parametrize("cell", CELLS)
def test_cell_scan_grid_emulated(cell, B, T, H, tmp_path):
    """The grid-split variants of scan for the other cells (the LSTM: grad_c read as zero where
    absent, as in the one-block test)."""
    _cell_scan(cell, B, T, H, "grid", tmp_path)


@pytest.mark.parametrize("B,T,H", [(3, 3, 32), (17, 2, 32)], ids=["B3-T3-H32", "B17-T2-H32"])
@pytest.mark.parametrize("cell", CELLS)
def test_cell_scan_cluster_emulated(cell, B, T, H, tmp_path):
    """The sm_90 cluster variants of scan for the other cells (each block keeps all gates of its
    units; the LSTM's cell state of its units stays in the block)."""
    _cell_scan(cell, B, T, H, "cluster", tmp_path)


@pytest.mark.parametrize("path", ["on_chip", "streamed"])
@pytest.mark.parametrize("B,T,H,C", [(3, 7, 40, 3), (17, 3, 12, 1)], ids=["B3-T7-H40-C3", "B17-T3-H12-C1"])
@pytest.mark.parametrize("cell", CELLS)
def test_cell_decode_emulated(cell, B, T, H, C, path, tmp_path):
    _cell_decode(cell, B, T, H, C, path, tmp_path)


@pytest.mark.parametrize("B,T,H,C", [(3, 3, 32, 3), (16, 2, 40, 1)], ids=["B3-T3-H32-C3", "B16-T2-H40-C1"])
@pytest.mark.parametrize("cell", CELLS)
def test_cell_decode_grid_emulated(cell, B, T, H, C, tmp_path):
    """The grid-split variants of decode for the other cells."""
    _cell_decode(cell, B, T, H, C, "grid", tmp_path)


@pytest.mark.parametrize("B,T,H,C", [(3, 3, 32, 3), (17, 2, 32, 1)], ids=["B3-T3-H32-C3", "B17-T2-H32-C1"])
@pytest.mark.parametrize("cell", CELLS)
def test_cell_decode_cluster_emulated(cell, B, T, H, C, tmp_path):
    """The sm_90 cluster variants of decode for the other cells (the LSTM's cell state of its
    units stays in the block; the Elman cells' and the LSTM's dgi is their dgh)."""
    _cell_decode(cell, B, T, H, C, "cluster", tmp_path)


def _cell_decode(cell, B, T, H, C, path, tmp_path):
    G, lstm = CELL_GATES[cell] * H, cell == "lstm"
    suffix = SUFFIX.get(path, "")
    w_ih, b_ih, w_hh, b_hh = cell_weights(cell, H, C)
    w_out, b_out = torch.randn(C, H) / H**0.5, torch.randn(C)
    h0, g_out, g_hid = torch.randn(B, H), torch.randn(B, T, C), torch.randn(B, T, H)
    c0, g_c = (torch.randn(B, H), torch.randn(B, T, H)) if lstm else (None, None)
    dims = (B, T, H, C, 0, 1.0, 0, 0, 0, 0)
    f32 = torch.float32
    fwd, _ = run(f"{cell}_decode_forward{suffix}", path, tmp_path, dims,
                 {"h0": h0, **({"c0": c0} if lstm else {}), "w_ih": w_ih, "b_ih": b_ih, "w_hh_t": pad4(w_hh.t()),
                  "b_hh": pad4(b_hh), "w_out_t": pad4(w_out.t()), "b_out": pad4(b_out)},
                 {"out": (f32, (B, T, C)), "hidden": (f32, (B, T, H)),
                  **({"c_hidden": (f32, (B, T, H))} if lstm else {})})
    p64 = [x.double() if x is not None else None for x in (h0, c0, w_ih, b_ih, w_hh, b_hh, w_out, b_out)]
    want_out, want_hidden, want_c = truth_decode_cell(cell, *p64, T)
    assert_matches(fwd["out"], want_out, name="out")
    assert_matches(fwd["hidden"], want_hidden, name="hidden")
    if lstm:
        assert_matches(fwd["c_hidden"], want_c, name="c_hidden")

    out, hidden = fwd["out"], fwd["hidden"]
    h_prev = torch.cat([h0[:, None], hidden[:, :-1]], 1)
    inputs = {"grad_out": g_out, "grad_hidden": g_hid, "h0": h0, "hidden": hidden, "w_ih": w_ih,
              "w_hh": pad4(w_hh), "w_out": w_out}
    if lstm:  # as the binding: every step's gates by two GEMMs (the Elman cells' backward needs none)
        inputs.update(gi=F.linear(out, w_ih, b_ih), gh=F.linear(h_prev, w_hh, b_hh), grad_c=g_c, c0=c0,
                      c_hidden=fwd["c_hidden"])
    bwd, _ = run(f"{cell}_decode_backward{suffix}", path, tmp_path, dims, inputs,
                 {"d_gi": (f32, (B, T, G)), "d_x": (f32, (B, T, C)), "d_h0": (f32, (B, H)),
                  **({"d_c0": (f32, (B, H))} if lstm else {})})
    x = [t.clone().requires_grad_() if t is not None else None for t in p64]
    o, hs, cs = truth_decode_cell(cell, *x, T)
    ((o * g_out.double()).sum() + (hs * g_hid.double()).sum() + ((cs * g_c.double()).sum() if lstm else 0)).backward()
    d_gi = bwd["d_gi"].reshape(B * T, G).double()  # the hidden-gate gradients too
    d_x = bwd["d_x"].reshape(B * T, C).double()
    hp2, out2 = h_prev.reshape(B * T, H).double(), out.reshape(B * T, C).double()
    got = {"h0": bwd["d_h0"], "c0": bwd.get("d_c0"), "w_ih": d_gi.T @ out2, "b_ih": d_gi.sum(0),
           "w_hh": d_gi.T @ hp2, "b_hh": d_gi.sum(0), "w_out": d_x.T @ hp2, "b_out": d_x.sum(0)}
    for (name, gr), t in zip(got.items(), x):
        if t is not None:
            assert_matches(gr.float(), t.grad, name=f"d {name}")


def _cell_sample(cell, B, T, H, C, K, path, tmp_path):
    G, lstm = CELL_GATES[cell] * H, cell == "lstm"
    _, _, w_hh, b_hh = cell_weights(cell, H, 1)
    h0, emb, cond = torch.randn(B, H), torch.randn(C, K, G), torch.randn(B, G) * 0.1
    c0 = torch.randn(B, H) if lstm else None
    w_out, b_out = torch.randn(C, K, H) * 2, torch.randn(C, K)
    steps = T * C
    known = torch.full((B, steps), -1)
    known[:, steps // 2] = K - 1
    seed, row_offset, temperature = 2**63 + 999, 5, 0.8
    kernel = f"{cell}_sample" + SUFFIX.get(path, "")
    values, _ = run(kernel, path, tmp_path, (B, steps, H, C, K, temperature, seed, row_offset, 1, 0),
                    {"h0": h0, **({"c0": c0} if lstm else {}), "emb": emb, "cond": cond, "w_hh_t": pad4(w_hh.t()),
                     "b_hh": pad4(b_hh), "w_out_t": pad4(w_out.transpose(1, 2)), "b_out": pad4(b_out),
                     "known": known},
                    {"values": (torch.int64, (B, steps))})
    got = values["values"]
    want = truth_sample_cell(cell, h0, c0, emb, cond, w_hh, b_hh, w_out, b_out, steps, temperature, seed,
                             known=known, row_offset=row_offset)
    assert (got[:, steps // 2] == K - 1).all()
    assert torch.equal(got, want)


@pytest.mark.parametrize("path", ["on_chip", "streamed"])
@pytest.mark.parametrize("B,T,H,C,K", [(3, 7, 40, 3, 70), (17, 3, 12, 1, 7)],
                         ids=["B3-T7-H40-C3-K70", "B17-T3-H12-C1-K7"])
@pytest.mark.parametrize("cell", CELLS)
def test_cell_sample_emulated(cell, B, T, H, C, K, path, tmp_path):
    """The same values as ATen's cells for the same seed (the Philox contract: row offset, known
    values, channels)."""
    _cell_sample(cell, B, T, H, C, K, path, tmp_path)


@pytest.mark.parametrize("cell", CELLS)
def test_cell_sample_grid_emulated(cell, tmp_path):
    """The grid-split variant of sample for the other cells (B = 5, H = 40: 5 blocks of 8 units)."""
    _cell_sample(cell, 5, 2, 40, 3, 70, "grid", tmp_path)


@pytest.mark.parametrize("cell", CELLS)
def test_cell_sample_cluster_emulated(cell, tmp_path):
    """The sm_90 cluster variant of sample for the other cells (K = 70: the last blocks of the
    cluster hold no logit columns; B = 5: a partial tile)."""
    _cell_sample(cell, 5, 2, 32, 3, 70, "cluster", tmp_path)


# ---- lagged inputs of sample: the values lags[j] steps back feed the next input through table j ----

def _lag_sample(cell, B, T, H, C, K, lags, with_known, path, tmp_path):
    """The emulated kernel (one block, or the cluster variant for path "cluster") with lag tables
    against the truth; the lags must change the values (else the check would prove nothing)."""
    G, lstm = (3 if cell == "gru" else CELL_GATES[cell]) * H, cell == "lstm"
    _, _, w_hh, b_hh = gru_weights(H, 1, torch.float32) if cell == "gru" else cell_weights(cell, H, 1)
    h0, emb, cond = torch.randn(B, H), torch.randn(C, K, G), torch.randn(B, G) * 0.1
    c0 = torch.randn(B, H) if lstm else None
    lag_emb = torch.randn(len(lags), C, K, G)
    w_out, b_out = torch.randn(C, K, H) * 2, torch.randn(C, K)
    steps = T * C
    known = None
    if with_known:
        known = torch.full((B, steps), -1)
        known[:, 1] = K - 1  # a forced value is a lagged input too
        known[0, -1] = 0
    seed, row_offset, temperature = 4242, 1, 0.9
    kernel = ("" if cell == "gru" else f"{cell}_") + "sample" + SUFFIX.get(path, "")
    arrays = {"h0": h0, **({"c0": c0} if lstm else {}), "emb": emb, "cond": cond, "w_hh_t": pad4(w_hh.t()),
              "b_hh": pad4(b_hh), "w_out_t": pad4(w_out.transpose(1, 2)), "b_out": pad4(b_out),
              "lags": torch.tensor(lags, dtype=torch.int64), "lag_emb": lag_emb,
              **({"known": known} if with_known else {})}
    values, _ = run(kernel, path, tmp_path, (B, steps, H, C, K, temperature, seed, row_offset, int(with_known), 0),
                    arrays, {"values": (torch.int64, (B, steps))})
    got = values["values"]
    args = (cell, h0, c0, emb, cond, w_hh, b_hh, w_out, b_out, steps, temperature, seed)
    want = truth_sample_cell(*args, known=known, row_offset=row_offset, lag_emb=lag_emb, lags=lags)
    if with_known:
        assert (got[:, 1] == K - 1).all() and got[0, -1] == 0
    assert torch.equal(got, want)
    if any(lag < steps for lag in lags):
        assert not torch.equal(want, truth_sample_cell(*args, known=known, row_offset=row_offset))


# (B, T, H, C, K, lags, known): lag 1, lags of T * C - 1 (the last input only), T * C and
# longer (never), out of order; C = 1 and 2; all 16 lags (lanes 0-15 of the drawing warp); no
# lags as the binding passes them (an empty table); partial tiles, padded columns
LAG_CASES = [(3, 7, 40, 1, 7, (1, 3, 6, 50), True), (17, 5, 12, 2, 70, (2, 1, 5, 9, 10, 100), False),
             (5, 10, 16, 2, 7, tuple(range(16, 0, -1)), True), (2, 3, 8, 2, 5, (), True)]
LAG_IDS = ["B3-C1-lags1,3,6,50", "B17-C2-lags2,1,5,9,10,100", "B5-C2-16lags", "B2-C2-nolags"]


@pytest.mark.parametrize("path", ["on_chip", "streamed"])
@pytest.mark.parametrize("B,T,H,C,K,lags,known", LAG_CASES, ids=LAG_IDS)
def test_sample_lags_emulated(B, T, H, C, K, lags, known, path, tmp_path):
    """The GRU's one-block kernel with lagged inputs: the same values as the truth."""
    _lag_sample("gru", B, T, H, C, K, lags, known, path, tmp_path)


@pytest.mark.parametrize("path", ["on_chip", "streamed"])
@pytest.mark.parametrize("B,T,H,C,K,lags,known",
                         [(3, 7, 40, 2, 70, (1, 4, 30), True), (17, 3, 12, 1, 7, (2, 1), False)],
                         ids=["B3-C2-lags1,4,30", "B17-C1-lags2,1"])
@pytest.mark.parametrize("cell", CELLS)
def test_cell_sample_lags_emulated(cell, B, T, H, C, K, lags, known, path, tmp_path):
    """The other cells' one-block kernel with lagged inputs (the LSTM: 4 gate blocks of each
    table row; the Elman cells: 1)."""
    _lag_sample(cell, B, T, H, C, K, lags, known, path, tmp_path)


@pytest.mark.parametrize("B,T,H,C,K,lags,known",
                         [(5, 4, 32, 2, 70, (1, 3, 100), True), (17, 3, 32, 1, 7, (2, 1, 5), False)],
                         ids=["B5-C2-lags1,3,100", "B17-C1-lags2,1,5"])
@pytest.mark.parametrize("cell", ["gru", *CELLS])
def test_sample_lags_cluster_emulated(cell, B, T, H, C, K, lags, known, tmp_path):
    """The sm_90 cluster variant with lagged inputs: every block of the cluster forms the same
    inputs (the earlier values from block 0's writes, the latest from its own draw)."""
    _lag_sample(cell, B, T, H, C, K, lags, known, "cluster", tmp_path)


@pytest.mark.parametrize("B,T,H,C,K,lags,known", [(5, 4, 40, 2, 70, (1, 3, 100), True)], ids=["B5-C2-lags1,3,100"])
@pytest.mark.parametrize("cell", ["gru", *CELLS])
def test_sample_lags_grid_emulated(cell, B, T, H, C, K, lags, known, tmp_path):
    """The grid-split variant with lagged inputs (block 0's writes of the values read by every block)."""
    _lag_sample(cell, B, T, H, C, K, lags, known, "grid", tmp_path)


@pytest.mark.parametrize("lags", [tuple(range(1, 18)), (0,), (2, -1)], ids=["17lags", "lag0", "negative"])
def test_sample_lags_rejected_emulated(lags, tmp_path):
    """The launcher's check of the lags (shared by the emulation): more than 16, or a lag < 1,
    launches nothing."""
    B, T, H, K = 2, 3, 8, 5
    _, _, w_hh, b_hh = gru_weights(H, 1, torch.float32)
    arrays = {"h0": torch.randn(B, H), "emb": torch.randn(1, K, 3 * H), "cond": torch.zeros(B, 3 * H),
              "w_hh_t": pad4(w_hh.t()), "b_hh": pad4(b_hh), "w_out_t": pad4(torch.randn(1, H, K)),
              "b_out": pad4(torch.randn(1, K)), "lags": torch.tensor(lags, dtype=torch.int64),
              "lag_emb": torch.randn(len(lags), 1, K, 3 * H)}
    for name, a in arrays.items():
        (tmp_path / name).write_bytes(a.contiguous().numpy().tobytes())
    (tmp_path / "dims.txt").write_text(" ".join(str(d) for d in (B, T, H, 1, K, 1.0, 0, 0, 0, 0)))
    log = subprocess.run([emulator(str(tmp_path.parent)), "sample", str(tmp_path), *PATHS["on_chip"]],
                         capture_output=True, text=True, timeout=600)
    assert log.returncode == 4, log.stdout + log.stderr
