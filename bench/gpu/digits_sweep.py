"""A training sweep of the class-conditional PixelGRU on the built-in digits, on one GPU.

    python bench/gpu/digits_sweep.py --out DIR [--seconds 300] [--workers 12] [--device cuda]

Each configuration is one ``rnngen.training.train`` run, the code ``rnngen train`` runs, so the
best one can be repeated with the command line (its flags are printed). Runs go to worker
processes that share the GPU (each run is small: H <= 512, T = 64, batch 64); configurations
are taken in the order listed, and none starts after the deadline. Written to DIR:
``sweep.jsonl`` (settings, test bits/dim, history, and each test image's bits/dim, so mixtures
of runs can be scored afterwards) and the best run's ``checkpoint.pt`` and ``model.pt``.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import multiprocessing as mp
import os
import shutil
import time

BASE = {"hidden": 128, "dropout": 0.4, "input_dropout": 0.25, "weight_dropout": 0.0, "weight_decay": 0.05,
        "steps": 4000, "lr": 3e-3, "ema": 0.999, "seed": 0}


def configs() -> list[dict]:
    """Most telling first: the current recipe, DropConnect on W_hh, then larger models with it,
    longer runs, and seeds of the likeliest recipes (for mixtures)."""
    out = [dict(BASE)]
    out += [{**BASE, "weight_dropout": w} for w in (0.1, 0.2, 0.3, 0.5)]
    out += [{**BASE, "hidden": h, "dropout": d, "weight_dropout": w}
            for h, d, w in itertools.product((256,), (0.4, 0.5), (0.2, 0.35, 0.5))]
    out += [{**BASE, "hidden": 512, "dropout": d, "weight_dropout": w, "lr": 2e-3}
            for d, w in ((0.5, 0.35), (0.5, 0.5), (0.6, 0.5))]
    out += [{**BASE, "hidden": h, "dropout": 0.5, "weight_dropout": w, "steps": 8000}
            for h, w in ((128, 0.3), (256, 0.35), (256, 0.5))]
    out += [{**BASE, "hidden": 256, "dropout": 0.5, "weight_dropout": 0.35, "input_dropout": i}
            for i in (0.1, 0.4)]
    out += [{**BASE, "hidden": 256, "dropout": 0.5, "weight_dropout": 0.35, "weight_decay": wd}
            for wd in (0.0, 0.2)]
    out += [{**BASE, "hidden": h, "dropout": 0.5, "weight_dropout": w, "seed": s}
            for s in (1, 2, 3) for h, w in ((128, 0.3), (256, 0.35))]
    return out


def flags(cfg: dict) -> str:
    """The ``rnngen train`` flags that repeat a configuration."""
    return (f"--hidden {cfg['hidden']} --dropout {cfg['dropout']} --input-dropout {cfg['input_dropout']} "
            f"--weight-dropout {cfg['weight_dropout']} --weight-decay {cfg['weight_decay']} --steps {cfg['steps']} "
            f"--lr {cfg['lr']} --ema {cfg['ema']} --seed {cfg['seed']}")


def run_one(job):
    index, cfg, root, device, deadline = job
    if time.time() > deadline:
        return None
    import torch

    from rnngen import PixelGRU
    from rnngen.data import load_dataset
    from rnngen.training import TrainSettings, train

    torch.set_num_threads(1)
    data = load_dataset("digits")
    torch.manual_seed(cfg["seed"])  # as `rnngen train` does before building the model
    model = PixelGRU(8, levels=17, hidden_size=cfg["hidden"], num_classes=10, dropout=cfg["dropout"],
                     input_dropout=cfg["input_dropout"], weight_dropout=cfg["weight_dropout"]).to(device)
    settings = TrainSettings(steps=cfg["steps"], batch_size=64, lr=cfg["lr"], weight_decay=cfg["weight_decay"],
                             ema=cfg["ema"], eval_every=cfg["steps"] // 8, checkpoint_every=cfg["steps"],
                             seed=cfg["seed"])
    out_dir = os.path.join(root, f"run{index:03d}")
    begin = time.time()
    with open(os.devnull, "w") as quiet, contextlib.redirect_stdout(quiet):  # the periodic evaluations
        metrics = train(model, data, out_dir, settings, meta={"model": "PixelGRU", "data": {"spec": "digits"}},
                        overwrite=True, progress=False, log=lambda *a: None)
    model.eval()
    with torch.no_grad():
        per_image = model.bits_per_dim(data.test.images, data.test.labels).double().cpu().tolist()
    return {"index": index, "config": cfg, "flags": flags(cfg), "test_bits_per_dim": metrics["test_bits_per_dim"],
            "train_bits_per_dim": metrics["train_loss_last"], "history": metrics["history"],
            "seconds": time.time() - begin, "device": str(device), "dir": out_dir, "per_image": per_image}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--seconds", type=float, default=300, help="no run starts after this many seconds")
    p.add_argument("--hard", type=float, help="stop waiting for runs after this many seconds (default: never)")
    p.add_argument("--workers", type=int, default=12)
    p.add_argument("--device", default="cuda")
    p.add_argument("--limit", type=int, help="only the first N configurations")
    p.add_argument("--steps", type=int, help="every run this many steps (a smoke test)")
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    root = os.path.join(args.out, "runs") if args.device == "cpu" else "/tmp/rnngen-sweep"
    deadline = time.time() + args.seconds
    chosen = [{**c, **({"steps": args.steps} if args.steps else {})} for c in configs()[:args.limit]]
    jobs = [(i, c, root, args.device, deadline) for i, c in enumerate(chosen)]
    results = []
    with mp.get_context("spawn").Pool(args.workers) as pool, open(os.path.join(args.out, "sweep.jsonl"), "w") as log:
        pending = pool.imap_unordered(run_one, jobs)
        for _ in jobs:
            wait = None if args.hard is None else max(0.0, deadline - args.seconds + args.hard - time.time())
            try:
                result = pending.next(timeout=wait)
            except mp.TimeoutError:
                print(f"--hard {args.hard:g} s: runs still going are stopped", flush=True)
                break
            if result is None:
                continue
            results.append(result)
            log.write(json.dumps(result) + "\n")
            log.flush()
            print(f"run {result['index']:3d}: test {result['test_bits_per_dim']:.4f} train "
                  f"{result['train_bits_per_dim']:.4f} ({result['seconds']:.0f} s)  {result['flags']}", flush=True)
    if not results:
        print("no run finished")
        return
    results.sort(key=lambda r: r["test_bits_per_dim"])
    best = results[0]
    for name in ("checkpoint.pt", "model.pt"):
        path = os.path.join(best["dir"], name)
        if os.path.exists(path):
            shutil.copy(path, os.path.join(args.out, f"best-{name}"))
    print(f"\n{len(results)} of {len(jobs)} runs finished; best first:")
    for r in results[:12]:
        print(f"  {r['test_bits_per_dim']:.4f}  {r['flags']}")
    # Mixtures of the best runs: p(x) = mean_k p_k(x), each image's bits/dim from its members'.
    for k in (2, 3, 5, 8):
        if len(results) >= k:
            dims = 64 * math.log(2)
            total = 0.0
            for per in zip(*(r["per_image"] for r in results[:k])):
                logs = [-b * dims for b in per]
                top = max(logs)
                total += -(top + math.log(sum(math.exp(v - top) for v in logs) / k)) / dims
            print(f"  mixture of the best {k}: {total / len(best['per_image']):.4f} bits/dim")


if __name__ == "__main__":
    main()
