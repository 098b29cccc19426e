"""The training loop behind ``rnngen train`` and ``rnngen demo``.

Any model whose ``forward(images, labels)`` returns each image's loss in nats (negative
log-likelihood, or a bound on it) and that has ``steps`` (values per image) trains here: AdamW,
linear warm-up then cosine decay, gradient clipping, optional augmentation by small shifts
or distribution augmentation (``augment``: rotations and flips the model is told about),
periodic test bits/dim, atomic checkpoints and ``metrics.json``.

Every step's batch, shifts and dropout masks come from generators seeded by (seed, step), so a
run resumed from a checkpoint ends exactly where an uninterrupted run ends.

Under torchrun (``torch.distributed`` initialised) the model is wrapped in
DistributedDataParallel: every process draws the same global batch and trains on its own
contiguous share of it (``batch_size`` is the global batch), the gradients are averaged, so the
learning rate and the logged loss mean the same as in one process; rank 0 alone evaluates and
writes checkpoints and metrics.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F

from ..data import DataSplit, ImageDataset
from .augment import augment, augmentation_count, check_image_shape
from ..checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from ..distributed import joined, world  # rnngen.distributed.world; also importable from here

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.json"


@dataclass
class TrainSettings:
    steps: int = 2000
    batch_size: int = 64          # images per optimiser step
    lr: float = 3e-3
    weight_decay: float = 0.0
    warmup: int = 100             # steps of linear warm-up
    grad_clip: float = 1.0        # max gradient norm (0: none)
    shift: int = 0                # augmentation: shift each image by up to this many pixels
    augment: str = "none"         # distribution augmentation (training.augment): none, flips or
                                  # dihedral; the model must be conditioned on that many transforms
    p_identity: float = 0.5       # with augment: the share of images left as they are
    eval_every: int = 250         # steps between test bits/dim evaluations (0: only at the end)
    checkpoint_every: int = 500   # steps between checkpoints (0: only at the end)
    ema: float = 0.0              # decay of an exponential moving average of the weights, which
                                  # is then what is evaluated and saved for sampling (0: none);
                                  # warmed up (ema_decay), so a short run averages recent weights
    seed: int = 0
    # GeneratorGAN only (rnngen.training.adversarial):
    reconstruction_steps: int = 0  # the first steps of the run: the teacher-forced reconstruction warm-up
    critic_lr: float = 0.0         # the critic's learning rate (0: four times lr)

    def __post_init__(self):
        augmentation_count(self.augment)
        if isinstance(self.p_identity, bool) or not (isinstance(self.p_identity, (int, float))
                                                      and 0 <= self.p_identity <= 1):
            raise ValueError(f"p_identity must be in [0, 1], got {self.p_identity!r}")
        for f in fields(self):
            if f.name in ("augment", "p_identity"):
                continue
            value = getattr(self, f.name)
            kind = float if f.type in ("float", float) else int
            if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
                raise ValueError(f"{f.name} must be {'a number' if kind is float else 'an int'}, got {value!r}")
        for name in ("steps", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("weight_decay", "warmup", "grad_clip", "shift", "eval_every", "checkpoint_every", "seed",
                     "reconstruction_steps", "critic_lr"):
            if not (math.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {getattr(self, name)}")
        if not 0 <= self.ema < 1:  # also false for NaN
            raise ValueError(f"ema must be in [0, 1), got {self.ema}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a finite number > 0, got {self.lr}")

    def learning_rate(self, step: int) -> float:
        if step < self.warmup:
            return self.lr * (step + 1) / self.warmup
        progress = (step - self.warmup) / max(1, self.steps - self.warmup)
        return self.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


TRAIN_EVAL_IMAGES = 1000  # training images the saved model is scored on at the end


def ema_decay(ema: float, updates: int) -> float:
    """The average's decay after ``updates`` optimiser steps: ``ema``, but at most
    (1 + updates) / (10 + updates), so it spans about the last tenth of a short run instead of
    holding on to the initial weights (after 150 steps a 0.999 average is still 86% the
    initial weights; warmed up, it is the last ~17 steps'). Reaches 0.999 at 8,990 steps."""
    return min(ema, (1 + updates) / (10 + updates))


def _generator(seed: int, step: int, purpose: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 7 + purpose)


def batch_indices(n: int, batch_size: int, seed: int, step: int) -> torch.Tensor:
    """The images of global step ``step``: a random subset (an epoch-free shuffle, so resuming and
    any number of processes see the same batches)."""
    return torch.randperm(n, generator=_generator(seed, step, 0))[:batch_size]


def shift_images(images: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by up to ``shift`` pixels each way, filling with 0 (the background)."""
    if shift == 0:
        return images
    n, _, height, width = images.shape
    padded = F.pad(images, (shift, shift, shift, shift))
    offsets = torch.randint(0, 2 * shift + 1, (n, 2), generator=generator)
    return torch.stack([padded[i, :, dy:dy + height, dx:dx + width] for i, (dy, dx) in enumerate(offsets.tolist())])


@torch.no_grad()
def evaluate(model, data: ImageDataset, batch_size: int = 256, weights: dict | None = None) -> float:
    """Mean bits per dimension of ``model`` on ``data`` (eval mode), with ``weights`` (a
    state_dict, e.g. the moving average) in place of the model's own while it runs."""
    was_training = model.training
    model.eval()
    saved = None
    if weights is not None:
        saved = {k: v.clone() for k, v in model.state_dict().items()}
        model.load_state_dict(weights)
    total = 0.0
    try:
        for start in range(0, len(data), batch_size):
            images = data.images[start:start + batch_size]
            labels = None if data.labels is None or model.num_classes is None else data.labels[start:start + batch_size]
            total += model(images, labels).double().sum().item()
    finally:
        if saved is not None:
            model.load_state_dict(saved)
        model.train(was_training)
    return total / (len(data) * model.steps * math.log(2))


def check_run_folder(out_dir: str, resume: bool, overwrite: bool) -> None:
    """A run folder is continued (``resume``: it must hold a checkpoint) or replaced
    (``overwrite``), never silently."""
    checkpoint_path = os.path.join(out_dir, CHECKPOINT)
    if not resume and not overwrite and os.path.exists(checkpoint_path):
        raise FileExistsError(f"{out_dir} already holds a run ({CHECKPOINT}); resume it (--resume) or "
                              "replace it (--force)")
    if resume and not os.path.exists(checkpoint_path):
        raise CheckpointError(f"--resume: no checkpoint in {out_dir}")


def load_resumable(checkpoint_path: str, steps: int) -> dict:
    """The checkpoint a run resumes from, which must be short of ``steps``."""
    saved = load_checkpoint(checkpoint_path, resumable=True)
    if saved["step"] >= steps:
        raise CheckpointError(f"{checkpoint_path} is already at step {saved['step']} of steps={steps}: "
                              "give more steps to continue")
    return saved


def train(model, data: DataSplit, out_dir: str, settings: TrainSettings, *, meta: dict, resume: bool = False,
          overwrite: bool = False, progress: bool = True, log=print) -> dict:
    """Train ``model`` on ``data.train``; checkpoints and metrics go to ``out_dir``. A folder that
    already holds a run is continued (``resume``) or replaced (``overwrite``), never silently.

    ``meta`` (plain values: the model kind and dataset spec) is stored in every checkpoint so
    ``rnngen sample/eval/--resume`` can rebuild the model and data. Returns the metrics."""
    from tqdm.auto import tqdm

    checkpoint_path = os.path.join(out_dir, CHECKPOINT)
    if settings.reconstruction_steps or settings.critic_lr:
        raise ValueError("`reconstruction_steps` and `critic_lr` are options of `model` generator-gan only")
    conditional = getattr(model, "num_classes", None) is not None
    if conditional and data.train.labels is None:
        raise ValueError(f"a class-conditional model needs labelled data; {data.name} has no labels")
    size, rank = world()
    if settings.batch_size % size:
        raise ValueError(f"batch_size ({settings.batch_size}, the global batch) must be a multiple of the "
                         f"number of processes ({size})")
    share = slice(rank * settings.batch_size // size, (rank + 1) * settings.batch_size // size)
    transforms = augmentation_count(settings.augment)
    if transforms > 1 and getattr(model, "augmentations", 0) < transforms:
        raise ValueError(f"augment={settings.augment!r} needs a model conditioned on {transforms} augmentations "
                         f"(e.g. PixelGRU(..., augmentations={transforms})); this one has "
                         f"{getattr(model, 'augmentations', 0)}")
    check_image_shape(settings.augment, *data.train.shape[1:])
    os.makedirs(out_dir, exist_ok=True)  # only once the arguments are known to be good
    main = rank == 0
    trained = model
    if joined():  # under torchrun, of one process too: the gradients go through the group's all-reduce
        from torch.nn.parallel import DistributedDataParallel

        trained = DistributedDataParallel(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    start, metrics = 0, {"world_size": 1, "history": [], "train_loss_first": None}
    # The moving average of the weights (floating tensors of the state_dict), when asked for.
    ema = {k: v.detach().clone() for k, v in model.state_dict().items()} if settings.ema else None
    check_run_folder(out_dir, resume, overwrite)
    if resume:
        saved = load_resumable(checkpoint_path, settings.steps)
        try:
            model.load_state_dict(saved.get("raw_state", saved["state"]))
            optimizer.load_state_dict(saved["optimizer"])
            if settings.ema:
                averaged = saved["state"]
                ema = {k: averaged[k].to(ema[k].device, copy=True) for k in ema}  # loaded on the CPU
        except (KeyError, RuntimeError, ValueError) as exc:
            raise CheckpointError(f"{checkpoint_path}: does not fit this model ({str(exc).splitlines()[0]})") from None
        start, metrics = int(saved["step"]), dict(saved["metrics"])
        if main:
            log(f"resuming from {checkpoint_path} at step {start}")
    metrics["world_size"] = size

    def checkpoint(step: int) -> None:
        weights = {"state": ema, "raw_state": model.state_dict()} if ema else {"state": model.state_dict()}
        save_checkpoint(checkpoint_path, {"model": meta["model"], "config": model.config, **weights,
                                          "optimizer": optimizer.state_dict(), "step": step, "metrics": metrics,
                                          "train": asdict(settings), "data": meta["data"]})

    losses: list[float] = list(metrics.get("recent_losses", []))
    model.train()
    begin = time.perf_counter()
    bar = tqdm(range(start, settings.steps), initial=start, total=settings.steps, disable=not (progress and main),
               desc="train", unit="step", dynamic_ncols=True)
    for step in bar:
        index = batch_indices(len(data.train), settings.batch_size, settings.seed, step)
        images = shift_images(data.train.images[index], settings.shift, _generator(settings.seed, step, 1))
        extra = {}
        if transforms > 1:
            images, which = augment(images, settings.augment, settings.p_identity, _generator(settings.seed, step, 3))
            extra["augmentation"] = which[share]
        images = images[share]
        labels = data.train.labels[index][share] if conditional else None
        torch.manual_seed(_generator(settings.seed, step, 2).initial_seed() + 7919 * rank)   # dropout masks
        for group in optimizer.param_groups:
            group["lr"] = settings.learning_rate(step)
        loss = trained(images, labels, **extra).mean() / (model.steps * math.log(2))    # bits per dim
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if settings.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), settings.grad_clip)
        optimizer.step()
        if ema:
            weight = 1 - ema_decay(settings.ema, step + 1)
            with torch.no_grad():
                for key, value in model.state_dict().items():
                    if value.is_floating_point():
                        ema[key].lerp_(value, weight)
                    else:
                        ema[key].copy_(value)

        if joined():  # the global batch's loss, as one process would log it
            loss = loss.detach().clone()
            torch.distributed.all_reduce(loss)
            loss /= size
        value = loss.item()
        if not math.isfinite(value):
            raise FloatingPointError(f"training diverged at step {step} (loss {value}); try a smaller --lr")
        if metrics["train_loss_first"] is None:
            metrics["train_loss_first"] = value
        losses = (losses + [value])[-50:]
        metrics["recent_losses"] = losses
        metrics["train_loss_last"] = sum(losses) / len(losses)
        bar.set_postfix(bits_per_dim=f"{metrics['train_loss_last']:.3f}", refresh=False)
        done = step + 1
        if main and ((settings.eval_every and done % settings.eval_every == 0) or done == settings.steps):
            test_bpd = evaluate(model, data.test, weights=ema)
            metrics["history"].append({"step": done, "train_bits_per_dim": metrics["train_loss_last"],
                                       "test_bits_per_dim": test_bpd})
            metrics["test_bits_per_dim"] = test_bpd
            bar.write(f"step {done}: train {metrics['train_loss_last']:.3f} bits/dim, test {test_bpd:.3f} bits/dim")
        if main and ((settings.checkpoint_every and done % settings.checkpoint_every == 0) or done == settings.steps):
            metrics["steps"] = done
            checkpoint(done)
    bar.close()
    metrics["steps"] = settings.steps
    metrics["seconds"] = metrics.get("seconds", 0.0) + time.perf_counter() - begin
    if ema:  # the caller gets the averaged model, as saved
        model.load_state_dict(ema)
    if main:
        # What the saved model itself scores on training images (eval mode, the weights saved):
        # the running training loss above is the raw weights' with dropout, not the saved model's.
        seen = ImageDataset(data.train.images[:TRAIN_EVAL_IMAGES], None if data.train.labels is None
                            else data.train.labels[:TRAIN_EVAL_IMAGES], data.train.levels, data.train.num_classes)
        metrics["train_bits_per_dim_saved"] = evaluate(model, seen)
        metrics["train_images_evaluated"] = len(seen)
    metrics.update({"model": meta["model"], "config": model.config, "data": meta["data"], "train": asdict(settings)})
    if main:
        write_json(os.path.join(out_dir, METRICS), {k: v for k, v in metrics.items() if k != "recent_losses"})
    if joined():
        torch.distributed.barrier()  # the files are written before any process goes on
    return metrics


def write_json(path: str, obj) -> None:
    """Write JSON atomically (temp file + rename)."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    os.replace(tmp, path)
