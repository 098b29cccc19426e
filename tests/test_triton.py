"""What only the Triton backend has: its tile rule (on chip vs streamed W_hh, per gate count), the
streamed path with many chunks, its fallbacks, float16, and how a missing Triton is reported.
The shared suites (test_ops.py, test_cells.py, test_modules.py) run the triton backend against
the truth like any other, for every cell."""

import subprocess
import sys

import pytest
import torch

import rnngen
from helpers import BACKENDS, CELL_GATES, gru_weights, rel_error
from rnngen import dispatch

needs_triton = pytest.mark.skipif("triton" not in BACKENDS, reason="triton backend not available here")


def test_tile_rule():
    """W_hh on chip in one program while its NG gate blocks hold <= 64 KiB (the GRU and the LSTM
    to HP = 64, the Elman cells to 128); beyond, None: the launchers split it over programs."""
    tc = pytest.importorskip("rnngen.ops.triton_common")
    assert tc.hidden_tiles(8) == dict(HP=16, num_warps=4, num_stages=1)
    assert tc.hidden_tiles(64) == dict(HP=64, num_warps=8, num_stages=1)
    assert tc.hidden_tiles(65) is None
    assert tc.hidden_tiles(64, 4) is not None and tc.hidden_tiles(65, 4) is None
    assert tc.hidden_tiles(128, 1) == dict(HP=128, num_warps=8, num_stages=1) and tc.hidden_tiles(129, 1) is None
    for H in (8, 64, 65, 200):  # the GRU's configuration is the default one
        assert tc.hidden_tiles(H, 3) == tc.hidden_tiles(H)


def test_split_rule():
    """W_hh split over NSPLIT programs where it does not fit one (rnngen/ops/triton_split.py): the
    largest BLOCK_N from 16 to 64 (at most HP / 2) whose slice of all gates fits SLICE_FLOATS on
    chip, else 16 units streamed in BLOCK_K chunks; up to HP = 1024 for every cell."""
    ts = pytest.importorskip("rnngen.ops.triton_split")
    for gates, H, block_n, on_chip in ((3, 65, 64, True), (3, 256, 32, True), (3, 512, 16, True), (3, 1024, 16, False),
                                       (4, 128, 32, True), (4, 256, 16, True), (4, 512, 16, False),
                                       (1, 256, 64, True), (1, 1024, 16, True)):
        cfg = ts.split_tiles(H, gates)
        assert (cfg["BLOCK_N"], cfg["ON_CHIP"]) == (block_n, on_chip), (gates, H)
        assert cfg["NSPLIT"] * block_n == cfg["HP"] >= H and cfg["NSPLIT"] >= 2
        assert not on_chip or gates * cfg["HP"] * block_n <= ts.SLICE_FLOATS
    assert ts.split_tiles(1025, 1) is None


GATES = {"gru": 3, **CELL_GATES}


def _scan_against_reference(cell, B, T, H, bound=1e-5):
    G = GATES[cell]
    lstm = cell == "lstm"
    w_hh, b_hh = torch.randn(G * H, H) / H**0.5, torch.randn(G * H) / H**0.5
    gi, h0, c0 = torch.randn(B, T, G * H), torch.randn(B, H), torch.randn(B, H)

    def scan(gi, w, b, h0, c0=None, *, backend):
        return rnngen.scan(gi, h0, w, b, cell=cell, c0=c0, return_cell_state=lstm, backend=backend)

    _compare(scan, [gi, w_hh, b_hh, h0] + [c0] * lstm, [torch.randn(B, T, H) for _ in range(1 + lstm)], bound)


def _decode_against_reference(cell, B, T, H, C=3, bound=1e-5):
    G = GATES[cell]
    lstm = cell == "lstm"
    w_ih, b_ih, w_hh, b_hh = ((torch.rand(*shape) * 2 - 1) / H**0.5 for shape in ((G * H, C), (G * H,), (G * H, H),
                                                                                 (G * H,)))
    w_out, b_out, h0, c0 = torch.randn(C, H) / H**0.5, torch.randn(C), torch.randn(B, H), torch.randn(B, H)

    def decode(*a, backend):
        return rnngen.decode(a[0], *a[1:7], T, cell=cell, c0=a[7] if lstm else None, return_hidden=True,
                             backend=backend)

    _compare(decode, [h0, w_ih, b_ih, w_hh, b_hh, w_out, b_out] + [c0] * lstm,
             [torch.randn(B, T, C)] + [torch.randn(B, T, H) for _ in range(1 + lstm)], bound)


def _sample_against_reference(cell, B, T, H, C=2, K=40):
    """The sampler's draws equal the reference's (two channels, lagged inputs one and three steps
    back, some values known)."""
    G = GATES[cell]
    h0, c0, emb, cond = torch.randn(B, H), torch.randn(B, H), torch.randn(C, K, G * H), torch.randn(B, G * H)
    w_hh, b_hh = torch.randn(G * H, H) / H**0.5, torch.randn(G * H)
    heads, bias, lag_emb = 3 * torch.randn(C, K, H) / H**0.5, torch.randn(C, K), torch.randn(2, C, K, G * H)
    known = torch.where(torch.rand(B, C * T) < 0.3, torch.randint(0, K, (B, C * T)), -1)
    values = [rnngen.sample(h0, emb, w_hh, b_hh, heads, bias, C * T, cond=cond, lag_emb=lag_emb, lags=[1, 3],
                            known=known, seed=7, cell=cell, c0=c0 if cell == "lstm" else None, backend=b)
              for b in ("triton", "reference")]
    assert torch.equal(*values)


@needs_triton
@pytest.mark.parametrize("cell", list(GATES))
@pytest.mark.parametrize("B,T,H", [(17, 3, 200), (3, 2, 1000)])
def test_split_over_programs(monkeypatch, cell, B, T, H):
    """Scan, decode and sample with W_hh split over programs (every cell; H = 200: slices on chip,
    in two batch tiles, the last partial; H = 1000: 64 programs streaming theirs): forward and
    backward against the reference, the same draws. The interpreter runs one launch per step
    (run_steps), so every exchange through the buffers happens between launches; each op
    launches its split kernel, T or T + 1 times (the sampler twice a step: logits, then draw and
    step)."""
    from rnngen.ops import triton_split as ts

    launches = []
    real = ts.run_steps
    monkeypatch.setattr(ts, "run_steps", lambda kernel, grid, steps, *a, **k: (
        launches.append((kernel.fn.__name__, grid, steps)), real(kernel, grid, steps, *a, **k)))
    _scan_against_reference(cell, B, T, H)
    _decode_against_reference(cell, B, T, H)
    _sample_against_reference(cell, B, T, H)
    grid = (ts.split_tiles(H, GATES[cell])["NSPLIT"], -(-B // 16))
    assert launches == [("_scan_forward_split_kernel", grid, T), ("_scan_backward_split_kernel", grid, T + 1),
                        ("_decode_forward_split_kernel", grid, T), ("_decode_backward_split_kernel", grid, T + 1),
                        ("_sample_split_kernel", grid, 2 * 2 * T)]  # two half-steps a step, C = 2 channels


@needs_triton
@pytest.mark.parametrize("cell", ["gru", "lstm"])
@pytest.mark.parametrize("on_chip", [True, False])
def test_scan_split_cooperative_body(monkeypatch, cell, on_chip):
    """The cooperative form of the split kernels (all steps in one launch, the step barrier after
    each) runs in the interpreter where one program holds a tile's units (NSPLIT = 1: its barrier
    waits for itself): scan, decode and sample give the reference's results, slices on chip and
    streamed."""
    from rnngen.ops import triton_split as ts

    real = ts.split_tiles
    monkeypatch.setattr(ts, "split_tiles", lambda H, gates: dict(real(H, gates), BLOCK_N=real(H, gates)["HP"],
                                                                 NSPLIT=1, BLOCK_K=32, ON_CHIP=on_chip))
    launched = []
    real_run = ts.run_steps
    monkeypatch.setattr(ts, "run_steps", lambda kernel, grid, steps, *a, **k: (
        launched.append(grid), real_run(kernel, grid, steps, *a, **k)))
    _scan_against_reference(cell, 20, 4, 100)
    _decode_against_reference(cell, 20, 4, 100)
    _sample_against_reference(cell, 20, 4, 100)
    assert launched == [(1, 2)] * 5


def test_dot_mode():
    """How the kernels multiply: the forward kernels' bf16/fp16 dots on tensor cores on a GPU (the
    same operand rounding, emulated, in the CPU interpreter); the backward kernels and float32 in
    float32, TF32 only where torch's own switch allows it."""
    tc = pytest.importorskip("rnngen.ops.triton_common")
    gpu, cpu = torch.device("cuda"), torch.device("cpu")
    assert tc.dot_mode(torch.bfloat16, gpu) == tc.DOT_BF16 and tc.dot_mode(torch.float16, gpu) == tc.DOT_FP16
    assert tc.dot_mode(torch.bfloat16, cpu) == tc.DOT_BF16_EMULATED
    assert tc.dot_mode(torch.float16, cpu) == tc.DOT_FP16_EMULATED
    assert tc.dot_mode(torch.bfloat16, gpu, backward=True) == tc.DOT_IEEE
    allowed = torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cuda.matmul.allow_tf32 = False
        assert tc.dot_mode(torch.float32, gpu) == tc.DOT_IEEE
        torch.backends.cuda.matmul.allow_tf32 = True
        assert tc.dot_mode(torch.float32, gpu) == tc.DOT_TF32 and tc.dot_mode(torch.float32, cpu) == tc.DOT_IEEE
    finally:
        torch.backends.cuda.matmul.allow_tf32 = allowed


@needs_triton
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_half_inputs_split_over_programs(dtype):
    """bfloat16 / float16 at H = 200 (W_hh split over programs, the forward's dots with operands
    in that type): scan and decode within twice the error of a PyTorch run in that dtype against
    the float32 result."""
    B, T, H, C = 3, 6, 200, 2
    w_ih, b_ih, w_hh, b_hh = gru_weights(H, C, torch.float32)
    gi, h0, w_out, b_out = torch.randn(B, T, 3 * H), torch.randn(B, H), torch.randn(C, H) / H**0.5, torch.randn(C)
    runs = [(lambda *a, backend: rnngen.scan(*a, backend=backend), (gi, h0, w_hh, b_hh)),
            (lambda *a, backend: rnngen.decode(*a, T, backend=backend), (h0, w_ih, b_ih, w_hh, b_hh, w_out, b_out))]
    for fn, args in runs:
        truth = fn(*args, backend="reference")
        half = [x.to(dtype) for x in args]
        got, low = fn(*half, backend="triton"), fn(*half, backend="reference")
        assert got.dtype == dtype
        assert rel_error(got, truth) <= 2 * rel_error(low, truth) + 1e-6


def test_split_launch_refused_runs_a_launch_per_step():
    """Where the device refuses the cooperative launch (a grid that cannot be co-resident), the
    split kernel runs once per step with COOP=False, after one warning, and is not tried again."""
    ts = pytest.importorskip("rnngen.ops.triton_split")
    calls = []

    class Kernel:
        class fn:
            __name__ = "_test_split_kernel"

        def __getitem__(self, grid):
            def launch(*args, **consts):
                if consts.get("launch_cooperative_grid"):
                    raise RuntimeError("Triton Error [CUDA]: too many blocks in cooperative launch")
                calls.append((grid, args[-3:], consts["COOP"]))
            return launch

    device = torch.device("meta")  # not the CPU: the cooperative launch is tried
    ts._REFUSED.discard(("_test_split_kernel", (4, 3), (("X", 1),), "meta"))
    with pytest.warns(RuntimeWarning, match="cannot run its 12 programs at once"):
        ts.run_steps(Kernel(), (4, 3), 2, ("a",), device, X=1)
    assert [(g, a[1:], c) for g, a, c in calls] == [((4, 3), (0, 1), False), ((4, 3), (1, 2), False)]
    calls.clear()
    ts.run_steps(Kernel(), (4, 3), 1, ("a",), device, X=1)  # no second try, no second warning
    assert [(g, a[1:], c) for g, a, c in calls] == [((4, 3), (0, 1), False)]


@needs_triton
def test_registered_kernels_are_the_triton_ones():
    from rnngen.ops.decode import triton as decode_triton
    from rnngen.ops.sample import triton as sample_triton
    from rnngen.ops.scan import triton as scan_triton

    assert dispatch.get_kernel("triton", "scan_forward") is scan_triton.scan_forward
    assert dispatch.get_kernel("triton", "scan_backward") is scan_triton.scan_backward
    assert dispatch.get_kernel("triton", "decode_forward") is decode_triton.decode_forward
    assert dispatch.get_kernel("triton", "decode_backward") is decode_triton.decode_backward
    assert dispatch.get_kernel("triton", "sample") is sample_triton.sample
    assert not dispatch.supports("triton", "scan_forward", torch.float64)
    for cell in CELL_GATES:  # every cell has all five, from the same generic launchers
        assert dispatch.get_kernel("triton", "scan_forward", cell) is scan_triton._KERNELS[cell][0]
        assert dispatch.get_kernel("triton", "scan_backward", cell) is scan_triton._KERNELS[cell][1]
        assert dispatch.get_kernel("triton", "decode_forward", cell) is decode_triton._KERNELS[cell][0]
        assert dispatch.get_kernel("triton", "decode_backward", cell) is decode_triton._KERNELS[cell][1]
        assert dispatch.get_kernel("triton", "sample", cell) is sample_triton._KERNELS[cell]
        assert dispatch.supports("triton", "scan_forward", torch.bfloat16, cell)
        assert not dispatch.supports("triton", "scan_forward", torch.float64, cell)


def _grads(fn, inputs, dout):
    inputs = [x.detach().requires_grad_() for x in inputs]
    outs = fn(*inputs)
    outs = outs if isinstance(outs, tuple) else (outs,)
    return outs, torch.autograd.grad(sum((o * d).sum() for o, d in zip(outs, dout)), inputs)


def _compare(fn, inputs, dout, bound):
    got = _grads(lambda *a: fn(*a, backend="triton"), inputs, dout)
    want = _grads(lambda *a: fn(*a, backend="reference"), inputs, dout)
    for g, w in zip((*got[0], *got[1]), (*want[0], *want[1])):
        assert not torch.isnan(g).any()
        assert rel_error(g, w) < bound


@needs_triton
def test_streamed_path_many_chunks():
    """H = 200: the sampler streams HP = 256 in 8 chunks of 32 units (the shared suite's H = 128 has
    2 chunks); scan and decode split it over 8 programs of 32 units."""
    B, T, H, C, K = 2, 3, 200, 2, 40
    w_ih, b_ih, w_hh, b_hh = gru_weights(H, C, torch.float32)
    gi, h0 = torch.randn(B, T, 3 * H), torch.randn(B, H)
    _compare(rnngen.scan, [gi, h0, w_hh, b_hh], [torch.randn(B, T, H)], 1e-5)
    w_out, b_out = torch.randn(C, H) / H**0.5, torch.randn(C)
    _compare(lambda *a, backend: rnngen.decode(*a, T, backend=backend, return_hidden=True),
             [h0, w_ih, b_ih, w_hh, b_hh, w_out, b_out], [torch.randn(B, T, C), torch.randn(B, T, H)], 1e-5)
    emb, heads, bias = torch.randn(C, K, 3 * H), torch.randn(C, K, H), torch.randn(C, K)
    values = [rnngen.sample(h0, emb, w_hh, b_hh, heads, bias, 2 * C, seed=9, backend=b)
              for b in ("triton", "reference")]
    assert torch.equal(*values)


@needs_triton
@pytest.mark.parametrize("cell", ["lstm", "rnn_tanh", "rnn_relu"])
def test_streamed_path_many_chunks_cells(cell):
    """The other cells at H = 200: the sampler streams HP = 256 in 16 chunks of 16 units for the
    LSTM, 4 of 64 for the Elman cells; scan and decode split it over as many programs."""
    G, B, T, H, C, K = CELL_GATES[cell], 2, 3, 200, 2, 40
    bound = 1 / H**0.5
    w_ih, b_ih, w_hh, b_hh = ((torch.rand(*shape) * 2 - 1) * bound for shape in ((G * H, C), (G * H,), (G * H, H),
                                                                                 (G * H,)))
    gi, h0, c0 = torch.randn(B, T, G * H), torch.randn(B, H), torch.randn(B, H)
    lstm = cell == "lstm"
    states = [h0, c0] if lstm else [h0]

    def scan(gi, w, b, h0, c0=None, *, backend):
        return rnngen.scan(gi, h0, w, b, cell=cell, c0=c0, return_cell_state=lstm, backend=backend)

    def decode(*a, backend):
        return rnngen.decode(a[0], *a[1:7], T, cell=cell, c0=a[7] if lstm else None, return_hidden=True,
                             backend=backend)

    douts = [torch.randn(B, T, H) for _ in range(1 + lstm)]
    _compare(scan, [gi, w_hh, b_hh, *states], douts, 1e-5)
    w_out, b_out = torch.randn(C, H) / H**0.5, torch.randn(C)
    _compare(decode, [h0, w_ih, b_ih, w_hh, b_hh, w_out, b_out, *states[1:]],
             [torch.randn(B, T, C)] + [torch.randn(B, T, H) for _ in range(1 + lstm)], 1e-5)
    emb, heads, bias = torch.randn(C, K, G * H), torch.randn(C, K, H), torch.randn(C, K)
    values = [rnngen.sample(h0, emb, w_hh, b_hh, heads, bias, 2 * C, seed=9, cell=cell, c0=c0 if lstm else None,
                            backend=b) for b in ("triton", "reference")]
    assert torch.equal(*values)


@needs_triton
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_float16(cell):
    G, B, T, H = 3 if cell == "gru" else CELL_GATES[cell], 3, 5, 24
    w_hh, b_hh = torch.randn(G * H, H) / H**0.5, torch.randn(G * H) / H**0.5
    gi, h0 = torch.randn(B, T, G * H), torch.randn(B, H)
    c0 = torch.randn(B, H) if cell == "lstm" else None
    half = [x.half() for x in (gi, h0, w_hh, b_hh)]
    c0h = None if c0 is None else c0.half()
    truth = rnngen.scan(gi, h0, w_hh, b_hh, cell=cell, c0=c0, backend="reference")
    got = rnngen.scan(*half, cell=cell, c0=c0h, backend="triton")
    assert got.dtype == torch.float16
    low = rnngen.scan(*half, cell=cell, c0=c0h, backend="reference")
    assert rel_error(got, truth) <= 2 * rel_error(low, truth) + 1e-6


@needs_triton
def test_sizes_beyond_the_kernels_run_the_reference_with_a_warning():
    H = 1025  # the scan's split kernels stop at HP = 1024
    gi, w_hh = torch.randn(1, 2, 3 * H), torch.randn(3 * H, H) / H**0.5
    with pytest.warns(RuntimeWarning, match=r"exceeds the Triton kernels' limit \(1024\)"):
        got = rnngen.scan(gi, None, w_hh, None, backend="triton")
    assert torch.equal(got, rnngen.scan(gi, None, w_hh, None, backend="reference"))
    w_ih, b_ih, w_hh, b_hh = gru_weights(H, 1, torch.float32)  # decode's too
    args = (torch.randn(2, H), w_ih, b_ih, w_hh, b_hh, torch.randn(1, H), None, 2)
    with pytest.warns(RuntimeWarning, match=r"exceeds the Triton kernels' limit \(1024\)"):
        got = rnngen.decode(*args, backend="triton")
    assert torch.equal(got, rnngen.decode(*args, backend="reference"))
    # decode with more than 16 output channels, sample with more than 4096 values
    H, C, K = 8, 17, 4097
    w_ih, b_ih, w_hh, b_hh = gru_weights(H, C, torch.float32)
    args = (torch.randn(2, H), w_ih, b_ih, w_hh, b_hh, torch.randn(C, H), None, 3)
    with pytest.warns(RuntimeWarning, match="at most 16 output channels"):
        got = rnngen.decode(*args, backend="triton")
    assert torch.equal(got, rnngen.decode(*args, backend="reference"))
    args = (torch.randn(2, H), torch.randn(K, 3 * H), w_hh, b_hh, torch.randn(K, H), None, 3)
    with pytest.warns(RuntimeWarning, match="at most 4096 values"):
        got = rnngen.sample(*args, seed=1, backend="triton")
    assert torch.equal(got, rnngen.sample(*args, seed=1, backend="reference"))
    # the sampler's too, for every cell
    H, K = 1025, 5
    h0, emb, w_hh, b_hh, w_out, c0 = (torch.randn(*shape) / H**0.5
                                      for shape in ((1, H), (K, 4 * H), (4 * H, H), (4 * H,), (K, H), (1, H)))
    with pytest.warns(RuntimeWarning, match=r"exceeds the Triton kernels' limit \(1024\)"):
        got = rnngen.sample(h0, emb, w_hh, b_hh, w_out, None, 2, cell="lstm", c0=c0, seed=1, backend="triton")
    assert torch.equal(got, rnngen.sample(h0, emb, w_hh, b_hh, w_out, None, 2, cell="lstm", c0=c0, seed=1,
                                          backend="reference"))


def test_status_when_the_kernels_fail_to_load(monkeypatch):
    pytest.importorskip("triton")
    dispatch.backend_status()  # load what loads
    monkeypatch.setitem(dispatch._extension_errors, "triton", "rnngen.ops.scan.triton did not import: X: boom")
    status = rnngen.backend_status()["triton"]
    assert status.startswith("installed, but rnngen's Triton kernels failed to load") and "boom" in status
    assert "triton" not in rnngen.backends()


def test_without_triton_everything_else_works():
    """A Python where `import triton` fails: rnngen imports, says why, and runs other backends."""
    code = ("import sys; sys.modules['triton'] = None\n"
            "import torch, rnngen\n"
            "status = rnngen.backend_status()['triton']\n"
            "assert status.startswith('not installed'), status\n"
            "out = rnngen.scan(torch.randn(2, 3, 12), None, torch.randn(12, 4), None, backend='reference')\n"
            "assert out.shape == (2, 3, 4)\n"
            "assert 'rnngen.ops.scan.triton' not in sys.modules\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=str(__import__("pathlib").Path(__file__).parents[1]))
    assert run.returncode == 0, run.stderr


def test_kernels_compile_for_an_h100():
    """Every kernel through Triton's full GPU pipeline for sm_90 (no GPU needed), on chip (H=40,
    bf16; the Elman cells at their largest on-chip H=128), H=200 (the scan's W_hh split over
    programs, decode's and the sampler's streamed) and H=1024 (the scan's split slices streamed;
    the split kernels in their cooperative form, with the step barrier), for every cell:
    catches what the interpreter accepts and a GPU would refuse, and shared memory beyond an H100
    block."""
    pytest.importorskip("triton")
    try:
        from triton.backends.nvidia.compiler import CUDABackend  # noqa: F401
    except Exception as exc:
        pytest.skip(f"Triton's CUDA backend is not importable: {exc}")
    script = __import__("pathlib").Path(__file__).with_name("triton_gpu_compile.py")
    env = {k: v for k, v in __import__("os").environ.items() if k != "TRITON_INTERPRET"}
    configs = ["40:bf16:gru,lstm", "128:bf16:rnn_tanh", "200:fp32:gru,lstm,rnn_relu", "1024:bf16:gru"]
    run = subprocess.run([sys.executable, str(script), *configs], capture_output=True, text=True, timeout=900,
                         env=env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.count("shared memory") == 42


@needs_triton
@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_each_op_launches_its_triton_kernel_once(monkeypatch, cell):
    """The ops really run the Triton kernels (one launch per call, all T steps inside it)."""
    from rnngen.ops.decode import triton as decode_triton
    from rnngen.ops.sample import triton as sample_triton
    from rnngen.ops.scan import triton as scan_triton

    launches = []

    class Counting:
        def __init__(self, name, kernel):
            self.name, self.kernel = name, kernel

        def __getitem__(self, grid):
            launches.append((self.name, grid))
            return self.kernel[grid]

    for module, name in ((scan_triton, "_scan_forward_kernel"), (scan_triton, "_scan_backward_kernel"),
                         (decode_triton, "_decode_forward_kernel"), (decode_triton, "_decode_backward_kernel"),
                         (sample_triton, "_sample_kernel")):
        monkeypatch.setattr(module, name, Counting(name, getattr(module, name)))
    B, T, H = 20, 4, 8  # two batch tiles of 16 rows
    G = 3 if cell == "gru" else CELL_GATES[cell]
    w_ih, b_ih, w_hh, b_hh = (torch.randn(*shape) / H**0.5 for shape in ((G * H, 1), (G * H,), (G * H, H), (G * H,)))
    gi = torch.randn(B, T, G * H, requires_grad=True)
    kw = dict(cell=cell, backend="triton")
    rnngen.scan(gi, None, w_hh, b_hh, **kw).sum().backward()
    h0 = torch.randn(B, H, requires_grad=True)
    rnngen.decode(h0, w_ih, b_ih, w_hh, b_hh, torch.randn(1, H), None, T, **kw).sum().backward()
    rnngen.sample(h0.detach(), torch.randn(5, G * H), w_hh, b_hh, torch.randn(5, H), None, T, **kw)
    assert launches == [(name, (2,)) for name in ("_scan_forward_kernel", "_scan_backward_kernel",
                                                  "_decode_forward_kernel", "_decode_backward_kernel",
                                                  "_sample_kernel")]


@needs_triton
def test_sample_makes_its_lags_tensor_once(monkeypatch):
    """The sampler's lag steps are a device tensor made once per lag set and device (cached), so
    a second call copies nothing to the device (what a CUDA graph capture needs); the draws with
    the cached tensor are the same, and another lag set gets its own tensor."""
    from rnngen.ops.sample import triton as sample_triton

    made = []
    real_tensor = torch.tensor

    def counting_tensor(*args, **kwargs):
        made.append(args[0])
        return real_tensor(*args, **kwargs)

    sample_triton._lag_steps.cache_clear()
    B, T, H, K = 3, 9, 8, 4
    h0, emb, w_hh, b_hh, w_out = (torch.randn(*s) for s in ((B, H), (K, 3 * H), (3 * H, H), (3 * H,), (K, H)))
    lag_emb = torch.randn(2, K, 3 * H)
    monkeypatch.setattr(sample_triton.torch, "tensor", counting_tensor)
    draws = [rnngen.sample(h0, emb, w_hh, b_hh, w_out, None, T, lag_emb=lag_emb, lags=lags, seed=3,
                           backend="triton") for lags in ((2, 5), (2, 5), [2, 5], (1, 3))]
    assert made == [(2, 5), (1, 3)]
    assert torch.equal(draws[0], draws[1]) and torch.equal(draws[0], draws[2])
    expected = rnngen.sample(h0, emb, w_hh, b_hh, w_out, None, T, lag_emb=lag_emb, lags=(1, 3), seed=3,
                             backend="reference")
    assert torch.equal(draws[3], expected)
