"""Side-by-side measurement: warm-up, alternating rounds, medians, ratios pair by pair.

On the CPU each call is timed with the wall clock. On a GPU each call is timed with CUDA
events, with ``torch.cuda.synchronize()`` before the start event and the end event waited on,
so one time covers the whole H*W-step run and nothing queued earlier or later leaks in.
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.metadata
import os
import platform
import signal
import statistics
import subprocess
import sys
import threading
import time
from typing import Any, Callable

import torch


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_tile") if f in flags]
    except OSError:
        pass
    return []


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine_info(device: str) -> dict[str, Any]:
    """What every result row names: the device, threads and versions it was measured with."""
    import rnngen

    info = {
        "device": device,
        "device_name": torch.cuda.get_device_name() if device == "cuda" else cpu_name(),
        "cpu": cpu_name(),
        "cpu_flags": " ".join(_cpu_flags()),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "rnngen": rnngen.__version__,
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }
    if device == "cuda":
        info.update({
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            "triton": _version("triton"),
            "flashrnn": _version("flashrnn"),
        })
    return info


def synchronize(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def time_call(fn: Callable[[], Any], device: str) -> tuple[float, Any]:
    """Seconds one call of ``fn`` takes, and what it returned."""
    if device == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        torch.cuda.synchronize()
        start.record()
        out = fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3, out
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def side_by_side(fns: dict[str, Callable[[], Any]], repeats: int, warmup: int, device: str) -> dict[str, list[float]]:
    """Seconds per call of each function, measured in alternating rounds.

    Every function runs ``warmup`` times first (untimed). Then each round calls every function
    once, the order reversed every other round, so a slow drift of the machine (another
    process, clocks, caches) falls on all of them alike and round r's times can be compared
    pair by pair. Each call's output is kept until the next call of the same function, so no
    work can be skipped as unused."""
    sink: dict[str, Any] = {}
    for name, fn in fns.items():
        for _ in range(warmup):
            sink[name] = fn()
    synchronize(device)
    times: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            seconds, sink[name] = time_call(fns[name], device)
            times[name].append(seconds)
    return times


def sampling_times(model, n: int, labels: torch.Tensor | None = None, backends=("cpu", "reference"),
                   seed: int = 1, warmup: int = 10) -> dict[str, float]:
    """Seconds one ``model.sample`` of ``n`` images (``labels``: theirs, for a class-conditional
    model) takes on each of ``backends``, each timed once after a warm-up call of ``warmup``
    images: the fused sampler against the plain loop (the reference backend), as ``rnngen demo``
    reports it."""
    times = {}
    for name in backends:
        model.sample(min(warmup, n), labels=None if labels is None else labels[:warmup], seed=seed, backend=name)
        start = time.perf_counter()
        model.sample(n, labels=labels, seed=seed, backend=name)
        times[name] = time.perf_counter() - start
    return times


def paired_speedup(baseline: list[float], candidate: list[float]) -> float:
    """The median over rounds of baseline time / candidate time, each ratio taken within one round."""
    return statistics.median(b / c for b, c in zip(baseline, candidate, strict=True))


class TimeLimitExceeded(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float | None):
    """Raise TimeLimitExceeded in the block after ``seconds`` (SIGALRM; only in the main thread of
    a Unix process, elsewhere the block runs unlimited). Used around torch.compile, whose first
    call may take minutes."""
    usable = (seconds is not None and seconds > 0 and hasattr(signal, "SIGALRM")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def expire(signum, frame):
        raise TimeLimitExceeded(f"took longer than {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def busy_processes(count: int):
    """``count`` other processes spinning on the CPU for the duration of the block (each a Python
    ``while True: pass``): a machine whose cores are wanted by someone else, as a laptop with a
    browser open or a CI runner with parallel jobs. Stopped (killed) on the way out."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(count)]
    try:
        time.sleep(0.2 if procs else 0)  # let them start spinning
        yield procs
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


def cpu_team_stats() -> dict[str, int] | None:
    """The cpu backend's thread counters (csrc/cpu/team.h), or None without the extension: the CPUs
    this process may use, the kernels' threads, and how many unit-split calls ran as a team,
    switched to one thread mid-call, or started on one thread (the machine was busy)."""
    import rnngen.dispatch

    if "cpu" not in rnngen.dispatch.backends():
        return None
    usable, threads, team, switched, solo = torch.ops.rnngen_cpu.team_stats()
    return {"usable_cpus": usable, "kernel_threads": threads, "team_calls": team, "switched_calls": switched,
            "solo_calls": solo}
