"""The shared suite: every available backend, every op, forward and backward, against the truth.

A new backend joins by registering its kernels (rnngen.dispatch.register_kernel); from then on
``helpers.BACKENDS`` lists it and every test here runs it. With a GPU the GPU backends join on
CUDA tensors (``helpers.TARGETS``: "cuda-gpu", "triton-gpu") against the same CPU truth.
"""

import pytest
import torch

import rnngen
from helpers import (BACKENDS, CELL_GATES, DTYPES, SHAPE_IDS, SHAPES, TARGETS, assert_same_draws, check_all,
                     gru_weights, supported, target, truth_decode, truth_sample, truth_sample_cell, truth_scan)


def on(device):
    """Moves tensors to ``device`` (None and numbers stay)."""
    return lambda x: x.to(device) if isinstance(x, torch.Tensor) else x


@pytest.mark.parametrize("B,T,H", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("where", TARGETS)
def test_scan_forward_backward(where, dtype, B, T, H):
    backend, device = target(where)
    if not supported(backend, "scan_forward", dtype):
        pytest.skip(f"{backend} has no {dtype} scan")
    _, _, w_hh, b_hh = gru_weights(H, 1)
    gi, h0 = torch.randn(B, T, 3 * H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    check_all(lambda *a: rnngen.scan(*a, backend=backend), truth_scan, [gi, h0, w_hh, b_hh],
              [torch.randn(B, T, H, dtype=torch.float64)], dtype, ["gi", "h0", "w_hh", "b_hh"], device=device)


@pytest.mark.parametrize("backend", BACKENDS)
def test_scan_keeps_gates_only_for_a_backward(backend):
    """The forward keeps the hidden gates when a backward will follow; the backward gives the same
    gradients from them as from recomputing them."""
    B, T, H = 3, 11, 128
    _, _, w_hh, b_hh = gru_weights(H, 1, torch.float32)
    gi, h0 = torch.randn(B, T, 3 * H), torch.randn(B, H)
    none = gi.new_empty(0)  # the GRU has no cell state
    out, _, gates = torch.ops.rnngen.scan(gi, h0, none, w_hh, b_hh, True, "gru", backend)
    assert torch.allclose(gates, torch.nn.functional.linear(torch.cat([h0[:, None], out[:, :-1]], 1), w_hh, b_hh),
                          atol=1e-5)
    assert torch.ops.rnngen.scan(gi, h0, none, w_hh, b_hh, False, "gru", backend)[2].numel() == 0
    g = torch.randn(B, T, H)
    kept = torch.ops.rnngen.scan_backward(g, none, gi, h0, none, w_hh, b_hh, out, none, gates, "gru", backend)
    recomputed = torch.ops.rnngen.scan_backward(g, none, gi, h0, none, w_hh, b_hh, out, none, none, "gru", backend)
    for a, b in zip(kept, recomputed):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("B,T,H", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("where", TARGETS)
def test_decode_forward_backward(where, dtype, B, T, H, C):
    backend, device = target(where)
    if not supported(backend, "decode_forward", dtype):
        pytest.skip(f"{backend} has no {dtype} decode")
    w_ih, b_ih, w_hh, b_hh = gru_weights(H, C)
    w_out, b_out = torch.randn(C, H, dtype=torch.float64) / H**0.5, torch.randn(C, dtype=torch.float64)
    inputs = [torch.randn(B, H, dtype=torch.float64), w_ih, b_ih, w_hh, b_hh, w_out, b_out]
    dout = [torch.randn(B, T, C, dtype=torch.float64), torch.randn(B, T, H, dtype=torch.float64)]
    check_all(lambda *a: rnngen.decode(*a, T, backend=backend, return_hidden=True),
              lambda *a: truth_decode(*a, T), inputs, dout, dtype,
              ["h0", "w_ih", "b_ih", "w_hh", "b_hh", "w_out", "b_out"], device=device)


def _sample_inputs(B, H, K, C=1, dtype=torch.float32):
    _, _, w_hh, b_hh = gru_weights(H, 1, dtype)
    return dict(h0=torch.randn(B, H, dtype=dtype), emb=torch.randn(C, K, 3 * H, dtype=dtype),
                w_hh=w_hh, b_hh=b_hh, w_out=torch.randn(C, K, H, dtype=dtype) * 2,
                b_out=torch.randn(C, K, dtype=dtype), cond=torch.randn(B, 3 * H, dtype=dtype) * 0.1)


@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("B,T,H", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("where", TARGETS)
def test_sample_matches_truth(where, dtype, B, T, H, C):
    """Same seed, same values as an independent loop (ATen's gru_cell, searchsorted draw)."""
    backend, device = target(where)
    if not supported(backend, "sample", dtype):
        pytest.skip(f"{backend} has no {dtype} sample")
    a = _sample_inputs(B, H, K=7, C=C, dtype=dtype)
    steps = T * C  # T pixels of C channels each
    d = on(device)
    got = rnngen.sample(d(a["h0"]), d(a["emb"]), d(a["w_hh"]), d(a["b_hh"]), d(a["w_out"]), d(a["b_out"]), steps,
                        cond=d(a["cond"]), temperature=0.8, seed=1234, backend=backend)
    want = truth_sample(a["h0"], a["emb"], a["cond"], a["w_hh"], a["b_hh"], a["w_out"], a["b_out"], steps, 0.8, 1234)
    assert got.shape == (B, steps)
    assert_same_draws(got, want, device)


@pytest.mark.parametrize("C", [1, 2])
@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("where", TARGETS)
def test_sample_matches_truth_wide(where, B, C):
    """H and K multiples of 128 at B=1: the fused CPU kernel then splits units and logits over
    two threads; known values too."""
    backend, device = target(where)
    H, K, steps = 128, 128, 16 * C
    a = _sample_inputs(B, H, K=K, C=C)
    known = torch.full((B, steps), -1)
    known[:, 3] = 5
    d = on(device)
    got = rnngen.sample(d(a["h0"]), d(a["emb"]), d(a["w_hh"]), d(a["b_hh"]), d(a["w_out"]), d(a["b_out"]), steps,
                        cond=d(a["cond"]), temperature=1.1, seed=77, known=d(known), backend=backend)
    want = truth_sample(a["h0"], a["emb"], a["cond"], a["w_hh"], a["b_hh"], a["w_out"], a["b_out"], steps, 1.1, 77,
                        known=known)
    assert_same_draws(got, want, device)


@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("B,H", [(1, 128), (3, 40)])
@pytest.mark.parametrize("cell", ["gru", *CELL_GATES])
@pytest.mark.parametrize("where", TARGETS)
def test_sample_lagged_inputs_match_truth(where, cell, B, H, C):
    """Lagged inputs (a pixel-RNN's row above): each lag's table row for the value that many
    steps back joins the next input, from the step it exists; lag 1 (the value just drawn,
    which in the CPU kernel's B=1 unit split only one thread has stored) and a lag beyond the
    sequence (never there) included; forced values are fed to the lagged tables too."""
    backend, device = target(where)
    if not rnngen.dispatch.supports(backend, "sample", torch.float32, cell):
        pytest.skip(f"{backend} has no {cell} sample")
    G, K, steps = {"gru": 3, **CELL_GATES}[cell], 7, 21 * C
    lags = [5 * C, 1, 6 * C + 1, 200] + ([C] if C > 1 else [])
    w_hh, b_hh = torch.randn(G * H, H) / H**0.5, torch.randn(G * H) / H**0.5
    h0, c0 = torch.randn(B, H), (torch.randn(B, H) if cell == "lstm" else None)
    emb, lag_emb = torch.randn(C, K, G * H) * 0.5, torch.randn(len(lags), C, K, G * H) * 0.5
    w_out, b_out, cond = torch.randn(C, K, H) * 3 / H**0.5, torch.randn(C, K), torch.randn(B, G * H) * 0.1
    known = torch.full((B, steps), -1)
    known[:, 4] = 2
    d = lambda x: None if x is None else x.to(device)  # noqa: E731
    got = rnngen.sample(d(h0), d(emb), d(w_hh), d(b_hh), d(w_out), d(b_out), steps, cond=d(cond), lag_emb=d(lag_emb),
                        lags=lags, temperature=0.9, seed=31, known=d(known), cell=cell, c0=d(c0), backend=backend)
    args = (cell, h0.double(), None if c0 is None else c0.double(), emb.double(), cond.double(), w_hh.double(),
            b_hh.double(), w_out.double(), b_out.double(), steps, 0.9, 31)
    want = truth_sample_cell(*args, known=known, lag_emb=lag_emb.double(), lags=lags)
    assert_same_draws(got, want, device)
    assert not torch.equal(want, truth_sample_cell(*args, known=known))  # the lags changed the draws


@pytest.mark.parametrize("where", TARGETS)
def test_sample_known_values_are_kept_and_fed(where):
    backend, device = target(where)
    d = on(device)
    B, T, H, K = 3, 30, 16, 5
    a = _sample_inputs(B, H, K)
    args = [d(x) for x in (a["h0"], a["emb"][0], a["w_hh"], a["b_hh"], a["w_out"][0], a["b_out"][0], T)]
    known = torch.randint(0, K, (B, T))
    mask = torch.rand(B, T) < 0.5
    got = rnngen.sample(*args, known=d(known), mask=d(mask), seed=5, backend=backend)
    assert torch.equal(got.cpu()[mask], known[mask])
    want = truth_sample(a["h0"], a["emb"], torch.zeros(B, 3 * H), a["w_hh"], a["b_hh"], a["w_out"], a["b_out"],
                        T, 1.0, 5, known=torch.where(mask, known, -1))
    assert_same_draws(got, want, device)  # the forced values were fed on, changing later draws
    # the -1 convention without a mask is the same request
    assert torch.equal(rnngen.sample(*args, known=d(torch.where(mask, known, -1)), seed=5, backend=backend), got)
    # everything known: the output is the input
    assert torch.equal(rnngen.sample(*args, known=d(known), seed=5, backend=backend).cpu(), known)


@pytest.mark.parametrize("where", TARGETS)
def test_sample_seeds_and_row_offset(where):
    backend, device = target(where)
    B, T, H, K = 4, 20, 8, 6
    a = {k: on(device)(v) for k, v in _sample_inputs(B, H, K).items()}
    args = (a["w_hh"], a["b_hh"], a["w_out"], a["b_out"], T)
    full = rnngen.sample(a["h0"], a["emb"], *args, seed=3, backend=backend)
    assert torch.equal(full, rnngen.sample(a["h0"], a["emb"], *args, seed=3, backend=backend))
    assert not torch.equal(full, rnngen.sample(a["h0"], a["emb"], *args, seed=4, backend=backend))
    # a shard of rows drawn with its row offset equals those rows of the whole batch
    part = rnngen.sample(a["h0"][2:], a["emb"], *args, seed=3, row_offset=2, backend=backend)
    assert torch.equal(part, full[2:])
    # seeds are taken mod 2**64
    assert torch.equal(rnngen.sample(a["h0"], a["emb"], *args, seed=3 + 2**64, backend=backend), full)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sample_seeds_above_32_bits(backend):
    """Seeds whose high 32-bit half is set (the Philox key's second word), up to 2**64 - 1 (the
    op passes it as the int64 with the same bits), and a row offset past 2**32 steps."""
    B, T, H, K = 3, 6, 8, 5
    a = _sample_inputs(B, H, K)
    args = (a["h0"], a["emb"], a["cond"], a["w_hh"], a["b_hh"], a["w_out"], a["b_out"], T, 0.9)
    for seed, row_offset in ((2**32 + 3, 0), (2**63 - 1, 0), (2**63, 2**31), (2**64 - 1, 2**40)):
        got = rnngen.sample(a["h0"], a["emb"][0], a["w_hh"], a["b_hh"], a["w_out"][0], a["b_out"][0], T,
                            cond=a["cond"], temperature=0.9, seed=seed, row_offset=row_offset, backend=backend)
        assert torch.equal(got, truth_sample(*args, seed, row_offset)), (seed, row_offset)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sample_distribution_and_temperature(backend):
    """With a head that ignores h, draws follow softmax(b_out / temperature)."""
    B, T, H, K = 64, 50, 4, 4
    p = torch.tensor([0.1, 0.2, 0.3, 0.4])
    w_out, b_out = torch.zeros(K, H), p.log()
    args = (torch.zeros(B, H), torch.randn(K, 3 * H), torch.randn(3 * H, H), None, w_out, b_out, T)
    freq = torch.bincount(rnngen.sample(*args, seed=11, backend=backend).flatten(), minlength=K) / (B * T)
    assert (freq - p).abs().max() < 0.03  # 3200 draws: 4+ standard deviations
    for cold in (0.01, 2e-38):  # near zero temperature: the most likely value (no inf - inf)
        assert (rnngen.sample(*args, temperature=cold, seed=11, backend=backend) == K - 1).all()
    # one value only: always it
    one = rnngen.sample(torch.zeros(2, H), torch.randn(1, 3 * H), torch.randn(3 * H, H), None, torch.randn(1, H), None, 4,
                        backend=backend)
    assert (one == 0).all()


@pytest.mark.parametrize("where", TARGETS)
def test_empty_batch(where):
    backend, device = target(where)
    d = on(device)
    _, _, w_hh, b_hh = (d(x) for x in gru_weights(8, 1, torch.float32))
    out = rnngen.scan(d(torch.randn(0, 5, 24)), d(torch.randn(0, 8)), w_hh, b_hh, backend=backend)
    assert out.shape == (0, 5, 8)
    out, hidden = rnngen.decode(d(torch.randn(0, 8)), d(torch.randn(24, 2)), None, w_hh, b_hh, d(torch.randn(2, 8)),
                                None, 5, backend=backend, return_hidden=True)
    assert out.shape == (0, 5, 2) and hidden.shape == (0, 5, 8)
    values = rnngen.sample(d(torch.randn(0, 8)), d(torch.randn(3, 24)), w_hh, b_hh, d(torch.randn(3, 8)), None, 5,
                           backend=backend)
    assert values.shape == (0, 5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_in_nan_out(backend):
    _, _, w_hh, b_hh = gru_weights(8, 1, torch.float32)
    gi = torch.randn(2, 4, 24)
    gi[0, 1, 0] = float("nan")
    out = rnngen.scan(gi, None, w_hh, b_hh, backend=backend)
    # the NaN enters unit 0 at step 1 and reaches every unit through W_hh from step 2 on
    assert torch.isnan(out[0, 1, 0]) and torch.isnan(out[0, 2:]).all()
    assert not torch.isnan(out[1]).any() and not torch.isnan(out[0, 0]).any()
    bad_head = torch.full((3, 8), float("nan"))
    values = rnngen.sample(torch.randn(2, 8), torch.randn(3, 24), w_hh, b_hh, bad_head, None, 4, backend=backend)
    assert (values == 0).all()  # NaN logits draw value 0 on every backend, never a crash
    # B=1, H=K=128 (the CPU's unit split): a NaN in h0 reaches every logit
    a = _sample_inputs(1, 128, 128)
    a["h0"][0, 0] = float("nan")
    values = rnngen.sample(a["h0"], a["emb"], a["w_hh"], a["b_hh"], a["w_out"], a["b_out"], 5, backend=backend)
    assert (values == 0).all()
    # decode: empty batch backward too
    h0 = torch.randn(0, 8, requires_grad=True)
    rnngen.decode(h0, torch.randn(24, 2), None, w_hh, b_hh, torch.randn(2, 8), None, 3, backend=backend).sum().backward()
    assert h0.grad.shape == (0, 8)


def test_reference_gradcheck_float64():
    """gradcheck through the registered autograd formulas (the explicit BPTT of the reference)."""
    B, T, H, C = 2, 5, 3, 2
    _, _, w_hh, b_hh = gru_weights(H, 1)
    scan_inputs = [torch.randn(B, T, 3 * H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64), w_hh, b_hh]
    assert torch.autograd.gradcheck(lambda *a: rnngen.scan(*a, backend="reference"),
                                    [x.requires_grad_() for x in scan_inputs])
    w_ih, b_ih, w_hh, b_hh = gru_weights(H, C)
    dec_inputs = [torch.randn(B, H, dtype=torch.float64), w_ih, b_ih, w_hh, b_hh,
                  torch.randn(C, H, dtype=torch.float64), torch.randn(C, dtype=torch.float64)]
    assert torch.autograd.gradcheck(lambda *a: rnngen.decode(*a, T, backend="reference", return_hidden=True),
                                    [x.detach().requires_grad_() for x in dec_inputs])


@pytest.mark.parametrize("backend", BACKENDS)
def test_opcheck_every_op(backend):
    """torch.library.opcheck: schema, fake kernel, autograd registration, AOT dispatch."""
    B, T, H, C, K = 2, 6, 8, 2, 5
    f = torch.float32
    w_ih, b_ih, w_hh, b_hh = gru_weights(H, C, f)
    gi, h0 = torch.randn(B, T, 3 * H), torch.randn(B, H)
    w_out, b_out = torch.randn(C, H), torch.randn(C)
    req = lambda *xs: [x.clone().requires_grad_() for x in xs]  # noqa: E731
    none = torch.empty(0)  # the GRU has no cell state
    out, _, gates = torch.ops.rnngen.scan(gi, h0, none, w_hh, b_hh, True, "gru", backend)
    cases = [
        (torch.ops.rnngen.scan.default, (*req(gi, h0), none, *req(w_hh, b_hh), True, "gru", backend)),
        (torch.ops.rnngen.scan.default, (gi, h0, none, w_hh, b_hh, False, "gru", backend)),
        (torch.ops.rnngen.scan_backward.default,
         (torch.randn(B, T, H), none, gi, h0, none, w_hh, b_hh, out, none, gates, "gru", backend)),
        (torch.ops.rnngen.scan_backward.default,
         (torch.randn(B, T, H), none, gi, h0, none, w_hh, b_hh, out, none, none, "gru", backend)),
        (torch.ops.rnngen.decode.default,
         (h0.clone().requires_grad_(), none, *req(w_ih, b_ih, w_hh, b_hh, w_out, b_out), T, "gru", backend)),
    ]
    dec_out, dec_hidden, _ = torch.ops.rnngen.decode(h0, none, w_ih, b_ih, w_hh, b_hh, w_out, b_out, T, "gru", backend)
    cases.append((torch.ops.rnngen.decode_backward.default,
                  (torch.randn(B, T, C), torch.randn(B, T, H), none, h0, none, w_ih, b_ih, w_hh, b_hh, w_out, b_out,
                   dec_out, dec_hidden, none, "gru", backend)))
    known = torch.full((B, T), -1, dtype=torch.int64)
    known[0, 2] = 3
    for k, lags in ((None, []), (known, []), (known, [1, 4])):
        cases.append((torch.ops.rnngen.sample.default,
                      (h0, none, torch.randn(C, K, 3 * H), torch.randn(len(lags), C, K, 3 * H), lags,
                       torch.randn(B, 3 * H), w_hh, b_hh, torch.randn(C, K, H), torch.randn(C, K), T, 0.7, 42, 0, k,
                       "gru", backend)))
    for op, args in cases:
        torch.library.opcheck(op, args)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_noncontiguous_inputs(dtype):
    """Strided views give the same result as contiguous copies (the op makes them contiguous)."""
    B, T, H = 3, 7, 8
    _, _, w_hh, b_hh = gru_weights(H, 1, dtype)
    gi = torch.randn(T, B, 3 * H, dtype=dtype).transpose(0, 1)
    w_t = w_hh.T.contiguous().T
    assert not gi.is_contiguous() and not w_t.is_contiguous()
    for backend in (b for b in BACKENDS if supported(b, "scan_forward", dtype)):
        assert torch.equal(rnngen.scan(gi, None, w_t, b_hh, backend=backend),
                           rnngen.scan(gi.contiguous(), None, w_hh, b_hh, backend=backend))


@pytest.mark.parametrize("backend", BACKENDS)
def test_tanh_keeps_its_relative_accuracy_near_zero(backend):
    """Each element relative to itself, which the norm-wise tolerance does not see: with z ~ 0
    and h0 = 0 the new state is tanh(x) for the candidate gate's input x. tanh built as
    1 - 2 / (1 + e^2x) loses the digits of a small x to cancellation (the cpu and triton kernels
    did: 1.7e-4 relative error at x = 1e-4, 1.3e-5 at 1e-3)."""
    x = torch.logspace(-7, 1, 400) * torch.tensor([1.0, -1.0]).repeat(200)  # |x| from 1e-7 to 10
    gi = torch.zeros(len(x), 1, 3)
    gi[:, 0, 1] = -30.0  # z = sigmoid(-30): h' = (1 - z) tanh(x) + z * 0
    gi[:, 0, 2] = x
    h = rnngen.scan(gi, torch.zeros(len(x), 1), torch.zeros(3, 1), torch.zeros(3), backend=backend)[:, 0, 0]
    want = torch.tanh(x.double())
    worst = ((h.double() - want) / want).abs().max().item()
    assert worst < 1e-6, f"relative error {worst:.3g}"


@pytest.mark.parametrize("backend", BACKENDS)
def test_results_do_not_depend_on_the_thread_count(backend):
    """One thread (rows split over one) and all threads (the CPU kernels split the units at B=1)
    give the same numbers."""
    B, T, H, K = 1, 12, 128, 128
    a = _sample_inputs(B, H, K)
    gi = torch.randn(B, T, 3 * H)
    w_ih, b_ih, _, _ = gru_weights(H, 2, torch.float32)
    w_out, b_out = torch.randn(2, H) / H**0.5, torch.randn(2)

    def run():
        return (rnngen.scan(gi, a["h0"], a["w_hh"], a["b_hh"], backend=backend),
                rnngen.decode(a["h0"], w_ih, b_ih, a["w_hh"], a["b_hh"], w_out, b_out, T, backend=backend),
                rnngen.sample(a["h0"], a["emb"], a["w_hh"], a["b_hh"], a["w_out"], a["b_out"], T, seed=3,
                              backend=backend))

    threads = torch.get_num_threads()
    many = run()
    torch.set_num_threads(1)
    try:
        one = run()
    finally:
        torch.set_num_threads(threads)
    for x, y in zip(many, one):
        assert torch.equal(x, y)


@pytest.mark.parametrize("env", ["OMP_THREAD_LIMIT=1", "OMP_DYNAMIC=true"])
def test_smaller_openmp_team_does_not_hang(env):
    """OpenMP may give the kernels fewer threads than asked: they must still finish, and agree."""
    import os
    import subprocess
    import sys

    code = ("import torch, rnngen\n"
            "torch.manual_seed(0)\n"
            "gi, w = torch.randn(1, 30, 384), torch.randn(384, 128) / 12\n"
            "out = rnngen.scan(gi, None, w, None, backend='auto')\n"
            "ref = rnngen.scan(gi, None, w, None, backend='reference')\n"
            "assert torch.allclose(out, ref, atol=1e-5), (out - ref).abs().max()\n")
    key, value = env.split("=")
    run = subprocess.run([sys.executable, "-c", code], env={**os.environ, key: value}, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
