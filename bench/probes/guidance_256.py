"""Probe (2026-12-05, docs/results-mnist.md, 256 grey levels): the shipped mnist.pt (a row per
column) at class guidance w and temperature t, 200 samples (20 a class, seed 0) each, scored by
the shipped classifier; the Frechet distance is to 1,000 training digits (not the test split).
One thread, so that it can run beside a training run.
Usage: guidance_256.py [CHECKPOINT [w,t ...]] (default: the shipped model, the first grid below)."""
import os
import sys
import time

import torch

import rnngen
from rnngen.evaluation import mnist_classifier, sample_scores

torch.set_num_threads(1)
path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(rnngen.__file__), "pretrained", "mnist.pt")
grid = [tuple(float(v) for v in a.split(",")) for a in sys.argv[2:]] or [
    (0.0, 1.0), (1.0, 1.0), (2.0, 1.0), (0.0, 0.9), (0.0, 0.8), (1.0, 0.9)]
model, _ = rnngen.load_model(path)
data = rnngen.load_dataset("mnist")
clf = mnist_classifier()
labels = torch.arange(10).repeat_interleave(20)
for w, t in grid:
    t0 = time.time()
    s = model.sample(200, labels=labels, temperature=t, seed=0, guidance=w)
    sc = sample_scores(clf, s, 256, labels, data.train.images[:1000])
    print(f"w={w} t={t}: recognised {sc['recognised']:.3f} confident {sc['confident']:.3f} "
          f"frechet {sc['frechet']:.1f} ({time.time() - t0:.0f} s)", flush=True)
