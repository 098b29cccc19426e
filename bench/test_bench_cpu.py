"""rnngen.bench's CPU workloads as pytest-benchmark tests: one test per workload and implementation
(the baselines and rnngen on each available CPU backend). See conftest.py for how to run it."""

from __future__ import annotations

import pytest

from rnngen.bench.timing import machine_info, time_limit
from rnngen.bench.workloads import Options, build, candidate_backends, specs

_workloads: dict = {}
_prepared: dict = {}


def pytest_generate_tests(metafunc):
    if "case" not in metafunc.fixturenames:
        return
    config = metafunc.config
    quick = config.getoption("--bench-quick")
    compile_on = config.getoption("--bench-compile")
    candidates, _ = candidate_backends("cpu", config.getoption("--bench-backends"))
    off = ("--no-bench-compile" if compile_on is False
           else "the default with --bench-quick; --bench-compile turns it on")
    opts = Options(device="cpu", backends=tuple(candidates), compile=not quick if compile_on is None else compile_on,
                   compile_off=f"torch.compile baseline off ({off})")
    cases, ids = [], []
    for spec in specs(quick):
        workload = _workloads.setdefault(spec, build(spec, opts, candidates))
        for impl in workload.impls:
            cases.append((spec, impl.name))
            # ids -k can select: "generator_h32_6x6_B1_no_grad-rnngen_cpu"
            ids.append(f"{spec.name}-{impl.name}".replace("=", "").replace("+", "_").replace(" ", "_"))
    metafunc.parametrize("case", cases, ids=ids)


def _prepare(workload, impl, compile_timeout):
    """Make the implementation, run it once (compiling where it compiles) and check its output;
    cached, so the workload's reference baseline runs once for all its tests."""
    key = (workload.spec, impl.name)
    if key not in _prepared:
        try:
            with time_limit(compile_timeout if impl.builds else None):
                fn = impl.make()
                out = fn()
            workload.check(impl, out)
            _prepared[key] = (fn, None)
        except BaseException as exc:  # recorded, so a later test of this workload says why
            _prepared[key] = (None, exc)
    fn, exc = _prepared[key]
    if exc is not None:
        raise exc
    return fn


def test_speed(benchmark, case, bench_settings):
    spec, name = case
    workload = _workloads[spec]
    impl = next(i for i in workload.impls if i.name == name)
    if impl.skip:
        pytest.skip(impl.skip)
    reference = workload.impls[0]
    if impl is not reference:
        try:
            _prepare(workload, reference, bench_settings["compile_timeout"])
        except BaseException as exc:
            pytest.skip(f"the reference baseline ({reference.name}) failed: {type(exc).__name__}: {exc}")
    fn = _prepare(workload, impl, bench_settings["compile_timeout"])

    machine = machine_info("cpu")
    benchmark.group = spec.name
    benchmark.extra_info.update({"workload": spec.name, "impl": impl.name, "role": impl.role,
                                 "backend": impl.backend, "shapes": spec.shapes(), "dtype": "float32",
                                 **{k: machine[k] for k in ("device", "device_name", "cpu_flags", "threads",
                                                            "torch", "rnngen", "python")}})
    benchmark.pedantic(fn, rounds=bench_settings["rounds"], warmup_rounds=1, iterations=1)
