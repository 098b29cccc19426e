"""What only the GPU backends (cuda, triton) have, on CUDA tensors against the CPU truth.

The shared suites (test_ops.py, test_cells.py) run the GPU backends too when a GPU is there
(helpers.TARGETS: "cuda-gpu", "triton-gpu", with the GPU kernels' shapes added: batch tiles
with a partial last one, W_hh on chip and streamed from L2). Here: the GPU draw over K = 1, 7
and 256 values, the Philox stream's distribution, torch.compile, a 12,288-step image, tanh's
accuracy near 0 and the sm_90 cluster paths (every cell). Skipped without a GPU. bench/gpu/run.sh runs this
file with the shared suites' GPU targets; RNNGEN_GPU_BACKENDS (comma-separated) narrows the
backends.
"""

import pytest
import torch

import rnngen
from helpers import (CELL_GATES, GPU_TARGETS, assert_same_draws, check_all, gru_weights, supported, target,
                     truth_decode, truth_decode_cell, truth_sample, truth_sample_cell, truth_scan, truth_scan_cell)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

GPU_BACKENDS = [target(t)[0] for t in GPU_TARGETS]
SHAPES = [(1, 1, 8), (3, 63, 40), (17, 5, 24), (300, 4, 16), (5, 33, 128), (9, 20, 256)]
IDS = [f"B{b}-T{t}-H{h}" for b, t, h in SHAPES]
DEV = "cuda"


def _grads(fn, inputs, dout):
    inputs = [x.detach().requires_grad_() for x in inputs]
    outs = fn(*inputs)
    outs = outs if isinstance(outs, tuple) else (outs,)
    loss = sum((o.float() * d.float()).sum() for o, d in zip(outs, dout))
    return outs, torch.autograd.grad(loss, inputs)


def _sample_inputs(B, H, K, C=1):
    _, _, w_hh, b_hh = gru_weights(H, 1, torch.float32)
    return dict(h0=torch.randn(B, H), emb=torch.randn(C, K, 3 * H), w_hh=w_hh, b_hh=b_hh,
                w_out=torch.randn(C, K, H) * 2, b_out=torch.randn(C, K), cond=torch.randn(B, 3 * H) * 0.1)


@pytest.mark.parametrize("K", [1, 7, 256])
@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("B,T,H", SHAPES, ids=IDS)
@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_sample_gpu(backend, B, T, H, C, K):
    """The same values as the CPU truth for the same seed, known values kept and fed on; a row may
    part ways only after a draw within rounding of a CDF boundary (float32 sums in another order)."""
    if not supported(backend, "sample", torch.float32):
        pytest.skip(f"{backend} has no float32 sample")
    a = _sample_inputs(B, H, K, C)
    steps = T * C
    known = torch.full((B, steps), -1)
    known[:, steps // 2] = K - 1
    args = [a[k] for k in ("h0", "emb", "w_hh", "b_hh", "w_out", "b_out")]
    got = rnngen.sample(*[x.to(DEV) for x in args], steps, cond=a["cond"].to(DEV), temperature=0.9, seed=4321,
                        known=known.to(DEV), backend=backend)
    want = truth_sample(a["h0"], a["emb"], a["cond"], a["w_hh"], a["b_hh"], a["w_out"], a["b_out"], steps, 0.9, 4321,
                        known=known)
    assert got.device.type == "cuda" and got.dtype == torch.int64 and got.shape == (B, steps)
    got = got.cpu()
    assert (got[:, steps // 2] == K - 1).all()
    first_difference = [int((row != ref).nonzero()[0]) if (row != ref).any() else steps for row, ref in zip(got, want)]
    assert sum(d == steps for d in first_difference) >= 0.95 * B, first_difference


@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_sample_gpu_distribution_row_offset_and_nan(backend):
    B, T, H, K = 256, 50, 4, 4
    p = torch.tensor([0.1, 0.2, 0.3, 0.4])
    base = (torch.zeros(B, H), torch.randn(K, 3 * H), torch.randn(3 * H, H), None, torch.zeros(K, H), p.log())
    args = [x.to(DEV) if x is not None else None for x in base] + [T]
    values = rnngen.sample(*args, seed=11, backend=backend)
    freq = torch.bincount(values.flatten().cpu(), minlength=K) / (B * T)
    assert (freq - p).abs().max() < 0.02  # 12800 draws
    assert torch.equal(rnngen.sample(*args, seed=11, row_offset=0, backend=backend)[5:],
                       rnngen.sample(args[0][5:], *args[1:], seed=11, row_offset=5, backend=backend))
    assert (rnngen.sample(*args, temperature=2e-38, seed=1, backend=backend) == K - 1).all()
    nan_args = list(args)
    nan_args[5] = torch.full((K,), float("nan"), device=DEV)
    assert (rnngen.sample(*nan_args, seed=1, backend=backend) == 0).all()


@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_gpu_empty_batch_and_compile(backend):
    H = 16
    _, _, w_hh, b_hh = gru_weights(H, 1, torch.float32)
    w_hh, b_hh = w_hh.to(DEV), b_hh.to(DEV)
    assert rnngen.scan(torch.randn(0, 5, 3 * H, device=DEV), None, w_hh, b_hh, backend=backend).shape == (0, 5, H)
    gi = torch.randn(4, 9, 3 * H, device=DEV)
    eager = rnngen.scan(gi, None, w_hh, b_hh, backend=backend)
    compiled = torch.compile(lambda g: rnngen.scan(g, None, w_hh, b_hh, backend=backend), fullgraph=True)(gi)
    torch.testing.assert_close(compiled, eager)


@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_long_sequences_gpu(backend):
    """A 64x64 RGB image, 12,288 steps in one launch (tests/test_long_sequences.py runs the
    Triton kernels on an eighth of it in the CPU interpreter): the scan's states and gradients stay
    within 1e-5 (absolute) and 1e-4 (relative) of float64, and sampling gives the reference's
    image with the given half kept."""
    B, H, T, C, K = 2, 32, 64 * 64 * 3, 3, 16
    _, _, w_hh, b_hh = gru_weights(H, 1)
    gi, h0 = torch.randn(B, T, 3 * H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    dout = torch.linspace(-1, 1, T, dtype=torch.float64)[None, :, None].expand(B, T, H)
    (want,), want_grads = _grads(lambda *a: rnngen.scan(*a, backend="reference"), [gi, h0, w_hh, b_hh], [dout])
    (got,), grads = _grads(lambda *a: rnngen.scan(*a, backend=backend),
                           [x.to(DEV, torch.float32) for x in (gi, h0, w_hh, b_hh)], [dout.to(DEV, torch.float32)])
    assert (got.cpu().double() - want).abs().max() < 1e-5
    for name, g, w in zip(("gi", "h0", "w_hh", "b_hh"), grads, want_grads):
        assert float((g.cpu().double() - w).norm() / w.norm()) < 1e-4, name
    w32 = w_hh.float()
    args = (torch.randn(B, H), torch.randn(C, K, 3 * H), w32, b_hh.float(), torch.randn(C, K, H), torch.randn(C, K), T)
    known = torch.full((B, T), -1)
    known[:, : T // 2] = torch.randint(0, K, (B, T // 2))
    values = rnngen.sample(*(a.to(DEV) if isinstance(a, torch.Tensor) else a for a in args), known=known.to(DEV),
                           seed=2026, backend=backend).cpu()
    assert torch.equal(values[:, : T // 2], known[:, : T // 2])
    assert torch.equal(values, rnngen.sample(*args, known=known, seed=2026, backend="reference"))


@pytest.mark.parametrize("backend", GPU_BACKENDS)
def test_tanh_keeps_its_relative_accuracy_near_zero_gpu(backend):
    """test_ops.py's check on a GPU (the triton kernels build tanh from exp, with a polynomial
    near 0; the cuda kernels call tanhf): with z ~ 0 and h0 = 0 the new state is tanh(x) of the
    candidate gate's input x, each element checked relative to itself, |x| from 1e-7 to 10."""
    H = 16
    x = torch.logspace(-7, 1, 400) * torch.tensor([1.0, -1.0]).repeat(200)
    gi = torch.zeros(400 // H, 1, 3 * H)
    gi[:, 0, H:2 * H] = -30.0  # z = sigmoid(-30)
    gi[:, 0, 2 * H:] = x.view(-1, H)
    h = rnngen.scan(gi.to(DEV), None, torch.zeros(3 * H, H, device=DEV), torch.zeros(3 * H, device=DEV),
                    backend=backend)[:, 0].cpu().flatten()
    want = torch.tanh(x.double())
    worst = ((h.double() - want) / want).abs().max().item()
    assert worst < 1e-6, f"relative error {worst:.3g}"


@pytest.mark.skipif("cuda" not in GPU_BACKENDS, reason="cuda backend not available")
@pytest.mark.parametrize("C", [1, 3])
def test_sample_cuda_cluster_and_one_block_paths(monkeypatch, C):
    """H = 256: on sm_90 the sample kernel splits W_hh over a thread-block cluster; with
    RNNGEN_CUDA_CLUSTERS=0 it streams W_hh from L2 in one block per row tile. Both match the truth."""
    B, T, H, K = 37, 10, 256, 256
    a = _sample_inputs(B, H, K, C)
    args = [a[k] for k in ("h0", "emb", "w_hh", "b_hh", "w_out", "b_out")]
    want = truth_sample(a["h0"], a["emb"], a["cond"], a["w_hh"], a["b_hh"], a["w_out"], a["b_out"], T * C, 1.0, 9)
    for clusters in ("1", "0"):
        monkeypatch.setenv("RNNGEN_CUDA_CLUSTERS", clusters)
        got = rnngen.sample(*[x.to(DEV) for x in args], T * C, cond=a["cond"].to(DEV), seed=9, backend="cuda").cpu()
        same_rows = (got == want).all(dim=1).float().mean()
        assert same_rows >= 0.95, (clusters, same_rows)


@pytest.mark.skipif("cuda" not in GPU_BACKENDS, reason="cuda backend not available")
@pytest.mark.parametrize("clusters", ["1", "0"])
def test_scan_cuda_cluster_and_one_block_paths(monkeypatch, clusters):
    """H = 256, forward and backward: the sm_90 cluster variants and the one-block path."""
    monkeypatch.setenv("RNNGEN_CUDA_CLUSTERS", clusters)
    B, T, H = 37, 6, 256
    _, _, w_hh, b_hh = gru_weights(H, 1)
    gi, h0 = torch.randn(B, T, 3 * H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    check_all(lambda *a: rnngen.scan(*a, backend="cuda"), truth_scan, [gi, h0, w_hh, b_hh],
              [torch.randn(B, T, H, dtype=torch.float64)], torch.float32, ["gi", "h0", "w_hh", "b_hh"], device=DEV)


def _check_cell_scan(cell, B, T, H):
    """scan forward and backward of ``cell`` on the cuda backend against ATen's cell steps (float64
    truth); returns the float64 (h0, c0, w_hh, b_hh) it drew (c0 None but for the LSTM)."""
    G = CELL_GATES.get(cell, 3)
    w_hh = torch.randn(G * H, H, dtype=torch.float64) / H**0.5
    b_hh = torch.randn(G * H, dtype=torch.float64) / H**0.5
    gi, h0 = torch.randn(B, T, G * H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    dout = torch.randn(B, T, H, dtype=torch.float64)
    c0 = None
    if cell == "lstm":
        c0, dc = torch.randn(B, H, dtype=torch.float64), torch.randn(B, T, H, dtype=torch.float64)
        check_all(lambda gi, h0, c0, w, b: rnngen.scan(gi, h0, w, b, cell=cell, c0=c0, return_cell_state=True,
                                                     backend="cuda"),
                  lambda *a: truth_scan_cell(cell, *a), [gi, h0, c0, w_hh, b_hh], [dout, dc], torch.float32,
                  ["gi", "h0", "c0", "w_hh", "b_hh"], device=DEV)
    else:
        check_all(lambda *a: (rnngen.scan(*a, cell=cell, backend="cuda"),),
                  lambda gi, h0, w, b: truth_scan_cell(cell, gi, h0, None, w, b)[:1], [gi, h0, w_hh, b_hh], [dout],
                  torch.float32, ["gi", "h0", "w_hh", "b_hh"], device=DEV)
    return h0, c0, w_hh, b_hh


@pytest.mark.skipif("cuda" not in GPU_BACKENDS, reason="cuda backend not available")
@pytest.mark.parametrize("cell", ["lstm", "rnn_tanh", "rnn_relu"])
@pytest.mark.parametrize("clusters", ["1", "0"])
def test_cells_cuda_cluster_and_one_block_paths(monkeypatch, clusters, cell):
    """The other cells at H = 256: scan forward and backward, and sample, through the sm_90
    cluster variants and the one-block path, against ATen's cell steps."""
    monkeypatch.setenv("RNNGEN_CUDA_CLUSTERS", clusters)
    B, T, H, K = 37, 6, 256, 256
    h0, c0, w_hh, b_hh = _check_cell_scan(cell, B, T, H)
    G = CELL_GATES[cell]
    f32 = [x.float() for x in (h0, w_hh, b_hh)]
    c32 = None if c0 is None else c0.float()
    emb, w_out, b_out = torch.randn(1, K, G * H) * 0.5, torch.randn(1, K, H) * 4 / H**0.5, torch.randn(1, K)
    cond = torch.zeros(B, G * H)
    want = truth_sample_cell(cell, f32[0], c32, emb, cond, f32[1], f32[2], w_out, b_out, T, 1.0, 9)
    got = rnngen.sample(*(x.to(DEV) for x in (f32[0], emb, f32[1], f32[2], w_out, b_out)), T, seed=9, cell=cell,
                        c0=None if c32 is None else c32.to(DEV), backend="cuda")
    assert_same_draws(got, want, DEV)


@pytest.mark.skipif("cuda" not in GPU_BACKENDS, reason="cuda backend not available")
@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn_tanh", "rnn_relu"])
@pytest.mark.parametrize("clusters", ["1", "0"])
def test_decode_cuda_cluster_and_one_block_paths(monkeypatch, clusters, cell):
    """decode at H = 256 (the article's generator), forward and backward, C = 1 and 3: the sm_90
    cluster variants (every block forms x_t itself; the shares of dx_t summed in rank order) and
    the one-block path, against the float64 truth."""
    monkeypatch.setenv("RNNGEN_CUDA_CLUSTERS", clusters)
    G, B, T, H = CELL_GATES.get(cell, 3), 37, 6, 256
    for C in (1, 3):
        w_ih, b_ih = torch.randn(G * H, C, dtype=torch.float64) / C**0.5, torch.randn(G * H, dtype=torch.float64) * 0.1
        w_hh = torch.randn(G * H, H, dtype=torch.float64) / H**0.5
        b_hh = torch.randn(G * H, dtype=torch.float64) * 0.1
        w_out, b_out = torch.randn(C, H, dtype=torch.float64) / H**0.5, torch.randn(C, dtype=torch.float64) * 0.1
        h0 = torch.randn(B, H, dtype=torch.float64)
        douts = [torch.randn(B, T, C, dtype=torch.float64), torch.randn(B, T, H, dtype=torch.float64)]
        names = ["h0", "w_ih", "b_ih", "w_hh", "b_hh", "w_out", "b_out"]
        if cell == "gru":
            check_all(lambda *a: rnngen.decode(*a, T, return_hidden=True, backend="cuda"),
                      lambda *a: truth_decode(*a, T), [h0, w_ih, b_ih, w_hh, b_hh, w_out, b_out], douts,
                      torch.float32, names, device=DEV)
        elif cell == "lstm":
            c0 = torch.randn(B, H, dtype=torch.float64)
            douts.append(torch.randn(B, T, H, dtype=torch.float64))
            check_all(lambda h0, c0, *w: rnngen.decode(h0, *w, T, cell=cell, c0=c0, return_hidden=True,
                                                       backend="cuda"),
                      lambda h0, c0, *w: truth_decode_cell(cell, h0, c0, *w, T), [h0, c0, w_ih, b_ih, w_hh, b_hh,
                                                                                w_out, b_out],
                      douts, torch.float32, ["h0", "c0", *names[1:]], device=DEV)
        else:
            check_all(lambda *a: rnngen.decode(*a, T, cell=cell, return_hidden=True, backend="cuda"),
                      lambda h0, *w: truth_decode_cell(cell, h0, None, *w, T)[:2],
                      [h0, w_ih, b_ih, w_hh, b_hh, w_out, b_out], douts, torch.float32, names,
                      relu=cell == "rnn_relu", device=DEV)


@pytest.mark.skipif("cuda" not in GPU_BACKENDS, reason="cuda backend not available")
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("B,T,H", [(3, 63, 40), (37, 6, 256), (256, 8, 256)],
                         ids=["B3-T63-H40", "B37-T6-H256", "B256-T8-H256"])
def test_cuda_low_precision(dtype, B, T, H):
    """bfloat16 and float16 on the cuda backend (float32 state and sums; at B = 256, H = 256 on
    sm_90 the forward products of scan and decode run on tensor cores, 16 rows a cluster):
    outputs in the input dtype, errors at most twice a plain PyTorch run's in that dtype; sample
    draws as the truth does from the same (rounded) inputs."""
    _, _, w_hh, b_hh = gru_weights(H, 1)
    gi, h0 = torch.randn(B, T, 3 * H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    check_all(lambda *a: rnngen.scan(*a, backend="cuda"), truth_scan, [gi, h0, w_hh, b_hh],
              [torch.randn(B, T, H, dtype=torch.float64)], dtype, ["gi", "h0", "w_hh", "b_hh"], device=DEV)
    C = 3
    w_ih, b_ih, _, _ = gru_weights(H, C)
    w_out, b_out = torch.randn(C, H, dtype=torch.float64) / H**0.5, torch.randn(C, dtype=torch.float64) * 0.1
    check_all(lambda *a: rnngen.decode(*a, T, return_hidden=True, backend="cuda"), lambda *a: truth_decode(*a, T),
              [h0, w_ih, b_ih, w_hh, b_hh, w_out, b_out],
              [torch.randn(B, T, C, dtype=torch.float64), torch.randn(B, T, H, dtype=torch.float64)], dtype,
              ["h0", "w_ih", "b_ih", "w_hh", "b_hh", "w_out", "b_out"], device=DEV)
    a = {k: v.to(dtype) for k, v in _sample_inputs(B, H, 7).items()}
    args = [a[k] for k in ("h0", "emb", "w_hh", "b_hh", "w_out", "b_out")]
    want = truth_sample(*[a[k].float() for k in ("h0", "emb", "cond", "w_hh", "b_hh", "w_out", "b_out")], T, 1.0, 5)
    got = rnngen.sample(*[x.to(DEV) for x in args], T, cond=a["cond"].to(DEV), seed=5, backend="cuda")
    assert_same_draws(got, want, DEV)


@pytest.mark.parametrize("name", ["GRU", "LSTM", "RNN"])
def test_drop_ins_under_cuda_autocast(name):
    """Under CUDA autocast the drop-ins return what nn.GRU / nn.LSTM / nn.RNN (cuDNN) return: the
    autocast dtype, close values, gradients reaching the float32 parameters."""
    torch.manual_seed(0)
    ref = getattr(torch.nn, name)(16, 64, num_layers=2, batch_first=True).to(DEV)
    fused = getattr(rnngen, f"FusedPixel{name}")(16, 64, num_layers=2, batch_first=True).to(DEV)
    fused.load_state_dict(ref.state_dict())
    x = torch.randn(5, 30, 16, device=DEV)
    with torch.autocast("cuda"):
        want, got = ref(x)[0], fused(x)[0]
    assert got.dtype == want.dtype == torch.float16
    assert (got.float() - want.float()).abs().max() < 2e-2
    got.float().square().sum().backward()
    assert fused.weight_hh_l0.grad is not None and fused.weight_hh_l0.grad.dtype == torch.float32


@pytest.mark.skipif("cuda" not in GPU_BACKENDS, reason="cuda backend not available")
def test_cuda_tf32_only_when_allowed(monkeypatch):
    """float32 scan at B = 256, H = 256 (16 rows a cluster on sm_90): IEEE float32 products by
    default; TF32 tensor cores only under torch.backends.cuda.matmul.allow_tf32, still close."""
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    B, T, H = 256, 8, 256
    _, _, w_hh, b_hh = gru_weights(H, 1)
    gi, h0 = torch.randn(B, T, 3 * H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    want = truth_scan(gi, h0, w_hh, b_hh)
    args = [x.to(DEV, torch.float32) for x in (gi, h0, w_hh, b_hh)]
    ieee = rnngen.scan(*args, backend="cuda").cpu().double()
    assert ((ieee - want).norm() / want.norm()).item() < 1e-5
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", True)
    tf32 = rnngen.scan(*args, backend="cuda").cpu().double()
    assert ((tf32 - want).norm() / want.norm()).item() < 1e-2


@pytest.mark.skipif("cuda" not in GPU_BACKENDS, reason="cuda backend not available")
@pytest.mark.parametrize("cell", ["gru", "lstm", "rnn_tanh"])
@pytest.mark.parametrize("grid", ["1", "0"])
def test_scan_cuda_grid_split(monkeypatch, grid, cell):
    """H = 1024 (and 512), B <= 16: W_hh fits neither one block nor a cluster; the grid-split
    variants (one cooperative launch, h and dgh exchanged through global memory) and, with
    RNNGEN_CUDA_GRID=0, the one-block path streaming W_hh, both against the float64 truth."""
    monkeypatch.setenv("RNNGEN_CUDA_GRID", grid)
    for B, T, H in ((8, 5, 1024), (3, 7, 512)):
        _check_cell_scan(cell, B, T, H)

@pytest.mark.skipif("cuda" not in GPU_BACKENDS, reason="cuda backend not available")
@pytest.mark.parametrize("grid", ["1", "0"])
def test_sample_cuda_grid_split(monkeypatch, grid):
    """Sampling at H = 1024 (and 512), B <= 16, 256 values: the grid-split variant and, with
    RNNGEN_CUDA_GRID=0, the one-block path; the same draws as the truth."""
    monkeypatch.setenv("RNNGEN_CUDA_GRID", grid)
    for B, T, H in ((2, 12, 1024), (9, 10, 512)):
        a = _sample_inputs(B, H, 256)
        args = [a[k] for k in ("h0", "emb", "w_hh", "b_hh", "w_out", "b_out")]
        want = truth_sample(a["h0"], a["emb"], a["cond"], a["w_hh"], a["b_hh"], a["w_out"], a["b_out"], T, 1.0, 3)
        got = rnngen.sample(*[x.to(DEV) for x in args], T, cond=a["cond"].to(DEV), seed=3, backend="cuda")
        assert_same_draws(got, want, DEV)


@pytest.mark.skipif("cuda" not in GPU_BACKENDS, reason="cuda backend not available")
@pytest.mark.parametrize("grid", ["1", "0"])
def test_decode_cuda_grid_split(monkeypatch, grid):
    """The article's generator at H = 1024, B = 4, forward and backward: the grid-split variants
    and, with RNNGEN_CUDA_GRID=0, the one-block path, against the float64 truth."""
    monkeypatch.setenv("RNNGEN_CUDA_GRID", grid)
    B, T, H, C = 4, 6, 1024, 1
    w_ih, b_ih, w_hh, b_hh = gru_weights(H, C)
    w_out, b_out = torch.randn(C, H, dtype=torch.float64) / H**0.5, torch.randn(C, dtype=torch.float64) * 0.1
    h0 = torch.randn(B, H, dtype=torch.float64)
    douts = [torch.randn(B, T, C, dtype=torch.float64), torch.randn(B, T, H, dtype=torch.float64)]
    check_all(lambda *a: rnngen.decode(*a, T, return_hidden=True, backend="cuda"), lambda *a: truth_decode(*a, T),
              [h0, w_ih, b_ih, w_hh, b_hh, w_out, b_out], douts, torch.float32,
              ["h0", "w_ih", "b_ih", "w_hh", "b_hh", "w_out", "b_out"], device=DEV)


@pytest.mark.parametrize("model", ["pixelgru", "generator-gan"])
def test_train_on_the_gpu_and_resume(tmp_path, model):
    # The checkpoint is read onto the CPU; resuming must put every part of the run state (the
    # moving average too) back on the model's GPU, and the resumed run must end where one run ends.
    from rnngen.cli import main
    from rnngen.training import load_checkpoint

    argv = ["train", "--data", "digits", "--model", model, "--hidden", "16", "--batch-size", "8", "--eval-every",
            "0", "--no-progress", "--device", "cuda"]
    if model == "generator-gan":
        argv += ["--reconstruction-steps", "4"]
    assert main(argv + ["--steps", "8", "--out", str(tmp_path / "one")]) == 0
    assert main(argv + ["--steps", "4", "--out", str(tmp_path / "two")]) == 0
    assert main(["train", "--out", str(tmp_path / "two"), "--resume", "--steps", "8", "--no-progress",
                 "--device", "cuda"]) == 0
    one, two = (load_checkpoint(str(tmp_path / d / "checkpoint.pt")) for d in ("one", "two"))
    assert two["step"] == 8
    for name, value in one["state"].items():
        torch.testing.assert_close(two["state"][name], value, rtol=1e-4, atol=1e-5, msg=name)
