"""The image transforms of distribution augmentation (Jun et al., 2020, "Distribution
Augmentation for Generative Modeling"; the training side is rnngen.training.augment): train on
rotated and flipped images too, but tell the model which transform made each one, so it learns shared structure (strokes, their widths and ends) from eight times the images
without giving any probability to a rotated digit as a real one. Transform 0 is the identity:
the plain raster-order model. A model trained this way can also be used as the uniform mixture of
all its transforms' orderings (``PixelGRU(mixture=...)``): an exact likelihood, sampled at the
cost of one ordering.

Plain augmentation (``shift``) instead asks the model to fit the transformed images as real ones,
which on the digits made test bits/dim worse (README, "Results").
"""

from __future__ import annotations

import torch
from torch import Tensor

# kind -> number of transforms (the identity included)
AUGMENTATIONS = {"none": 1, "flips": 4, "dihedral": 8}


def augmentation_count(kind: str) -> int:
    if kind not in AUGMENTATIONS:
        raise ValueError(f"augment must be one of {', '.join(AUGMENTATIONS)}, got {kind!r}")
    return AUGMENTATIONS[kind]


def check_image_shape(kind: str, height: int, width: int) -> None:
    """Raise if the transforms of ``kind`` cannot apply to height x width images (before training starts)."""
    if augmentation_count(kind) > 1 and kind == "dihedral" and height != width:
        raise ValueError(f"augment='dihedral' needs square images, got {height}x{width}")


def transform(images: Tensor, kind: str, index: int) -> Tensor:
    """Transform ``index`` of ``kind`` applied to images [N, C, H, W].

    flips: bit 0 flips left-right, bit 1 upside down. dihedral (square images): a left-right flip
    when index >= 4, then index % 4 quarter turns: the eight symmetries of a square."""
    count = augmentation_count(kind)
    if not 0 <= index < count:
        raise ValueError(f"index must be in 0..{count - 1} for augment={kind!r}, got {index}")
    if kind == "flips":
        dims = [d for bit, d in ((1, -1), (2, -2)) if index & bit]
        return images.flip(dims) if dims else images
    if kind == "dihedral":
        check_image_shape(kind, *images.shape[-2:])
        if index >= 4:
            images = images.flip(-1)
        return torch.rot90(images, index % 4, (-2, -1))
    return images


def inverse_transform(images: Tensor, kind: str, index: int) -> Tensor:
    """Undo ``transform(., kind, index)``: what a sample drawn in transform ``index``'s frame is
    as an image."""
    augmentation_count(kind)
    if kind == "dihedral":
        check_image_shape(kind, *images.shape[-2:])
        images = torch.rot90(images, -(index % 4), (-2, -1))
        return images.flip(-1) if index >= 4 else images
    return transform(images, kind, index)  # every flip is its own inverse
