"""The old module of :class:`~rnngen.models.generator_vae.GeneratorVAE`, kept so that imports of
``rnngen.models.seed_vae.SeedVAE`` keep working (``SeedVAE`` is the class's old name)."""

from .generator_vae import GeneratorVAE

SeedVAE = GeneratorVAE

__all__ = ["GeneratorVAE", "SeedVAE"]
