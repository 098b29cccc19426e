"""Distribution augmentation in training: each batch's images put through the transforms of
rnngen.models.transforms (where the transforms live, since a PixelGRU mixture model needs them
too), each image told which one."""

from __future__ import annotations

import torch
from torch import Tensor

# The transforms, re-exported here where they were defined before.
from ..models.transforms import AUGMENTATIONS, augmentation_count, check_image_shape, inverse_transform, transform

__all__ = ["AUGMENTATIONS", "augment", "augmentation_count", "check_image_shape", "inverse_transform", "transform"]


def augment(images: Tensor, kind: str, p_identity: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Each image kept with probability ``p_identity``, else put through one of the other
    transforms of ``kind`` (uniformly). Returns (images, the transform of each [N])."""
    count = augmentation_count(kind)
    n = images.shape[0]
    if count == 1:
        return images, torch.zeros(n, dtype=torch.long)
    index = torch.randint(1, count, (n,), generator=generator)
    index = torch.where(torch.rand(n, generator=generator) < p_identity, 0, index)
    out = images.clone()
    for k in index.unique().tolist():
        chosen = index == k
        out[chosen] = transform(images[chosen], kind, k)
    return out, index
