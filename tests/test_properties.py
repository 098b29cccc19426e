"""Property-based tests (hypothesis): every op on every backend here (helpers.BACKENDS) against
the truth implementations of helpers.py, forward and backward, on random shapes, dtypes, memory
layouts, optional arguments, seeds, temperatures and row offsets.

How much runs is set by the hypothesis profile (registered in conftest.py):

    CI=true python -m pytest tests/test_properties.py                    # "ci": 15 per test,
                                                                           # derandomized
    python -m pytest tests/test_properties.py                            # "dev": 40, random
    HYPOTHESIS_PROFILE=nightly python -m pytest tests/test_properties.py  # "nightly": 300 each
    HYPOTHESIS_PROFILE=nightly python -m pytest tests/test_properties.py --hypothesis-show-statistics

The triton backend runs in Triton's interpreter here: its tests draw smaller shapes and run a
quarter of the examples (at least 5). A failure prints the shrunk example and a ``@reproduce_failure`` blob.

Properties, per op:
  scan    out and d(gi, h0, w_hh, b_hh) match autograd through truth_scan (helpers.assert_matches);
          h0 and b_hh may be None.
  decode  out (and hidden) and the gradients of every input match autograd through truth_decode;
          any bias may be None.
  sample  int64 [B, T] values in 0..K-1, equal to truth_sample with the same seed (taken mod
          2**64), temperature, row offset, cond and known values; forced known values appear
          where known/mask say; a shard of the rows drawn with its row offset equals those rows.
  all     non-contiguous inputs (transposed, strided with NaN-poisoned gaps) give bit for bit
          the result of contiguous copies; inputs at a storage offset (contiguous views the op
          does not copy, at an address ATen's BLAS may treat differently) match the truth as
          closely as contiguous ones; the cpu backend also runs at one thread (no split of the
          units or rows over threads).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import event, given, note, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import rnngen  # noqa: E402
from helpers import BACKENDS, assert_matches, rel_error, supported, truth_decode, truth_sample, truth_scan  # noqa: E402

FAST_BACKENDS = [b for b in BACKENDS if b != "triton"]
# The interpreter is slow: fewer examples (a quarter of the profile's), smaller shapes.
TRITON_EXAMPLES = max(5, settings().max_examples // 4)
needs_triton = pytest.mark.skipif("triton" not in BACKENDS, reason="triton backend not available here")

LAYOUTS = ("contiguous", "transposed", "strided", "offset")


# --- strategies -------------------------------------------------------------------------------

def _sizes(data, backend: str) -> tuple[int, int, int]:
    """B, T and H. H: any size, powers of two, and multiples of 64 (the CPU's tile width). One
    example in four takes the CPU's unit split: fewer rows than threads and H a multiple of
    64 * threads (128 on two), where the threads share each step's units (and logits)."""
    if backend == "triton":
        sizes = dict(B=st.integers(1, 4), T=st.integers(1, 8),
                     H=st.one_of(st.integers(1, 40), st.sampled_from([1, 16, 32, 64, 128])))
    elif data.draw(st.integers(0, 3), label="unit split shape") == 3:
        sizes = dict(B=st.integers(1, max(1, torch.get_num_threads() - 1)), T=st.integers(1, 40),
                     H=st.sampled_from([128, 256]))
    else:
        sizes = dict(B=st.integers(1, 9), T=st.integers(1, 40),
                     H=st.one_of(st.integers(1, 70), st.sampled_from([1, 2, 4, 8, 16, 32, 64]),
                                 st.sampled_from([64, 128, 192, 256])))
    return tuple(data.draw(sizes[k], label=k) for k in "BTH")


def _levels(data, backend: str, H: int) -> int:
    """K, the number of values a sample step draws from (with a unit-split H, half the time a
    multiple of 128 too: the logits are then split over the threads as well)."""
    if backend == "triton":
        levels = st.one_of(st.integers(1, 40), st.sampled_from([2, 16, 128, 300]))
    elif H % 128 == 0 and data.draw(st.booleans(), label="K a multiple of 128"):
        levels = st.sampled_from([128, 256])
    else:
        levels = st.one_of(st.integers(1, 300), st.sampled_from([2, 4, 8, 64, 128, 256]))
    return data.draw(levels, label="K")


def _dtype(data, backend: str, kernel: str, low_precision: bool = False) -> torch.dtype:
    options = [torch.float32, torch.float64] + ([torch.bfloat16] if low_precision else [])
    options = [d for d in options if supported(backend, kernel, d)]
    return data.draw(st.sampled_from(options), label="dtype")


def _generator(data) -> torch.Generator:
    """The tensors' values come from torch, seeded by a drawn number (not element by element)."""
    return torch.Generator().manual_seed(data.draw(st.integers(0, 2**32 - 1), label="tensor seed"))


def _threads(data, backend: str) -> int:
    """The cpu kernels split rows (or, with fewer rows than threads, units) over the threads:
    also run them on one."""
    threads = torch.get_num_threads()
    if backend == "cpu" and threads > 1:
        return data.draw(st.sampled_from([threads, 1]), label="threads")
    return threads


def _layouts(data, names) -> dict:
    return {n: data.draw(st.sampled_from(LAYOUTS), label=f"layout of {n}") for n in names}


def relayout(x: torch.Tensor | None, how: str) -> torch.Tensor | None:
    """The same values in another memory layout; gaps hold NaN (-7 for integers), so a kernel
    that reads past the view sees poison."""
    if x is None or how == "contiguous":
        return x
    fill = float("nan") if x.dtype.is_floating_point else (True if x.dtype == torch.bool else -7)
    if how == "transposed" and x.dim() >= 2:
        dims = list(reversed(range(x.dim())))
        return x.permute(dims).contiguous().permute(dims)
    if how in ("transposed", "strided"):  # a 1-D tensor is "transposed" by a step instead
        buf = torch.full((*x.shape[:-1], 2 * x.shape[-1]), fill, dtype=x.dtype)
        buf[..., ::2] = x
        return buf[..., ::2]
    assert how == "offset"
    buf = torch.full((x.numel() + 3,), fill, dtype=x.dtype)
    buf[3:] = x.flatten()
    return buf[3:].view(x.shape)


# --- running ops and the truth ----------------------------------------------------------------

def _run_and_grads(fn, inputs: dict, douts):
    """fn(**inputs) and the gradients of sum(out * dout) w.r.t. every tensor input. The leaves
    keep their layout (detach keeps strides). The gradient reaching each output is exactly dout."""
    leaves = {n: x.detach().requires_grad_(douts is not None) if x is not None else None for n, x in inputs.items()}
    outs = fn(**leaves)
    outs = outs if isinstance(outs, tuple) else (outs,)
    if douts is None:
        return outs, ()
    names = [n for n, x in leaves.items() if x is not None]
    loss = sum((o * d.to(o.dtype)).sum() for o, d in zip(outs, douts))
    # (with T = 1 and only ``out`` asked for, decode's out does not depend on w_ih or w_hh)
    return outs, torch.autograd.grad(loss, [leaves[n] for n in names], allow_unused=True, materialize_grads=True)


def _with_threads(threads, fn, *args):
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return fn(*args)
    finally:
        torch.set_num_threads(before)


def _check_against_truth(fn, truth_fn, inputs64: dict, douts64, dtype, layouts, threads):
    """Run ``fn`` on ``dtype`` copies of the inputs (contiguous, then in ``layouts``: the same
    bits) and compare outputs and gradients with autograd through ``truth_fn`` in float64 on the
    very values the backend got (for bf16: the helpers' rule, against a bf16 run of the truth)."""
    inputs = {n: None if x is None else x.to(dtype) for n, x in inputs64.items()}
    douts = [d.to(dtype) for d in douts64]
    outs, grads = _with_threads(threads, _run_and_grads, fn, inputs, douts)
    runs = [("contiguous inputs", outs, grads)]
    if any(v != "contiguous" for v in layouts.values()):
        strided = {n: relayout(x, layouts.get(n, "contiguous")) for n, x in inputs.items()}
        s_outs, s_grads = _with_threads(threads, _run_and_grads, fn, strided, douts)
        if "offset" in layouts.values():
            # An "offset" view is contiguous, so the op passes it on uncopied, and ATen's BLAS
            # (the reference backend, the cpu backend's weight-gradient GEMMs) picks its kernel by
            # the address's alignment: the last bits may differ. Such a run is held to the truth.
            runs.append(("offset inputs", s_outs, s_grads))
        else:  # every other layout is copied to a fresh (aligned) contiguous buffer first
            for i, (a, b) in enumerate(zip((*outs, *grads), (*s_outs, *s_grads))):
                assert a.shape == b.shape and torch.equal(a, b), f"result {i}: strided inputs give other numbers"
    exact = {n: None if x is None else x.double() for n, x in inputs.items()}
    t_outs, t_grads = _run_and_grads(truth_fn, exact, [d.double() for d in douts])
    low_outs, low_grads = (None,) * len(outs), (None,) * len(grads)
    if dtype not in (torch.float32, torch.float64):
        low_outs, low_grads = _run_and_grads(truth_fn, inputs, douts)
    names = [n for n, x in inputs.items() if x is not None]
    for how, outs, grads in runs:
        for i, (o, t, low) in enumerate(zip(outs, t_outs, low_outs)):
            assert o.dtype == dtype and o.shape == t.shape
            _assert_matches(o, t, low, name=f"output {i} ({how})")
        for name, g, t, low in zip(names, grads, t_grads, low_grads):
            assert g.shape == inputs[name].shape
            _assert_matches(g, t, low, name=f"d {name} ({how})")


def _assert_matches(actual, truth, low_precision_run, name):
    """helpers.assert_matches; in bf16 also passed by a relative error within 2 bf16 epsilons.
    The bf16 rule (twice the error of a plain bf16 run of the truth) is statistical: on tensors
    of a few elements a lucky plain run can have the smaller error by more than 2x. E.g. decode
    at B=3, T=4, H=1, C=2: d w_ih is off by 0.0091 on the reference and triton backends alike
    (float32 inside, one rounding at the end), the plain bf16 run by 0.0034."""
    try:
        assert_matches(actual, truth, low_precision_run, name=name)
    except AssertionError:
        if actual.dtype != torch.bfloat16 or not rel_error(actual, truth) <= 2 * torch.finfo(torch.bfloat16).eps:
            raise
        event("bf16: passed by the 2-epsilon allowance")


def _randn(gen, *shape, scale=1.0):
    return torch.randn(*shape, generator=gen, dtype=torch.float64) * scale


def _uniform(gen, *shape, bound):
    return (torch.rand(*shape, generator=gen, dtype=torch.float64) * 2 - 1) * bound


# --- scan -------------------------------------------------------------------------------------

def _scan_property(backend, data):
    dtype = _dtype(data, backend, "scan_forward", low_precision=True)
    B, T, H = _sizes(data, backend)
    with_h0 = data.draw(st.booleans(), label="h0 given")
    with_bias = data.draw(st.booleans(), label="b_hh given")
    threads = _threads(data, backend)
    gen = _generator(data)
    inputs = dict(gi=_randn(gen, B, T, 3 * H), h0=_randn(gen, B, H) if with_h0 else None,
                  w_hh=_uniform(gen, 3 * H, H, bound=H**-0.5),
                  b_hh=_uniform(gen, 3 * H, bound=H**-0.5) if with_bias else None)
    layouts = _layouts(data, [n for n, x in inputs.items() if x is not None])

    def truth(gi, h0, w_hh, b_hh):
        return truth_scan(gi, gi.new_zeros(B, H) if h0 is None else h0, w_hh, b_hh)

    _check_against_truth(lambda **a: rnngen.scan(**a, backend=backend), truth, inputs, [_randn(gen, B, T, H)],
                         dtype, layouts, threads)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@given(data=st.data())
def test_scan_property(backend, data):
    _scan_property(backend, data)


@needs_triton
@settings(max_examples=TRITON_EXAMPLES)
@given(data=st.data())
def test_scan_property_triton(data):
    _scan_property("triton", data)


# --- decode -----------------------------------------------------------------------------------

def _decode_property(backend, data):
    dtype = _dtype(data, backend, "decode_forward", low_precision=True)
    B, T, H = _sizes(data, backend)
    C = data.draw(st.integers(1, 3), label="C")
    biases = {n: data.draw(st.booleans(), label=f"{n} given") for n in ("b_ih", "b_hh", "b_out")}
    return_hidden = data.draw(st.booleans(), label="return_hidden")
    threads = _threads(data, backend)
    gen = _generator(data)
    bound = H**-0.5
    inputs = dict(h0=_randn(gen, B, H), w_ih=_uniform(gen, 3 * H, C, bound=bound),
                  b_ih=_uniform(gen, 3 * H, bound=bound), w_hh=_uniform(gen, 3 * H, H, bound=bound),
                  b_hh=_uniform(gen, 3 * H, bound=bound), w_out=_randn(gen, C, H, scale=bound),
                  b_out=_randn(gen, C))
    inputs.update({n: None for n, given_ in biases.items() if not given_})
    layouts = _layouts(data, [n for n, x in inputs.items() if x is not None])
    douts = [_randn(gen, B, T, C)] + ([_randn(gen, B, T, H)] if return_hidden else [])

    def run(**a):
        return rnngen.decode(**a, steps=T, backend=backend, return_hidden=return_hidden)

    def truth(**a):
        out, hidden = truth_decode(**a, steps=T)
        return (out, hidden) if return_hidden else out

    _check_against_truth(run, truth, inputs, douts, dtype, layouts, threads)


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@given(data=st.data())
def test_decode_property(backend, data):
    _decode_property(backend, data)


@needs_triton
@settings(max_examples=TRITON_EXAMPLES)
@given(data=st.data())
def test_decode_property_triton(data):
    _decode_property("triton", data)


# --- sample -----------------------------------------------------------------------------------

TEMPERATURES = st.one_of(st.floats(0.05, 10.0), st.sampled_from([1.0, 0.01, 1e-4, 1.2e-38]))
SEEDS = st.one_of(st.integers(0, 2**64 - 1), st.sampled_from([0, 2**32 - 1, 2**32, 2**63, 2**64 - 1]),
                  st.integers(-2**64, 2**66))  # any int: taken mod 2**64
ROW_OFFSETS = st.one_of(st.integers(0, 20), st.integers(0, 2**50))


def _truth_step(args, b, t, prefix):
    """The truth's float32 logits and uniform for row ``b`` at step ``t``, its first ``t`` values
    forced to ``prefix`` (the loop of helpers.truth_sample, for one row)."""
    h, emb, cond, w_hh, b_hh, w_out, b_out = (args[n] for n in ("h0", "emb", "cond", "w_hh", "b_hh", "w_out", "b_out"))
    H, C = h.shape[1], w_out.shape[0]
    h, cond = h[b:b + 1], cond[b:b + 1]
    eye, zero = torch.eye(3 * H, dtype=h.dtype), torch.zeros(3 * H, dtype=h.dtype)
    for s in range(t):
        h = torch.gru_cell(emb[s % C][prefix[s:s + 1]] + cond, h, eye, w_hh, zero, b_hh)
    logits = F.linear(h, w_out[t % C], b_out[t % C]).float()[0]
    u = rnngen.sample_uniforms(args["seed"], 1, args["steps"], args["row_offset"] + b)[0, t]
    return logits, float(u)


def _is_rounding_tie(logits, u, got, want, temperature, H, dtype):
    """Whether draws ``got`` and ``want`` from ``logits`` can both come out of rounding: a fused
    kernel sums the logits, exponentials and the CDF in another order than the truth (see
    rnngen/ops/sample/naive.py), so a uniform within rounding of a CDF boundary, or two logits
    within rounding of the maximum at a near-zero temperature, may go either way."""
    eps = torch.finfo(dtype).eps
    top = float(logits.abs().max()) + 1.0
    logit_err = 16 * (2.0**-24 + math.sqrt(H) * eps) * top  # summation order of logits and state
    lo, hi = min(got, want), max(got, want)
    if float(logits[got]) >= float(logits.max()) - logit_err and float(logits[want]) >= float(logits.max()) - logit_err:
        return True  # an argmax tie
    e = torch.exp((logits.double() - logits.double().max()) / temperature)
    cdf = torch.cumsum(e, 0)
    total = float(cdf[-1])
    tol = min(1e-2, 8 * len(logits) * 2.0**-24 + 4 * logit_err / temperature)
    return all(abs(float(cdf[k]) - u * total) <= tol * total for k in range(lo, hi))


def _assert_same_draws(got, want, args, temperature, H, dtype):
    """Exactly the truth's draws, except that a row may part from the truth at a step whose draw
    is a rounding tie (after it the row legitimately differs)."""
    if torch.equal(got, want):
        return
    for b in range(got.shape[0]):
        diff = (got[b] != want[b]).nonzero()
        if not len(diff):
            continue
        t = int(diff[0])
        logits, u = _truth_step(args, b, t, want[b, :t])
        tie = _is_rounding_tie(logits, u, int(got[b, t]), int(want[b, t]), temperature, H, dtype)
        note(f"row {b} parts from the truth at step {t}: {int(got[b, t])} vs {int(want[b, t])}, u={u}")
        assert tie, (f"row {b}, step {t}: drew {int(got[b, t])}, the truth {int(want[b, t])} "
                     f"(u={u}, logits={logits.tolist()})")
        event("sample: a rounding tie parted a row from the truth")


def _sample_property(backend, data):
    dtype = _dtype(data, backend, "sample")
    B, pixels, H = _sizes(data, backend)
    K = _levels(data, backend, H)
    C = data.draw(st.integers(1, 3), label="C (channels)")
    steps = pixels * C
    channel_dim = C > 1 or data.draw(st.booleans(), label="[1, K, ...] heads")
    given_ = {n: data.draw(st.booleans(), label=f"{n} given") for n in ("cond", "b_hh", "b_out")}
    temperature = data.draw(TEMPERATURES, label="temperature")
    seed = data.draw(SEEDS, label="seed")
    row_offset = data.draw(ROW_OFFSETS, label="row_offset")
    known_mode = data.draw(st.sampled_from(["none", "minus1", "mask"]), label="known")
    known_share = data.draw(st.sampled_from([0.0, 0.3, 0.9, 1.0]), label="share known")
    known_dtype = data.draw(st.sampled_from([torch.int64, torch.int32]), label="known dtype")
    threads = _threads(data, backend)
    gen = _generator(data)

    logit_scale = data.draw(st.floats(0.1, 10.0), label="logit scale")
    bound = H**-0.5
    a = dict(h0=_randn(gen, B, H), emb=_randn(gen, C, K, 3 * H), w_hh=_uniform(gen, 3 * H, H, bound=bound),
             b_hh=_uniform(gen, 3 * H, bound=bound), w_out=_randn(gen, C, K, H, scale=logit_scale * bound),
             b_out=_randn(gen, C, K), cond=_randn(gen, B, 3 * H, scale=0.1))
    a = {n: x.to(dtype) for n, x in a.items()}
    values = torch.randint(0, K, (B, steps), generator=gen)
    mask = torch.rand(B, steps, generator=gen) < known_share
    forced = torch.where(mask, values, -1)

    kwargs = dict(h0=a["h0"], emb=a["emb"], w_hh=a["w_hh"], b_hh=a["b_hh"], w_out=a["w_out"],
                  b_out=a["b_out"], cond=a["cond"])
    if not channel_dim:
        kwargs.update(emb=a["emb"][0], w_out=a["w_out"][0], b_out=a["b_out"][0])
    kwargs.update({n: None for n, g in given_.items() if not g})
    if known_mode == "minus1":
        kwargs["known"] = forced.to(known_dtype)
    elif known_mode == "mask":
        kwargs.update(known=values.to(known_dtype), mask=mask)
    options = dict(temperature=temperature, seed=seed, row_offset=row_offset, backend=backend)

    def run(kw, **extra):
        return _with_threads(threads, lambda: rnngen.sample(**kw, steps=steps, **{**options, **extra}))

    got = run(kwargs)
    assert got.dtype == torch.int64 and got.shape == (B, steps)
    assert ((got >= 0) & (got < K)).all()
    if known_mode != "none":
        assert torch.equal(got[mask], values[mask]), "a forced known value was not kept"

    # non-contiguous inputs: the same draws
    layouts = _layouts(data, [n for n, x in kwargs.items() if x is not None])
    if any(v != "contiguous" for v in layouts.values()):
        assert torch.equal(run({n: relayout(x, layouts.get(n, "contiguous")) for n, x in kwargs.items()}), got)

    # the truth (in the same dtype, so that it draws from the same logits up to rounding)
    zeros = dict(cond=a["h0"].new_zeros(B, 3 * H), b_out=a["h0"].new_zeros(C, K), b_hh=None)
    args = {n: a[n] if given_.get(n, True) else zeros[n] for n in a}
    args.update(seed=seed % 2**64, steps=steps, row_offset=row_offset)
    want = truth_sample(args["h0"], args["emb"], args["cond"], args["w_hh"], args["b_hh"], args["w_out"],
                        args["b_out"], steps, temperature, seed % 2**64, row_offset,
                        known=None if known_mode == "none" else forced)
    _assert_same_draws(got, want, args, temperature, H, dtype)

    # a shard of the rows, drawn with its row offset, draws what those rows drew in the batch
    if B > 1:
        start = data.draw(st.integers(1, B - 1), label="shard start")
        shard = {n: x[start:] if n in ("h0", "cond", "known", "mask") and x is not None else x
                 for n, x in kwargs.items()}
        assert torch.equal(run(shard, row_offset=row_offset + start), got[start:])


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@given(data=st.data())
def test_sample_property(backend, data):
    _sample_property(backend, data)


@needs_triton
@settings(max_examples=TRITON_EXAMPLES)
@given(data=st.data())
def test_sample_property_triton(data):
    _sample_property("triton", data)


def test_rounding_tie_rule_is_narrow():
    """The allowance for a draw that parts from the truth covers a uniform within rounding of a
    CDF boundary, or an argmax tie, and nothing else."""
    logits = torch.tensor([0.0, 0.0, -1.0, 3.0])
    cdf = torch.cumsum(torch.exp(logits.double() - 3.0), 0)
    at_boundary = float(cdf[0] / cdf[-1])
    assert _is_rounding_tie(logits, at_boundary, 0, 1, 1.0, 8, torch.float32)
    assert _is_rounding_tie(logits, at_boundary * (1 + 1e-7), 1, 0, 1.0, 8, torch.float32)
    assert not _is_rounding_tie(logits, at_boundary * 1.01, 0, 1, 1.0, 8, torch.float32)
    assert not _is_rounding_tie(logits, at_boundary, 0, 2, 1.0, 8, torch.float32)  # not adjacent
    assert not _is_rounding_tie(logits, 0.5, 2, 3, 1.0, 8, torch.float32)
    # near zero temperature: only the maximum, or a logit within rounding of it
    assert _is_rounding_tie(torch.tensor([1.0, 1.0 + 1e-7, 0.0]), 0.3, 0, 1, 1.2e-38, 8, torch.float32)
    assert not _is_rounding_tie(torch.tensor([1.0, 1.01, 0.0]), 0.3, 0, 1, 1.2e-38, 8, torch.float32)
