"""Masks for ``model.complete``: which pixels of an image are given (True) and which are drawn.

Errors name the argument in backquotes (`mask`); the ``rnngen`` command shows it as its option,
``--mask``.
"""

from __future__ import annotations

import os

import numpy as np
import torch

MASKS = ("top-half", "top-quarter", "left-half")


def completion_mask(mask: str, shape: tuple[int, int]) -> torch.Tensor:
    """A known-pixel mask [H, W] of ``shape`` (H, W): True where the pixel is given.

    ``mask`` is one of :data:`MASKS` (the top half, top quarter or left half of the rows or
    columns given) or the path of a ``.npy`` file holding a boolean (or 0/1) array of ``shape``."""
    height, width = shape
    given = torch.zeros(height, width, dtype=torch.bool)
    if mask == "top-half":
        given[: height // 2] = True
    elif mask == "left-half":
        given[:, : width // 2] = True
    elif mask == "top-quarter":
        given[: height // 4] = True
    elif isinstance(mask, str) and mask.endswith(".npy"):
        if not os.path.isfile(mask):
            raise FileNotFoundError(f"`mask` file not found: {mask}")
        array = np.load(mask, allow_pickle=False)
        if array.shape != (height, width):
            raise ValueError(f"`mask` {mask} must hold an array of shape {[height, width]}, got {list(array.shape)}")
        given = torch.from_numpy(array.astype(bool))
    else:
        raise ValueError(f"`mask` must be top-half, top-quarter, left-half or a .npy file, got {mask!r}")
    return given
