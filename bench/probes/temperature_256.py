"""Probe (2026-12-05, docs/results-mnist.md, 256 grey levels): the shipped mnist.pt's samples at
lower temperatures, 200 (20 a class, seed 0) each, scored by the shipped classifier; the Frechet
distance is to 1,000 training digits (not the test split)."""
import os
import time

import torch

import rnngen
from rnngen.evaluation import mnist_classifier, sample_scores

model, _ = rnngen.load_model(os.path.join(os.path.dirname(rnngen.__file__), "pretrained", "mnist.pt"))
data = rnngen.load_dataset("mnist")
clf = mnist_classifier()
labels = torch.arange(10).repeat_interleave(20)
for t in (1.0, 0.8, 0.6, 0.4):
    t0 = time.time()
    s = model.sample(200, labels=labels, temperature=t, seed=0)
    sc = sample_scores(clf, s, 256, labels, data.train.images[:1000])
    print(t, round(sc["recognised"], 3), round(sc["confident"], 3), round(sc["frechet"], 1), round(time.time() - t0, 1), flush=True)
