"""``python -m rnngen.bench`` (and ``rnngen bench``): rnngen against its baselines, side by side.

    python -m rnngen.bench [--quick] [--json FILE] [--plot FILE.png] [--markdown]
                           [--device cpu|cuda] [--backends cpu ...] [-k TEXT] [--busy N]
    python -m rnngen.bench --from-json FILE [--markdown] [--plot FILE.png]

For each workload every implementation (the baselines and rnngen on each backend) is built, run
once and checked against the first baseline's output (a fast wrong answer is a failure, and no
time is recorded for it), warmed up, then timed in alternating rounds; speed-ups are the median
of the per-round ratios. Every row of the JSON names the device, threads, dtype, shapes,
versions and backend. Exit status: 0, or 1 when an rnngen output failed its check.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from typing import Any

import torch

from . import report
from .timing import (TimeLimitExceeded, busy_processes, cpu_team_stats, machine_info, paired_speedup, side_by_side,
                     time_limit)
from .workloads import Impl, Options, Workload, build, candidate_backends, specs

# bfloat16/float16: the scan workloads on a GPU (cuDNN in float16 is what it runs under autocast)
DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16, "float16": torch.float16}


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def run_workload(workload: Workload, machine: dict[str, Any], dtype: str, repeats: int, warmup: int,
                 compile_timeout: float | None, device: str) -> list[dict[str, Any]]:
    """Check, then time, every implementation of one workload; one row per (baseline, rnngen)
    pair measured, and one per implementation that was skipped or failed."""
    spec = workload.spec
    common = {"workload": spec.name, "kind": spec.kind, "shapes": spec.shapes(), "dtype": dtype, **machine}
    rows: list[dict[str, Any]] = []
    fns: dict[str, Any] = {}
    ready: list[Impl] = []
    first_call: dict[str, float] = {}

    def failed(impl: Impl, status: str, reason: str) -> None:
        rows.append({**common, "baseline": impl.name if impl.role == "baseline" else None,
                     "baseline_kind": impl.backend if impl.role == "baseline" else None,
                     "backend": impl.backend if impl.role == "rnngen" else None, "impl": impl.name,
                     "role": impl.role, "status": status, "reason": reason})

    for impl in workload.impls:
        if impl.skip:
            failed(impl, "skipped", impl.skip)
            continue
        if impl is not workload.impls[0] and workload.impls[0] not in ready:
            failed(impl, "skipped", f"the reference baseline ({workload.impls[0].name}) did not run")
            continue
        start = time.perf_counter()
        try:
            with time_limit(compile_timeout if impl.builds else None):
                fn = impl.make()
                out = fn()
            if device == "cuda":
                torch.cuda.synchronize()
        except (Exception, TimeLimitExceeded) as exc:
            if impl.builds:
                torch._dynamo.reset()
            failed(impl, "failed", _reason(exc))
            continue
        first_call[impl.name] = time.perf_counter() - start
        try:
            workload.check(impl, out)
        except AssertionError as exc:
            failed(impl, "wrong", str(exc))
            continue
        del out
        fns[impl.name] = fn
        ready.append(impl)

    try:
        times = side_by_side(fns, repeats, warmup, device) if fns else {}
    except Exception as exc:  # e.g. out of memory with everything resident at once: nothing is timed
        for impl in ready:
            failed(impl, "failed", f"while timing: {_reason(exc)}")
        return rows
    baselines = [i for i in ready if i.role == "baseline"]
    candidates = [i for i in ready if i.role == "rnngen"]
    for base in baselines:
        for cand in candidates:
            tb, tc = times[base.name], times[cand.name]
            rows.append({**common, "baseline": base.name, "baseline_kind": base.backend, "backend": cand.backend,
                         "impl": cand.name, "role": "rnngen", "status": "ok", "reason": None,
                         "baseline_s": statistics.median(tb), "rnngen_s": statistics.median(tc),
                         "speedup": paired_speedup(tb, tc),
                         "speedup_of_medians": statistics.median(tb) / statistics.median(tc),
                         "baseline_times_s": tb, "rnngen_times_s": tc, "repeats": repeats, "warmup": warmup,
                         "baseline_first_call_s": first_call[base.name], "rnngen_first_call_s": first_call[cand.name]})
        if not candidates:
            tb = times[base.name]
            rows.append({**common, "baseline": base.name, "baseline_kind": base.backend, "backend": None,
                         "impl": base.name, "role": "baseline",
                         "status": "no rnngen", "reason": "no rnngen backend measured here",
                         "baseline_s": statistics.median(tb), "baseline_times_s": tb, "repeats": repeats,
                         "warmup": warmup, "baseline_first_call_s": first_call[base.name]})
    return rows


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rnngen bench",
                                description="rnngen against its baselines on this machine: outputs checked first, "
                                            "then alternating timed rounds; speed-up = baseline time / rnngen time.",
                                epilog="Run it on a quiet machine: other processes move these timings.")
    p.add_argument("--quick", action="store_true", help="tiny sizes and few rounds (seconds; for CI, not for numbers)")
    p.add_argument("--json", metavar="FILE", help="write every row here")
    p.add_argument("--plot", metavar="FILE", help="write a speed-up chart (PNG; needs matplotlib)")
    p.add_argument("--markdown", action="store_true", help="print the results as a README table")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--backends", nargs="+", metavar="NAME",
                   help="rnngen backends to measure (default: every available fused one for the device; "
                        "'reference' only when named)")
    p.add_argument("-k", "--filter", metavar="TEXT", action="append",
                   help="only workloads whose name contains TEXT (repeatable: any of them)")
    p.add_argument("--repeats", type=int, help="timed rounds (default 7; --quick 2)")
    p.add_argument("--warmup", type=int, help="untimed calls of each before timing (default 1)")
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="the torch.compile baseline (default: on, off with --quick)")
    p.add_argument("--compile-timeout", type=float, default=300, metavar="S",
                   help="seconds a baseline that builds code (torch.compile, FlashRNN's JIT build) may take "
                        "on its first call before it is recorded as failed (default 300)")
    p.add_argument("--no-cuda-graph", action="store_true", help="leave out the CUDA-graph baseline")
    p.add_argument("--no-flashrnn", action="store_true", help="leave out the FlashRNN baseline")
    p.add_argument("--budget", type=float, metavar="S",
                   help="stop starting workloads after S seconds (the rest are recorded as skipped); "
                        "code builds are limited to the time left")
    p.add_argument("--busy", type=int, default=0, metavar="N",
                   help="run everything beside N other processes that spin on the CPU (a busy machine); "
                        "rnngen and its baselines alike")
    p.add_argument("--from-json", metavar="FILE", help="run nothing: report a JSON written earlier")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    error = lambda message: print(f"rnngen bench: error: {message}", file=sys.stderr) or 2  # noqa: E731
    if args.plot:
        missing = report.matplotlib_missing()
        if missing:
            return error(missing)

    if args.from_json:
        try:
            result = report.load(args.from_json)
        except (OSError, ValueError) as exc:
            return error(f"cannot read {args.from_json}: {exc}")
        print(report.table(result))
        return _outputs(args, result, error)

    if args.busy < 0:
        return error(f"--busy must be 0 or more, got {args.busy}")
    if args.device == "cuda" and not torch.cuda.is_available():
        return error("--device cuda: torch sees no CUDA device here")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        candidates, left_out = candidate_backends(args.device, args.backends)
    except ValueError as exc:
        return error(str(exc))
    opts = Options(device=args.device, dtype=DTYPES[args.dtype], backends=tuple(candidates),
                   compile=args.compile if args.compile is not None else not args.quick,
                   compile_off="torch.compile baseline off (" + ("--no-compile)" if args.compile is False
                                                               else "the default with --quick; --compile turns it on)"),
                   cuda_graph=not args.no_cuda_graph, flashrnn=not args.no_flashrnn)
    repeats = args.repeats or (2 if args.quick else 7)
    warmup = args.warmup if args.warmup is not None else 1
    machine = {**machine_info(args.device), "busy_processes": args.busy}  # every row names the load it ran beside
    settings = {"quick": args.quick, "repeats": repeats, "warmup": warmup, "backends": candidates,
                "backends_left_out": left_out, "compile": opts.compile, "compile_timeout_s": args.compile_timeout,
                "budget_s": args.budget, "dtype": args.dtype, "busy": args.busy}
    print(report.header(machine, settings))
    for name, why in left_out.items():
        print(f"# backend {name} not measured: {why}")
    if not candidates:
        print("# no rnngen backend to measure: timing the baselines only")
    print(report.table_head(), flush=True)

    team_before = cpu_team_stats()
    with busy_processes(args.busy):
        rows = _run_all(args, opts, candidates, machine, repeats, warmup)
    team_after = cpu_team_stats()
    if team_before and team_after:  # how the cpu backend's unit-split calls ran (csrc/cpu/team.h)
        settings["cpu_team"] = {k: team_after[k] - team_before[k] if k.endswith("calls") else team_after[k]
                                for k in team_after}
    result = {"machine": machine, "settings": settings, "rows": rows}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)
    status = _outputs(args, result, error)
    wrong = [r for r in rows if r["status"] == "wrong" and r["role"] == "rnngen"]
    for r in wrong:
        print(f"rnngen bench: WRONG OUTPUT: {r['workload']}: {r['reason']}", file=sys.stderr)
    return status or (1 if wrong else 0)


def _run_all(args, opts: Options, candidates: list[str], machine: dict[str, Any], repeats: int,
             warmup: int) -> list[dict[str, Any]]:
    """Every workload of the suite that --filter and --budget leave, each row printed as it comes."""
    rows = []
    started = time.perf_counter()
    for spec in specs(args.quick):
        if args.filter and not any(text in spec.name for text in args.filter):
            continue
        build_limit = args.compile_timeout
        if args.budget is not None:
            left = args.budget - (time.perf_counter() - started)
            if left <= 0:
                row = {"workload": spec.name, "kind": spec.kind, "shapes": spec.shapes(), "dtype": args.dtype,
                       **machine, "baseline": None, "backend": None, "impl": None, "role": None,
                       "status": "skipped", "reason": f"--budget {args.budget:g} s spent"}
                print(report.table_line(row), flush=True)
                rows.append(row)
                continue
            build_limit = min(build_limit, left)
        workload = build(spec, opts, candidates)
        new = run_workload(workload, machine, args.dtype, repeats, warmup, build_limit, args.device)
        for row in new:
            print(report.table_line(row), flush=True)
        rows += new
        del workload
        if args.device == "cuda":
            torch.cuda.empty_cache()
    return rows


def _outputs(args, result, error) -> int:
    if args.markdown:
        print()
        print(report.markdown(result))
    if args.plot:
        try:
            report.plot(result, args.plot)
        except Exception as exc:  # a bad path, or nothing to draw
            return error(f"--plot {args.plot}: {_reason(exc)}")
        print(f"# chart written to {args.plot}")
    return 0
