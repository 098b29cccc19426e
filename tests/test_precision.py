"""precision="bf16": decode's and sample's weights rounded to bfloat16, everything else float32.

The contract: every backend computes exactly "round w_ih, w_hh, w_out (decode) or w_hh, w_out
(sample) to the nearest bfloat16, then the float32 op". So each backend in bf16 mode is checked
against the float64 truth run on the rounded weights, to the float32 tolerance, and sample must
draw the same values. Against precision="fp32" the outputs differ by the rounding's effect,
bounded below at the benchmark's sizes.
"""

import pytest
import torch
from torch import nn

import rnngen
import torch.nn.functional as F
from helpers import BACKENDS, SHAPE_IDS, SHAPES, assert_matches, gru_weights, truth_decode, truth_sample

# The unit-split shapes of the CPU kernels at B=1 (H a multiple of 128: one 64-wide tile per
# gate and thread at H=128, two at H=256) besides the shared odd sizes.
BF16_SHAPES = SHAPES + [(1, 7, 256)]
BF16_IDS = SHAPE_IDS + ["B1-T7-H256"]


def bf16(x):
    return x.to(torch.bfloat16).to(x.dtype)


def _grads(fn, inputs, dout):
    inputs = [x.detach().requires_grad_() for x in inputs]
    outs = fn(*inputs)
    loss = sum((o.double() * d).sum() for o, d in zip(outs, dout))
    return outs, torch.autograd.grad(loss, inputs)


@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("B,T,H", BF16_SHAPES, ids=BF16_IDS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_decode_bf16_is_float32_on_rounded_weights(backend, B, T, H, C):
    """Outputs and gradients: the float64 truth with w_ih, w_hh, w_out rounded to bfloat16, to the
    float32 tolerance. The gradients reach the float32 weights straight through the rounding."""
    w_ih, b_ih, w_hh, b_hh = gru_weights(H, C)
    w_out, b_out = torch.randn(C, H, dtype=torch.float64) / H**0.5, torch.randn(C, dtype=torch.float64)
    inputs = [torch.randn(B, H, dtype=torch.float64), w_ih, b_ih, w_hh, b_hh, w_out, b_out]
    dout = [torch.randn(B, T, C, dtype=torch.float64), torch.randn(B, T, H, dtype=torch.float64)]
    outs, grads = _grads(lambda *a: rnngen.decode(*a, T, backend=backend, return_hidden=True, precision="bf16"),
                         [x.float() for x in inputs], dout)
    rounded = [bf16(x.float()).double() if i in (1, 3, 5) else x for i, x in enumerate(inputs)]
    t_outs, t_grads = _grads(lambda *a: truth_decode(*a, T), rounded, dout)
    for i, (o, t) in enumerate(zip(outs, t_outs)):
        assert o.dtype == torch.float32
        assert_matches(o, t, name=f"output {i}")
    for name, g, t in zip(["h0", "w_ih", "b_ih", "w_hh", "b_hh", "w_out", "b_out"], grads, t_grads):
        assert g.dtype == torch.float32
        assert_matches(g, t, name=f"d {name}")


def _sample_inputs(B, H, K, C):
    _, _, w_hh, b_hh = gru_weights(H, 1, torch.float32)
    return dict(h0=torch.randn(B, H), emb=torch.randn(C, K, 3 * H), w_hh=w_hh, b_hh=b_hh,
                w_out=torch.randn(C, K, H) * 2, b_out=torch.randn(C, K), cond=torch.randn(B, 3 * H) * 0.1)


def _assert_same_draws(got, want, a, w_hh, w_out, temperature, seed, known):
    """got == want, but for a row whose first difference is a draw that lands within float32
    rounding of a CDF boundary (relative margin under 1e-5, recomputed in float64 along want's
    path): float32 sums in another order may then pick the neighbouring value, after which the
    row goes its own way."""
    B, steps = want.shape
    C, K = w_out.shape[:2]
    H = w_hh.shape[1]
    u = rnngen.sample_uniforms(seed, B, steps, 0).double()
    eye, zero = torch.eye(3 * H, dtype=torch.float64), torch.zeros(3 * H, dtype=torch.float64)
    d = {k: v.double() for k, v in a.items()}
    h = d["h0"]
    first = [int(row.nonzero()[0]) if row.any() else steps for row in (got != want)]
    for t in range(max(f for f in first if f < steps) + 1 if any(f < steps for f in first) else 0):
        logits = F.linear(h, w_out[t % C].double(), d["b_out"][t % C])
        cdf = torch.cumsum(torch.exp((logits - logits.max(-1, keepdim=True).values) / temperature), -1)
        for b in range(B):
            if first[b] == t:
                assert known[b, t] < 0, f"row {b} step {t}: a known value was not kept"
                margin = float(((cdf[b] - u[b, t] * cdf[b, -1]).abs() / cdf[b, -1]).min())
                assert margin < 1e-5, f"row {b} step {t}: drew {int(got[b, t])}, expected {int(want[b, t])}"
        h = torch.gru_cell(d["emb"][t % C][want[:, t]] + d["cond"], h, eye, w_hh.double(), zero, d["b_hh"])


@pytest.mark.parametrize("K", [7, 128])
@pytest.mark.parametrize("C", [1, 2])
@pytest.mark.parametrize("B,T,H", BF16_SHAPES, ids=BF16_IDS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_sample_bf16_draws_what_float32_draws_on_rounded_weights(backend, B, T, H, C, K):
    """Same seed, same values as the truth loop on w_hh, w_out rounded to bfloat16 (K = 128 at
    H = 128 or 256 and B = 1: the CPU kernel splits units and logits over two threads), up to
    draws within float32 rounding of a CDF boundary."""
    a = _sample_inputs(B, H, K, C)
    steps = T * C
    known = torch.full((B, steps), -1)
    known[:, steps // 2] = K - 1
    got = rnngen.sample(a["h0"], a["emb"], a["w_hh"], a["b_hh"], a["w_out"], a["b_out"], steps, cond=a["cond"],
                        temperature=0.9, seed=99, known=known, backend=backend, precision="bf16")
    want = truth_sample(a["h0"], a["emb"], a["cond"], bf16(a["w_hh"]), a["b_hh"], bf16(a["w_out"]), a["b_out"],
                        steps, 0.9, 99, known=known)
    _assert_same_draws(got, want, a, bf16(a["w_hh"]), bf16(a["w_out"]), 0.9, 99, known)


def test_bf16_differs_from_fp32_by_the_weight_rounding_only():
    """The article's generator at the benchmark's size (h=256, 28x28 = 784 steps, nn.GRUCell's
    initialisation): bf16 mode against fp32 mode. Each weight moves by at most 2^-9 of itself
    (bfloat16 keeps 8 significant bits), so each gate pre-activation by at most 2^-9 of the sum
    of |terms| and typically far less (the errors have random signs); the GRU's update
    z h + (1 - z) n does not amplify them, so over 784 steps the image stays within about 1% of
    the fp32 one: the bound is a relative (norm) error of 1e-2; measured 4.5e-4 here (2.4e-3 for
    another initialisation)."""
    torch.manual_seed(0)
    fp32 = rnngen.RNNImageGenerator(100, 256, 28, backend="cpu" if "cpu" in BACKENDS else "reference")
    half = rnngen.RNNImageGenerator(100, 256, 28, backend=fp32.backend, precision="bf16")
    half.load_state_dict(fp32.state_dict())
    z = torch.randn(4, 100)
    with torch.no_grad():
        a, b = fp32(z), half(z)
    err = float((a - b).norm() / a.norm())
    assert 0 < err < 1e-2, err


def test_generator_and_pixel_gru_pass_the_option_on():
    torch.manual_seed(0)
    gen = rnngen.RNNImageGenerator(5, 64, 3, backend="reference", precision="bf16")
    assert "precision='bf16'" in repr(gen)
    z = torch.randn(2, 5)
    rnn = gen.rnn
    want = rnngen.decode(gen.fc_init(z), bf16(rnn.weight_ih), rnn.bias_ih, bf16(rnn.weight_hh), rnn.bias_hh,
                         bf16(gen.fc_out.weight), gen.fc_out.bias, 9, backend="reference")
    assert torch.equal(gen(z), want.view(2, 3, 3))

    model = rnngen.PixelGRU((4, 4), levels=16, hidden_size=128)
    images = {b: model.sample(2, seed=5, backend=b, precision="bf16") for b in BACKENDS}
    for b in BACKENDS:
        assert torch.equal(images[b], images["reference"]), b
    mask = torch.zeros(4, 4, dtype=torch.bool)
    mask[:2] = True
    done = {b: model.complete(images["reference"], mask, seed=6, backend=b, precision="bf16") for b in BACKENDS}
    for b in BACKENDS:
        assert torch.equal(done[b], done["reference"]), b
    assert torch.equal(done["reference"][..., :2, :], images["reference"][..., :2, :])


@pytest.mark.parametrize("bad", ["fp16", "BF16", "bfloat16", None, 16, torch.bfloat16])
def test_bad_precision_values(bad):
    H = 8
    w_ih, b_ih, w_hh, b_hh = gru_weights(H, 1, torch.float32)
    with pytest.raises(ValueError, match="precision"):
        rnngen.decode(torch.randn(1, H), w_ih, b_ih, w_hh, b_hh, torch.randn(1, H), None, 3, precision=bad)
    with pytest.raises(ValueError, match="precision"):
        rnngen.sample(torch.randn(1, H), torch.randn(5, 3 * H), w_hh, b_hh, torch.randn(5, H), None, 3,
                      precision=bad)
    with pytest.raises(ValueError, match="precision"):
        rnngen.RNNImageGenerator(5, H, 3, precision=bad)


@pytest.mark.parametrize("dtype", [torch.float64, torch.bfloat16], ids=str)
def test_bf16_precision_needs_float32_inputs(dtype):
    H = 8
    w_ih, b_ih, w_hh, b_hh = gru_weights(H, 1, dtype)
    h0, w_out = torch.randn(1, H, dtype=dtype), torch.randn(1, H, dtype=dtype)
    with pytest.raises(ValueError, match="precision='bf16' needs float32"):
        rnngen.decode(h0, w_ih, b_ih, w_hh, b_hh, w_out, None, 3, precision="bf16")
    with pytest.raises(ValueError, match="precision='bf16' needs float32"):
        rnngen.sample(h0, torch.randn(5, 3 * H, dtype=dtype), w_hh, b_hh, torch.randn(5, H, dtype=dtype), None, 3,
                      precision="bf16")


@pytest.mark.parametrize("backend", BACKENDS)
def test_opcheck_with_rounded_weights(backend):
    """The ops' schemas are unchanged: bf16 mode passes float32 tensors holding bfloat16 values,
    which the CPU kernels store as bf16 pairs once H gives whole 64-wide tiles (3H >= 64) and
    each thread has fewer than 4 rows (here 1 or 2)."""
    B, T, H, C, K = 2, 5, 64, 2, 64
    w_ih, b_ih, w_hh, b_hh = gru_weights(H, C, torch.float32)
    w_ih, w_hh = bf16(w_ih), bf16(w_hh)
    h0, w_out, b_out = torch.randn(B, H), bf16(torch.randn(C, H)), torch.randn(C)
    req = lambda *xs: [x.clone().requires_grad_() for x in xs]  # noqa: E731
    none = torch.empty(0)  # the GRU has no cell state
    torch.library.opcheck(torch.ops.rnngen.decode.default,
                          (h0.clone().requires_grad_(), none, *req(w_ih, b_ih, w_hh, b_hh, w_out, b_out), T, "gru",
                           backend))
    torch.library.opcheck(torch.ops.rnngen.sample.default,
                          (h0, none, torch.randn(C, K, 3 * H), torch.randn(0, C, K, 3 * H), [], torch.randn(B, 3 * H),
                           w_hh, b_hh,
                           bf16(torch.randn(C, K, H)), torch.randn(C, K), T * C, 0.7, 42, 0, None, "gru", backend))


def test_rounding_is_to_nearest_even_and_keeps_float32():
    from rnngen.ops import _checks

    w = torch.tensor([1.0, 1 + 2**-8, 1 + 3 * 2**-8, 1 + 2**-9, -(1 + 2**-7 + 2**-9)], requires_grad=True)
    r = _checks.weight_in("bf16", w)
    assert r.dtype == torch.float32
    assert r.tolist() == [1.0, 1.0, 1 + 2**-6, 1.0, -(1 + 2**-7)]
    (g,) = torch.autograd.grad((r * torch.arange(5.0)).sum(), w)
    assert g.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]  # straight through
    assert _checks.weight_in("fp32", w) is w


@pytest.mark.skipif(rnngen.backend_status()["cpu"] != "available", reason="cpu backend not built")
@pytest.mark.parametrize("op", ["decode", "sample"])
def test_cpu_pairs_only_when_every_weight_is_a_bf16_number(op):
    """The CPU kernels store weights whose values are all bfloat16 numbers as bf16 pairs; at B=1
    the threads each check their own rows. One float32 weight among bfloat16 ones, in the last
    thread's rows (W_hh's last row; the last logit's row of the head), must keep every thread on
    float32 tiles: the same bits as one thread, which checks the whole weight first."""
    torch.manual_seed(0)
    H, K, T = 256, 256, 9
    _, _, w_hh, b_hh = gru_weights(H, 1, torch.float32)
    w_hh = bf16(w_hh)
    w_hh[-1, 5] = 0.75 + 2.0**-12  # a float32 value the pairs would cut to 0.75
    h0 = torch.randn(1, H)
    if op == "decode":
        w_ih, b_ih = bf16(torch.randn(3 * H, 1)), torch.randn(3 * H)
        w_out, b_out = bf16(torch.randn(1, H) / H**0.5), torch.randn(1)
        run = lambda: rnngen.decode(h0, w_ih, b_ih, w_hh, b_hh, w_out, b_out, T, backend="cpu", return_hidden=True)
    else:  # the first draw is the argmax of w_out[:, 3] + b_out: 255 (1.498046875 > 1.4951875),
        # or 254 if the pairs cut w_out[255, 3] to 1.4921875
        h0 = torch.zeros(1, H)
        h0[0, 3] = 1.0
        w_out, b_out = bf16(torch.randn(K, H)), torch.full((K,), -100.0)
        w_out[254, 3], w_out[255, 3] = 1.4921875, 1.5 - 2.0**-9
        b_out[254], b_out[255] = 0.003, 0.0
        emb = torch.randn(K, 3 * H)
        run = lambda: (rnngen.sample(h0, emb, w_hh, b_hh, w_out, b_out, T, temperature=1e-6, seed=4,
                                     backend="cpu"),)
    threads = torch.get_num_threads()
    torch.set_num_threads(max(2, threads))
    try:
        many = run()
        torch.set_num_threads(1)
        one = run()
    finally:
        torch.set_num_threads(threads)
    for x, y in zip(many, one):
        assert torch.equal(x, y)
    if op == "sample":
        assert many[0][0, 0] == 255
