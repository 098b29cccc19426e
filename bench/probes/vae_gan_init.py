"""Probe (docs/results-mnist.md, "GeneratorVAE at 28x28"): GeneratorVAE with GeneratorGAN's
initialisation of the article's generator (each gate block of W_hh orthogonal times 2.25, the
update gate chrono-initialised for up to 784 steps), trained by the usual command:

    python bench/probes/vae_gan_init.py train --model generator-vae --data mnist --out runs/vae-gan-init \\
        --steps 1500 --eval-every 500
"""

import sys

import torch
from torch import nn

from rnngen.cli import main
from rnngen.models import GeneratorVAE
from rnngen.models.generator_gan import RECURRENT_GAIN, chrono_init_

_init = GeneratorVAE.__init__


def gan_init(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    rnn = self.generator.rnn
    if rnn.weight_hh.device.type != "meta":  # (a skeleton to load weights into needs none)
        with torch.no_grad():
            for gate in rnn.weight_hh.chunk(3):
                nn.init.orthogonal_(gate, gain=RECURRENT_GAIN)
        chrono_init_(rnn, self.steps)


if __name__ == "__main__":
    GeneratorVAE.__init__ = gan_init  # the class the CLI's recipes build
    sys.exit(main(sys.argv[1:]))
