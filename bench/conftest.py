"""pytest-benchmark suite over rnngen.bench's workloads (CPU).

    python -m pytest bench --benchmark-json cpu-bench.json         # the issue's sizes (minutes)
    RNNGEN_BENCH_QUICK=1 python -m pytest bench                     # tiny sizes, seconds (CI)

Options: --bench-quick (same as RNNGEN_BENCH_QUICK=1), --bench-compile / --no-bench-compile (the
torch.compile baseline; off by default in quick mode), --bench-rounds N, --bench-backends cpu ...
Each test checks its implementation's output against the workload's first baseline before
timing it; tests of one workload share a benchmark group, so pytest-benchmark's table compares
them. ``python -m rnngen.bench`` measures the same workloads side by side with paired ratios.
"""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("rnngen bench")
    group.addoption("--bench-quick", action="store_true", default=os.environ.get("RNNGEN_BENCH_QUICK", "0") == "1",
                    help="tiny sizes and 2 rounds (also RNNGEN_BENCH_QUICK=1)")
    group.addoption("--bench-compile", action=__import__("argparse").BooleanOptionalAction, default=None,
                    help="the torch.compile baseline (default: on, off in quick mode)")
    group.addoption("--bench-rounds", type=int, default=None, help="timed rounds per test (default 5; quick 2)")
    group.addoption("--bench-backends", nargs="+", default=None, help="rnngen backends (default: available fused ones)")
    group.addoption("--bench-compile-timeout", type=float, default=300.0,
                    help="seconds a torch.compile baseline may take to build before the test fails")


def pytest_configure(config):
    if not config.pluginmanager.hasplugin("benchmark"):
        raise pytest.UsageError("the bench/ suite needs pytest-benchmark: pip install pytest-benchmark "
                                "(or run python -m rnngen.bench, which needs nothing more)")


@pytest.fixture(scope="session")
def bench_settings(request):
    config = request.config
    quick = config.getoption("--bench-quick")
    return {"quick": quick, "rounds": config.getoption("--bench-rounds") or (2 if quick else 5),
            "compile_timeout": config.getoption("--bench-compile-timeout")}
