"""Training recipes, and a model built from options: what ``rnngen demo`` and ``rnngen train`` run.

:data:`DEMO` is the demo's recipe, :data:`BUNDLED` the bundled digits model's and so ``rnngen
train``'s defaults, :data:`MNIST` and :data:`MNIST_BIN` its defaults for grey and binarized MNIST
data (:data:`RECIPES` names them, :func:`recipe_for` picks one for a data spec). Each value's reason is beside it; the runs
behind them are in docs/results-digits.md ("How the recipe was found"); :data:`GAN` is the
adversarial generator's, whatever the data. :func:`make_model` builds a PixelGRU, GeneratorVAE
or GeneratorGAN for a dataset from the options ``rnngen train`` takes, and :func:`demo_settings`
is the demo's training schedule.

Errors name arguments in backquotes (`model`); the ``rnngen`` command shows them as its options
(``--model``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..data import DataSplit
from ..models import GeneratorGAN, GeneratorVAE, PixelGRU
from ..models.transforms import augmentation_count
from .trainer import TrainSettings


@dataclass(frozen=True)
class Recipe:
    """A PixelGRU's size and regularisation and its training settings (see the module docstring)."""

    hidden: int             # GRU hidden size
    steps: int              # optimiser steps
    batch_size: int         # images per step
    lr: float               # peak learning rate (AdamW)
    weight_decay: float     # AdamW's decoupled weight decay
    dropout: float          # on the hidden states before the head
    input_dropout: float    # on each step's input gates
    shift: int              # augmentation by shifts of up to this many pixels
    ema: float              # decay of the moving average of the weights that is evaluated and saved
    weight_dropout: float   # DropConnect on W_hh, one mask per batch
    augment: str            # distribution augmentation: none, flips or dihedral
    p_identity: float       # with augment: the share of training images left as they are
    above: int              # PixelGRU's inputs from the rows above: this many columns either side
    above_rows: int = 1     # ... of this many rows
    above_rank: int = 0     # their tables factored through a value embedding of this size (0: free tables)
    positions: bool = False  # PixelGRU: a learned row of input gates and logits per column
    reconstruction_steps: int = 0  # generator-gan: the first steps, a teacher-forced reconstruction warm-up
    critic_lr: float = 0.0  # generator-gan: the critic's learning rate (0: 4x lr)

    def model_options(self, **changes) -> dict:
        """The recipe's options of :func:`make_model` (``changes`` replacing some)."""
        options = {"hidden": self.hidden, "dropout": self.dropout, "input_dropout": self.input_dropout,
                   "weight_dropout": self.weight_dropout, "augment": self.augment, "above": self.above,
                   "above_rows": self.above_rows, "above_rank": self.above_rank, "positions": self.positions}
        return {**options, **changes}


# The demo's recipe: chosen on the digits by a sweep; small data (1438 training images) wants
# strong dropout, weight decay and a moving average of the weights. It trains in under 3 minutes
# on a 2-vCPU machine (test 1.706 bits/dim).
DEMO = Recipe(
    hidden=128,            # the demo's budget; every larger model overfitted without more regularisation
    steps=4000,            # the sweeps' run length; longer runs of these models got worse on test
    batch_size=64,         # held fixed in every sweep (not itself tuned)
    lr=3e-3,               # held fixed in the sweeps (not itself tuned)
    weight_decay=0.05,     # small data wants weight decay
    dropout=0.4,           # the first sweep's best at this size (it tried 0 to 0.5)
    input_dropout=0.25,    # likewise, beside dropout 0.4
    shift=0,               # shift augmentation made test bits/dim slightly worse
    ema=0.999,             # a moving average of the weights helps small data
    weight_dropout=0.0,    # at hidden 128 DropConnect only hurts (1.709 without, 1.717-1.826 at 0.1-0.5)
    augment="none",        # distribution augmentation pays off in a wider model trained longer (BUNDLED)
    p_identity=0.5,        # TrainSettings' default; unused without augment
    above=0,               # the digits' models read their own last pixel only
)

# `rnngen train`'s defaults and the bundled model: six times the width, held back by DropConnect
# on W_hh, and fed more images by distribution augmentation (three in four are rotated or
# mirrored, the model told which), trained longer, and used as the mixture over the eight
# orderings (test 1.585 bits/dim). Many times the demo's training time, so the demo keeps the
# smaller recipe.
BUNDLED = replace(
    DEMO,
    hidden=768,            # the mixture over the orderings rewards width: 1.585 at 768 against 1.605 at 512
    steps=6000,            # the mixture kept improving to step 6000 (1.610 at 3500), the identity's
                           # ordering alone did not
    weight_dropout=0.2,    # DropConnect lets a wider model win (hidden 256: 1.669 at 0.2)
    augment="dihedral",    # the eight rotations and mirror images, the model told which
    p_identity=0.25,       # a quarter left as they are: 1.636 against 1.652 with half (hidden 512)
)

# `rnngen train --data mnist` (and mnist:DIR, fashion-mnist:DIR) at 256 grey levels: the article's
# setting, 28x28 at hidden 256. At 784 steps an image the digits recipe (hidden 768, dihedral
# augmentation, 6000 steps) would take hours on a CPU; this is the shipped mnist.pt's recipe, about
# 85 minutes on a quiet 2-vCPU machine (its run: 5077 s, 2.0 steps a second; docs/results-mnist.md
# has the runs and their scores).
MNIST = replace(
    DEMO,
    hidden=256,            # the article's size; W_hh stays in the CPU kernel's cache
    steps=10000,           # 40 passes over the 8,000 training images at batch 32. The test loss is
                           # lowest near 5000 (0.887) and 0.902 at 10000, but the samples kept
                           # improving: recognised 55.4% -> 64.0%, Frechet 205.8 -> 154.6
    batch_size=32,         # 784 steps an image: a small batch keeps a step short
    lr=2e-3,
    weight_decay=0.01,     # 8,000 images are many more than the digits' 1,438: little weight decay
    dropout=0.1,           # likewise, light dropout
    input_dropout=0.0,
    weight_dropout=0.0,
    augment="none",        # digits have an up and a handedness; at 784 steps augmentation is costly
    above=2,               # the five pixels above ...
    above_rows=2,          # ... in each of the two rows above, as binarized; with free tables
                           # (256 values by 768 gates each) they fit the 256-level training images
    above_rank=16,         # (test 0.941), through a 16-number value embedding they do not (0.894)
    positions=True,        # a row per column: samples no longer drift along the row (recognised
                           # 35.3% -> 55.4%, Frechet 702.9 -> 205.8; test 0.894 -> 0.890)
)

# The same data binarized (--binarize, or --levels 2): the shipped mnist-bin.pt's recipe, about
# 40 minutes (about 2.1 steps a second) on the same machine. Two values need no factored tables.
MNIST_BIN = replace(
    MNIST,                 # a row per column too: 94.3% of the samples recognised (83.9% without),
                           # test 80.21 nats (82.05)
    steps=5000,            # 20 passes over the training images; longer was not tried binarized
    above_rank=0,          # the five pixels above in each of two rows (binarized probes of 800 steps:
                           # 0.1669 bits/dim on training images, against 0.1745 for one row, 0.1778
                           # for three pixels, docs/results-mnist.md)
)

# `rnngen train --model generator-gan`, any data: the article's generator at its own size against
# a small critic (rnngen.models.generator_gan, rnngen.training.adversarial), after a
# reconstruction warm-up. The critic's settings are SAGAN's for hinge loss with spectral norm (no
# weight decay); no dropout or augmentation. The 28x28 runs and probes behind each value are in
# docs/results-mnist.md.
GAN = replace(
    MNIST,
    hidden=256,            # the article's size
    steps=9600,            # the warm-up's 6000 and 3600 adversarial steps (after 600: 57.7% recognised,
                           # after 3600: 85.7%)
    reconstruction_steps=6000,  # 1000 drew blurred strokes, 2500 digits of the class asked for
                                # (20.6% recognised), 6000 better placed ones (40.7%)
    batch_size=32,         # 784 steps an image: a small batch keeps a step short
    lr=1e-5,               # the generator's: at SAGAN's 1e-4 the critic's gradient turned the
                           # warm-up's strokes to fog within 200 steps; at 1e-5 it kept them
    critic_lr=4e-4,        # the critic keeps SAGAN's rate (4x its 1e-4)
    weight_decay=0.0,
    dropout=0.0,
    ema=0.999,             # the warmed-up moving average of the generator's weights is saved
    above=0,               # a PixelGRU option; the article's generator reads its last pixel only
    above_rows=1,
)

RECIPES = {"demo": DEMO, "bundled": BUNDLED, "mnist": MNIST, "mnist-bin": MNIST_BIN, "gan": GAN}

# make_model's model names (rnngen train --model), and the model kind each builds; old names
# still accepted.
MODEL_NAMES = {"pixelgru": "PixelGRU", "generator-vae": "GeneratorVAE", "generator-gan": "GeneratorGAN"}
OLD_MODEL_NAMES = {"seed-vae": "generator-vae", "seed-gan": "generator-gan"}


def recipe_for(data: str | None, model: str | None = None, binary: bool = False) -> tuple[str, Recipe]:
    """The recipe ``rnngen train`` uses for data spec ``data`` and ``model`` (its --model):
    the GAN's for generator-gan; else for mnist, mnist:DIR and fashion-mnist:DIR MNIST's, or
    MNIST_BIN's when the data is ``binary`` (binarized, or two levels); the bundled digits
    model's otherwise."""
    if MODEL_NAMES.get(OLD_MODEL_NAMES.get(model, model)) == "GeneratorGAN":
        return "gan", GAN
    kind = (data or "digits").partition(":")[0].lower()
    if kind in ("mnist", "fashion-mnist"):
        return ("mnist-bin", MNIST_BIN) if binary else ("mnist", MNIST)
    return "bundled", BUNDLED


def make_model(model: str, data: DataSplit, *, hidden: int = BUNDLED.hidden, conditional: bool = True,
               dropout: float = BUNDLED.dropout, input_dropout: float = BUNDLED.input_dropout,
               per_column: bool = False, weight_dropout: float = BUNDLED.weight_dropout,
               augment: str = BUNDLED.augment, mixture: bool = True, z_dim: int | None = None,
               critic_size: int = 32, cell: str = "gru", above: int = 0, above_rows: int = 1,
               above_rank: int = 0, positions: bool = False, backend: str = "auto", data_name: str | None = None):
    """A new model for ``data`` (its image shape, levels and, if ``conditional``, classes):
    ``model`` is "pixelgru", "generator-vae" or "generator-gan" (:data:`MODEL_NAMES`; the old
    names "seed-vae" and "seed-gan" are accepted). Returns (model kind, module).

    PixelGRU: ``augment`` other than "none" conditions it on that many transforms, and
    ``mixture`` makes it the mixture over their orderings. GeneratorVAE and GeneratorGAN: grey
    images only, no augmentation (they are not told the transform); ``z_dim`` is their latent
    size (default 16 and 64); GeneratorGAN is class-conditional like PixelGRU and takes
    ``critic_size``, the critic's first channel count. ``cell``: PixelGRU's recurrent cell ("gru",
    "lstm", "rnn_tanh", "rnn_relu"; the other models run the GRU), ``above``, ``above_rows`` and
    ``above_rank`` (its inputs from the rows above; PixelGRU only), ``positions`` (a learned row per
    column; PixelGRU only). ``data_name``: what errors call
    the data (default: its name)."""

    kind = MODEL_NAMES.get(OLD_MODEL_NAMES.get(model, model))
    if kind is None:
        raise ValueError(f"`model` must be one of {', '.join(MODEL_NAMES)}, got {model!r}")
    channels, height, width = data.train.shape
    if kind != "PixelGRU" and cell != "gru":
        raise ValueError(f"`cell` {cell} is an option of `model` pixelgru only; {model} runs the GRU")
    if kind != "PixelGRU" and positions:
        raise ValueError(f"`positions` is an option of `model` pixelgru only; {model} has no tables per column")
    if kind != "PixelGRU" and (above or above_rows != 1 or above_rank):
        raise ValueError(f"`above`, `above_rows` and `above_rank` are options of `model` pixelgru only; {model} "
                         f"reads its last pixel only")
    if kind in ("GeneratorVAE", "GeneratorGAN"):
        if channels != 1:
            raise ValueError(f"`model` {model} generates grey images; use `channels` 1")
        if augment != "none":
            raise ValueError("`augment` needs a model that is told the transform: use `model` pixelgru")
    num_classes = data.train.num_classes if (conditional and data.train.labels is not None) else None
    if kind == "GeneratorVAE":
        return kind, GeneratorVAE((height, width), levels=data.train.levels, z_dim=z_dim or 16, hidden_size=hidden,
                                  backend=backend)
    if conditional and num_classes is None:
        raise ValueError(f"`conditional` needs labelled data; {data_name or data.name} has no labels")
    if kind == "GeneratorGAN":
        return kind, GeneratorGAN((height, width), levels=data.train.levels, z_dim=z_dim or 64, hidden_size=hidden,
                                  critic_size=critic_size, num_classes=num_classes, backend=backend)
    return kind, PixelGRU((height, width), channels=channels, levels=data.train.levels, hidden_size=hidden,
                          num_classes=num_classes, dropout=dropout, input_dropout=input_dropout,
                          per_column=per_column, weight_dropout=weight_dropout,
                          augmentations=0 if augment == "none" else augmentation_count(augment),
                          mixture=augment if mixture else "none", cell=cell, above=above, above_rows=above_rows,
                          above_rank=above_rank, positions=positions, backend=backend)


def demo_settings(steps: int = DEMO.steps, seed: int = 0, recipe: Recipe = DEMO) -> TrainSettings:
    """The demo's schedule for a run of ``steps``: ``recipe``'s optimiser settings, a warm-up of
    at most 100 steps, five evaluations and checkpoints, and the moving average of the weights
    only from 1000 steps on (a rule from before the trainer warmed the average up, when a shorter
    run's 0.999 average was still mostly its untrained start; kept, so the demo trains as before)."""
    return TrainSettings(steps=steps, batch_size=recipe.batch_size, lr=recipe.lr, weight_decay=recipe.weight_decay,
                         shift=recipe.shift, warmup=min(100, steps), ema=recipe.ema if steps >= 1000 else 0.0,
                         eval_every=max(1, steps // 5), checkpoint_every=max(1, steps // 5), seed=seed)
