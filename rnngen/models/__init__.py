"""Image models built on the fused ops: PixelGRU (categorical, the main model), GeneratorVAE
(the article's continuous generator, trained as a VAE decoder; ``SeedVAE``, its old name, is an
alias) and GeneratorGAN (the same generator trained against a critic); ``completion_mask``: the
pixels ``PixelGRU.complete`` is given."""

from __future__ import annotations

import torch

from ..checkpoint import CheckpointError, load_checkpoint
from .generator_gan import GeneratorGAN
from .generator_vae import GeneratorVAE
from .masks import completion_mask
from .pixel_gru import PixelGRU

SeedVAE = GeneratorVAE  # the old name

# A checkpoint's model kind -> its class. New checkpoints write "GeneratorVAE"; "SeedVAE", the
# kind checkpoints written before the rename hold, still loads.
MODELS = {"PixelGRU": PixelGRU, "GeneratorVAE": GeneratorVAE, "SeedVAE": GeneratorVAE, "GeneratorGAN": GeneratorGAN}

__all__ = ["PixelGRU", "GeneratorVAE", "SeedVAE", "GeneratorGAN", "MODELS", "build_model", "load_model", "completion_mask",
           "pretrained_models", "pretrained_path"]


def build_model(kind: str, config: dict, state: dict | None, backend: str = "auto", source: str = "checkpoint"):
    """The model ``kind`` built from ``config`` (and loaded with ``state``). A checkpoint's config
    is checked against its weights' shapes on the meta device first, so a hostile config cannot
    make us allocate more than the file itself holds."""
    cls = MODELS.get(kind)
    if cls is None:
        raise CheckpointError(f"{source}: unknown model {kind!r} (known: {', '.join(MODELS)})")
    try:
        with torch.device("meta"):
            skeleton = cls(**config, backend=backend)
        if state is not None:
            expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
            found = {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
            if expected != found:
                wrong = sorted(set(expected.items()) ^ set(found.items()))[0][0]
                raise CheckpointError(f"{source}: does not describe a valid {kind}: its weights do not match "
                                      f"its config (first difference: {wrong!r})")
        model = cls(**config, backend=backend)
        if state is not None:
            model.load_state_dict(state)
    except (TypeError, ValueError, RuntimeError, KeyError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise CheckpointError(f"{source}: does not describe a valid {kind} "
                              f"({str(exc).strip().splitlines()[0]})") from None
    return model


def load_model(path: str, backend: str = "auto"):
    """Rebuild the model saved in checkpoint ``path``; returns (model in eval mode, checkpoint dict).
    Anything wrong with the file raises :class:`CheckpointError` (one line, no code from it runs)."""
    payload = load_checkpoint(path)
    model = build_model(payload["model"], payload["config"], payload["state"], backend, source=path)
    return model.eval(), payload


def pretrained_models() -> dict[str, str]:
    """The models shipped in rnngen/pretrained: name (file stem) -> path. The classifier that
    judges samples (mnist-classifier.pt) is not a generative model and is not listed."""
    from importlib import resources

    folder = resources.files("rnngen").joinpath("pretrained")
    return {entry.name[:-3]: str(entry) for entry in sorted(folder.iterdir(), key=lambda e: e.name)
            if entry.name.endswith(".pt") and not entry.name.endswith("-classifier.pt")}


def pretrained_path(name: str = "digits") -> str:
    """The path of shipped model ``name``: its file stem ("digits", "mnist-bin"), or a part of
    exactly one stem ("mnist")."""
    models = pretrained_models()
    if name in models:
        return models[name]
    matches = [stem for stem in models if name and name in stem]
    if len(matches) != 1:
        what = "matches several" if matches else "is not one"
        raise ValueError(f"`model` {name!r} {what} of the shipped models: {', '.join(models)}")
    return models[matches[0]]
