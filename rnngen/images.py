"""PNG grids of quantised images (pillow)."""

from __future__ import annotations

import os

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
