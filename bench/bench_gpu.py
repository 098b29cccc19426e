"""GPU speed of the fused kernels against the loops people would otherwise write.

    python bench/bench_gpu.py [--quick] [--json FILE] [--backends cuda,triton] [--device cuda|cpu]

Workloads (28x28 images: T = 784 steps):
- categorical sampling, 256 levels, B=64, h=128 and 256: rnngen.sample against the eager loop
  (Embedding + GRUCell + Linear + softmax + multinomial) and against that same loop captured
  once in a CUDA graph (launch overhead gone: what is left is the per-step work);
- the seed's generator (GRUCell + Linear loop, forward, no grad), B=64, h=128 and 256:
  rnngen.RNNImageGenerator against the seed's SeedRNNImageGenerator;
- teacher-forced GRU forward+backward, T=784, B=16 and 64, h=128 and 256: FusedPixelGRU against
  nn.GRU (cuDNN).
Each row checks first that the outputs agree (a fast wrong answer is a failure), then warms up,
then times baseline and candidate alternately (CUDA synchronised around every call) and reports
the ratio of the medians with the card's name (RNNGEN_CUDA_CLUSTERS=0 times the cuda backend
without its sm_90 cluster variants). ``--device cpu --quick`` runs the same harness on
tiny CPU workloads (backends cpu/reference): a check of the script itself where no GPU exists.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_cpu import CategoricalLoop  # noqa: E402  (the same eager baseline as the CPU bench)

import rnngen  # noqa: E402
from rnngen.nn.baselines import SeedRNNImageGenerator  # noqa: E402


def assert_near(actual: torch.Tensor, expected: torch.Tensor, bound: float, name: str) -> None:
    """Relative error ||actual - expected|| / ||expected|| under bound (784 steps of float32
    rounding in two different orders: elementwise tolerances would flag harmless outliers)."""
    err = float((actual.double() - expected.double()).norm() / expected.double().norm().clamp_min(1e-30))
    assert err < bound, f"{name}: relative error {err:.3g} >= {bound:g}"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def side_by_side(baseline, candidate, repeats: int, device: torch.device) -> tuple[float, float]:
    """Median seconds of each, measured alternately after two warm-up calls of each."""
    for _ in range(2):
        baseline(), candidate()
    times_b, times_c = [], []
    for _ in range(repeats):
        for fn, times in ((baseline, times_b), (candidate, times_c)):
            sync(device)
            start = time.perf_counter()
            fn()
            sync(device)
            times.append(time.perf_counter() - start)
    return statistics.median(times_b), statistics.median(times_c)


def graphed_loop(loop: CategoricalLoop, h0: torch.Tensor, steps: int):
    """The eager categorical loop captured once in a CUDA graph; returns a replay function."""
    static_h0 = h0.clone()
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):  # warm-up outside the capture (allocations, cuBLAS handles)
        loop(static_h0, steps, None)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = loop(static_h0, steps, None)  # the default generator: graph-safe RNG
    return lambda: (graph.replay(), static_out)[1]


def lazy_graphed_loop(loop: CategoricalLoop, h0: torch.Tensor, steps: int):
    """graphed_loop, captured at the first call (so a failed capture fails that row only)."""
    state = {}

    def run():
        if "replay" not in state:
            state["replay"] = graphed_loop(loop, h0, steps)
        return state["replay"]()

    return run


def workloads(quick: bool, device: torch.device, backends: list[str]):
    """(name, baseline name, baseline fn, backend, candidate fn, check fn, grad mode) rows."""
    side = 8 if quick else 28
    T = side * side
    hiddens = (32,) if quick else (128, 256)
    levels = 16 if quick else 256
    B_gen = 4 if quick else 64
    for hidden in hiddens:
        torch.manual_seed(0)
        loop = CategoricalLoop(hidden, levels).to(device)
        h0 = torch.zeros(B_gen, hidden, device=device)
        args = loop.sample_args(h0, T)
        name = f"categorical sampling ({levels} levels, h={hidden}, {side}x{side}, B={B_gen})"
        baselines = [("eager Embedding+GRUCell+Linear+softmax+multinomial",
                      lambda loop=loop, h0=h0: loop(h0, T, None))]
        if device.type == "cuda":
            baselines.append(("the same eager loop in one CUDA graph", lazy_graphed_loop(loop, h0, T)))
        for backend in backends:
            def run(args=args, backend=backend):
                return rnngen.sample(*args, seed=1, backend=backend)

            def check(args=args, backend=backend):
                # same draws as the reference for the same seed, but for the rare draw within
                # rounding of a boundary (after which that row's image goes its own way)
                same = rnngen.sample(*args, seed=1, backend=backend) == rnngen.sample(*args, seed=1,
                                                                                    backend="reference")
                # (the reference's cumsum on the GPU sums in another order: a few rows may part ways)
                assert same.float().mean() > 0.95, f"only {same.float().mean():.3f} of the values agree"

            for base_name, base in baselines:
                yield name, base_name, base, backend, run, check, torch.no_grad

    for hidden in hiddens:
        torch.manual_seed(0)
        seed_model = SeedRNNImageGenerator(100, hidden, (side, side)).to(device)
        z = torch.randn(B_gen, 100, device=device)
        for backend in backends:
            fused = rnngen.RNNImageGenerator(100, hidden, (side, side), backend=backend).to(device)
            fused.load_state_dict(seed_model.state_dict())

            def check(seed_model=seed_model, fused=fused, z=z):
                assert_near(fused(z), seed_model(z), 1e-4, "generated images")

            yield (f"seed generator, no grad (h={hidden}, {side}x{side}, B={B_gen})", "seed GRUCell+Linear loop",
                   lambda s=seed_model, z=z: s(z), backend, lambda f=fused, z=z: f(z), check, torch.no_grad)

    for hidden in hiddens:
        for B in ((2,) if quick else (16, 64)):
            torch.manual_seed(0)
            gru = nn.GRU(1, hidden, batch_first=True).to(device)
            x = torch.randn(B, T, 1, device=device)
            base_name = "nn.GRU (cuDNN)" if device.type == "cuda" else "nn.GRU"

            def fwd_bwd(module, x=x):
                out, _ = module(x)
                out.sum().backward()

            for backend in backends:
                fused = rnngen.FusedPixelGRU.from_gru(gru, backend=backend)

                def check(gru=gru, fused=fused, x=x):
                    assert_near(fused(x)[0], gru(x)[0], 1e-4, "hidden states")
                    xg = x.detach().requires_grad_()
                    grads = []
                    for module in (gru, fused):
                        module.zero_grad()
                        xg.grad = None
                        fwd_bwd(module, xg)
                        grads.append([xg.grad.clone()] + [p.grad.clone() for p in module.parameters()])
                    for i, (a, b) in enumerate(zip(*grads)):
                        assert_near(b, a, 1e-3, f"gradient {i}")

                yield (f"teacher-forced GRU forward+backward (T={T}, h={hidden}, B={B})", base_name,
                       lambda g=gru: fwd_bwd(g), backend, lambda f=fused: fwd_bwd(f), check, torch.enable_grad)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a check of the script)")
    parser.add_argument("--json", help="write the results here (JSON list of rows)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs of each (default 7, quick 2)")
    parser.add_argument("--backends", default=None,
                        help="comma-separated rnngen backends to time (default: cuda,triton on a GPU, cpu on the CPU)")
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("no CUDA device (use --device cpu --quick to check the script on the CPU)", file=sys.stderr)
        return 1
    wanted = (args.backends or ("cuda,triton" if device.type == "cuda" else "cpu")).split(",")
    status = rnngen.backend_status()
    backends = [b for b in wanted if status.get(b) == "available"]
    for b in wanted:
        if b not in backends:
            print(f"# skipping backend {b}: {status.get(b, 'unknown backend')}", file=sys.stderr)
    if not backends:
        print("no requested backend is available", file=sys.stderr)
        return 1

    repeats = args.repeats or (2 if args.quick else 7)
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu"
    machine = {"card": card, "torch": torch.__version__, "cuda": torch.version.cuda, "rnngen": rnngen.__version__,
               "python": platform.python_version(), "device": device.type,
               "cuda_clusters": os.environ.get("RNNGEN_CUDA_CLUSTERS", "1") != "0"}
    print(f"# {card}, torch {machine['torch']} (CUDA {machine['cuda']}), rnngen {machine['rnngen']}; "
          f"median of {repeats} alternating runs", flush=True)
    rows, failures = [], []
    for name, base_name, baseline, backend, candidate, check, mode in workloads(args.quick, device, backends):
        row = {"workload": name, "baseline": base_name, "backend": backend, **machine}
        try:
            with mode():
                check()
                t_base, t_ours = side_by_side(baseline, candidate, repeats, device)
            row.update(baseline_s=t_base, rnngen_s=t_ours, speedup=t_base / t_ours)
            print(f"{name} | {base_name} | {t_base * 1e3:.2f} ms | {backend} {t_ours * 1e3:.2f} ms | "
                  f"{t_base / t_ours:.1f}x", flush=True)
        except Exception as exc:  # keep going: one failure must not hide the other rows
            row["error"] = f"{type(exc).__name__}: {exc}"
            failures.append(row)
            print(f"{name} | {base_name} | {backend} FAILED: {row['error']}", flush=True)
        rows.append(row)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    print(f"\n# {card}")
    print("| workload | baseline | backend | baseline ms | rnngen ms | speed-up |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        if "error" in r:
            print(f"| {r['workload']} | {r['baseline']} | {r['backend']} | - | FAILED | - |")
        else:
            print(f"| {r['workload']} | {r['baseline']} | {r['backend']} | {r['baseline_s'] * 1e3:.2f} | "
                  f"{r['rnngen_s'] * 1e3:.2f} | {r['speedup']:.1f}x |")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
