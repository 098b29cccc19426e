"""The adversarial training loop behind ``rnngen train --model generator-gan``.

:class:`~rnngen.models.GeneratorGAN` has no per-image loss for the single-loss trainer
(``rnngen.training.trainer``); this loop alternates its two updates and shares everything else
with that trainer: :class:`TrainSettings`, the step's batch from generators seeded by
(seed, step) (so a resumed run ends exactly where an uninterrupted one ends), the warmed-up
moving average of the weights (``ema_decay``; here of the generator's only: the critic is a
training device, not part of the model that samples), atomic ``weights_only``-safe checkpoints
with ``--resume`` / ``--force`` semantics, ``metrics.json`` and the progress bar.

The first ``settings.reconstruction_steps`` steps are the reconstruction warm-up (the
article's other loss; why: rnngen.models.generator_gan): with a batch of real images x,
(mu, log sigma^2) = Encoder(x), z = mu + sigma * eps, the generator run under teacher forcing
(:meth:`GeneratorGAN.teacher_forced`, reading x plus N(0, 0.02^2) noise, the fused scan), and the
loss ``|G_tf(z, y) - x|^2 / (2 * 0.1^2) + KL(q(z|x) || N(0, I))`` (a Gaussian decoder of scale 0.1,
the ELBO's KL at weight 1), Adam at 2e-3 with a cosine to zero over the warm-up, the generator's
gradient clipped at ``grad_clip``. The encoder is a training device: it lives in the checkpoint
while the warm-up runs, not in the model; the generator as the warm-up left it is written to
``warmup.pt`` (a model file like ``model.pt``). The adversarial steps follow, their learning-rate
schedule (warm-up, cosine) counted from the first of them, the moving average from there too.

One adversarial step, with a batch of real images x (and their classes y, which the generated
images are drawn for, so both sides see the data's class frequencies):

1. fake = G(z, y) for z ~ N(0, I): one pass of the decode op, kept for step 3;
2. critic: hinge loss ``relu(1 - D(x, y)) + relu(1 + D(fake, y))`` (fake detached), real and
   fake in one batch (one spectral-norm power iteration per step), Adam step;
3. generator: ``-D(fake, y)`` with the updated critic, backpropagated through the decode op's
   H*W steps (the critic's weights frozen meanwhile), gradient clipped at ``grad_clip``, Adam step.

Reusing step 1's images for step 3 (as the PyTorch DCGAN example does) makes one pass of the
784-step recurrence serve both updates, instead of one pass each.

Both optimisers are Adam with betas (0, 0.9), the generator at the schedule's learning rate
(``TrainSettings.learning_rate``: warm-up, then cosine to a tenth), the critic by default at four
times it (``critic_lr`` sets it; the same schedule): the settings SAGAN (Zhang et al. 2019) and
BigGAN train hinge loss and spectral norm with, at one critic step per generator step. (Earlier 28x28 runs with DCGAN's betas (0.5, 0.999) and one rate
of 2e-4 for both: docs/results-mnist.md.) No weight decay unless asked. The run is
single-process: under torchrun it is refused.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, replace

import torch
import torch.nn.functional as F

from ..checkpoint import CheckpointError, export_weights, save_checkpoint
from ..data import DataSplit
from ..distributed import world
from ..models.generator_gan import Encoder
from .trainer import (
    CHECKPOINT,
    check_run_folder,
    load_resumable,
    METRICS,
    TrainSettings,
    _generator,
    batch_indices,
    ema_decay,
    write_json,
)

# Zhang et al. 2019 (SAGAN) and BigGAN: Adam (0, 0.9), the critic at four times the generator's
# learning rate (the two time-scale rule, Heusel et al. 2017), hinge loss, one critic step a step.
BETAS = (0.0, 0.9)
CRITIC_LR_RATIO = 4.0
NOISE = 4  # the purpose number of the generators that draw a step's noise (trainer uses 0-3)
# The reconstruction warm-up (docs/results-mnist.md, the probes that found it):
RECONSTRUCTION_LR = 2e-3     # Adam's (default betas), cosine to zero over the warm-up
RECONSTRUCTION_SCALE = 0.1   # the Gaussian decoder's standard deviation, intensities in [0, 1]
INPUT_NOISE = 0.02           # on the teacher-forced inputs: run free, the generator reads its own imperfect pixels
WARMUP_FILE = "warmup.pt"    # the generator as the warm-up left it


def _check_settings(model, data: DataSplit, settings: TrainSettings) -> None:
    """Everything the adversarial loop cannot do, refused before the run folder is made."""
    if world()[0] > 1:
        raise ValueError("`model` generator-gan trains in one process: run it without torchrun")
    if settings.shift or settings.augment != "none":
        raise ValueError("`shift` and `augment` are not supported by `model` generator-gan (give 0 and none)")
    if tuple(data.train.shape) != (model.channels, *model.image_size) or data.train.levels != model.levels:
        raise ValueError(f"the data ({data.train.levels} levels, {list(data.train.shape)}) does not match the model "
                         f"({model.levels} levels, {[model.channels, *model.image_size]})")
    if model.num_classes is not None and (data.train.labels is None or data.train.num_classes != model.num_classes):
        raise ValueError(f"a class-conditional GeneratorGAN ({model.num_classes} classes) needs data labelled "
                         f"with as many classes; {data.name} has {data.train.num_classes or 'no labels'}")


def train_adversarial(model, data: DataSplit, out_dir: str, settings: TrainSettings, *, meta: dict,
                      resume: bool = False, overwrite: bool = False, progress: bool = True, log=print) -> dict:
    """Train GeneratorGAN ``model`` on ``data.train``; checkpoints and metrics go to ``out_dir``,
    which, if it already holds a run, is continued (``resume``) or replaced (``overwrite``),
    never silently. ``meta``: the model kind and data spec stored in every checkpoint. Returns the
    metrics; afterwards ``model`` holds the saved weights (the generator's moving average)."""
    from tqdm.auto import tqdm

    _check_settings(model, data, settings)
    checkpoint_path = os.path.join(out_dir, CHECKPOINT)
    check_run_folder(out_dir, resume, overwrite)
    os.makedirs(out_dir, exist_ok=True)  # only once the arguments are known to be good

    generator, critic = model.generator, model.critic
    device = generator.fc_init.weight.device
    critic_lr = settings.critic_lr or settings.lr * CRITIC_LR_RATIO
    opt_g = torch.optim.Adam(generator.parameters(), lr=settings.lr, betas=BETAS, weight_decay=settings.weight_decay)
    opt_d = torch.optim.Adam(critic.parameters(), lr=critic_lr, betas=BETAS, weight_decay=settings.weight_decay)
    warmup_steps = settings.reconstruction_steps
    adversarial_schedule = replace(settings, steps=max(1, settings.steps - warmup_steps))  # from its first step
    encoder = Encoder(model.image_size, model.z_dim).to(device) if warmup_steps else None
    opt_r = (torch.optim.Adam([*generator.parameters(), *encoder.parameters()], lr=RECONSTRUCTION_LR)
             if warmup_steps else None)
    # The moving average of the generator's weights (state_dict keys of the whole model).
    prefix = "generator."
    ema = ({k: v.detach().clone() for k, v in model.state_dict().items() if k.startswith(prefix)}
           if settings.ema else None)
    start = 0
    metrics = {"world_size": 1, "history": [], "likelihood": False}
    if resume:
        saved = load_resumable(checkpoint_path, settings.steps)
        try:
            model.load_state_dict(saved.get("raw_state", saved["state"]))
            opt_g.load_state_dict(saved["optimizer"]["generator"])
            opt_d.load_state_dict(saved["optimizer"]["critic"])
            if warmup_steps and int(saved["step"]) < warmup_steps:  # the warm-up's own state
                encoder.load_state_dict(saved["encoder"])
                opt_r.load_state_dict(saved["optimizer"]["reconstruction"])
            if ema is not None:
                ema = {k: saved["state"][k].to(ema[k].device, copy=True) for k in ema}  # loaded on the CPU
        except (KeyError, RuntimeError, ValueError, TypeError) as exc:
            raise CheckpointError(f"{checkpoint_path}: does not fit this model ({str(exc).splitlines()[0]})") from None
        start, metrics = int(saved["step"]), dict(saved["metrics"])
        log(f"resuming from {checkpoint_path} at step {start}")

    def averaged_state() -> dict:
        state = model.state_dict()
        return {**state, **ema} if ema is not None else state

    def checkpoint(step: int) -> None:
        weights = {"state": averaged_state(), "raw_state": model.state_dict()} if ema else {"state": model.state_dict()}
        optimizers = {"generator": opt_g.state_dict(), "critic": opt_d.state_dict()}
        warming = {}
        if step < warmup_steps:  # the encoder and its optimiser, needed to resume the warm-up only
            optimizers["reconstruction"] = opt_r.state_dict()
            warming = {"encoder": encoder.state_dict()}
        save_checkpoint(checkpoint_path, {"model": meta["model"], "config": model.config, **weights, **warming,
                                          "optimizer": optimizers, "step": step, "metrics": metrics,
                                          "train": asdict(settings), "data": meta["data"]})

    def reconstruction_step(step: int, real, labels) -> dict:
        noise = _generator(settings.seed, step, NOISE)
        mean, log_var = encoder(real)
        z = mean + (0.5 * log_var).exp() * torch.randn(mean.shape, generator=noise).to(device)
        read = real + INPUT_NOISE * torch.randn(real.shape, generator=noise).to(device)
        predicted = model.teacher_forced(z, read, labels)
        reconstruction = (predicted - real).pow(2).flatten(1).sum(1).mean() / (2 * RECONSTRUCTION_SCALE ** 2)
        kl = 0.5 * (mean.pow(2) + log_var.exp() - 1 - log_var).sum(1).mean()
        for group in opt_r.param_groups:
            group["lr"] = RECONSTRUCTION_LR * 0.5 * (1 + math.cos(math.pi * step / warmup_steps))
        opt_r.zero_grad(set_to_none=True)
        (reconstruction + kl).backward()
        if settings.grad_clip:
            torch.nn.utils.clip_grad_norm_(generator.parameters(), settings.grad_clip)
        opt_r.step()
        return {"reconstruction_loss": reconstruction.item(), "kl": kl.item()}

    def adversarial_step(step: int, real, labels) -> dict:
        z = torch.randn(len(real), model.z_dim, generator=_generator(settings.seed, step, NOISE)).to(device)
        lr = adversarial_schedule.learning_rate(step - warmup_steps)
        for group in opt_g.param_groups:
            group["lr"] = lr
        for group in opt_d.param_groups:
            group["lr"] = critic_lr * lr / settings.lr

        fake = model(z, labels)
        # The critic's update: real and generated images in one batch.
        both = None if labels is None else torch.cat([labels, labels])
        scores = critic(torch.cat([real, fake.detach()]), both)
        d_real, d_fake = scores[:len(real)], scores[len(real):]
        loss_d = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        # The generator's update through the decode op, against the updated critic.
        critic.requires_grad_(False)
        try:
            loss_g = -critic(fake, labels).mean()
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
        finally:
            critic.requires_grad_(True)
        if settings.grad_clip:
            torch.nn.utils.clip_grad_norm_(generator.parameters(), settings.grad_clip)
        opt_g.step()
        return {"critic_loss": loss_d.item(), "generator_loss": loss_g.item(),
                "critic_real": d_real.mean().item(), "critic_fake": d_fake.mean().item()}

    recent: dict[str, list[float]] = {k: list(v) for k, v in metrics.get("recent", {}).items()}
    model.train()
    begin = time.perf_counter()
    bar = tqdm(range(start, settings.steps), initial=start, total=settings.steps, disable=not progress,
               desc="train", unit="step", dynamic_ncols=True)
    for step in bar:
        index = batch_indices(len(data.train), settings.batch_size, settings.seed, step)
        real = model.intensities(data.train.images[index]).to(device)
        labels = data.train.labels[index].to(device) if model.num_classes is not None else None
        warming = step < warmup_steps
        values = (reconstruction_step if warming else adversarial_step)(step, real, labels)
        if ema is not None:
            # The average starts with the adversarial steps: during the warm-up it is the weights.
            weight = 1.0 if warming else 1 - ema_decay(settings.ema, step + 1 - warmup_steps)
            with torch.no_grad():
                for key, value in generator.state_dict().items():
                    ema[prefix + key].lerp_(value, weight)

        if not all(math.isfinite(v) for v in values.values()):
            raise FloatingPointError(f"training diverged at step {step} ({values}); try a smaller --lr")
        for key, value in values.items():
            recent[key] = (recent.get(key, []) + [value])[-50:]
            metrics[f"{key}_last"] = sum(recent[key]) / len(recent[key])
        metrics["recent"] = recent
        done = step + 1
        if warming:
            bar.set_postfix(reconstruction=f"{metrics['reconstruction_loss_last']:.1f}",
                            kl=f"{metrics['kl_last']:.1f}", refresh=False)
        else:
            bar.set_postfix(critic=f"{metrics['critic_loss_last']:.3f}",
                            generator=f"{metrics['generator_loss_last']:.3f}", refresh=False)
        if (settings.eval_every and done % settings.eval_every == 0) or done in (warmup_steps, settings.steps):
            # No likelihood to evaluate: the history records the losses (means over the last 50 steps).
            metrics["history"].append({"step": done, **{f"{k}": metrics[f"{k}_last"] for k in values}})
            if warming:
                bar.write(f"step {done}: reconstruction loss {metrics['reconstruction_loss_last']:.1f}, "
                          f"KL {metrics['kl_last']:.1f} (the warm-up)")
            else:
                bar.write(f"step {done}: critic loss {metrics['critic_loss_last']:.3f} (D(real) "
                          f"{metrics['critic_real_last']:.2f}, D(fake) {metrics['critic_fake_last']:.2f}), "
                          f"generator loss {metrics['generator_loss_last']:.3f}")
        if done == warmup_steps:
            export_weights(os.path.join(out_dir, WARMUP_FILE), model, meta["model"], meta["data"], {"steps": done})
            bar.write(f"the reconstruction warm-up is done: its generator is {os.path.join(out_dir, WARMUP_FILE)}")
        if (settings.checkpoint_every and done % settings.checkpoint_every == 0) or done == settings.steps:
            metrics["steps"] = done
            checkpoint(done)
    bar.close()
    metrics["steps"] = settings.steps
    metrics["seconds"] = metrics.get("seconds", 0.0) + time.perf_counter() - begin
    if ema is not None:  # the caller gets the model as saved: the averaged generator
        model.load_state_dict(averaged_state())
    model.eval()
    metrics.update({"model": meta["model"], "config": model.config, "data": meta["data"], "train": asdict(settings)})
    write_json(os.path.join(out_dir, METRICS), {k: v for k, v in metrics.items() if k != "recent"})
    return metrics
