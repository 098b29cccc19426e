"""Image files: PNG grids of quantised images (pillow), their values as arrays (.npz), and the
layouts the ``rnngen`` command writes (samples a row per class; completions beside the original).

Errors name the argument in backquotes (`labels`); the ``rnngen`` command shows it as its
option, ``--labels``.
"""

from __future__ import annotations

import math
import operator
import os
from collections.abc import Sequence

import numpy as np
import torch


def to_uint8(images: torch.Tensor, levels: int) -> np.ndarray:
    """Values 0..levels-1 [N, C, H, W] -> 0..255 uint8 [N, H, W, C]."""
    x = images.detach().cpu().long().clamp(0, levels - 1)
    x = (x * 255 + (levels - 1) // 2) // (levels - 1)
    return x.permute(0, 2, 3, 1).to(torch.uint8).numpy()


def grid(images: torch.Tensor, levels: int, columns: int, scale: int | None = None, gap: int = 2) -> np.ndarray:
    """Images [N, C, H, W] laid out ``columns`` per row, each upscaled ``scale`` times (nearest
    neighbour; by default so that an image is at least 64 pixels high), on a mid-grey
    background with ``gap`` pixels between images. Returns uint8 [rows*H', cols*W', C]."""
    n, channels, height, width = images.shape
    if scale is None:
        scale = max(1, -(-64 // height))
    tiles = to_uint8(images, levels).repeat(scale, axis=1).repeat(scale, axis=2)
    rows = max(1, -(-n // columns))
    th, tw = height * scale, width * scale
    canvas = np.full((rows * (th + gap) + gap, columns * (tw + gap) + gap, channels), 128, np.uint8)
    for i in range(n):
        r, c = divmod(i, columns)
        y, x = gap + r * (th + gap), gap + c * (tw + gap)
        canvas[y:y + th, x:x + tw] = tiles[i]
    return canvas


def save_grid(path: str, images: torch.Tensor, levels: int, columns: int, scale: int | None = None) -> None:
    """Write a PNG grid (see :func:`grid`) atomically."""
    from PIL import Image

    canvas = grid(images, levels, columns, scale)
    image = Image.fromarray(canvas[:, :, 0] if canvas.shape[2] == 1 else canvas)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".tmp-{os.getpid()}-{os.path.basename(path)}")
    image.save(tmp, format="PNG")
    os.replace(tmp, path)


def save_arrays(path: str, images: torch.Tensor, labels: torch.Tensor | None = None, **extra) -> None:
    """Write the values of ``images`` [N, C, H, W] (as [N, H, W] when grey), ``labels`` and any
    ``extra`` arrays to the .npz file ``path``, atomically."""
    arrays = {"images": (images[:, 0] if images.shape[1] == 1 else images).numpy().astype(np.int64)}
    if labels is not None:
        arrays["labels"] = labels.numpy().astype(np.int64)
    arrays.update({k: v.numpy() if isinstance(v, torch.Tensor) else v for k, v in extra.items()})
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".tmp-{os.getpid()}.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def load_arrays(path: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The ``images`` (int64 [N, C, H, W]; [N, H, W] files read as one channel) and ``labels`` (or
    None) of an .npz file such as :func:`save_arrays` writes; no pickled objects are read."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"`images` file not found: {path}")
    with np.load(path, allow_pickle=False) as arrays:
        if "images" not in arrays:
            raise ValueError(f"`images` {path} has no 'images' array")
        images = torch.from_numpy(arrays["images"].astype(np.int64))
        labels = torch.from_numpy(arrays["labels"].astype(np.int64)) if "labels" in arrays else None
    return (images[:, None] if images.dim() == 3 else images), labels


def sample_labels(num_classes: int | None, n: int,
                  labels: str | Sequence[int] | None = None) -> tuple[torch.Tensor | None, int]:
    """Labels for about ``n`` samples of a model with ``num_classes`` classes (None:
    unconditional), and the columns of their grid: a row per class, ``n // classes`` each (at
    least one), for the classes in ``labels`` (a sequence, or comma-separated text such as "3,7";
    None or "": every class). An unconditional model gets no labels and a near-square grid."""
    if isinstance(labels, str) and not labels:
        labels = None
    if num_classes is None:
        if labels is not None:
            raise ValueError("`labels` given, but the model is unconditional")
        return None, max(1, min(16, round(math.sqrt(n)))) if n else 1
    if labels is None:
        classes = list(range(num_classes))
    elif isinstance(labels, str):
        try:
            classes = [int(v) for v in labels.split(",") if v.strip()]
        except ValueError:
            raise ValueError(f"`labels` must be comma-separated class numbers, got {labels!r}") from None
    else:
        try:
            classes = [operator.index(v) for v in labels]
        except TypeError:
            raise ValueError(f"`labels` must be class numbers, got {labels!r}") from None
    if not classes:
        raise ValueError("`labels` names no class")
    bad = [c for c in classes if not 0 <= c < num_classes]
    if bad:
        raise ValueError(f"`labels` must be in 0..{num_classes - 1}, got {bad[0]}")
    per_class = max(1, n // len(classes))
    return torch.tensor(classes).repeat_interleave(per_class), per_class


def completion_grid(originals: torch.Tensor, mask: torch.Tensor, completions: Sequence[torch.Tensor]) -> torch.Tensor:
    """Images [N * (2 + K), C, H, W] for a grid of ``2 + K`` columns: a row per original image,
    the original, the part ``mask`` gives of it (the rest 0), then its K ``completions``."""
    given = torch.where(mask, originals, 0)
    return torch.stack([originals, given, *completions], dim=1).flatten(0, 1)
