"""Shared test machinery: the backends under test, tolerances, and the truth implementations.

The truth is written independently of rnngen's reference: every GRU step is ATen's own
``torch.gru_cell`` (what nn.GRUCell runs) and gradients come from autograd through the loop.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

import rnngen

# Every backend that runs CPU tensors here (the triton kernels in Triton's interpreter).
BACKENDS = [b for b in rnngen.backends() if b in ("reference", "cpu") or
            (b == "triton" and rnngen.dispatch.triton_interpreting())]


def _gpu_targets() -> list[str]:
    """The GPU backends on CUDA tensors, "cuda-gpu" and "triton-gpu" (compiled, so not while
    TRITON_INTERPRET=1: bench/gpu/run.sh sets it to 0); RNNGEN_GPU_BACKENDS (comma-separated)
    narrows them. None without a GPU (CI)."""
    if not torch.cuda.is_available():
        return []
    status = rnngen.backend_status()
    wanted = [b for b in os.environ.get("RNNGEN_GPU_BACKENDS", "cuda,triton").split(",") if b]
    return [f"{b}-gpu" for b in wanted if status.get(b) == "available"
            and not (b == "triton" and rnngen.dispatch.triton_interpreting())]


# The shared suites' axis (test_ops.py, test_cells.py): a backend on CPU tensors, or with "-gpu"
# on CUDA tensors (`pytest -k gpu` picks those). Every target runs against the same CPU truth.
GPU_TARGETS = _gpu_targets()
TARGETS = BACKENDS + GPU_TARGETS


def target(name: str) -> tuple[str, str]:
    """(backend, device) of a TARGETS entry."""
    backend, gpu, _ = name.partition("-gpu")
    return backend, "cuda" if gpu else "cpu"


DTYPES = [torch.float32, torch.float64, torch.bfloat16]
# (B, T, H): single step, odd sizes (T=63, H=40, B=3), a power of two, and B=1 with H a
# multiple of 128 (the fused CPU kernels then split the units over two threads), and B=17
# (CPU: 9 rows per thread, two 4-row register tiles and a single row). With a GPU also the GPU
# kernels' paths: many batch tiles with a partial last one (B=300), W_hh on chip at H=128 (sm_90)
# and streamed from L2 at H=256.
SHAPES = [(1, 1, 8), (3, 63, 40), (2, 17, 16), (1, 9, 128), (17, 5, 24)]
if GPU_TARGETS:
    SHAPES += [(300, 4, 16), (5, 33, 128), (9, 20, 256)]
SHAPE_IDS = [f"B{b}-T{t}-H{h}" for b, t, h in SHAPES]


def supported(backend: str, kernel: str, dtype: torch.dtype) -> bool:
    return rnngen.dispatch.supports(backend, kernel, dtype)


def rel_error(actual: torch.Tensor, truth: torch.Tensor) -> float:
    actual, truth = actual.detach().double(), truth.detach().double()
    return float((actual - truth).norm() / truth.norm().clamp_min(1e-30))


def assert_matches(actual, truth, low_precision_run=None, name="output"):
    """The design's tolerance: relative error under 1e-5 (float32) / 1e-10 (float64) against a
    float64 truth; in bf16/fp16 at most twice the error of a plain PyTorch run in that dtype."""
    assert not torch.isnan(actual).any(), f"{name}: NaN (an unwritten output element?)"
    err = rel_error(actual, truth)
    if actual.dtype == torch.float64:
        bound = 1e-10
    elif actual.dtype == torch.float32:
        bound = 1e-5
    else:
        bound = 2 * rel_error(low_precision_run, truth) + 1e-6
    assert err <= bound, f"{name}: relative error {err:.3g} > {bound:.3g}"


def truth_scan(gi, h0, w_hh, b_hh):
    H = w_hh.shape[1]
    eye = torch.eye(3 * H, dtype=gi.dtype)  # W_ih = I, b_ih = 0: gru_cell sees gi as its input gates
    zero = torch.zeros(3 * H, dtype=gi.dtype)
    h, out = h0, []
    for t in range(gi.shape[1]):
        h = torch.gru_cell(gi[:, t], h, eye, w_hh, zero, b_hh)
        out.append(h)
    return torch.stack(out, 1)


def truth_decode(h0, w_ih, b_ih, w_hh, b_hh, w_out, b_out, steps):
    h, outs, hs = h0, [], []
    for _ in range(steps):
        x = F.linear(h, w_out, b_out)
        h = torch.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh)
        outs.append(x)
        hs.append(h)
    return torch.stack(outs, 1), torch.stack(hs, 1)


def truth_sample(h0, emb, cond, w_hh, b_hh, w_out, b_out, steps, temperature, seed, row_offset=0, known=None,
                 lag_emb=None, lags=()):
    """emb [C, K, 3H], w_out [C, K, H], b_out [C, K]; the draw by searchsorted on the CDF."""
    return truth_sample_cell("gru", h0, None, emb, cond, w_hh, b_hh, w_out, b_out, steps, temperature, seed,
                             known=known, row_offset=row_offset, lag_emb=lag_emb, lags=lags)


def gru_weights(H, in_size, dtype=torch.float64, scale=1.0):
    """(w_ih [3H, in], b_ih, w_hh [3H, H], b_hh) with nn.GRU's scale, times ``scale``."""
    bound = scale / H**0.5
    return tuple((torch.rand(*shape, dtype=dtype) * 2 - 1) * bound
                 for shape in ((3 * H, in_size), (3 * H,), (3 * H, H), (3 * H,)))


# The other cells (rnngen/ops/cells.py): G gate blocks each, and ATen's own step as the truth.
CELL_GATES = {"lstm": 4, "rnn_tanh": 1, "rnn_relu": 1}


def truth_cell_step(cell, x, h, c, w_ih, w_hh, b_ih, b_hh):
    """One step of ATen's torch.gru_cell / lstm_cell / rnn_tanh_cell / rnn_relu_cell (what
    nn.GRUCell, nn.LSTMCell and nn.RNNCell run): (h', c'), c' None but for the LSTM."""
    if cell == "gru":
        return torch.gru_cell(x, h, w_ih, w_hh, b_ih, b_hh), None
    if cell == "lstm":
        return torch.lstm_cell(x, (h, c), w_ih, w_hh, b_ih, b_hh)
    step = torch.rnn_tanh_cell if cell == "rnn_tanh" else torch.rnn_relu_cell
    return step(x, h, w_ih, w_hh, b_ih, b_hh), None


def truth_scan_cell(cell, gi, h0, c0, w_hh, b_hh):
    """Every hidden state (and, for the LSTM, cell state) of ``cell`` driven by input gates gi."""
    G = w_hh.shape[0]
    eye, zero = torch.eye(G, dtype=gi.dtype), torch.zeros(G, dtype=gi.dtype)  # gi passes as the input gates
    h, c, hs, cs = h0, c0, [], []
    for t in range(gi.shape[1]):
        h, c = truth_cell_step(cell, gi[:, t], h, c, eye, w_hh, zero, b_hh)
        hs.append(h)
        cs.append(c)
    return torch.stack(hs, 1), (torch.stack(cs, 1) if c0 is not None else None)


def truth_decode_cell(cell, h0, c0, w_ih, b_ih, w_hh, b_hh, w_out, b_out, steps):
    h, c, outs, hs, cs = h0, c0, [], [], []
    for _ in range(steps):
        x = F.linear(h, w_out, b_out)
        h, c = truth_cell_step(cell, x, h, c, w_ih, w_hh, b_ih, b_hh)
        outs.append(x)
        hs.append(h)
        cs.append(c)
    return torch.stack(outs, 1), torch.stack(hs, 1), (torch.stack(cs, 1) if c0 is not None else None)


def truth_sample_cell(cell, h0, c0, emb, cond, w_hh, b_hh, w_out, b_out, steps, temperature, seed, known=None,
                      row_offset=0, lag_emb=None, lags=()):
    """emb [C, K, G*H]; the draw by searchsorted on the CDF. Lagged inputs: lag_emb [L, C, K, G*H]
    and L lags; the value ``lags[j]`` steps back (if any) adds its row of table j to the input."""
    B, H = h0.shape
    C, K = w_out.shape[:2]
    G = w_hh.shape[0]
    u = rnngen.sample_uniforms(seed, B, steps, row_offset)
    eye, zero = torch.eye(G, dtype=h0.dtype), torch.zeros(G, dtype=h0.dtype)
    h, c, values = h0, c0, []
    for t in range(steps):
        logits = F.linear(h, w_out[t % C], b_out[t % C]).float()
        cdf = torch.cumsum(torch.exp((logits - logits.max(-1, keepdim=True).values) / temperature), -1)
        v = torch.searchsorted(cdf, (u[:, t] * cdf[:, -1])[:, None], right=True)[:, 0].clamp_max(K - 1)
        if known is not None:
            v = torch.where(known[:, t] >= 0, known[:, t], v)
        values.append(v)
        x = emb[t % C][v] + cond
        for j, lag in enumerate(lags):
            if t + 1 - lag >= 0:
                x = x + lag_emb[j][(t + 1 - lag) % C][values[t + 1 - lag]]
        h, c = truth_cell_step(cell, x, h, c, eye, w_hh, zero, b_hh)
    return torch.stack(values, 1)


def run_and_grads(fn, inputs, douts):
    """fn(*inputs) (a tuple of outputs) and the gradients of sum(out * dout) w.r.t. every input
    (fla's rule)."""
    inputs = [x.detach().requires_grad_() for x in inputs]
    outs = fn(*inputs)
    outs = outs if isinstance(outs, tuple) else (outs,)
    loss = sum((o.float() * d.float()).sum() for o, d in zip(outs, douts))
    return outs, torch.autograd.grad(loss, inputs)


def check_all(fn, truth_fn, inputs64, douts64, dtype, names, relu=False, device="cpu"):
    """Run ``fn`` on ``dtype`` copies on ``device`` and compare outputs and gradients with the
    float64 truth on the CPU (and, for low precision, with a plain PyTorch run of the truth in
    ``dtype``). ``relu``: the gradients pass through a relu (see below)."""
    outs, grads = run_and_grads(fn, [x.to(device, dtype) for x in inputs64], [d.to(device, dtype) for d in douts64])
    assert all(x.device.type == device for x in (*outs, *grads)), "a result on the wrong device"
    outs, grads = [o.cpu() for o in outs], [g.cpu() for g in grads]
    t_outs, t_grads = run_and_grads(truth_fn, inputs64, douts64)
    low_outs, low_grads = (None,) * len(outs), (None,) * len(grads)
    if dtype not in (torch.float32, torch.float64):
        low_outs, low_grads = run_and_grads(truth_fn, [x.to(dtype) for x in inputs64], [d.to(dtype) for d in douts64])
    for i, (o, t, low) in enumerate(zip(outs, t_outs, low_outs)):
        assert o.dtype == dtype
        assert_matches(o, t, low, name=f"output {i}")
    for name, g, t, low in zip(names, grads, t_grads, low_grads):
        if relu and low is not None:
            # relu's derivative jumps at 0: inputs rounded to bf16 move a few pre-activations
            # across it, in the kernel's float32 run as in the bf16 one, each an O(1) change of
            # a gradient entry; twice the bf16 run's error is a rule for smooth functions.
            low = low.double() + 0.5 * (low.double() - t)
        assert_matches(g, t, low, name=f"d {name}")


def assert_same_draws(got, want, device="cpu"):
    """Sampled values equal the truth's for the same seed. On the CPU exactly; on a GPU the
    logits' float32 sums run in another order, so a row may part ways after a draw that lands
    within rounding of a CDF boundary: at least 95% of the rows must be equal throughout."""
    assert got.device.type == device and got.dtype == torch.int64 and got.shape == want.shape
    got = got.cpu()
    if device == "cpu":
        assert torch.equal(got, want)
        return
    same = int((got == want).all(dim=1).sum())
    assert same >= 0.95 * got.shape[0], f"only {same} of {got.shape[0]} rows equal the truth's"
