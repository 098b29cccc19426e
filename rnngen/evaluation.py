"""Scores of image models besides their likelihood, the same for every model:

- the likelihood of a class-conditional model as an unconditional one, exactly
  (:func:`marginal_nll`: p(x) = sum over classes of p(class) p(x | class));
- how recognisable samples are: the share a classifier trained on the real images assigns to
  the class they were drawn for (:func:`sample_scores`), and the share it classifies with
  confidence >= 0.9 and which classes those are (for unconditional models);
- how far the samples' distribution is from the real test images': the Frechet distance between
  Gaussians fitted to the classifier's penultimate features (:func:`frechet_distance`; the FID
  recipe with this small classifier in place of Inception, so its values compare only with each
  other).

The classifier (:class:`DigitClassifier`) is a small CNN trained on the training split
(:func:`train_classifier`); for the built-in MNIST one ships in rnngen/pretrained
(:func:`mnist_classifier`). It is trained on grey images and, half the time, on their stochastic
binarization, so it judges samples of binarized and of 256-level models alike.
"""

from __future__ import annotations

import math
from importlib import resources

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .data import ImageDataset

CONFIDENT = 0.9  # a confident classification: the top class's probability at least this


class DigitClassifier(nn.Module):
    """Two 3x3 convolutions with max pooling, then a 64-unit feature layer and the class logits;
    any image size (the feature map is pooled to 7x7)."""

    def __init__(self, num_classes: int = 10, channels: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc = nn.Linear(64 * 7 * 7, 64)
        self.out = nn.Linear(64, num_classes)
        self.config = {"num_classes": num_classes, "channels": channels}

    def features(self, x: Tensor) -> Tensor:
        """[N, C, H, W] intensities in [0, 1] -> [N, 64] penultimate features."""
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.adaptive_max_pool2d(F.relu(self.conv2(x)), 7)
        return F.relu(self.fc(x.flatten(1)))

    def forward(self, x: Tensor) -> Tensor:
        return self.out(self.features(x))


def to_unit(images: Tensor, levels: int) -> Tensor:
    """Integer images 0..levels-1 -> float intensities in [0, 1]."""
    return images.float() / (levels - 1)


def train_classifier(data: ImageDataset, steps: int = 1500, batch_size: int = 128, seed: int = 0,
                     progress: bool = False) -> DigitClassifier:
    """A :class:`DigitClassifier` for ``data`` (labelled), trained with Adam; half of each batch
    stochastically binarized so binary images are judged as well as grey ones. Deterministic for
    a seed."""
    if data.labels is None or data.num_classes is None:
        raise ValueError("`data` must be labelled to train a classifier")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = DigitClassifier(data.num_classes, data.shape[0])
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x_all = to_unit(data.images, data.levels)
    from tqdm import tqdm

    for step in tqdm(range(steps), disable=not progress, desc="classifier", unit="step"):
        index = torch.randint(0, len(data), (batch_size,), generator=generator)
        x, y = x_all[index], data.labels[index]
        binary = torch.rand(len(x), 1, 1, 1, generator=generator) < 0.5
        x = torch.where(binary, (torch.rand(x.shape, generator=generator) < x).float(), x)
        for group in optimizer.param_groups:
            group["lr"] = 1e-3 * 0.5 * (1 + math.cos(math.pi * step / steps))
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval()


@torch.no_grad()
def classify(classifier: DigitClassifier, images: Tensor, levels: int, batch_size: int = 500):
    """(probabilities [N, K], features [N, 64]) of integer images of ``levels``."""
    probs, feats = [], []
    for start in range(0, len(images), batch_size):
        x = to_unit(images[start:start + batch_size], levels)
        f = classifier.features(x)
        feats.append(f)
        probs.append(classifier.out(f).softmax(-1))
    return torch.cat(probs), torch.cat(feats)


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """Frechet distance between Gaussians fitted to feature sets ``a`` [N, D] and ``b`` [M, D]:
    |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a^1/2 S_b S_a^1/2)^1/2), in float64."""
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = torch.cov(a.T), torch.cov(b.T)

    def sqrtm(m):  # of a symmetric positive semi-definite matrix
        w, v = torch.linalg.eigh(m)
        return (v * w.clamp(min=0).sqrt()) @ v.T

    root = sqrtm(s_a)
    cross = sqrtm(root @ s_b @ root)
    return float((mu_a - mu_b).pow(2).sum() + torch.trace(s_a + s_b - 2 * cross))


def sample_scores(classifier: DigitClassifier, samples: Tensor, levels: int, labels: Tensor | None,
                  real: Tensor, real_levels: int | None = None) -> dict:
    """Scores of ``samples`` (integer [N, C, H, W]) drawn for ``labels`` (or unconditionally):
    ``recognised`` (share classified as their label; None without labels), ``confident`` (share
    classified with probability >= 0.9), ``confident_classes`` (how many classes occur among
    those), ``frechet`` (to the real images ``real``, of ``real_levels``, default ``levels``)."""
    probs, feats = classify(classifier, samples, levels)
    _, real_feats = classify(classifier, real, real_levels or levels)
    top, predicted = probs.max(-1)
    confident = top >= CONFIDENT
    return {"samples": len(samples),
            "recognised": None if labels is None else float((predicted == labels.to(predicted.device)).float().mean()),
            "confident": float(confident.float().mean()),
            "confident_classes": int(predicted[confident].unique().numel()),
            "frechet": frechet_distance(feats, real_feats)}


@torch.no_grad()
def marginal_nll(model, images: Tensor, prior: Tensor | None = None, batch_size: int = 250) -> Tensor:
    """-log p(x) in nats per image of a class-conditional model as an unconditional one:
    p(x) = sum_k prior_k p(x | k) (``prior`` default uniform), exact, one pass per class."""
    if model.num_classes is None:
        raise ValueError("marginal_nll is for class-conditional models; an unconditional model's own "
                         "negative log-likelihood is already p(x)'s")
    k = model.num_classes
    log_prior = (torch.full((k,), -math.log(k)) if prior is None else prior.double().log()).double()
    out = []
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(images), batch_size):
            x = images[start:start + batch_size]
            per_class = torch.stack([model(x, torch.full((len(x),), c, dtype=torch.long)).double().cpu()
                                     for c in range(k)], dim=1)  # [n, K] nats
            out.append(-(torch.logsumexp(log_prior - per_class, dim=1)))
    finally:
        model.train(was_training)
    return torch.cat(out)


def mnist_classifier() -> DigitClassifier:
    """The classifier shipped for the built-in MNIST (rnngen/pretrained/mnist-classifier.pt,
    trained by :func:`train_classifier` on its training split)."""
    path = resources.files("rnngen").joinpath("pretrained", "mnist-classifier.pt")
    with path.open("rb") as f:
        saved = torch.load(f, weights_only=True)
    model = DigitClassifier(**saved["config"])
    model.load_state_dict(saved["state"])
    return model.eval()


def evaluate_model(model, data, split: str = "test", samples: int = 0, seed: int = 0, classifier=None,
                   progress: bool = False, guidance: float = 0.0) -> dict:
    """Every score of ``model`` on ``data`` (a DataSplit) at once, as a dict:
    ``bits_per_dim`` and ``nll_nats`` (per image) on ``split``; for a class-conditional model also
    ``marginal_nll_nats`` (:func:`marginal_nll`, uniform prior over the classes); with ``samples``
    > 0, :func:`sample_scores` of that many samples (spread evenly over the classes of a
    conditional model) against the split's real images, judged by ``classifier`` (default: the
    shipped one for the built-in MNIST, else one trained here on the training split), drawn with
    ``guidance`` (PixelGRU.sample's; 0: none).

    A model without a likelihood (``has_likelihood = False``: GeneratorGAN) gets the sample
    scores alone; its ``bits_per_dim`` and ``nll_nats`` are None, and ``samples`` must be > 0."""
    from .training.trainer import evaluate

    images = data.test if split == "test" else data.train
    if (images.levels, images.shape) != (model.levels, (model.channels, *model.image_size)):
        raise ValueError(f"the data ({images.levels} levels, {list(images.shape)}) does not match the model "
                         f"({model.levels} levels, {[model.channels, *model.image_size]})")
    scores = {"split": split, "images": len(images)}
    if getattr(model, "has_likelihood", True):
        dims = math.prod(images.shape)
        bpd = evaluate(model, images)
        scores.update({"bits_per_dim": bpd, "nll_nats": bpd * dims * math.log(2)})
        if model.num_classes is not None:
            scores["marginal_nll_nats"] = float(marginal_nll(model, images.images).mean())
    else:
        if samples <= 0:
            raise ValueError(f"a {type(model).__name__} has no likelihood: give `samples` > 0 to score its samples")
        scores.update({"bits_per_dim": None, "nll_nats": None})
    if samples > 0:
        if classifier is None:
            if data.name == "mnist" and images.shape == (1, 28, 28):
                classifier = mnist_classifier()
            else:
                classifier = train_classifier(data.train, progress=progress)
        labels = None
        if model.num_classes is not None:
            labels = torch.arange(model.num_classes).repeat_interleave(max(1, samples // model.num_classes))
        drawn = model.sample(samples if labels is None else len(labels), labels=labels, seed=seed,
                             **({"guidance": guidance} if guidance else {}))
        scores["guidance"] = guidance
        scores.update(sample_scores(classifier, drawn.cpu(), model.levels, labels, images.images, images.levels))
    return scores
