"""The article's model as written there, for equivalence tests and benchmarks.

``ArticleRNNImageGenerator`` is the article's ``RNNImageGenerator``: a Python loop of H*W steps,
each an nn.Linear, an nn.GRUCell and a few tensor ops (several small kernel launches per step,
which is what rnngen fuses away). One fix: the article keeps the hidden state as [B, 1, 1, H]
and passes it to GRUCell, which raises ("Expected hidden to be 1D or 2D, got 4D"); here it is
[B, H], the evident intent. ``cell`` ("gru", the article's; "lstm", "rnn_tanh", "rnn_relu")
swaps the nn.GRUCell for an nn.LSTMCell (cell state from zeros) or nn.RNNCell, the eager truth
for rnngen.nn.RNNImageGenerator's other cells. ``SeedRNNImageGenerator`` (after the "seed" article) is its old name,
kept as an alias.
"""

from __future__ import annotations

import torch
from torch import nn

from .generator import make_cell_module


class ArticleRNNImageGenerator(nn.Module):
    def __init__(self, z_dim, h_dim, image_size, cell="gru"):
        super().__init__()
        self.z_dim = z_dim
        self.h_dim = h_dim
        self.image_size = image_size
        self.cell = cell
        self.fc_init = nn.Linear(z_dim, h_dim)
        self.rnn = make_cell_module(cell, 1, h_dim)  # the article's nn.GRUCell(input_size=1, ...) for "gru"
        self.fc_out = nn.Linear(h_dim, 1)

    def forward(self, z):
        h = self.fc_init(z)
        c = torch.zeros_like(h) if self.cell == "lstm" else None
        pixels = []
        for _ in range(self.image_size[0] * self.image_size[1]):
            x = self.fc_out(h).squeeze(1)
            pixels.append(x)
            if c is None:
                h = self.rnn(x.unsqueeze(1), h)
            else:
                h, c = self.rnn(x.unsqueeze(1), (h, c))
        return torch.stack(pixels, dim=1).view(z.size(0), *self.image_size)


SeedRNNImageGenerator = ArticleRNNImageGenerator  # the old name
