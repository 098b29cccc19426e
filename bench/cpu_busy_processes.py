"""The B=1 CPU kernels beside busy processes, in many fresh processes: how often a call collapses.

    python bench/cpu_busy_processes.py [--busy 2] [--rounds 8] [--calls 40] [--json FILE]

`rnngen bench --busy N` times the suite in one process, where the OS places the two kernel
threads once; whether a spinning team of threads collapses (its threads not run together, a
784-step call taking many times as long) depends on that placement, so it shows in some
processes and not in others. This starts `--rounds` pairs of fresh processes beside `--busy`
spinning ones, the cpu backend's unit-split team run with the `team` policy (never one thread:
the kernels as they were before csrc/cpu/team.h) and with the default `adaptive` policy, one
after the other, and prints each process's median time for the article's generator (h=256, B=1,
784 steps, no grad) and categorical sampling (h=256, 256 levels, B=1) on the `cpu` backend.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

_CHILD = r"""
import json, statistics, sys, time, torch, rnngen, rnngen._cpu
torch.set_num_threads(2)
torch.ops.rnngen_cpu.team_policy(int(sys.argv[1]))
calls, H, K = int(sys.argv[2]), 256, 256
g = torch.Generator().manual_seed(0)
h0, emb = torch.randn(1, H, generator=g), torch.randn(1, K, 3 * H, generator=g) * 0.1
w_hh, b_hh = torch.randn(3 * H, H, generator=g) * H**-0.5, torch.randn(3 * H, generator=g) * 0.1
heads, b_heads = torch.randn(1, K, H, generator=g) * H**-0.5, torch.randn(1, K, generator=g)
gen, z = rnngen.RNNImageGenerator(32, H, 28, backend="cpu"), torch.randn(1, 32)
def generator():
    with torch.no_grad():
        return gen(z)
def sampling():
    return rnngen.sample(h0, emb, w_hh, b_hh, heads, b_heads, 784, seed=1, backend="cpu")
out = {}
for name, fn in (("generator", generator), ("sampling", sampling)):
    fn()
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    out[name] = statistics.median(times)
usable, threads, team, switched, solo = torch.ops.rnngen_cpu.team_stats()
out["calls"] = {"team": team, "switched": switched, "solo": solo}
print(json.dumps(out))
"""

POLICIES = {"team": 3, "adaptive": 0}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--busy", type=int, default=2, help="spinning processes beside (default 2)")
    p.add_argument("--rounds", type=int, default=8, help="fresh processes per policy (default 8)")
    p.add_argument("--calls", type=int, default=40, help="timed calls per workload and process (default 40)")
    p.add_argument("--json", metavar="FILE", help="write every process's result here")
    args = p.parse_args(argv)

    sys.path.insert(0, "")
    from rnngen.bench.timing import busy_processes, machine_info

    results = {name: [] for name in POLICIES}
    with busy_processes(args.busy):
        for r in range(args.rounds):
            for name, policy in POLICIES.items():
                done = subprocess.run([sys.executable, "-c", _CHILD, str(policy), str(args.calls)],
                                      capture_output=True, text=True, check=True)
                row = json.loads(done.stdout.strip().splitlines()[-1])
                results[name].append(row)
                print(f"round {r}  {name:8s}  generator {row['generator'] * 1e3:7.2f} ms  "
                      f"sampling {row['sampling'] * 1e3:7.2f} ms  calls {row['calls']}", flush=True)
    for name, rows in results.items():
        for w in ("generator", "sampling"):
            ms = sorted(row[w] * 1e3 for row in rows)
            print(f"{name:8s} {w:9s}: median {statistics.median(ms):6.2f} ms, worst {ms[-1]:6.2f} ms "
                  f"over {len(ms)} processes")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine_info("cpu"), "busy": args.busy, "calls": args.calls, "results": results},
                      f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
