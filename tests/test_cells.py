"""The shared suite for the cells beside the GRU (LSTM, Elman tanh and relu): every backend that
has a cell's kernels, every op, forward and backward, against ATen's own cell steps.

The GRU runs through tests/test_ops.py; these are the same checks, with the cell as an axis,
and with a GPU the GPU backends on CUDA tensors too (helpers.TARGETS).
"""

import warnings

import pytest
import torch

import rnngen
from helpers import (BACKENDS, CELL_GATES, SHAPE_IDS, SHAPES, TARGETS, assert_matches, assert_same_draws, check_all,
                     target, truth_decode_cell, truth_sample_cell, truth_scan_cell)

CELLS = list(CELL_GATES)
DTYPES = [torch.float32, torch.float64, torch.bfloat16]


def _weights(G, H, in_size, dtype=torch.float64):
    bound = 1 / H**0.5
    return tuple((torch.rand(*shape, dtype=dtype) * 2 - 1) * bound
                 for shape in ((G * H, in_size), (G * H,), (G * H, H), (G * H,)))


def _need(backend, kernel, dtype, cell):
    if not rnngen.dispatch.supports(backend, kernel, dtype, cell):
        pytest.skip(f"{backend} has no {cell} {kernel} kernel for {dtype} (test_backend_without_a_cell_kernel)")


@pytest.mark.parametrize("B,T,H", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("where", TARGETS)
def test_scan_forward_backward(where, cell, dtype, B, T, H):
    backend, device = target(where)
    _need(backend, "scan_forward", dtype, cell)
    G = CELL_GATES[cell]
    _, _, w_hh, b_hh = _weights(G, H, 1)
    gi, h0 = torch.randn(B, T, G * H, dtype=torch.float64), torch.randn(B, H, dtype=torch.float64)
    dout = torch.randn(B, T, H, dtype=torch.float64)
    if cell == "lstm":
        c0, dc = torch.randn(B, H, dtype=torch.float64), torch.randn(B, T, H, dtype=torch.float64)
        check_all(lambda gi, h0, c0, w, b: rnngen.scan(gi, h0, w, b, cell=cell, c0=c0, return_cell_state=True,
                                                     backend=backend),
                  lambda *a: truth_scan_cell(cell, *a), [gi, h0, c0, w_hh, b_hh], [dout, dc], dtype,
                  ["gi", "h0", "c0", "w_hh", "b_hh"], device=device)
    else:
        check_all(lambda *a: (rnngen.scan(*a, cell=cell, backend=backend),),
                  lambda gi, h0, w, b: truth_scan_cell(cell, gi, h0, None, w, b)[:1], [gi, h0, w_hh, b_hh], [dout],
                  dtype, ["gi", "h0", "w_hh", "b_hh"], relu=cell == "rnn_relu", device=device)


@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("B,T,H", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("where", TARGETS)
def test_decode_forward_backward(where, cell, dtype, B, T, H, C):
    backend, device = target(where)
    _need(backend, "decode_forward", dtype, cell)
    G = CELL_GATES[cell]
    w_ih, b_ih, w_hh, b_hh = _weights(G, H, C)
    w_out, b_out = torch.randn(C, H, dtype=torch.float64) / H**0.5, torch.randn(C, dtype=torch.float64)
    h0 = torch.randn(B, H, dtype=torch.float64)
    weights = [w_ih, b_ih, w_hh, b_hh, w_out, b_out]
    douts = [torch.randn(B, T, C, dtype=torch.float64), torch.randn(B, T, H, dtype=torch.float64)]
    names = ["w_ih", "b_ih", "w_hh", "b_hh", "w_out", "b_out"]
    if cell == "lstm":
        c0 = torch.randn(B, H, dtype=torch.float64)
        check_all(lambda h0, c0, *w: rnngen.decode(h0, *w, T, cell=cell, c0=c0, return_hidden=True,
                                                   backend=backend),
                  lambda h0, c0, *w: truth_decode_cell(cell, h0, c0, *w, T), [h0, c0, *weights],
                  douts + [torch.randn(B, T, H, dtype=torch.float64)], dtype, ["h0", "c0", *names], device=device)
    else:
        check_all(lambda *a: rnngen.decode(*a, T, cell=cell, return_hidden=True, backend=backend),
                  lambda h0, *w: truth_decode_cell(cell, h0, None, *w, T)[:2], [h0, *weights], douts, dtype,
                  ["h0", *names], relu=cell == "rnn_relu", device=device)


@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("B,T,H", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("where", TARGETS)
def test_sample_matches_truth(where, cell, dtype, B, T, H, C):
    """Same seed, same values as ATen's cell steps with a searchsorted draw; some values forced."""
    backend, device = target(where)
    _need(backend, "sample", dtype, cell)
    G, K = CELL_GATES[cell], 7
    _, _, w_hh, b_hh = _weights(G, H, 1, dtype)
    h0 = torch.randn(B, H, dtype=dtype)
    c0 = torch.randn(B, H, dtype=dtype) if cell == "lstm" else None
    emb, cond = torch.randn(C, K, G * H, dtype=dtype) * 0.5, torch.randn(B, G * H, dtype=dtype) * 0.1
    w_out, b_out = torch.randn(C, K, H, dtype=dtype), torch.randn(C, K, dtype=dtype)
    steps = T * C
    known = torch.full((B, steps), -1)
    known[:, steps // 2] = 2
    d = lambda x: None if x is None else x.to(device)  # noqa: E731
    got = rnngen.sample(d(h0), d(emb), d(w_hh), d(b_hh), d(w_out), d(b_out), steps, cond=d(cond), temperature=0.8,
                        seed=99, known=d(known), cell=cell, c0=d(c0), backend=backend)
    want = truth_sample_cell(cell, h0, c0, emb, cond, w_hh, b_hh, w_out, b_out, steps, 0.8, 99, known=known)
    assert_same_draws(got, want, device)


@pytest.mark.parametrize("cell", CELLS)
def test_gradcheck_reference(cell):
    """torch.autograd.gradcheck in float64 on the reference: scan and decode, every input."""
    G, B, T, H, C = CELL_GATES[cell], 2, 4, 3, 2
    w_ih, b_ih, w_hh, b_hh = _weights(G, H, C)
    gi, h0, c0 = torch.randn(B, T, G * H, dtype=torch.float64), *torch.randn(2, B, H, dtype=torch.float64)
    w_out, b_out = torch.randn(C, H, dtype=torch.float64), torch.randn(C, dtype=torch.float64)
    req = lambda *xs: [x.detach().requires_grad_() for x in xs]  # noqa: E731
    if cell == "lstm":
        assert torch.autograd.gradcheck(
            lambda gi, h0, c0, w, b: rnngen.scan(gi, h0, w, b, cell=cell, c0=c0, return_cell_state=True,
                                                 backend="reference"), req(gi, h0, c0, w_hh, b_hh))
        assert torch.autograd.gradcheck(
            lambda h0, c0, *w: rnngen.decode(h0, *w, T, cell=cell, c0=c0, return_hidden=True, backend="reference"),
            req(h0, c0, w_ih, b_ih, w_hh, b_hh, w_out, b_out))
    else:
        assert torch.autograd.gradcheck(lambda *a: rnngen.scan(*a, cell=cell, backend="reference"),
                                        req(gi, h0, w_hh, b_hh))
        assert torch.autograd.gradcheck(lambda *a: rnngen.decode(*a, T, cell=cell, return_hidden=True,
                                                                 backend="reference"),
                                        req(h0, w_ih, b_ih, w_hh, b_hh, w_out, b_out))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_opcheck_every_op(backend, cell):
    """torch.library.opcheck on every op with this cell: schema, fake kernel, autograd, AOT dispatch."""
    if not rnngen.dispatch.supports(backend, "scan_forward", torch.float32, cell):
        pytest.skip(f"{backend} has no {cell} kernels")
    G, B, T, H, C, K = CELL_GATES[cell], 2, 5, 8, 2, 5
    w_ih, b_ih, w_hh, b_hh = _weights(G, H, C, torch.float32)
    gi, h0 = torch.randn(B, T, G * H), torch.randn(B, H)
    c0 = torch.randn(B, H) if cell == "lstm" else torch.empty(0)
    w_out, b_out = torch.randn(C, H), torch.randn(C)
    req = lambda *xs: [x.clone().requires_grad_() for x in xs]  # noqa: E731
    out, c_out, gates = torch.ops.rnngen.scan(gi, h0, c0, w_hh, b_hh, True, cell, backend)
    grad_c = torch.randn_like(c_out)
    dec = torch.ops.rnngen.decode(h0, c0, w_ih, b_ih, w_hh, b_hh, w_out, b_out, T, cell, backend)
    cases = [
        (torch.ops.rnngen.scan.default, (*req(gi, h0, c0, w_hh, b_hh), True, cell, backend)),
        (torch.ops.rnngen.scan.default, (gi, h0, c0, w_hh, b_hh, False, cell, backend)),
        (torch.ops.rnngen.scan_backward.default,
         (torch.randn(B, T, H), grad_c, gi, h0, c0, w_hh, b_hh, out, c_out, gates, cell, backend)),
        (torch.ops.rnngen.scan_backward.default,
         (torch.randn(B, T, H), grad_c, gi, h0, c0, w_hh, b_hh, out, c_out, torch.empty(0), cell, backend)),
        (torch.ops.rnngen.decode.default, (*req(h0, c0, w_ih, b_ih, w_hh, b_hh, w_out, b_out), T, cell, backend)),
        (torch.ops.rnngen.decode_backward.default,
         (torch.randn(B, T, C), torch.randn(B, T, H), torch.randn_like(dec[2]), h0, c0, w_ih, b_ih, w_hh, b_hh,
          w_out, b_out, *dec, cell, backend)),
        (torch.ops.rnngen.sample.default,
         (h0, c0, torch.randn(C, K, G * H), torch.randn(2, C, K, G * H), [1, 3], torch.randn(B, G * H), w_hh, b_hh,
          torch.randn(C, K, H), torch.randn(C, K), T * C, 0.7, 42, 0, None, cell, backend)),
    ]
    for op, args in cases:
        torch.library.opcheck(op, args)


def test_lstm_cell_state_gradient_alone():
    """A loss on the LSTM's cell states only (the hidden states unused) still reaches every input."""
    B, T, H = 2, 6, 5
    _, _, w_hh, b_hh = _weights(4, H, 1)
    gi, h0, c0 = torch.randn(B, T, 4 * H, dtype=torch.float64), *torch.randn(2, B, H, dtype=torch.float64)
    inputs = [x.requires_grad_() for x in (gi, h0, c0, w_hh, b_hh)]
    _, c = rnngen.scan(*inputs[:2], *inputs[3:], cell="lstm", c0=inputs[2], return_cell_state=True,
                       backend="reference")
    grads = torch.autograd.grad(c[:, -1].sum(), inputs)
    truth = torch.autograd.grad(truth_scan_cell("lstm", gi, h0, c0, w_hh, b_hh)[1][:, -1].sum(), inputs)
    for g, t in zip(grads, truth):
        assert torch.allclose(g, t, atol=1e-12)


def test_backend_without_a_cell_kernel():
    """A backend named for a cell it has no kernel for refuses by name; "auto" falls back to the
    reference with a warning that names the missing kernel."""
    for backend in rnngen.backends():
        if backend == "reference" or rnngen.dispatch.supports(backend, "scan_forward", torch.float32, "lstm"):
            continue
        with pytest.raises(ValueError, match=f"backend '{backend}' has no lstm scan_forward kernel"):
            rnngen.scan(torch.randn(1, 2, 8), None, torch.randn(8, 2), cell="lstm", backend=backend)
    rnngen.dispatch._warned.clear()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = rnngen.scan(torch.randn(1, 2, 8), None, torch.randn(8, 2), cell="lstm")
    assert out.shape == (1, 2, 2)
    if not rnngen.dispatch.supports("cpu", "scan_forward", torch.float32, "lstm"):
        assert any("no lstm scan_forward kernel" in str(w.message) for w in caught)


def test_bad_cell_arguments():
    gi, w = torch.randn(2, 3, 8), torch.randn(8, 2)
    with pytest.raises(ValueError, match="cell must be one of"):
        rnngen.scan(gi, None, w, cell="lstmm")
    with pytest.raises(TypeError, match="cell must be a str"):
        rnngen.scan(gi, None, w, cell=4)
    with pytest.raises(ValueError, match=r"w_hh must have shape \[3H, H\]"):
        rnngen.scan(gi, None, w)  # an LSTM's weight given to the GRU
    with pytest.raises(ValueError, match=r"gi must have shape \[\*, \*, 4\]"):
        rnngen.scan(torch.randn(2, 3, 6), None, torch.randn(4, 4), cell="rnn_tanh")
    with pytest.raises(ValueError, match="c0 is only for a cell with a cell state"):
        rnngen.scan(torch.randn(2, 3, 2), None, torch.randn(2, 2), cell="rnn_relu", c0=torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"c0 must have shape \[2, 2\]"):
        rnngen.scan(gi, None, w, cell="lstm", c0=torch.zeros(3, 2))
    with pytest.raises(TypeError, match="c0 must have dtype torch.float32"):
        rnngen.scan(gi, None, w, cell="lstm", c0=torch.zeros(2, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="return_cell_state=True needs a cell with a cell state"):
        rnngen.scan(torch.randn(2, 3, 6), None, torch.randn(6, 2), return_cell_state=True)
    with pytest.raises(ValueError, match=r"emb must have shape \[3, 8\]"):
        rnngen.sample(torch.randn(1, 2), torch.randn(3, 6), w, None, torch.randn(3, 2), None, 4, cell="lstm")
    with pytest.raises(ValueError, match=r"w_ih must have shape \[8, 1\]"):
        rnngen.decode(torch.randn(1, 2), torch.randn(6, 1), None, w, None, torch.randn(1, 2), None, 4, cell="lstm")


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_long_sequences_do_not_drift(backend, cell):
    """784 steps (a 28x28 image) at H=256 in float32 against the float64 truth, nn's
    initialisation: the recurrences contract, so rounding does not build up. Bound 1e-5 (the
    suite's float32 rule); measured on the cpu backend 1.5e-7 to 4.5e-7 (2026-12-04)."""
    _need(backend, "scan_forward", torch.float32, cell)
    if backend == "triton":
        pytest.skip("784 interpreted steps take minutes")
    torch.manual_seed(0)
    G, B, T, H = CELL_GATES[cell], 2, 784, 256
    w_ih, b_ih, w_hh, b_hh = _weights(G, H, 1)
    gi = torch.nn.functional.linear(torch.randn(B, T, 1, dtype=torch.float64), w_ih, b_ih)
    h0 = torch.randn(B, H, dtype=torch.float64) * 0.5
    c0 = torch.randn(B, H, dtype=torch.float64) * 0.5 if cell == "lstm" else None
    f32 = lambda t: None if t is None else t.float()  # noqa: E731
    got = rnngen.scan(gi.float(), h0.float(), w_hh.float(), b_hh.float(), cell=cell, c0=f32(c0), backend=backend)
    assert_matches(got, truth_scan_cell(cell, gi, h0, c0, w_hh, b_hh)[0], name="scan")
    w_out = torch.randn(1, H, dtype=torch.float64) / H**0.5
    got = rnngen.decode(h0.float(), w_ih.float(), b_ih.float(), w_hh.float(), b_hh.float(), w_out.float(), None, T,
                        cell=cell, c0=f32(c0), backend=backend)
    want = truth_decode_cell(cell, h0, c0, w_ih, b_ih, w_hh, b_hh, w_out, torch.zeros(1, dtype=torch.float64), T)[0]
    assert_matches(got, want, name="decode")
