"""The ``rnngen`` command (also ``python -m rnngen``).

    rnngen demo --out DIR        the main job: train a class-conditional PixelGRU on the built-in
                                 digits, write samples, completions, metrics and the checkpoint
    rnngen train --data SPEC --out DIR       train a model (PixelGRU or the article's generator)
    rnngen sample [--checkpoint PATH] --out PNG   sample images (default: the bundled digits model)
    rnngen complete [--checkpoint PATH] --out PNG complete partial images (e.g. the top half)
    rnngen eval [--checkpoint PATH] [--samples N]   test bits/dim, NLL, sample scores
    rnngen bench [--quick] [--json F] [--plot F]  fused backends against the usual loops
    rnngen serve [--checkpoint PATH]         a local page to edit and repair images (pip install "rnngen[serve]")
    rnngen info                              which backends run here, and why the others do not

Every error ends in one line on stderr and exit status 2 (set RNNGEN_DEBUG=1 for a traceback).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import sys
import time

import torch

from .checkpoint import export_weights
from .dispatch import BACKENDS as _BACKENDS
from .dispatch import CELL_NAMES
from .distributed import init_from_env, local_device, sample_sharded, world
from .images import completion_grid, load_arrays, sample_labels, save_arrays, save_grid
from .models.masks import completion_mask
from .models.transforms import AUGMENTATIONS
from .training.recipes import (
    BUNDLED,
    DEMO,
    GAN,
    MNIST,
    MNIST_BIN,
    MODEL_NAMES,
    OLD_MODEL_NAMES,
    demo_settings,
    make_model,
    recipe_for,
)

BACKENDS = ["auto", *_BACKENDS]  # the --backend choices: dispatch's list, the one place it is written


def pretrained_path(name: str = "digits") -> str:
    """A shipped model's file (default: the bundled class-conditional digits model, trained by
    ``rnngen train``, see the README); rnngen.models.pretrained_path."""
    from .models import pretrained_path as path

    with _as_options():
        return path(name)


# --------------------------------------------------------------------------- helpers

def _data_options(parser: argparse.ArgumentParser, default: str | None) -> None:
    from .data import DATASET_HELP

    fallback = default or "the checkpoint's"
    parser.add_argument("--data", default=default, help=f"{DATASET_HELP} (default: {fallback})")
    parser.add_argument("--levels", type=int, help="re-quantise pixels to this many levels")
    parser.add_argument("--binarize", nargs="?", const="stochastic", choices=["stochastic", "threshold"],
                        help="two levels: each pixel 1 with probability its intensity, one fixed draw (the "
                             "usual binarized MNIST; the default kind), or 'threshold' at half intensity")
    parser.add_argument("--image-size", type=int, help="resize images to this size (square)")
    parser.add_argument("--channels", type=int, choices=[1, 3], help="1 = grey, 3 = RGB")


def _data_spec(args) -> dict:
    return {"spec": args.data, "levels": args.levels, "binarize": args.binarize or False,
            "image_size": args.image_size, "channels": args.channels}


def _load_data(spec: dict):
    from .data import load_from_spec

    return load_from_spec(spec)


def _checkpoint_data(args, payload) -> dict:
    """The data options of a command: the command line's where given, else the checkpoint's."""
    spec = dict(payload.get("data") or {"spec": "digits"})
    if args.data is not None:
        spec = _data_spec(args)
    return spec


@contextlib.contextmanager
def _as_options():
    """The library names its arguments in errors in backquotes (`mask`, `labels`, `model`), the
    same names as this command's options: here they are shown as the options (--mask)."""
    try:
        yield
    except (ValueError, FileNotFoundError) as exc:
        if "`" not in str(exc):
            raise
        raise type(exc)(re.sub(r"`([a-z][a-z_]*)`", lambda m: "--" + m[1].replace("_", "-"), str(exc))) from None


# --------------------------------------------------------------------------- commands

def _info(args) -> int:
    import rnngen

    print(f"rnngen {rnngen.__version__}, torch {torch.__version__}, "
          f"CUDA device: {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}")
    for name, status in rnngen.backend_status().items():
        print(f"  {name:10s} {status}")
    return 0


def _train(args) -> int:
    from .models import build_model
    from .training import TrainSettings, load_checkpoint, train
    from .training.adversarial import train_adversarial
    from .training.trainer import CHECKPOINT

    device = _train_device(args.device)
    init_from_env(device)
    torch.manual_seed(args.seed)  # the same initial weights in every process
    if args.resume:
        path = os.path.join(args.out, CHECKPOINT)
        if not os.path.exists(path):
            raise FileNotFoundError(f"--resume: no {CHECKPOINT} in {args.out}")
        saved = load_checkpoint(path, resumable=True)
        data_spec = saved["data"]
        data = _load_data(data_spec)
        try:
            settings = TrainSettings(**{**saved["train"], **({"steps": args.steps} if args.steps else {})})
        except TypeError as exc:
            raise ValueError(f"{path}: its training settings are not valid ({exc})") from None
        kind, model = saved["model"], build_model(saved["model"], saved["config"], None, args.backend, path)
    else:
        _, recipe = recipe_for(args.data, args.model, binary=bool(args.binarize) or args.levels == 2)
        if MODEL_NAMES[OLD_MODEL_NAMES.get(args.model, args.model)] == "GeneratorGAN":
            # Options of PixelGRU alone: refused rather than silently ignored.
            for name in ("dropout", "input_dropout", "weight_dropout", "shift", "p_identity"):
                if getattr(args, name):
                    raise ValueError(f"--{name.replace('_', '-')} is not an option of --model generator-gan")
            if args.per_column:
                raise ValueError("--per-column is not an option of --model generator-gan")
        elif args.critic_size is not None:
            raise ValueError("--critic-size is an option of --model generator-gan only")
        pixelgru = MODEL_NAMES[OLD_MODEL_NAMES.get(args.model, args.model)] == "PixelGRU"
        if not pixelgru and args.above is None:
            args.above = 0  # the recipe's neighbours are PixelGRU's; an explicit --above is refused below
        if not pixelgru and args.above_rows is None:
            args.above_rows = 1
        if not pixelgru and args.above_rank is None:
            args.above_rank = 0
        if not pixelgru and args.positions is None:
            args.positions = False
        for name in ("hidden", "dropout", "input_dropout", "weight_dropout", "ema", "batch_size", "lr",
                     "weight_decay", "shift", "augment", "p_identity", "above", "above_rows", "above_rank",
                     "positions"):
            if getattr(args, name) is None:
                setattr(args, name, getattr(recipe, name))
        data_spec = _data_spec(args)
        data = _load_data(data_spec)
        with _as_options():
            kind, model = make_model(args.model, data, hidden=args.hidden, conditional=args.conditional,
                                     dropout=args.dropout, input_dropout=args.input_dropout,
                                     per_column=args.per_column, weight_dropout=args.weight_dropout,
                                     augment=args.augment, mixture=args.mixture, z_dim=args.z_dim,
                                     critic_size=args.critic_size or 32, cell=args.cell,
                                     above=args.above, above_rows=args.above_rows, above_rank=args.above_rank,
                                     positions=args.positions,
                                     backend=args.backend,
                                     data_name=args.data)
        steps = args.steps or recipe.steps
        if args.reconstruction_steps is None:  # the recipe's share of the steps given
            args.reconstruction_steps = recipe.reconstruction_steps * steps // recipe.steps
        settings = TrainSettings(steps=steps, batch_size=args.batch_size, lr=args.lr,
                                 weight_decay=args.weight_decay, warmup=args.warmup, grad_clip=args.grad_clip,
                                 shift=args.shift, augment=args.augment, p_identity=args.p_identity,
                                 eval_every=args.eval_every,
                                 checkpoint_every=args.checkpoint_every, ema=args.ema, seed=args.seed,
                                 reconstruction_steps=args.reconstruction_steps,
                                 critic_lr=recipe.critic_lr if args.critic_lr is None else args.critic_lr)
    model.to(device)
    size, rank = world()
    if rank == 0:
        print(f"training {kind} ({sum(p.numel() for p in model.parameters()):,} parameters) on {data.name}: "
              f"{len(data.train)} train / {len(data.test)} test images of {list(data.train.shape)}, "
              f"{data.train.levels} levels" + (f", {size} processes" if size > 1 else ""))
    adversarial = kind == "GeneratorGAN"
    with _as_options():
        metrics = (train_adversarial if adversarial else train)(
            model, data, args.out, settings, meta={"model": kind, "data": data_spec}, resume=args.resume,
            overwrite=args.force, progress=not args.no_progress)
    if rank:
        return 0
    export_weights(os.path.join(args.out, "model.pt"), model, kind, data_spec, metrics)
    if adversarial:
        losses = (f"critic loss {metrics['critic_loss_last']:.3f}, generator loss {metrics['generator_loss_last']:.3f}"
                  if "critic_loss_last" in metrics else  # a run that stopped inside the warm-up
                  f"reconstruction loss {metrics['reconstruction_loss_last']:.1f}, KL {metrics['kl_last']:.1f}")
        print(f"{losses} (means over the last 50 steps); no likelihood to evaluate: score samples with `rnngen eval "
              f"--checkpoint {os.path.join(args.out, 'model.pt')} --samples 1000`; "
              f"checkpoint {os.path.join(args.out, CHECKPOINT)}, weights {os.path.join(args.out, 'model.pt')}")
        return 0
    print(f"test bits/dim {metrics['test_bits_per_dim']:.3f}; the saved model on {metrics['train_images_evaluated']} "
          f"training images {metrics['train_bits_per_dim_saved']:.3f} (the training loss, dropout on: "
          f"{metrics['train_loss_last']:.3f}); "
          f"checkpoint {os.path.join(args.out, CHECKPOINT)}, weights {os.path.join(args.out, 'model.pt')}")
    return 0


def _train_device(name: str) -> torch.device:
    """``--device``, checked before anything is loaded; under torchrun "cuda" is GPU LOCAL_RANK."""
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device {name!r} is not a device (cpu, cuda, cuda:1, ...)") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"--device {name!r}: rnngen runs on cpu or cuda")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: torch sees no CUDA device here")
        with _as_options():
            device = local_device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: this process's GPU is cuda:{device.index}, but there are "
                             f"{torch.cuda.device_count()} CUDA devices")
    return device


def _model_path(args) -> str:
    """--checkpoint, or the shipped model --model names (default: the digits model)."""
    if args.checkpoint and args.model:
        raise ValueError("give --checkpoint or --model, not both")
    return args.checkpoint or pretrained_path(args.model or "digits")


def _open_model(args):
    from .models import load_model

    return load_model(_model_path(args), backend=args.backend)


def _check_guidance(model, payload, guidance: float) -> float:
    """--guidance: PixelGRU's class guidance (a finite number >= 0; the model checks the rest)."""
    if not math.isfinite(guidance) or guidance < 0:
        raise ValueError(f"--guidance must be a finite number >= 0, got {guidance}")
    if guidance and type(model).__name__ != "PixelGRU":
        raise ValueError(f"--guidance is for class-conditional PixelGRU models, not a {payload['model']}")
    return guidance


def _sample(args) -> int:
    device = _train_device(args.device)
    init_from_env(device)
    model, payload = _open_model(args)
    _check_guidance(model, payload, args.guidance)
    model.to(device)
    if args.n < 1:
        raise ValueError(f"--n must be >= 1, got {args.n}")
    with _as_options():
        labels, columns = sample_labels(model.num_classes, args.n, args.labels)
    n = args.n if labels is None else len(labels)
    start = time.perf_counter()
    images = sample_sharded(model, n, None if labels is None else labels.to(device), args.temperature, args.seed,
                            args.guidance)
    seconds = time.perf_counter() - start
    if images is None:  # not rank 0: rank 0 writes the files
        return 0
    images = images.cpu()
    save_grid(args.out, images, model.levels, columns=columns)
    if args.save_array:
        save_arrays(args.save_array, images, labels)
    print(f"{n} samples in {seconds:.2f} s -> {args.out}" + (f", {args.save_array}" if args.save_array else ""))
    return 0


def _complete(args) -> int:
    model, payload = _open_model(args)
    if not hasattr(model, "complete"):
        raise ValueError(f"a {payload['model']} cannot complete images (it has no pixel likelihood); use PixelGRU")
    _check_guidance(model, payload, args.guidance)
    if args.images:
        with _as_options():
            images, labels = load_arrays(args.images)
        images = images[: args.n]
        labels = labels[: args.n] if labels is not None else None
    else:
        data = _load_data(_checkpoint_data(args, payload)).test
        images, labels = data.images[: args.n].long(), None if data.labels is None else data.labels[: args.n]
    if model.num_classes is None:
        labels = None
    elif labels is None:
        raise ValueError("the model is class-conditional: the images need labels (an 'labels' array)")
    if images.dim() == 3:
        images = images[:, None]
    with _as_options():
        mask = completion_mask(args.mask, model.image_size)
    rows = [model.complete(images, mask, labels=labels, temperature=args.temperature, seed=args.seed + s,
                           guidance=args.guidance)
            for s in range(args.samples)]
    # One row per image: the original, the part given, then the completions.
    save_grid(args.out, completion_grid(images, mask, rows), model.levels, columns=2 + args.samples)
    if args.save_array:
        save_arrays(args.save_array, torch.stack(rows, 1).flatten(0, 1), None, originals=images, mask=mask)
    print(f"{len(images)} images x {args.samples} completions ({args.mask} given) -> {args.out}")
    return 0


def _eval(args) -> int:
    import json

    from .evaluation import evaluate_model

    model, payload = _open_model(args)
    _check_guidance(model, payload, args.guidance)
    data = _load_data(_checkpoint_data(args, payload))
    samples = args.samples or 0
    if not getattr(model, "has_likelihood", True):
        samples = samples or DEFAULT_SAMPLES
        print(f"a {payload['model']} has no likelihood: sample scores only ({samples} samples"
              f"{'' if args.samples else ', the default of --samples for it'})")
    scores = evaluate_model(model, data, args.split, samples=samples, seed=args.seed, guidance=args.guidance,
                            progress=True)
    if scores["bits_per_dim"] is not None:
        print(f"{args.split} bits/dim: {scores['bits_per_dim']:.4f} ({scores['images']} images of {data.name}); "
              f"NLL {scores['nll_nats']:.2f} nats per image" + (
                  f" given the class, {scores['marginal_nll_nats']:.2f} as an unconditional model (summed over the "
                  f"classes)" if "marginal_nll_nats" in scores else ""))
    if samples:
        recognised = "" if scores["recognised"] is None else f"{scores['recognised']:.1%} recognised as their class, "
        print(f"{scores['samples']} samples: {recognised}{scores['confident']:.1%} classified with confidence >= 0.9 "
              f"({scores['confident_classes']} classes among them), Frechet distance to the real {args.split} images "
              f"{scores['frechet']:.2f} (in a small classifier's feature space: comparable between models here only)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"checkpoint": _model_path(args), "data": data.name, **scores}, f, indent=2)
    return 0


DEFAULT_SAMPLES = 1000  # rnngen eval's samples of a model without a likelihood, when --samples is not given


def _demo(args) -> int:
    from .bench.timing import sampling_times
    from .data import load_dataset
    from .dispatch import resolve
    from .training import train

    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    data = load_dataset("digits")
    kind, model = make_model("pixelgru", data, **DEMO.model_options(hidden=args.hidden), backend=args.backend)
    print(f"1. Training a class-conditional PixelGRU (hidden {args.hidden}) on the built-in digits "
          f"({len(data.train)} train / {len(data.test)} test, 8x8, 17 levels), {args.steps} steps:")
    meta = {"model": kind, "data": {"spec": "digits"}}
    metrics = train(model, data, args.out, demo_settings(args.steps, args.seed), meta=meta, overwrite=args.force,
                    progress=not args.no_progress)
    export_weights(os.path.join(args.out, "model.pt"), model, kind, meta["data"], metrics)
    model.eval()

    per_class = 10
    labels = torch.arange(10).repeat_interleave(per_class)
    samples = model.sample(len(labels), labels=labels, seed=args.seed)
    save_grid(os.path.join(args.out, "samples.png"), samples, 17, columns=per_class)
    save_arrays(os.path.join(args.out, "samples.npz"), samples, labels)

    test = data.test
    picks = torch.stack([torch.nonzero(test.labels == d)[0, 0] for d in range(10)])
    originals, mask = test.images[picks].long(), completion_mask("top-half", (8, 8))
    completions = [model.complete(originals, mask, labels=test.labels[picks], seed=args.seed + s) for s in range(4)]
    save_grid(os.path.join(args.out, "completions.png"), completion_grid(originals, mask, completions), 17, columns=6)

    # Sampling speed: the fused backend against the plain per-step loop (the reference backend).
    fused = resolve(args.backend, torch.device("cpu"), "sample", torch.float32)
    timings = sampling_times(model, len(labels), labels, backends=(fused, "reference"))
    print(f"\n2. Test bits/dim: {metrics['test_bits_per_dim']:.3f} "
          f"(an independent per-pixel model gets 2.44, the maximum is log2(17) = 4.09)")
    print(f"3. Sampling 100 digits (64 steps each): {fused} backend {timings[fused] * 1e3:.1f} ms, plain "
          f"PyTorch loop (reference backend) {timings['reference'] * 1e3:.1f} ms: "
          f"{timings['reference'] / timings[fused]:.1f}x on this machine")
    print(f"4. Wrote {args.out}/samples.png (a row per digit), completions.png (original, top half given, "
          f"4 completions), samples.npz, metrics.json, checkpoint.pt, model.pt")
    return 0


def _serve(args) -> int:
    from .serve import serve

    if not 1 <= args.port <= 65535:
        raise ValueError(f"--port must be in 1..65535, got {args.port}")
    if args.checkpoint is not None and not os.path.isfile(args.checkpoint):
        raise FileNotFoundError(f"--checkpoint file not found: {args.checkpoint}")
    serve(_model_path(args), host=args.host, port=args.port, backend=args.backend)
    return 0


# --------------------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rnngen", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    def backend_option(p):
        p.add_argument("--backend", default="auto", choices=BACKENDS, help="backend of the fused ops")

    sub.add_parser("info", help="list the backends and why unavailable ones are").set_defaults(run=_info)
    sub.add_parser("bench", help="the benchmark suite (rnngen bench --help)", add_help=False)

    demo = sub.add_parser("demo", help="the main job: train on the built-in digits, sample, complete")
    demo.add_argument("--out", default="rnngen-demo", help="output folder (default: rnngen-demo)")
    demo.add_argument("--steps", type=int, default=DEMO.steps, help=f"training steps (default {DEMO.steps})")
    demo.add_argument("--hidden", type=int, default=DEMO.hidden)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--no-progress", action="store_true", help="no progress bar")
    demo.add_argument("--force", action="store_true", help="replace an earlier demo in OUT")
    backend_option(demo)
    demo.set_defaults(run=_demo)

    train = sub.add_parser("train", help="train a model on a dataset",
                           description="Options not given come from the data's recipe (rnngen.training.recipes): "
                                       "mnist and fashion-mnist data get MNIST's (hidden 256, 3000 steps; binarized 5000), "
                                       "other data the bundled digits model's (hidden 768, 6000 steps).")
    _data_options(train, "digits")
    train.add_argument("--out", required=True, help="output folder: checkpoint.pt, model.pt, metrics.json")
    train.add_argument("--model", choices=[*MODEL_NAMES, *OLD_MODEL_NAMES], default="pixelgru",
                       metavar="{" + ",".join(MODEL_NAMES) + "}",
                       help="pixelgru; generator-vae: the article's generator as a VAE decoder; generator-gan: "
                            "the article's generator trained against a critic (seed-vae and seed-gan, their old "
                            "names, are accepted)")
    train.add_argument("--hidden", type=int, default=None, help="GRU hidden size")
    train.add_argument("--conditional", action=argparse.BooleanOptionalAction, default=True,
                       help="condition on the class label when the data has labels (default on)")
    train.add_argument("--dropout", type=float, default=None, help="on the hidden states before the head")
    train.add_argument("--input-dropout", type=float, default=None, help="on each step's input gates")
    train.add_argument("--per-column", action="store_true", help="an input table and head per image column")
    train.add_argument("--above", type=int, default=None,
                       help="pixelgru: also input the pixels of the row above, this many columns either side "
                            "(default: the recipe's, 1 for mnist, 2 binarized, 0 for digits)")
    train.add_argument("--above-rows", type=int, default=None,
                       help="pixelgru: how many rows above --above reads (default: the recipe's, 1; 2 for binarized mnist)")
    train.add_argument("--above-rank", type=int, default=None,
                       help="pixelgru: factor the tables of the pixels above through a shared value embedding "
                            "of this size (default: the recipe's; 0: a free table per neighbour)")
    train.add_argument("--positions", action=argparse.BooleanOptionalAction, default=None,
                       help="pixelgru: a learned row of input gates and logits per image column, so the model "
                            "knows where in the row it is (default: the recipe's)")
    train.add_argument("--weight-dropout", type=float, default=None,
                       help="DropConnect on the recurrent weights, one mask per batch")
    train.add_argument("--ema", type=float, default=None,
                       help="weight moving-average decay; the average is evaluated and saved (0: off)")
    train.add_argument("--z-dim", type=int, default=None,
                       help="latent size (generator-vae: default 16, generator-gan: default 64)")
    train.add_argument("--cell", choices=CELL_NAMES, default="gru",
                       help="pixelgru's recurrent cell: gru (default), lstm, or the Elman rnn_tanh / rnn_relu")
    train.add_argument("--critic-size", type=int, default=None,
                       help="generator-gan: the critic's first channel count (then 2x, 4x; default 32)")
    train.add_argument("--steps", type=int, help=f"training steps (default: the recipe's, {BUNDLED.steps} for digits, {MNIST.steps} for "
                            f"mnist ({MNIST_BIN.steps} binarized), {GAN.steps} for generator-gan; with --resume: the saved run's)")
    train.add_argument("--reconstruction-steps", type=int, default=None,
                       help=f"generator-gan: the first steps are a teacher-forced reconstruction warm-up "
                            f"(default: the recipe's, {GAN.reconstruction_steps} of its {GAN.steps}; with --steps "
                            f"the same share of them; as many as --steps: the warm-up alone, --resume goes on)")
    train.add_argument("--critic-lr", type=float, default=None,
                       help=f"generator-gan: the critic's learning rate (default: the recipe's, {GAN.critic_lr:g}; "
                            f"0: four times --lr)")
    train.add_argument("--batch-size", type=int, default=None)
    train.add_argument("--lr", type=float, default=None)
    train.add_argument("--weight-decay", type=float, default=None)
    train.add_argument("--warmup", type=int, default=100)
    train.add_argument("--grad-clip", type=float, default=1.0)
    train.add_argument("--shift", type=int, default=None, help="augment by shifts of up to this many pixels")
    train.add_argument("--augment", choices=list(AUGMENTATIONS), default=None,
                       help="distribution augmentation: also train on flipped (and rotated) images, the model "
                            f"told which transform made each (default: the recipe's, {BUNDLED.augment} for digits)")
    train.add_argument("--p-identity", type=float, default=None,
                       help="with --augment: the share of training images left as they are")
    train.add_argument("--mixture", action=argparse.BooleanOptionalAction, default=True,
                       help="with --augment: the model is the mixture over the transforms' orderings (an exact "
                            "likelihood, sampled at the cost of one; default on), not the identity's alone")
    train.add_argument("--eval-every", type=int, default=500)
    train.add_argument("--checkpoint-every", type=int, default=500)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    train.add_argument("--force", action="store_true", help="replace a run already in OUT")
    train.add_argument("--no-progress", action="store_true")
    train.add_argument("--device", default="cpu", help="where to train: cpu, cuda, cuda:1, ... (default cpu)")
    backend_option(train)
    train.set_defaults(run=_train)

    sample = sub.add_parser("sample", help="sample images from a trained model")
    sample.add_argument("--checkpoint", help="checkpoint.pt or model.pt (default: the bundled digits model)")
    sample.add_argument("--model", help="a shipped model by name instead: digits (the default), mnist, mnist-bin")
    sample.add_argument("--out", required=True, help="PNG grid to write")
    sample.add_argument("--n", "--num-samples", dest="n", type=int, default=100,
                        help="number of samples, split over the classes (--num-samples under torchrun: "
                        "torchrun takes --n for an abbreviation of its own options)")
    sample.add_argument("--labels", help="comma-separated classes, a row each (default: all)")
    sample.add_argument("--temperature", type=float, default=1.0)
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--guidance", type=float, default=0.0,
                        help="class guidance w >= 0 (PixelGRU with classes): each pixel from p(v|y)^(1+w) / p(v)^w, "
                             "p(v) the model's mixture over the classes; a PyTorch loop, not the fused sampler")
    sample.add_argument("--save-array", metavar="NPZ", help="also write the values (images, labels) here")
    sample.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ... (under torchrun, cuda: a GPU "
                                                        "per process; default cpu)")
    backend_option(sample)
    sample.set_defaults(run=_sample)

    complete = sub.add_parser("complete", help="complete partial images")
    complete.add_argument("--checkpoint", help="checkpoint.pt or model.pt (default: the bundled digits model)")
    complete.add_argument("--model", help="a shipped model by name instead: digits (the default), mnist, mnist-bin")
    complete.add_argument("--out", required=True, help="PNG grid to write")
    _data_options(complete, None)
    complete.add_argument("--images", metavar="NPZ", help="images (and labels) to complete, instead of --data's test split")
    complete.add_argument("--n", type=int, default=10, help="number of images")
    complete.add_argument("--mask", default="top-half", help="top-half, top-quarter, left-half or FILE.npy (True = given)")
    complete.add_argument("--samples", type=int, default=4, help="completions per image")
    complete.add_argument("--temperature", type=float, default=1.0)
    complete.add_argument("--seed", type=int, default=0)
    complete.add_argument("--guidance", type=float, default=0.0,
                          help="class guidance w >= 0 (PixelGRU with classes): each pixel from p(v|y)^(1+w) / p(v)^w, "
                               "p(v) the model's mixture over the classes; a PyTorch loop, not the fused sampler")
    complete.add_argument("--save-array", metavar="NPZ")
    backend_option(complete)
    complete.set_defaults(run=_complete)

    evaluate = sub.add_parser("eval", help="bits/dim, NLL and sample scores of a model on a dataset")
    evaluate.add_argument("--checkpoint", help="checkpoint.pt or model.pt (default: the bundled digits model)")
    evaluate.add_argument("--model", help="a shipped model by name instead: digits (the default), mnist, mnist-bin")
    _data_options(evaluate, None)
    evaluate.add_argument("--split", choices=["test", "train"], default="test")
    evaluate.add_argument("--samples", type=int, default=None,
                          help="also draw this many samples and score them with a classifier of the real images: "
                               "share recognised as their class, confident share, Frechet distance")
    evaluate.add_argument("--seed", type=int, default=0, help="of the samples")
    evaluate.add_argument("--guidance", type=float, default=0.0, help="of the samples (see rnngen sample --guidance)")
    evaluate.add_argument("--json", metavar="FILE", help="also write the scores here")
    backend_option(evaluate)
    evaluate.set_defaults(run=_eval)

    page = sub.add_parser("serve", help="a local web page to edit and repair images with a model",
                          description="Draw, erase and mark in red what to regenerate; the model completes the "
                                      "image at once. Needs Gradio: pip install \"rnngen[serve]\".")
    page.add_argument("--checkpoint", help="checkpoint.pt or model.pt of a PixelGRU (default: the bundled digits model)")
    page.add_argument("--model", help="a shipped model by name instead: digits (the default), mnist, mnist-bin")
    page.add_argument("--host", default="127.0.0.1",
                      help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the network)")
    page.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    backend_option(page)
    page.set_defaults(run=_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:  # the benchmark suite parses its own options (python -m rnngen.bench)
        from .bench import main as bench_main

        return bench_main(argv[1:])
    args = build_parser().parse_args(argv)
    for name in ("n", "samples", "steps", "hidden", "z_dim", "critic_size"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            print(f"rnngen {args.command}: error: --{name.replace('_', '-')} must be >= 1, got {value}", file=sys.stderr)
            return 2
    problem = _output_problem(args)
    if problem:
        print(f"rnngen {args.command}: error: {problem}", file=sys.stderr)
        return 2
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print(f"rnngen {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # one line, never a traceback (RNNGEN_DEBUG=1 shows it)
        if os.environ.get("RNNGEN_DEBUG") == "1":
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        print(f"rnngen {args.command}: error: {message or type(exc).__name__}", file=sys.stderr)
        return 2


# The commands whose --out is a directory (the others write a file there).
_OUT_DIRS = ("train", "demo")


def _output_problem(args) -> str | None:
    """What is wrong with the output paths, checked before any work starts (None: nothing)."""
    out = getattr(args, "out", None)
    if out is not None:
        if args.command in _OUT_DIRS and os.path.exists(out) and not os.path.isdir(out):
            return f"--out {out} exists and is not a directory (it is where the run's files go)"
        if args.command not in _OUT_DIRS and os.path.isdir(out):
            return f"--out {out} is a directory; give the path of the PNG file to write"
    save_array = getattr(args, "save_array", None)
    if save_array is not None and os.path.isdir(save_array):
        return f"--save-array {save_array} is a directory; give the path of the .npz file to write"
    return None


if __name__ == "__main__":
    sys.exit(main())
