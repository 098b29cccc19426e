"""Helpers of bench/gpu/mnist.sh (MNIST on a GPU): what its shell steps cannot say in one line.

    python bench/gpu/mnist_check.py per-step SHORT LONG       seconds a training step, from two runs of
                                                             the same recipe (their metrics.json) that
                                                             differ only in --steps: start-up, compiles
                                                             and the final test evaluation cancel out
    python bench/gpu/mnist_check.py same-weights DIR_A DIR_B  the largest difference between two runs'
                                                             saved weights (checkpoint.pt), per tensor
    python bench/gpu/mnist_check.py same-arrays A.npz B.npz   whether two sample files hold the same images
    python bench/gpu/mnist_check.py steps-for SHORT LONG SECONDS   how many steps fit in SECONDS
"""

import json
import os
import sys

import numpy as np
import torch


def _metrics(folder: str) -> dict:
    with open(os.path.join(folder, "metrics.json")) as f:
        return json.load(f)


def per_step(short: str, long: str) -> float:
    a, b = _metrics(short), _metrics(long)
    return (b["seconds"] - a["seconds"]) / (b["steps"] - a["steps"])


def main(argv: list[str]) -> int:
    what = argv[0]
    if what == "per-step":
        seconds = per_step(argv[1], argv[2])
        metrics = _metrics(argv[2])
        print(json.dumps({"runs": argv[1:3], "seconds_per_step": round(seconds, 5),
                          "steps_per_second": round(1 / seconds, 2), "batch_size": metrics["train"]["batch_size"],
                          "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
                          "torch": torch.__version__}))
    elif what == "steps-for":
        print(max(0, int(float(argv[3]) / per_step(argv[1], argv[2]))))
    elif what == "same-weights":
        a, b = (torch.load(os.path.join(d, "checkpoint.pt"), map_location="cpu", weights_only=True) for d in argv[1:3])
        worst = max(((a["state"][k].double() - b["state"][k].double()).abs().max().item(), k)
                    for k in a["state"] if a["state"][k].is_floating_point())
        print(f"same-weights {argv[1]} {argv[2]}: step {a['step']} and {b['step']}, largest difference "
              f"{worst[0]:.3g} ({worst[1]}); world_size {_metrics(argv[1]).get('world_size')} and "
              f"{_metrics(argv[2]).get('world_size')}")
    elif what == "same-arrays":
        a, b = np.load(argv[1]), np.load(argv[2])
        same = all(np.array_equal(a[k], b[k]) for k in a.files) and set(a.files) == set(b.files)
        print(f"same-arrays {argv[1]} {argv[2]}: {'identical' if same else 'DIFFERENT'} ({a['images'].shape})")
        return 0 if same else 1
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
