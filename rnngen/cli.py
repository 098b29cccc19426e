"""The ``rnngen`` command (also ``python -m rnngen``).

    rnngen info              which backends run here, and why the others do not
    rnngen demo [--backend]  a short tour of the ops: drop-in equivalence, the seed's
                             generator fused vs its Python loop, a seeded sample
"""

from __future__ import annotations

import argparse
import sys
import time

import torch


def _info(args) -> int:
    import rnngen

    print(f"rnngen {rnngen.__version__}, torch {torch.__version__}, "
          f"CUDA device: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}")
    for name, status in rnngen.backend_status().items():
        print(f"  {name:10s} {status}")
    return 0


def _time(fn, repeats: int = 3) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def _demo(args) -> int:
    import rnngen
    from rnngen.nn.baselines import SeedRNNImageGenerator

    _info(args)
    torch.manual_seed(args.seed)

    print("\n1. FusedPixelGRU as a drop-in for nn.GRU (2 layers, T=63, B=3, H=40):")
    gru = torch.nn.GRU(5, 40, num_layers=2, batch_first=True)
    fused = rnngen.FusedPixelGRU.from_gru(gru, backend=args.backend)
    x = torch.randn(3, 63, 5, requires_grad=True)
    (out_ref, _), (out, _) = gru(x), fused(x)
    g_ref, = torch.autograd.grad(out_ref.sum(), x)
    g, = torch.autograd.grad(out.sum(), x)
    print(f"   max |output - nn.GRU| = {(out - out_ref).abs().max():.2e}, "
          f"max |d input - nn.GRU's| = {(g - g_ref).abs().max():.2e}")

    ran = rnngen.dispatch.resolve(args.backend, torch.device("cpu"), "decode_forward", torch.float32)
    print(f"\n2. The seed's generator (z=100, h={args.hidden}, 28x28, B=16), the decode op ({ran} backend) "
          "vs the seed's Python loop:")
    seed_model = SeedRNNImageGenerator(100, args.hidden, (28, 28))
    model = rnngen.RNNImageGenerator(100, args.hidden, (28, 28), backend=args.backend)
    model.load_state_dict(seed_model.state_dict())  # the seed's state_dict loads as is
    z = torch.randn(16, 100)
    with torch.no_grad():
        diff = (model(z) - seed_model(z)).abs().max()
        t_seed, t_model = _time(lambda: seed_model(z)), _time(lambda: model(z))
    print(f"   max |image - seed's| = {diff:.2e}; seed loop {t_seed * 1e3:.0f} ms, "
          f"rnngen ({ran}) {t_model * 1e3:.0f} ms on this machine")

    print("\n3. Categorical sampling (untrained 16-level model, 12x12, seed 7), twice:")
    H, K, side = 32, 16, 12
    w_hh, w_out, emb = torch.randn(3 * H, H) / H**0.5, torch.randn(K, H), torch.randn(K, 3 * H)
    draws = [rnngen.sample(torch.zeros(1, H), emb, w_hh, None, w_out, None, side * side, seed=7,
                           backend=args.backend) for _ in range(2)]
    print(f"   identical: {torch.equal(*draws)}")
    shades = " .:-=+*#%@@@@@@@"
    for row in draws[0].view(side, side).tolist():
        print("   " + "".join(shades[v] * 2 for v in row))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rnngen", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="list the backends and why unavailable ones are").set_defaults(run=_info)
    demo = sub.add_parser("demo", help="a short tour of the ops on this machine")
    demo.add_argument("--backend", default="auto", choices=["auto", "reference", "cpu", "triton", "cuda"])
    demo.add_argument("--hidden", type=int, default=128, help="hidden size of the seed generator")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, TypeError, RuntimeError) as exc:
        print(f"rnngen {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
