"""Image models built on the fused ops: PixelGRU (categorical, the main model) and SeedVAE (the
seed article's continuous generator, trained as a VAE decoder)."""

from __future__ import annotations

from ..training.checkpoint import CheckpointError, load_checkpoint
from .pixel_gru import PixelGRU
from .seed_vae import SeedVAE

MODELS = {"PixelGRU": PixelGRU, "SeedVAE": SeedVAE}

__all__ = ["PixelGRU", "SeedVAE", "MODELS", "load_model"]


def load_model(path: str, backend: str = "auto"):
    """Rebuild the model saved in checkpoint ``path``; returns (model in eval mode, checkpoint dict).
    Anything wrong with the file raises :class:`CheckpointError` (one line, no code from it runs)."""
    payload = load_checkpoint(path)
    cls = MODELS.get(payload["model"])
    if cls is None:
        raise CheckpointError(f"{path}: unknown model {payload['model']!r} (known: {', '.join(MODELS)})")
    try:
        model = cls(**payload["config"], backend=backend)
        model.load_state_dict(payload["state"])
    except (TypeError, ValueError, RuntimeError, KeyError) as exc:
        raise CheckpointError(f"{path}: does not describe a valid {payload['model']} "
                              f"({str(exc).strip().splitlines()[0]})") from None
    return model.eval(), payload
