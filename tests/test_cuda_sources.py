"""The CUDA sources without a GPU: every csrc/cuda/*.cu compiles with nvcc alone (no torch
headers) for sm_80 and sm_90 without register spills; the launchers' shared-memory plans
(csrc/cuda/plan.h) plus the kernels' static shared memory stay within each architecture's
per-block limit, for every cell (GRU, LSTM, Elman); the kernels' cell math (gru_device.cuh,
cells.cuh), compiled for the host, matches the reference (rnngen/ops/cells.py).
Skipped where nvcc (or a host C++ compiler) is absent."""

import functools
import pathlib
import re
import shutil
import subprocess

import pytest
import torch

from helpers import rel_error
from rnngen.ops import cells, gru_cell

ROOT = pathlib.Path(__file__).resolve().parents[1]
CUDA_DIR = ROOT / "csrc" / "cuda"
SOURCES = sorted(CUDA_DIR.glob("*.cu"))
HEADERS = sorted([*CUDA_DIR.glob("*.h"), *CUDA_DIR.glob("*.cuh")])
NVCC = shutil.which("nvcc")
CXX = shutil.which("c++") or shutil.which("g++")
SMEM_LIMIT = {"sm_80": 163 * 1024, "sm_90": 227 * 1024}  # per block, opt-in maximum
SMS = {"sm_80": 108, "sm_90": 132}  # A100, H100 SXM
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc not found")
needs_cxx = pytest.mark.skipif(CXX is None, reason="no host C++ compiler")


@functools.cache
def ptxas_log(source: pathlib.Path, arch: str, tmp: str) -> str:
    run = subprocess.run([NVCC, f"-arch={arch}", "-std=c++17", "-O3", "-Xptxas", "-v", "-c", str(source),
                          "-o", str(pathlib.Path(tmp) / f"{source.stem}-{arch}.o")],
                         capture_output=True, text=True, timeout=600)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log
    return log


def test_every_kernel_file_is_covered():
    assert {p.name for p in SOURCES} >= {"philox.cu", "sample.cu", "decode.cu", "scan.cu"}


@pytest.mark.parametrize("path", SOURCES + HEADERS, ids=lambda p: p.name)
def test_no_torch_headers(path):
    assert "torch" not in "".join(re.findall(r"#include\s*[<\"][^>\"]*[>\"]", path.read_text())), \
        f"{path.name} must compile without torch headers"


@needs_nvcc
@pytest.mark.parametrize("arch", sorted(SMEM_LIMIT))
@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.name)
def test_cu_compiles_cleanly(source, arch, tmp_path_factory):
    log = ptxas_log(source, arch, str(tmp_path_factory.getbasetemp()))
    spills = [int(n) for n in re.findall(r"(\d+) bytes spill (?:stores|loads)", log)]
    assert spills and not any(spills), f"register spills:\n{log}"
    stack = [int(n) for n in re.findall(r"(\d+) bytes stack frame", log)]
    assert not any(stack), f"local-memory stack frames:\n{log}"
    smem = [int(n) for n in re.findall(r"(\d+) bytes smem", log)]
    assert all(s <= SMEM_LIMIT[arch] for s in smem), log


PLAN_PROBE = r"""
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include "cuda/plan.h"
using namespace rnngen::cuda;
static std::string prefix;  // "" for the GRU, else the cell's name and "_"
static void show(const char* name, long B, long H, long C, long K, const KernelPlan& p) {
  std::printf("%s%s %ld %ld %ld %ld %d %d %d %lld\n", prefix.c_str(), name, B, H, C, K, p.rows, p.weights_on_chip,
              p.head_on_chip, static_cast<long long>(p.smem_bytes));
}
static void show(const char* name, long B, long H, long C, long K, const GridPlan& p) {
  std::printf("%s%s %ld %ld %ld %ld %d 1 %d %lld\n", prefix.c_str(), name, B, H, C, K, p.rows, p.blocks,
              static_cast<long long>(p.smem_bytes));
}
static void show(const char* name, long B, long H, long C, long K, const ClusterPlan& p, int head) {
  std::printf("%s%s %ld %ld %ld %ld %d 1 %d %lld\n", prefix.c_str(), name, B, H, C, K, p.rows, head,
              static_cast<long long>(p.smem_bytes));
}
int main(int argc, char** argv) {
  const long limit = std::atol(argv[1]);
  const int sms = std::atoi(argv[2]);
  const struct { const char* prefix; CellLayout layout; } cells[] = {
      {"", CellLayout{3, false, true}}, {"lstm_", CellLayout{4, true, false}}, {"rnn_", CellLayout{1, false, false}}};
  for (const auto& cell : cells) {
    prefix = cell.prefix;
    const CellLayout& l = cell.layout;
    for (long B : {1L, 7L, 8L, 16L, 64L, 131L, 256L, 1000L})
      for (long H : {1L, 3L, 16L, 64L, 96L, 100L, 128L, 256L, 512L, 1024L, 2048L, 4096L})
        for (long C : {1L, 3L})
          for (long K : {1L, 2L, 256L, 1024L}) {
            show("sample", B, H, C, K, plan_sample(B, H, C, K, sms, limit, l));
            show("sample_cluster", B, H, C, K, plan_sample_cluster(B, H, C, K, sms / kClusterBlocks, limit, l), 1);
            show("sample_grid", B, H, C, K, plan_sample_grid(B, H, C, K, sms, limit, l));
            if (K == 1) {
              show("decode_forward", B, H, C, 0, plan_decode_forward(B, H, C, sms, limit, l));
              show("decode_backward", B, H, C, 0, plan_decode_backward(B, H, C, sms, limit, l));
              show("decode_forward_cluster", B, H, C, 0,
                   plan_decode_forward_cluster(B, H, C, sms / kClusterBlocks, limit, l), 1);
              show("decode_backward_cluster", B, H, C, 0,
                   plan_decode_backward_cluster(B, H, C, sms / kClusterBlocks, limit, l), 0);
              show("decode_forward_grid", B, H, C, 0, plan_decode_forward_grid(B, H, C, sms, limit, l));
              show("decode_backward_grid", B, H, C, 0, plan_decode_backward_grid(B, H, C, sms, limit, l));
              if (C == 1) {
                show("scan_forward", B, H, 0, 0, plan_scan_forward(B, H, sms, limit, l));
                show("scan_backward", B, H, 0, 0, plan_scan_backward(B, H, sms, limit, l));
                show("scan_forward_cluster", B, H, 0, 0,
                     plan_scan_forward_cluster(B, H, sms / kClusterBlocks, limit, l), 0);
                show("scan_backward_cluster", B, H, 0, 0,
                     plan_scan_backward_cluster(B, H, sms / kClusterBlocks, limit, l), 0);
                show("scan_forward_grid", B, H, 0, 0, plan_scan_forward_grid(B, H, sms, limit, l));
                show("scan_backward_grid", B, H, 0, 0, plan_scan_backward_grid(B, H, sms, limit, l));
              }
            }
          }
  }
}
"""


@functools.cache
def plans(arch: str, tmp: str):
    src = pathlib.Path(tmp) / "plan_probe.cpp"
    exe = pathlib.Path(tmp) / f"plan_probe_{arch}"
    src.write_text(PLAN_PROBE)
    subprocess.run([CXX, "-std=c++17", "-O1", f"-I{ROOT / 'csrc'}", str(src), "-o", str(exe)], check=True, timeout=300)
    out = subprocess.run([str(exe), str(SMEM_LIMIT[arch]), str(SMS[arch])], check=True, capture_output=True,
                         text=True).stdout
    rows = []
    for line in out.splitlines():
        name, *nums = line.split()
        B, H, C, K, r, w, head, smem = map(int, nums)
        rows.append(dict(kernel=name, B=B, H=H, C=C, K=K, rows=r, weights=bool(w), head=bool(head), smem=smem,
                         blocks=head))  # (the grid plans print their blocks in the head column)
    return rows


@needs_nvcc
@needs_cxx
@pytest.mark.parametrize("arch", sorted(SMEM_LIMIT))
def test_shared_memory_plans_fit(arch, tmp_path_factory):
    tmp = str(tmp_path_factory.getbasetemp())
    static = max([0] + [int(n) for s in SOURCES for n in re.findall(r"(\d+) bytes smem", ptxas_log(s, arch, tmp))])
    for p in plans(arch, tmp):
        if p["kernel"].endswith("_grid"):  # one tile of B <= 16 rows, where it applies (else rows = 0)
            assert p["smem"] + static <= SMEM_LIMIT[arch], p
            assert p["blocks"] <= SMS[arch] and (p["rows"] == 0) == (p["smem"] == 0), p
            assert p["rows"] == 0 or p["rows"] >= p["B"], p
            continue
        if p["kernel"].endswith("_cluster"):  # sm_90 only, where it applies (else rows = 0)
            assert p["smem"] + static <= SMEM_LIMIT[arch], p
            continue
        assert p["rows"] in (1, 2, 4, 8), p  # every size up to H = 4096 runs fused
        assert p["smem"] + static <= SMEM_LIMIT[arch], p
        if p["H"] <= 512:  # rows per block only halve for very large states
            assert p["rows"] * SMS[arch] >= min(p["B"], 8 * SMS[arch]), p
    by = {(p["kernel"], p["B"], p["H"], p["C"], p["K"]): p for p in plans(arch, tmp)}
    # the other cells size by their gate count: the LSTM's W_hh^T (16 H^2 bytes) on chip at
    # H = 96 everywhere, not at H = 128; the Elman cells' (4 H^2 bytes) up to H = 128 on sm_80
    # (64 KB), H = 256 on neither (256 KB): then their cluster variants hold it on sm_90.
    assert by["lstm_scan_forward", 64, 96, 0, 0]["weights"]
    assert not by["lstm_scan_forward", 64, 128, 0, 0]["weights"]
    assert by["rnn_scan_forward", 64, 128, 0, 0]["weights"] and by["rnn_scan_backward", 64, 128, 0, 0]["weights"]
    assert not by["rnn_scan_forward", 64, 256, 0, 0]["weights"]
    assert by["lstm_sample", 64, 64, 1, 256]["weights"] and by["lstm_sample", 64, 64, 1, 256]["head"]
    if arch == "sm_90":
        for cell in ("lstm", "rnn"):
            assert by[f"{cell}_scan_forward_cluster", 64, 256, 0, 0]["rows"] >= 1
            assert by[f"{cell}_scan_backward_cluster", 64, 256, 0, 0]["rows"] >= 1
            assert by[f"{cell}_sample_cluster", 64, 256, 1, 256]["rows"] >= 1
    # the GRU's plans
    # the sizing rules of sample.cu: W_hh^T (12 H^2 bytes) on chip up to H = 96 everywhere,
    # H = 128 on sm_90 only, never at H = 256; the sample head (K = 256) beside it at H = 64.
    assert by["scan_forward", 64, 96, 0, 0]["weights"]
    assert by["scan_forward", 64, 128, 0, 0]["weights"] == (arch == "sm_90")
    assert by["sample", 64, 128, 1, 256]["weights"] == (arch == "sm_90")
    assert not by["sample", 64, 256, 1, 256]["weights"]
    assert by["sample", 64, 64, 1, 256]["weights"] and by["sample", 64, 64, 1, 256]["head"]
    # the sm_90 cluster variant holds H = 256 (1 or 3 channels of 256 values) split over 8 blocks
    if arch == "sm_90":
        for C in (1, 3):
            assert by["sample_cluster", 64, 256, C, 256]["rows"] == 4
    assert by["sample_cluster", 64, 100, 1, 256]["rows"] == 0  # H not a multiple of 32
    # the grid split: H = 512 and (on sm_90) 1024, for every cell, over 64 or more multiprocessors
    # (8 units a block at H = 1024); the backward's gathered dgh (G floats a row) limits it to 8 rows
    # at H = 1024 (the LSTM: 4). (sm_80's 108 multiprocessors and 163 KB: S divides H, so H = 1024 takes 16 units
    # a block, 196 KB of the GRU's W_hh^T: it does not fit there)
    for prefix in ("", "lstm_", "rnn_"):
        for H in (512, 1024) if arch == "sm_90" else (512,):
            B_bwd = 1 if (prefix, H) == ("lstm_", 1024) else 8  # (the LSTM's 4H floats of dgh a row: B <= 4)
            fwd, bwd = by[prefix + "scan_forward_grid", 16, H, 0, 0], by[prefix + "scan_backward_grid", B_bwd, H, 0, 0]
            assert fwd["rows"] == 16 and bwd["rows"] == B_bwd, (fwd, bwd)
            assert fwd["blocks"] >= 64 and bwd["blocks"] >= 64, (fwd, bwd)
        assert by[prefix + "scan_forward_grid", 64, 1024, 0, 0]["rows"] == 0  # more than one tile: not split
        for H in (512, 1024) if arch == "sm_90" else (512,):  # sampling at B = 1, 256 levels, 1 or 3 channels
            for C in (1, 3):
                assert by[prefix + "sample_grid", 1, H, C, 256]["rows"] == 1, by[prefix + "sample_grid", 1, H, C, 256]
                # the article's generator at B = 1 and 16 (forward), B = 1 (backward)
                assert by[prefix + "decode_forward_grid", 1, H, C, 0]["rows"] == 1
                assert by[prefix + "decode_forward_grid", 16, H, C, 0]["rows"] == 16
                assert by[prefix + "decode_backward_grid", 1, H, C, 0]["rows"] == 1
    if arch == "sm_90":  # scan forward and backward at H = 256 split the same way
        assert by["scan_forward_cluster", 64, 256, 0, 0]["rows"] == 4
        assert by["scan_backward_cluster", 64, 256, 0, 0]["rows"] == 4
        # and decode (the article's generator: h = 256, one or three outputs), every cell
        for prefix in ("", "lstm_", "rnn_"):
            for C in (1, 3):
                for kernel in ("decode_forward_cluster", "decode_backward_cluster"):
                    assert by[prefix + kernel, 1, 256, C, 0]["rows"] == 1
                    assert by[prefix + kernel, 64, 256, C, 0]["rows"] == 4
                    # B = 256 (16 clusters run at once): 16 rows a cluster where they fit, one wave
                    assert by[prefix + kernel, 256, 256, C, 0]["rows"] == (8 if (prefix, kernel) == (
                        "lstm_", "decode_backward_cluster") else 16)
                    assert not by[prefix + kernel.replace("_cluster", ""), 64, 256, C, 0]["weights"]


CELL_PROBE = r"""
#include <cstdio>
#include "cuda/gru_device.cuh"
using namespace rnngen::cuda;
int main() {
  float v[8];
  while (std::scanf("%f %f %f %f %f %f %f %f", v, v + 1, v + 2, v + 3, v + 4, v + 5, v + 6, v + 7) == 8) {
    const float h = gru_cell(v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
    const CellGrad g = gru_cell_backward(v[7], v[0], v[1], v[2], v[3], v[4], v[5], v[6]);
    std::printf("%.9g %.9g %.9g %.9g %.9g %.9g\n", h, g.da_r, g.da_z, g.da_n, g.da_n * g.r, g.direct);
  }
}
"""


@needs_cxx
def test_cell_math_matches_reference(tmp_path):
    """gru_cell / gru_cell_backward of gru_device.cuh (host build) against rnngen/ops/gru_cell.py."""
    (tmp_path / "probe.cpp").write_text(CELL_PROBE)
    exe = tmp_path / "probe"
    subprocess.run([CXX, "-std=c++17", "-O2", f"-I{ROOT / 'csrc'}", str(tmp_path / "probe.cpp"), "-o", str(exe)],
                   check=True, timeout=300)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(200, 8, generator=gen, dtype=torch.float64) * 3
    text = "\n".join(" ".join(f"{float(a):.9g}" for a in row.float()) for row in x)
    got = torch.tensor([[float(a) for a in line.split()] for line in
                        subprocess.run([str(exe)], input=text, capture_output=True, text=True, check=True)
                        .stdout.splitlines()], dtype=torch.float64)
    x = x.float().double()  # the values the probe read
    gi, gh, h, dh = x[:, 0:3], x[:, 3:6], x[:, 6:7], x[:, 7:8]
    r, z, n, gh_n = gru_cell.gates(gi, gh)
    dgi, dgh, direct = gru_cell.step_backward(dh, r, z, n, gh_n, h)
    want = torch.cat([(1 - z) * n + z * h, dgi, dgh[:, 2:3], direct], dim=1)
    assert got.shape == want.shape
    for name, g, w in zip(("h'", "da_r", "da_z", "da_n", "dgh_n", "dh*z"), got.T, want.T):
        assert rel_error(g, w) < 1e-6, name  # float32 math against the float64 truth


CELLS_PROBE = r"""
#include <cstdio>
#include "cuda/cells.cuh"
using namespace rnngen::cuda;
// per line: the cell's gi[G], gh[G], h, c, dh, dc; out: h', c', dgi[G], dgh[G], direct, dc_prev
template <class Cell>
static void run() {
  constexpr int G = Cell::kGates;
  float gi[G], gh[G], h, c, dh, dc;
  for (;;) {
    for (int q = 0; q < G; ++q) if (std::scanf("%f", gi + q) != 1) return;
    for (int q = 0; q < G; ++q) if (std::scanf("%f", gh + q) != 1) return;
    if (std::scanf("%f %f %f %f", &h, &c, &dh, &dc) != 4) return;
    float hn, cn = 0.0f, dgi[G], dgh[G], direct;
    Cell::forward(gi, gh, h, c, hn, cn);
    float dcv = Cell::kCellState ? dc : 0.0f;  // dL/dc: the LSTM's only
    Cell::backward(dh, dcv, gi, gh, h, c, hn, cn, dgi, dgh, direct);
    std::printf("%.9g %.9g", hn, cn);
    for (int q = 0; q < G; ++q) std::printf(" %.9g", dgi[q]);
    for (int q = 0; q < G; ++q) std::printf(" %.9g", dgh[q]);
    std::printf(" %.9g %.9g\n", direct, dcv);
  }
}
int main(int argc, char** argv) {
  const int which = argv[1][0] - '0';
  if (which == 0) run<GruCell>();
  if (which == 1) run<LstmCell>();
  if (which == 2) run<RnnTanhCell>();
  if (which == 3) run<RnnReluCell>();
}
"""


@needs_cxx
@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn_tanh", "rnn_relu"])
def test_cells_match_reference(cell, tmp_path):
    """Cell::forward / Cell::backward of cells.cuh (host build) against rnngen/ops/cells.py's step
    and step_backward (the GRU through the same entry points as the other cells)."""
    (tmp_path / "probe.cpp").write_text(CELLS_PROBE)
    exe = tmp_path / "probe"
    subprocess.run([CXX, "-std=c++17", "-O2", f"-I{ROOT / 'csrc'}", str(tmp_path / "probe.cpp"), "-o", str(exe)],
                   check=True, timeout=300)
    spec = cells.get(cell)
    G = spec.gates
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(200, 2 * G + 4, generator=gen, dtype=torch.float64) * 2
    text = "\n".join(" ".join(f"{float(a):.9g}" for a in row.float()) for row in x)
    which = ["gru", "lstm", "rnn_tanh", "rnn_relu"].index(cell)
    got = torch.tensor([[float(a) for a in line.split()] for line in
                        subprocess.run([str(exe), str(which)], input=text, capture_output=True, text=True,
                                       check=True).stdout.splitlines()], dtype=torch.float64)
    x = x.float().double()  # the values the probe read
    gi, gh, h, c, dh, dc = x[:, :G], x[:, G:2 * G], x[:, 2 * G:2 * G + 1], *x[:, 2 * G + 1:].T[:, :, None]
    h_new, c_new = spec.step(gi, gh, h, c if spec.has_cell_state else None)
    dgi, dgh, direct, dc_prev = spec.step_backward(dh, dc if spec.has_cell_state else None, gi, gh, h,
                                                   c if spec.has_cell_state else None, h_new, c_new)
    zero = torch.zeros_like(h)
    want = torch.cat([h_new, c_new if c_new is not None else zero, dgi, dgh, direct,
                      dc_prev if dc_prev is not None else zero], dim=1)
    assert got.shape == want.shape
    names = ["h'", "c'", *(f"dgi{q}" for q in range(G)), *(f"dgh{q}" for q in range(G)), "direct", "dc"]
    for name, g, w in zip(names, got.T, want.T):
        # float32 math against the float64 truth (relu's derivative: exact)
        assert rel_error(g, w) < 1e-6 or (w.norm() == 0 and g.norm() == 0), name


@needs_nvcc
def test_step_clock_probe_compiles(tmp_path):
    """bench/gpu/step_clocks.cu (run by bench/gpu/run.sh on a GPU) builds for sm_90 with the
    kernels' clock stamps on, without register spills."""
    run = subprocess.run([NVCC, "-arch=sm_90", "-std=c++17", "-O3", "-DRNNGEN_STEP_CLOCKS", f"-I{ROOT / 'csrc'}",
                          "-Xptxas", "-v", str(ROOT / "bench" / "gpu" / "step_clocks.cu"), "-o",
                          str(tmp_path / "step_clocks")], capture_output=True, text=True, timeout=600)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log
    assert "decode_forward_split_kernel" in log and "sample_split_kernel" in log
    spills = [int(n) for n in re.findall(r"(\d+) bytes spill (?:stores|loads)", log)]
    assert spills and not any(spills), log
