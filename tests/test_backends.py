"""Backend discovery and selection."""

import importlib
import os
import warnings

import pytest
import torch

import rnngen
from rnngen import dispatch


def test_status_names_every_backend():
    status = rnngen.backend_status()
    assert list(status) == ["reference", "cpu", "triton", "cuda"]
    assert status["reference"] == "available"
    assert rnngen.backends()[0] == "reference"
    assert set(rnngen.backends()) == {name for name, s in status.items() if s == "available"}
    for name, s in status.items():
        assert s == "available" or s.startswith(("not built", "built,", "installed", "not installed")), (name, s)
    if not torch.cuda.is_available():
        assert status["cuda"] != "available"


def test_cpu_extension_status_matches_the_build():
    status = rnngen.backend_status()["cpu"]
    try:
        importlib.import_module("rnngen._cpu")
    except ImportError:
        assert status.startswith("not built")
    else:
        assert not status.startswith("not built")


def test_auto_falls_back_to_reference_with_one_warning(monkeypatch):
    monkeypatch.setattr(dispatch, "_warned", set())
    cpu_ready = rnngen.backend_status()["cpu"] == "available"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        names = {dispatch.resolve("auto", torch.device("cpu"), k, torch.float32) for k in dispatch.KERNELS}
    if cpu_ready:
        assert names == {"cpu"} and not caught
    else:
        assert names == {"reference"}
        assert len(caught) == 1 and "reference" in str(caught[0].message)


def test_explicit_backend_on_wrong_device(monkeypatch):
    # Pretend the cuda backend is complete and available, then ask it to run CPU tensors.
    monkeypatch.setattr(dispatch, "_status", lambda name: "available")
    with pytest.raises(ValueError, match="cannot run on cpu tensors"):
        dispatch.resolve("cuda", torch.device("cpu"), "scan_forward", torch.float32)


def test_registered_kernel_joins_dispatch(monkeypatch):
    """A backend becomes usable by registering kernels; dtype limits are honoured."""
    monkeypatch.setitem(dispatch._kernels, "cpu", {})
    for name in dispatch.KERNELS:
        dispatch.register_kernel("cpu", name, dtypes=[torch.float32])(dispatch.get_kernel("reference", name))
    monkeypatch.setattr(dispatch, "_extension_errors", {})
    assert rnngen.backend_status()["cpu"] == "available"
    assert dispatch.resolve("auto", torch.device("cpu"), "scan_forward", torch.float32) == "cpu"
    # auto never sends tensors of another device (meta, mps, ...) to the CPU kernels
    assert dispatch.resolve("auto", torch.device("meta"), "scan_forward", torch.float32) == "reference"
    with pytest.raises(ValueError, match="no scan_forward kernel for torch.float64"):
        dispatch.resolve("cpu", torch.device("cpu"), "scan_forward", torch.float64)
    with pytest.raises(ValueError, match="unknown backend/kernel"):
        dispatch.register_kernel("tpu", "scan_forward")


def test_ci_builds_the_cpu_backend():
    """In CI (a compiler is there) a failed C++ build must fail the run, not quietly drop the
    cpu backend from every parametrised test."""
    if not os.environ.get("CI"):
        pytest.skip("only enforced in CI")
    assert rnngen.backend_status()["cpu"] == "available"


def _op_inputs(requires_grad=False):
    """Small inputs for each op, as (op name, public function, op module, its body's name)."""
    torch.manual_seed(0)
    B, T, H, K = 2, 5, 8, 4
    w_hh, b_hh = torch.randn(3 * H, H) / H**0.5, torch.randn(3 * H)
    w_ih, b_ih, h0 = torch.randn(3 * H, 1), torch.randn(3 * H), torch.randn(B, H)
    w_out, b_out, emb = torch.randn(1, H), torch.randn(1), torch.randn(K, 3 * H)
    logits_w, logits_b = torch.randn(K, H), torch.randn(K)
    gi = torch.randn(B, T, 3 * H, requires_grad=requires_grad)
    return {
        "scan": lambda **kw: rnngen.scan(gi, h0, w_hh, b_hh, **kw),
        "decode": lambda **kw: rnngen.decode(h0, w_ih, b_ih, w_hh, b_hh, w_out, b_out, T, **kw),
        "sample": lambda **kw: rnngen.sample(h0, emb, w_hh, b_hh, logits_w, logits_b, T, seed=1, **kw),
    }


@pytest.mark.parametrize("op", ["scan", "decode", "sample"])
def test_eager_calls_run_the_op_body_directly_only_when_nothing_else_needs_the_op(monkeypatch, op):
    """dispatch.run_op: a plain eager call without autograd runs the op's Python body itself
    (no torch.library layers), with the same result as through the registered op; with
    autograd, under a dispatch mode (FakeTensorMode) or a torch function mode (a device context)
    it goes through the op, which those need."""
    module = importlib.import_module(f"rnngen.ops.{op}.op")
    body_name = f"_{op}_body"
    direct_calls = []
    original = getattr(module, body_name)

    def counting(*args):
        direct_calls.append(1)
        return original(*args)
    monkeypatch.setattr(module, body_name, counting)  # the registered op keeps the original
    call = _op_inputs()[op]
    with torch.no_grad():
        direct = call()
    assert len(direct_calls) == 1
    monkeypatch.setattr(dispatch, "_plain_eager", lambda args: False)
    with torch.no_grad():
        through_op = call()
    assert len(direct_calls) == 1
    assert torch.equal(direct, through_op)
    monkeypatch.undo()
    monkeypatch.setattr(module, body_name, counting)

    if op == "scan":  # autograd: the op, whose formula gives the gradient
        out = _op_inputs(requires_grad=True)["scan"]()
        assert out.grad_fn is not None and len(direct_calls) == 1
    with torch.device("cpu"):
        call()
    assert len(direct_calls) == 1
    from torch._subclasses.fake_tensor import FakeTensorMode
    with FakeTensorMode(allow_non_fake_inputs=True) as mode:
        fake = _op_inputs()[op](backend="reference")
    assert len(direct_calls) == 1 and fake.shape == direct.shape and mode.is_our_fake(fake)


def test_models_do_not_import_training():
    """The layers (docs/architecture.md): image models, data, modules and ops never import the
    training package; checkpoints are rnngen.checkpoint, the image transforms rnngen.models.transforms."""
    import subprocess
    import sys

    code = ("import sys, rnngen, rnngen.models, rnngen.data, rnngen.nn, rnngen.checkpoint; "
            "print(sorted(m for m in sys.modules if m.startswith('rnngen.training') or m == 'rnngen.cli'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
