"""GeneratorGAN: the article's generator, trained adversarially against a small convolutional critic.

The article trains its ``RNNImageGenerator`` (z sets the first GRU state through ``fc_init``; a
GRU cell walks the image in raster order, each step's output pixel fed back as the next input)
with a reconstruction loss (here: :class:`GeneratorVAE`) and an adversarial one: this model.
The generator is the article's class unchanged and runs through the fused ``decode`` op, so the
critic's gradient reaches its weights through all H*W steps of the recurrence.

Choices, and why:

- **Pixels.** The generator's continuous output is the intensity, as in the article and in
  GeneratorVAE (whose decoder means are on the same scale): real images are scaled to [0, 1]
  (v / (levels - 1); binarized data is 0/1), the critic sees the generator's output as it is,
  and samples are it clamped to [0, 1] and rounded to the data's levels, so ``rnngen sample /
  eval`` treat them like every other model's. No squashing function: with a sigmoid on the
  output, the first 28x28 run drew all-black images at step 100 and stayed there (critic loss
  0.002 at step 200): a saturated sigmoid passes no gradient back. Unsquashed, a value outside
  [0, 1] is simply something the critic learns to call fake, and its gradient pushes it back.
- **Loss: hinge** (Lim & Ye 2017; Miyato et al. 2018), critic ``relu(1 - D(x)) + relu(1 + D(G(z)))``,
  generator ``-D(G(z))``, with **spectral normalisation** of every critic layer. Spectral norm
  bounds the critic's Lipschitz constant at the cost of one power iteration per forward, without
  the second backward pass a gradient penalty (WGAN-GP, R1) costs, and hinge + spectral norm is
  the recipe known to train at one critic step per generator step (SNGAN, BigGAN), so each pass
  of the generator's 784-step recurrence serves both updates (``rnngen.training.adversarial``).
- **Initialisation** of the generator's recurrent weights: each gate's block of W_hh orthogonal
  with gain :data:`RECURRENT_GAIN` (the architecture is the article's; only its starting point
  differs). With PyTorch's default initialisation the free-running GRU is contractive: the
  images of different z differ in the first row only and settle to one constant value after it,
  and the second 28x28 run (no sigmoid, default initialisation) stayed there: after 200 steps
  every sample was one constant grey after its first ~10 pixels.
  At gain 2.25 the state starts alive: the pixels of 64 random z's images still differ by about
  0.2 in the last row (standard deviation over z; 0.17 and 0.23 for two draws of the weights at
  hidden 256), against 0.0000 at PyTorch's default. (Training can still drive it back to a
  fixed point: docs/results-mnist.md.)
- **Chrono initialisation** of the update gate (Tallec & Ollivier 2018): its biases are drawn
  so that each hidden unit keeps its value over log-uniform time scales of 1 to H*W steps
  (``bias_hh`` of the z block log U(1, H*W), ``bias_ih``'s zero). Without it the free-running
  state forgets the class within 100 steps (a linear probe reads it from h_0 at 65%, from the
  states after step 100 at chance); with it the class stays readable at every step, and the
  reconstruction warm-up below learns digits of the class asked for (docs/results-mnist.md).
- **Reconstruction warm-up** (``TrainSettings.reconstruction_steps``, the article's other loss):
  before the adversarial steps, the generator is trained as the decoder of a VAE under teacher
  forcing (:meth:`GeneratorGAN.teacher_forced`: each step reads the real previous pixel, one
  fused scan for all steps), z from a small convolutional :class:`Encoder`, a Gaussian
  reconstruction loss and the KL term. The adversarial gradient through 784 free-running steps
  alone never drew strokes in any run; the warm-up does, and the adversarial phase then starts
  from a generator that draws digits.
- **Critic**: three 4x4 stride-2 convolutions (``critic_size``, 2x, 4x channels; LeakyReLU 0.2)
  and a linear head over the flattened features: 177,249 parameters at 28x28 with 10 classes,
  beside the generator's 218,369 at hidden 256; any image size (each convolution halves it, at
  least 1x1).
- **Class-conditional** when the data has labels (``num_classes``): the generator's input is
  [z, one-hot(class)] (the article's generator unchanged, with ``z_dim + num_classes`` inputs to
  ``fc_init``, as in Mirza & Osindero 2014), and the critic is a **projection discriminator**
  (Miyato & Koyama 2018: ``D(x, y) = head(f(x)) + <embed(y), f(x)>``), the partner of
  hinge + spectral norm; ``rnngen eval`` then scores whether samples are recognised as the class
  they were drawn for. Unconditional otherwise.
- Stabilisers live in the training loop (``rnngen.training.adversarial``): SAGAN's and BigGAN's
  Adam settings (betas (0, 0.9), the critic at four times the generator's learning rate),
  gradient clipping of the generator (backpropagation through 784 steps), and the warmed-up
  moving average of the generator's weights (``ema_decay``), which is what is saved and sampled.

It has no likelihood (``has_likelihood = False``): ``rnngen eval`` reports sample scores only,
and it cannot complete images (completion needs p(pixels | given pixels); a GAN has none).
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm

from .. import dispatch
from ..nn.generator import RNNImageGenerator, image_shape
from ..ops import scan

RECURRENT_GAIN = 2.25  # the generator's W_hh, per gate: orthogonal times this (see the module docstring)


def chrono_init_(cell: nn.GRUCell, longest: int) -> None:
    """Chrono initialisation of a GRU cell's update gate (Tallec & Ollivier 2018): unit i keeps
    its state over about T_i steps, T_i ~ U(1, ``longest``), by a bias of log T_i on its update
    gate (bias_hh's z block; bias_ih's z block zero). h' = (1 - z) n + z h, so a bias b makes z
    start near sigmoid(b) = T / (1 + T), a memory of about T steps."""
    hidden = cell.hidden_size
    with torch.no_grad():
        cell.bias_ih[hidden:2 * hidden] = 0
        cell.bias_hh[hidden:2 * hidden] = torch.log(torch.empty(hidden).uniform_(1, max(1, longest)))


def _check_int(name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}, got {value!r}")


class Critic(nn.Module):
    """The discriminator: spectrally normalised 4x4 stride-2 convolutions, a linear head, and
    (``num_classes``) a projection of a class embedding onto the features. Input: intensities
    [N, 1, H, W] in [0, 1]; output: a score per image [N]."""

    def __init__(self, image_size: tuple[int, int], width: int, num_classes: int | None):
        super().__init__()
        height, w = image_size
        channels = [1, width, 2 * width, 4 * width]
        self.convs = nn.ModuleList(spectral_norm(nn.Conv2d(a, b, 4, stride=2, padding=1))
                                   for a, b in itertools.pairwise(channels))
        for _ in self.convs:  # a 4x4 stride-2 convolution with padding 1 maps n to n // 2 (at least 1)
            height, w = max(1, height // 2), max(1, w // 2)
        features = channels[-1] * height * w
        self.head = spectral_norm(nn.Linear(features, 1))
        self.embed = spectral_norm(nn.Embedding(num_classes, features)) if num_classes else None

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        x = x * 2 - 1  # centred input
        for conv in self.convs:
            # Images smaller than 2 pixels on a side stay 1x1: pad so each convolution still applies.
            if min(x.shape[-2:]) < 2:
                x = F.pad(x, (0, 1, 0, 1))
            x = F.leaky_relu(conv(x), 0.2)
        features = x.flatten(1)
        score = self.head(features)[:, 0]
        if self.embed is not None:
            score = score + (self.embed(labels) * features).sum(1)
        return score


class Encoder(nn.Module):
    """The reconstruction warm-up's encoder (a training device like the critic, not saved with
    the model): two 4x4 stride-2 convolutions (32, 64 channels; LeakyReLU 0.2), a hidden layer of
    256 and the posterior's mean and log-variance of ``z_dim`` each. Input: intensities
    [N, 1, H, W] in [0, 1]; output: (mean, log-variance), [N, z_dim] each."""

    def __init__(self, image_size: tuple[int, int], z_dim: int):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(1, 32, 4, stride=2, padding=1),
                                    nn.Conv2d(32, 64, 4, stride=2, padding=1)])
        height, width = image_size
        for _ in self.convs:
            height, width = max(1, height // 2), max(1, width // 2)
        self.hidden = nn.Linear(64 * height * width, 256)
        self.out = nn.Linear(256, 2 * z_dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = x * 2 - 1
        for conv in self.convs:
            if min(x.shape[-2:]) < 2:  # as in the critic: tiny images stay 1x1
                x = F.pad(x, (0, 1, 0, 1))
            x = F.leaky_relu(conv(x), 0.2)
        mean, log_var = self.out(F.leaky_relu(self.hidden(x.flatten(1)), 0.2)).chunk(2, dim=1)
        return mean, log_var.clamp(-10, 5)  # the clamp keeps exp() finite in the first steps


class GeneratorGAN(nn.Module):
    """The article's :class:`RNNImageGenerator` and a :class:`Critic` (see the module docstring).

    ``image_size`` (int or (H, W)), ``levels`` (the data's, for quantising samples), ``z_dim``
    (noise size), ``hidden_size`` (the GRU's), ``critic_size`` (the critic's first channel count),
    ``num_classes`` (None: unconditional)."""

    channels = 1
    has_likelihood = False  # rnngen eval: sample scores only

    def __init__(self, image_size, levels: int = 256, z_dim: int = 64, hidden_size: int = 256,
                 critic_size: int = 32, num_classes: int | None = None, backend: str = "auto"):
        super().__init__()
        height, width = image_shape(image_size)
        for name, value, low in (("levels", levels, 2), ("z_dim", z_dim, 1), ("hidden_size", hidden_size, 1),
                                 ("critic_size", critic_size, 1)):
            _check_int(name, value, low)
        if num_classes is not None:
            _check_int("num_classes", num_classes, 2)
        self.image_size, self.levels, self.z_dim = (height, width), levels, z_dim
        self.hidden_size, self.critic_size, self.num_classes = hidden_size, critic_size, num_classes
        self.backend = dispatch.check_name(backend)
        # The article's generator as it is; a class enters as a one-hot beside z (fc_init's input).
        self.generator = RNNImageGenerator(z_dim + (num_classes or 0), hidden_size, (height, width), backend=backend)
        if self.generator.rnn.weight_hh.device.type != "meta":  # a skeleton to load weights into needs none
            with torch.no_grad():
                for gate in self.generator.rnn.weight_hh.chunk(3):
                    nn.init.orthogonal_(gate, gain=RECURRENT_GAIN)
            chrono_init_(self.generator.rnn, height * width)
        self.critic = Critic((height, width), critic_size, num_classes)

    @property
    def config(self) -> dict:
        return {"image_size": list(self.image_size), "levels": self.levels, "z_dim": self.z_dim,
                "hidden_size": self.hidden_size, "critic_size": self.critic_size, "num_classes": self.num_classes}

    @property
    def steps(self) -> int:
        return self.image_size[0] * self.image_size[1]

    def check_labels(self, labels, n: int) -> Tensor | None:
        """``labels`` as the model needs them for ``n`` images: None for an unconditional model,
        a LongTensor [n] of classes 0..num_classes-1 for a conditional one."""
        if self.num_classes is None:
            if labels is not None:
                raise ValueError("`labels` given, but this GeneratorGAN is unconditional")
            return None
        if labels is None:
            raise ValueError(f"`labels` needed: this GeneratorGAN is class-conditional ({self.num_classes} classes)")
        if not isinstance(labels, Tensor) or labels.is_floating_point() or labels.dtype == torch.bool:
            raise TypeError("`labels` must be an integer Tensor")
        if tuple(labels.shape) != (n,):
            raise ValueError(f"`labels` must have shape [{n}], got {list(labels.shape)}")
        if n and (labels.min().item() < 0 or labels.max().item() >= self.num_classes):
            raise ValueError(f"`labels` must be in 0..{self.num_classes - 1}, got "
                             f"{labels.min().item()}..{labels.max().item()}")
        return labels.long()

    def intensities(self, images: Tensor) -> Tensor:
        """Integer images 0..levels-1, [N, 1, H, W] or [N, H, W] -> float intensities [N, 1, H, W]
        in [0, 1] (the critic's input for real images)."""
        if not isinstance(images, Tensor) or images.is_floating_point() or images.dtype == torch.bool:
            raise TypeError(f"images must be an integer Tensor of values 0..{self.levels - 1}")
        if images.dim() == 3:
            images = images[:, None]
        if images.dim() != 4 or tuple(images.shape[1:]) != (1, *self.image_size):
            raise ValueError(f"images must have shape [N, 1, {self.image_size[0]}, {self.image_size[1]}], "
                             f"got {list(images.shape)}")
        low, high = (images.min().item(), images.max().item()) if images.numel() else (0, 0)
        if low < 0 or high >= self.levels:
            raise ValueError(f"images values must be in 0..{self.levels - 1}, got {low}..{high}")
        return images.float() / (self.levels - 1)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        """Generated intensities [N, 1, H, W] (meant to lie in [0, 1], not clamped: see the module
        docstring) for noise ``z`` [N, z_dim] (and classes ``labels`` [N] of a conditional model),
        differentiable through the decode op."""
        if not isinstance(z, Tensor) or z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"`z` must be a Tensor of shape [N, {self.z_dim}], got "
                             f"{list(z.shape) if isinstance(z, Tensor) else type(z).__name__}")
        labels = self.check_labels(labels, z.shape[0])
        if labels is not None:
            z = torch.cat([z, F.one_hot(labels.to(z.device), self.num_classes).to(z.dtype)], dim=1)
        return self.generator(z)[:, None]

    def teacher_forced(self, z: Tensor, images: Tensor, labels: Tensor | None = None) -> Tensor:
        """The generator's output at every pixel [N, 1, H, W] when each step reads the real
        previous pixel of ``images`` (intensities [N, 1, H, W]) instead of its own previous output:
        one fused scan over all steps (the reconstruction warm-up). Given its own free-running
        output as ``images`` it returns that output again (the same recurrence, the same inputs)."""
        if not isinstance(z, Tensor) or z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"`z` must be a Tensor of shape [N, {self.z_dim}], got "
                             f"{list(z.shape) if isinstance(z, Tensor) else type(z).__name__}")
        if not isinstance(images, Tensor) or tuple(images.shape) != (z.shape[0], 1, *self.image_size):
            raise ValueError(f"`images` must be intensities of shape [{z.shape[0]}, 1, {self.image_size[0]}, "
                             f"{self.image_size[1]}], got {list(getattr(images, 'shape', []))}")
        labels = self.check_labels(labels, z.shape[0])
        if labels is not None:
            z = torch.cat([z, F.one_hot(labels.to(z.device), self.num_classes).to(z.dtype)], dim=1)
        g, n = self.generator, z.shape[0]
        h0 = g.fc_init(z)
        pixels = images.reshape(n, -1)
        states = h0[:, None]
        if pixels.shape[1] > 1:
            # Step t's input gates from pixel t-1: the article's GRUCell has one input.
            gi = F.linear(pixels[:, :-1, None].to(h0.dtype), g.rnn.weight_ih, g.rnn.bias_ih)
            hidden = scan(gi, h0, g.rnn.weight_hh, g.rnn.bias_hh, backend=g.backend)
            states = torch.cat([states, hidden], dim=1)
        return g.fc_out(states).view(n, 1, *self.image_size)

    @torch.no_grad()
    def sample(self, n: int, labels=None, temperature: float = 1.0, seed: int = 0, backend: str | None = None,
               row_offset: int = 0) -> Tensor:
        """``n`` images [n, 1, H, W] of values 0..levels-1: the generator's image for
        z ~ N(0, temperature^2 I) (a temperature below 1 trades variety for typical images),
        clamped to [0, 1] and rounded to the nearest level."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be an int >= 0, got {n!r}")
        if (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
                or not (math.isfinite(temperature) and temperature > 0)):
            raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        labels = self.check_labels(labels, n)
        # Row i draws the i-th noise vector of the seed's generator, so shards (row_offset) draw
        # what the whole batch would.
        generator = torch.Generator().manual_seed(seed % 2**63)
        weight = self.generator.fc_init.weight
        z = (torch.randn(row_offset + n, self.z_dim, generator=generator)[row_offset:] * temperature).to(weight)
        previous = self.generator.backend
        self.generator.backend = backend or self.backend
        try:
            x = self(z, None if labels is None else labels.to(weight.device))
        finally:
            self.generator.backend = previous
        return (x * (self.levels - 1)).round().clamp(0, self.levels - 1).long()
