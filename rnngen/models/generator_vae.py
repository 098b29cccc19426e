"""GeneratorVAE: the article's generator, trained as the decoder of a variational autoencoder.

The article's ``RNNImageGenerator`` maps a noise vector z to an image through a free-running GRU
whose continuous output pixel is fed back as the next input. It gives no likelihood to train on
and no inverse, so we train it the standard way for such a decoder: as a VAE (Kingma & Welling,
2014). A small MLP encoder gives q(z | x) = N(mu, sigma^2); the generator, unchanged (the fused
decode op, backpropagated through all H*W steps), turns z into an image whose pixels are the
means of a **discretised Gaussian** over the data's levels (one learned scale):

    p(x = k | mean) = Phi((k + 1/2) / (L-1) - mean) / s) - Phi((k - 1/2) / (L-1) - mean) / s)

with the outer bins open to +-infinity. The loss is the negative ELBO, -log p(x | z) + KL(q || N(0, I)),
in nats per image: an upper bound on the negative log-likelihood of the quantised image, so its
bits/dim compare directly with PixelGRU's. Sampling draws z ~ N(0, I) and shows the mean image.

It was called ``SeedVAE`` (after the "seed" article); that name remains an alias, and
checkpoints of model kind "SeedVAE" still load.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from .. import dispatch
from ..nn.generator import RNNImageGenerator, image_shape


class GeneratorVAE(nn.Module):
    num_classes = None
    channels = 1

    def __init__(self, image_size, levels: int = 256, z_dim: int = 16, hidden_size: int = 128,
                 encoder_size: int = 256, backend: str = "auto"):
        super().__init__()
        height, width = image_shape(image_size)
        for name, value, low in (("levels", levels, 2), ("z_dim", z_dim, 1), ("hidden_size", hidden_size, 1),
                                 ("encoder_size", encoder_size, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        self.image_size, self.levels, self.z_dim = (height, width), levels, z_dim
        self.hidden_size, self.encoder_size, self.backend = hidden_size, encoder_size, dispatch.check_name(backend)
        self.encoder = nn.Sequential(nn.Linear(height * width, encoder_size), nn.ReLU(),
                                     nn.Linear(encoder_size, 2 * z_dim))
        self.generator = RNNImageGenerator(z_dim, hidden_size, (height, width), backend=backend)
        self.log_scale = nn.Parameter(torch.tensor(math.log(0.2)))

    @property
    def config(self) -> dict:
        return {"image_size": list(self.image_size), "levels": self.levels, "z_dim": self.z_dim,
                "hidden_size": self.hidden_size, "encoder_size": self.encoder_size}

    @property
    def steps(self) -> int:
        return self.image_size[0] * self.image_size[1]

    def _intensities(self, images: Tensor) -> Tensor:
        if not isinstance(images, Tensor) or images.is_floating_point() or images.dtype == torch.bool:
            raise TypeError(f"images must be an integer Tensor of values 0..{self.levels - 1}")
        if images.dim() == 4 and images.shape[1] == 1:
            images = images[:, 0]
        if images.dim() != 3 or tuple(images.shape[1:]) != self.image_size:
            raise ValueError(f"images must have shape [N, 1, {self.image_size[0]}, {self.image_size[1]}], "
                             f"got {list(images.shape)}")
        low, high = (images.min().item(), images.max().item()) if images.numel() else (0, 0)  # ints: uint8 wraps 256
        if low < 0 or high >= self.levels:
            raise ValueError(f"images values must be in 0..{self.levels - 1}, got {low}..{high}")
        return images.flatten(1).float() / (self.levels - 1)

    def log_likelihood(self, x: Tensor, mean: Tensor) -> Tensor:
        """log p(x | mean) summed over pixels, x in [0, 1] on the levels' grid, [N]."""
        half = 0.5 / (self.levels - 1)
        scale = self.log_scale.exp()
        upper = torch.special.ndtr((x + half - mean) / scale)
        lower = torch.special.ndtr((x - half - mean) / scale)
        upper = torch.where(x >= 1 - half, torch.ones_like(upper), upper)
        lower = torch.where(x <= half, torch.zeros_like(lower), lower)
        return torch.log((upper - lower).clamp_min(1e-12)).sum(1)

    def forward(self, images: Tensor, labels=None) -> Tensor:
        """Negative ELBO in nats per image, [N] (one reparameterised z per image)."""
        if labels is not None:
            raise ValueError("labels given, but GeneratorVAE is unconditional")
        x = self._intensities(images)
        mu, log_var = self.encoder(x).chunk(2, dim=1)
        z = mu + torch.randn_like(mu) * (0.5 * log_var).exp()
        mean = self.generator(z).flatten(1)
        kl = 0.5 * (mu.square() + log_var.exp() - 1 - log_var).sum(1)
        return kl - self.log_likelihood(x, mean)

    @torch.no_grad()
    def sample(self, n: int, labels=None, temperature: float = 1.0, seed: int = 0, backend: str | None = None,
               row_offset: int = 0) -> Tensor:
        """``n`` images [n, 1, H, W]: the generator's mean image for z ~ N(0, temperature^2 I),
        rounded to the nearest level."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be an int >= 0, got {n!r}")
        if labels is not None:
            raise ValueError("labels given, but GeneratorVAE is unconditional")
        if (isinstance(temperature, bool) or not isinstance(temperature, (int, float))
                or not (math.isfinite(temperature) and temperature > 0)):
            raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        # Row i of a batch gets the i-th draw of the random generator seeded with ``seed``, so
        # shards (row_offset) draw what the whole batch would.
        generator = torch.Generator().manual_seed(seed % 2**63)
        z = torch.randn(row_offset + n, self.z_dim, generator=generator)[row_offset:] * temperature
        previous = self.generator.backend
        self.generator.backend = backend or self.backend
        try:
            mean = self.generator(z.to(self.log_scale))
        finally:
            self.generator.backend = previous
        values = (mean * (self.levels - 1)).round().clamp(0, self.levels - 1).long()
        return values[:, None]
