"""The scores beside the likelihood: exact marginal likelihood of a class-conditional model,
the classifier's judgement of samples, the Frechet distance, and `rnngen eval --samples`."""

import json
import math

import torch

from rnngen.checkpoint import export_weights
from rnngen.cli import main
from rnngen.data import load_dataset
from rnngen.evaluation import (DigitClassifier, classify, frechet_distance, marginal_nll, mnist_classifier,
                               sample_scores)
from rnngen.models import PixelGRU


def test_frechet_distance():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(4000, 3, generator=g)
    assert abs(frechet_distance(a, a)) < 1e-9
    shifted = a + torch.tensor([1.0, 2.0, 0.0])
    assert abs(frechet_distance(a, shifted) - 5.0) < 1e-6  # equal covariances: |mu_a - mu_b|^2
    scaled = a * 2  # N(0, I) against N(0, 4I): 3 * (1 + 4 - 2 * 2) = 3
    assert abs(frechet_distance(torch.randn(200000, 3, generator=g), torch.randn(200000, 3, generator=g) * 2) - 3) < 0.05
    assert frechet_distance(a, scaled) > 2


def test_marginal_nll_is_the_sum_over_classes():
    torch.manual_seed(0)
    model = PixelGRU(4, levels=3, hidden_size=8, num_classes=3, backend="reference").eval()
    images = torch.randint(0, 3, (5, 1, 4, 4))
    per_class = torch.stack([model(images, torch.full((5,), k)).double() for k in range(3)], 1)
    want = -torch.log(torch.exp(-per_class).mean(1))
    got = marginal_nll(model, images)
    torch.testing.assert_close(got, want)
    assert bool((got <= per_class.min(1).values + math.log(3) + 1e-9).all())
    prior = torch.tensor([0.7, 0.2, 0.1])
    torch.testing.assert_close(marginal_nll(model, images, prior),
                               -torch.log((torch.exp(-per_class) * prior.double()).sum(1)))


def test_shipped_mnist_classifier_knows_the_test_digits():
    classifier = mnist_classifier()
    for binarize, levels in ((False, 256), (True, 2)):
        test = load_dataset("mnist", binarize=binarize).test
        probs, features = classify(classifier, test.images, levels)
        assert features.shape == (1000, 64)
        assert float((probs.argmax(-1) == test.labels).float().mean()) >= 0.97  # 97.6% grey, 97.2% binarized


def test_sample_scores_of_real_digits():
    """Real test digits scored as if they were samples: recognised as the classifier's accuracy,
    and a small Frechet distance to the other half of the real digits."""
    classifier = mnist_classifier()
    test = load_dataset("mnist").test
    scores = sample_scores(classifier, test.images[:500], 256, test.labels[:500], test.images[500:])
    assert scores["recognised"] > 0.95 and scores["confident_classes"] == 10
    noise = sample_scores(classifier, torch.randint(0, 256, (500, 1, 28, 28)), 256, test.labels[:500],
                          test.images[500:])
    assert noise["recognised"] < 0.3 and noise["frechet"] > 10 * scores["frechet"]
    assert isinstance(DigitClassifier().features(torch.zeros(2, 1, 8, 8)), torch.Tensor)  # any image size


def test_eval_command_with_samples(tmp_path, capsys):
    torch.manual_seed(0)
    model = PixelGRU(28, levels=2, hidden_size=8, num_classes=10)
    path = tmp_path / "tiny.pt"
    export_weights(str(path), model, "PixelGRU", {"spec": "mnist", "binarize": "stochastic"}, {})
    out = tmp_path / "scores.json"
    assert main(["eval", "--checkpoint", str(path), "--samples", "20", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "nats per image given the class" in printed and "20 samples:" in printed
    scores = json.loads(out.read_text())
    assert scores["images"] == 1000 and scores["samples"] == 20 and scores["data"] == "mnist"
    assert abs(scores["nll_nats"] - scores["bits_per_dim"] * 784 * math.log(2)) < 1e-6
    assert scores["marginal_nll_nats"] <= scores["nll_nats"] + math.log(10) + 1e-6
