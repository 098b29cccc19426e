"""Long sequences: a 64x64 RGB image is 12,288 steps, one launch each op.

The stated bound (README, "Guarantees"): with nn.GRU's initialisation scale, a float32 kernel's
hidden states and outputs stay within DRIFT = 1e-5 (absolute) of a float64 reference over all
12,288 steps, forward and backward (gradients: relative error 1e-4). Measured on the
development VM: about 3e-7 for cpu and triton forward. A GRU's state is a convex mix of the
previous state and a tanh, so rounding errors do not compound. The triton backend runs in its
interpreter here (about 4 ms a step whatever the size, so 12,288 steps took 250 s for sample
alone): there it runs an eighth of the length, 1,536 steps, still one launch, forward only (hence
the slow mark); tests/test_gpu.py::test_long_sequences_gpu runs the full length on a GPU.
"""

import pytest
import torch

import rnngen
from helpers import BACKENDS, gru_weights, rel_error

STEPS = 64 * 64 * 3
DRIFT = 1e-5
GRAD_DRIFT = 1e-4
FUSED = [b for b in BACKENDS if b != "reference"]


def _params(backend):
    return pytest.param(backend, marks=pytest.mark.slow) if backend == "triton" else backend


def _steps(backend):
    """The sequence length: all of it, but an eighth in Triton's CPU interpreter (see above)."""
    return STEPS // 8 if backend == "triton" else STEPS


def _with_grads(fn, inputs):
    inputs = [x.detach().requires_grad_() for x in inputs]
    out = fn(*inputs)
    (out * torch.linspace(-1, 1, out.shape[1], dtype=out.dtype)[:, None]).sum().backward()
    return out.detach(), [x.grad for x in inputs]


@pytest.mark.parametrize("backend", [_params(b) for b in FUSED])
def test_scan_12288_steps_stays_near_float64(backend):
    B, H = 2, 32
    _, _, w_hh, b_hh = gru_weights(H, 1)
    gi, h0 = torch.randn(B, _steps(backend), 3 * H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    want, want_grads = _with_grads(lambda *a: rnngen.scan(*a, backend="reference"), [gi, h0, w_hh, b_hh])
    inputs = [x.float() for x in (gi, h0, w_hh, b_hh)]
    if backend == "triton":  # forward only: the interpreter's backward would take many more minutes
        got = rnngen.scan(*inputs, backend=backend)
    else:
        got, grads = _with_grads(lambda *a: rnngen.scan(*a, backend=backend), inputs)
        for name, g, w in zip(("gi", "h0", "w_hh", "b_hh"), grads, want_grads):
            assert rel_error(g, w) < GRAD_DRIFT, name
    assert (got.double() - want).abs().max() < DRIFT


@pytest.mark.parametrize("backend", [_params(b) for b in FUSED])
def test_decode_12288_steps_stays_near_float64(backend):
    B, H, C = 2, 32, 3
    w_ih, b_ih, w_hh, b_hh = gru_weights(H, C)
    w_out, b_out = torch.randn(C, H, dtype=torch.float64) / H**0.5, torch.randn(C, dtype=torch.float64) * 0.1
    h0 = torch.randn(B, H, dtype=torch.float64)
    inputs64 = [h0, w_ih, b_ih, w_hh, b_hh, w_out, b_out]
    steps = _steps(backend) // C  # 4096 pixels of 3 channels each

    def run(be):
        return lambda *a: rnngen.decode(*a, steps, backend=be)

    want, want_grads = _with_grads(run("reference"), inputs64)
    inputs = [x.float() for x in inputs64]
    if backend == "triton":
        got = run(backend)(*inputs)
    else:
        got, grads = _with_grads(run(backend), inputs)
        for i, (g, w) in enumerate(zip(grads, want_grads)):
            assert rel_error(g, w) < GRAD_DRIFT, f"gradient {i}"
    assert (got.double() - want).abs().max() < DRIFT


@pytest.mark.parametrize("backend", [_params(b) for b in BACKENDS])
def test_sample_12288_steps_on_every_backend(backend):
    """A 64x64 RGB image (three heads, one per channel): same seed, same image as the reference,
    values in range, the known pixels kept."""
    B, H, C, K, T = 2, 32, 3, 16, _steps(backend)
    _, _, w_hh, b_hh = gru_weights(H, 1, torch.float32)
    args = (torch.randn(B, H), torch.randn(C, K, 3 * H), w_hh, b_hh, torch.randn(C, K, H), torch.randn(C, K), T)
    known = torch.full((B, T), -1)
    known[:, : T // 2] = torch.randint(0, K, (B, T // 2))  # the top half given (completion)
    got = rnngen.sample(*args, known=known, seed=2026, backend=backend)
    assert got.shape == (B, T) and got.min() >= 0 and got.max() < K
    assert torch.equal(got[:, : T // 2], known[:, : T // 2])
    if backend != "reference":
        assert torch.equal(got, rnngen.sample(*args, known=known, seed=2026, backend="reference"))
