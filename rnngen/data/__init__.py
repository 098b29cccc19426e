"""Image datasets for the pixel models, all from local files (nothing is downloaded).

``load_dataset(spec)`` returns a :class:`DataSplit` of two :class:`ImageDataset`, train and test,
whose images are uint8 tensors [N, C, H, W] holding quantised values 0..levels-1.

    digits           scikit-learn's handwritten digits, shipped inside this package: 1797 images,
                     8x8, 17 grey levels, 10 classes. Fixed split: every fifth image (index % 5
                     == 4) is a test image: 359 test, 1438 train.
    mnist            9,000 real MNIST digits shipped inside this package (CC BY-SA 3.0, see
                     data/NOTICE-mnist.md): 28x28, 256 grey levels, 10 classes. Fixed split:
                     images 0..7999 train, 8000..8999 test.
    mnist:DIR        MNIST or Fashion-MNIST IDX files (``train-images-idx3-ubyte`` etc., raw or
                     .gz); 28x28 grey, 256 levels, 10 classes; the files' own train/test split.
    cifar10:DIR      CIFAR-10 "python version" batches (``data_batch_1..5``, ``test_batch``),
                     read without running pickle code; 32x32 RGB, 256 levels, 10 classes.
    folder:DIR       any folder of images (PNG, JPEG, ...). Subfolders are classes when every
                     image is in one; ``DIR/train`` and ``DIR/test`` give the split if present,
                     else every tenth image (sorted by path) is a test image.

Options shared by all: ``levels`` (re-quantise to fewer levels), ``binarize`` (levels=2:
``True`` or ``"stochastic"`` draws each pixel 1 with probability its intensity, once, with a fixed
seed, as binarized MNIST is usually made; ``"threshold"`` cuts at half intensity), ``image_size`` (resize, area-averaged), ``channels`` (1 = grey,
3 = RGB; converting RGB to grey uses ITU-R 601 luma).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
from torch import Tensor

from .formats import DataFormatError, read_cifar10, read_digits, read_folder, read_idx_dir, read_mnist_builtin

__all__ = ["ImageDataset", "DataSplit", "DataFormatError", "load_dataset", "load_from_spec", "DATASET_HELP"]

DATASET_HELP = "digits | mnist | mnist:DIR | fashion-mnist:DIR | cifar10:DIR | folder:DIR"


@dataclass(frozen=True)
class ImageDataset:
    images: Tensor            # uint8 [N, C, H, W], values 0..levels-1
    labels: Tensor | None     # int64 [N], values 0..num_classes-1, or None (unlabelled)
    levels: int
    num_classes: int | None

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def shape(self) -> tuple[int, int, int]:
        """(channels, height, width)."""
        return tuple(self.images.shape[1:])


@dataclass(frozen=True)
class DataSplit:
    name: str
    train: ImageDataset
    test: ImageDataset
    class_names: tuple[str, ...] | None = None


BINARIZE_SEED = 0  # the fixed draw of stochastic binarization (the same images on every load)


def load_dataset(spec: str, *, levels: int | None = None, binarize: bool | str = False,
                 image_size: int | tuple[int, int] | None = None, channels: int | None = None) -> DataSplit:
    """Load ``spec`` (see the module doc) as a train/test split, quantised and resized as asked."""
    if not isinstance(spec, str) or not spec:
        raise ValueError(f"data must be one of {DATASET_HELP}, got {spec!r}")
    kind, _, path = spec.partition(":")
    kind = kind.lower()
    if kind == "digits":
        if path:
            raise ValueError(f"data 'digits' takes no directory (it ships with rnngen), got {spec!r}")
        raw = read_digits()
    elif kind == "mnist" and not path:
        raw = read_mnist_builtin()
    elif kind in ("mnist", "fashion-mnist", "cifar10", "folder"):
        if not path:
            raise ValueError(f"data {kind!r} needs a directory: {kind}:DIR")
        if not os.path.isdir(path):
            raise FileNotFoundError(f"data directory not found: {path}")
        if kind == "cifar10":
            raw = read_cifar10(path)
        elif kind == "folder":
            raw = read_folder(path, channels=channels or 1,
                              image_size=_pair(image_size) if image_size is not None else None)
        else:
            raw = read_idx_dir(path)
    else:
        raise ValueError(f"data must be one of {DATASET_HELP}, got {spec!r}")

    source_levels = raw["levels"]
    if binarize not in (False, True, "stochastic", "threshold"):
        raise ValueError(f"binarize must be False, True (= 'stochastic') or 'threshold', got {binarize!r}")
    if binarize:
        if levels not in (None, 2):
            raise ValueError(f"binarize gives 2 levels; levels={levels} contradicts it")
        levels = 2
    if levels is None:
        levels = source_levels
    if not isinstance(levels, int) or not 2 <= levels <= source_levels:
        raise ValueError(f"levels must be an int in 2..{source_levels} for {kind} "
                         f"(its images have {source_levels} levels), got {levels}")
    if channels not in (None, 1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")

    def prepare(images: Tensor, labels: Tensor | None, split: int) -> ImageDataset:
        x = images
        if channels is not None and x.shape[1] != channels:
            x = _to_grey(x) if channels == 1 else x.expand(-1, 3, -1, -1).contiguous()
        if image_size is not None and tuple(x.shape[2:]) != _pair(image_size):
            x = _resize(x, _pair(image_size), source_levels)
        if binarize == "threshold":
            x = (x >= (source_levels + 1) // 2).to(torch.uint8)
        elif binarize:  # one fixed draw per split: P(1) = intensity
            generator = torch.Generator().manual_seed(BINARIZE_SEED * 2 + split)
            x = (torch.rand(x.shape, generator=generator) < x.float() / (source_levels - 1)).to(torch.uint8)
        elif levels != source_levels:
            # floor(v * levels / source_levels): equal-width bins, 0 -> 0, max -> levels - 1.
            x = (x.to(torch.int32) * levels // source_levels).to(torch.uint8)
        return ImageDataset(x.contiguous(), labels, levels, raw.get("num_classes"))

    return DataSplit(kind, prepare(*raw["train"], 0), prepare(*raw["test"], 1), raw.get("class_names"))


def load_from_spec(spec: dict) -> DataSplit:
    """:func:`load_dataset` of a data spec as runs and checkpoints store it: {"spec", "levels",
    "binarize", "image_size", "channels"}. A stored ``binarize`` of True comes from before
    stochastic binarization, when True meant the threshold, and is read so."""
    binarize = spec.get("binarize") or False
    return load_dataset(spec["spec"], levels=spec.get("levels"), binarize="threshold" if binarize is True else binarize,
                        image_size=spec.get("image_size"), channels=spec.get("channels"))


def _pair(size) -> tuple[int, int]:
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    if (not isinstance(size, tuple) or len(size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in size)):
        raise ValueError(f"image_size must be a positive int or a pair (height, width), got {size!r}")
    return size


def _to_grey(x: Tensor) -> Tensor:
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (x.float() * weights).sum(1, keepdim=True).round().to(torch.uint8)


def _resize(x: Tensor, size: tuple[int, int], source_levels: int) -> Tensor:
    y = torch.nn.functional.interpolate(x.float(), size=size, mode="bilinear", antialias=True, align_corners=False)
    return y.round().clamp(0, source_levels - 1).to(torch.uint8)
