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
    monkeypatch.setattr(dispatch, "backend_status", lambda: dict.fromkeys(dispatch.BACKENDS, "available"))
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
