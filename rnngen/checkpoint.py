"""Checkpoints: written atomically, read without running code, versioned.

A checkpoint is a ``torch.save`` of a dict holding only tensors and plain values:

    format "rnngen-checkpoint", version, model ("PixelGRU", "GeneratorVAE" or "GeneratorGAN";
    "SeedVAE" in files written before that model's rename, still read), config (the model's
    constructor arguments), state (its state_dict), and for resuming: step, optimizer (a
    GeneratorGAN's: {"generator": ..., "critic": ...}, its two optimisers), train (the training
    settings), data (the dataset spec and options), metrics.

It is read with ``torch.load(weights_only=True)``, whose unpickler builds only tensors and plain
containers: a file that would run code on loading is refused before anything runs. It is written
to a temporary file in the same folder, flushed to disk, then renamed over the target, so an
interrupted write never leaves a broken checkpoint where a good one was.
"""

from __future__ import annotations

import os
import pickle
import tempfile
import zipfile

import torch

FORMAT = "rnngen-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, damaged, hostile, or from an incompatible version."""


def _on_cpu(value):
    if isinstance(value, torch.Tensor):
        return value.cpu()
    if isinstance(value, dict):
        return {k: _on_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_on_cpu(v) for v in value)
    return value


def save_checkpoint(path: str, payload: dict) -> None:
    """Write ``payload`` (plus format and version) to ``path`` atomically. Tensors are stored on
    the CPU, so a model trained on a GPU loads anywhere."""
    payload = {"format": FORMAT, "version": VERSION, **_on_cpu(payload)}
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pt", dir=directory)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; a checkpoint is an ordinary file
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def load_checkpoint(path: str, map_location="cpu", resumable: bool = False) -> dict:
    """Read and validate a checkpoint; any problem raises :class:`CheckpointError` in one line.
    ``resumable``: it must also hold what training resumes from (step, optimizer, settings)."""
    if not os.path.isfile(path):
        raise CheckpointError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a checkpoint (not a torch.save archive)")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: refused, not a plain-data checkpoint ({first})") from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError, AttributeError,
            TypeError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint ({first})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an rnngen checkpoint")
    version = payload.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(f"{path}: checkpoint version {version!r} is not valid")
    if version > VERSION:
        raise CheckpointError(f"{path}: checkpoint version {version} is newer than this rnngen reads "
                              f"({VERSION}); upgrade rnngen")
    for key, kind in (("model", str), ("config", dict), ("state", dict)):
        if not isinstance(payload.get(key), kind):
            raise CheckpointError(f"{path}: checkpoint has no valid {key!r} entry")
    if resumable:
        for key, kind in (("step", int), ("train", dict), ("data", dict), ("optimizer", dict), ("metrics", dict)):
            if not isinstance(payload.get(key), kind):
                raise CheckpointError(f"{path}: cannot resume from it: no valid {key!r} entry (a model.pt holds "
                                      "weights only; resume from the run's checkpoint.pt)")
    return payload


def export_weights(path: str, model, kind: str, data_spec: dict | None = None, metrics: dict | None = None) -> None:
    """Write the trained weights alone (no optimiser state: what sampling needs, small enough to
    share; the ``model.pt`` beside a run's ``checkpoint.pt``): model ``kind`` with its config and
    state, the ``data_spec`` it was trained on, and of ``metrics`` the test bits/dim and steps."""
    metrics = metrics or {}
    save_checkpoint(path, {"model": kind, "config": model.config, "state": model.state_dict(),
                           "data": data_spec, "metrics": {"test_bits_per_dim": metrics.get("test_bits_per_dim"),
                                                          "steps": metrics.get("steps")}})
