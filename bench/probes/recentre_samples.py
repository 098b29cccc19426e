"""Probe (2026-12-05, docs/results-mnist.md, "A row per column"): how many of a model's samples
the classifier misses only because they are drawn off-centre. 500 samples (50 a class, seed 0)
are scored as drawn, then each rolled along the raster order (so a digit wrapped round the edge
comes back together) by the shift in -14..14 that best centres its ink, and scored again; the
per-class counts of the samples as drawn are printed too.

    python bench/probes/recentre_samples.py rnngen/pretrained/mnist.pt
"""
import sys

import torch

from rnngen.evaluation import classify, mnist_classifier
from rnngen.models import load_model

model, _ = load_model(sys.argv[1])
labels = torch.arange(10).repeat_interleave(50)
drawn = model.eval().sample(len(labels), labels=labels, seed=0)
classifier = mnist_classifier()


def predicted(images):
    return classify(classifier, images, model.levels)[0].argmax(-1)


height, width = model.image_size
columns = torch.arange(width, dtype=torch.float64)
rolled = []
for image in drawn.view(len(drawn), -1).double():
    def spread(k):  # the ink's spread over the columns, and its centre's distance from the middle
        mass = torch.roll(image, k).view(height, width).sum(0)
        total = mass.sum().clamp_min(1)
        centre = (mass * columns).sum() / total
        return (mass * (columns - centre) ** 2).sum() / total + (centre - (width - 1) / 2) ** 2
    rolled.append(torch.roll(image, min(range(-width // 2, width // 2 + 1), key=spread)))
rolled = torch.stack(rolled).view_as(drawn).long()
as_drawn = predicted(drawn)
print(f"recognised as drawn {(as_drawn == labels).double().mean():.3f}, "
      f"re-centred {(predicted(rolled) == labels).double().mean():.3f}")
print("recognised per class (of 50):", [(as_drawn[labels == c] == c).sum().item() for c in range(10)])
