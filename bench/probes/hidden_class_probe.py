"""Probe (2026-12-05, docs/results-mnist.md "Probes of 2026-12-05"): can the class be read from
the article's generator's state as it runs free? For each weights file (saved by the other probes,
key "g"), 1,000 images (100 a class) are generated, a linear classifier is fitted to the hidden
states after steps 0, 100, 400 and 783 of the first 800 and tested on the other 200."""
import sys

import torch
import torch.nn.functional as F

import rnngen
from rnngen.training.recipes import make_model

data = rnngen.load_dataset("mnist")
for path in sys.argv[1:]:
    _, model = make_model("generator-gan", data, hidden=256, critic_size=32, augment="none")
    g = model.generator; g.load_state_dict(torch.load(path)["g"])
    y = torch.arange(10).repeat(100); z = torch.randn(1000, 64, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        h0 = g.fc_init(torch.cat([z, F.one_hot(y, 10).float()], 1))
        _, hid = rnngen.decode(h0, g.rnn.weight_ih, g.rnn.bias_ih, g.rnn.weight_hh, g.rnn.bias_hh, g.fc_out.weight, g.fc_out.bias, 784, return_hidden=True)
    res = []
    for t in (0, 100, 400, 783):
        x = hid[:, t]; x = (x - x[:800].mean(0)) / (x[:800].std(0) + 1e-6)
        lin = torch.nn.Linear(256, 10); opt = torch.optim.Adam(lin.parameters(), 1e-2)
        for _ in range(300):
            opt.zero_grad(); F.cross_entropy(lin(x[:800]), y[:800]).backward(); opt.step()
        res.append((t, round((lin(x[800:]).argmax(1) == y[800:]).float().mean().item(), 3)))
    print(path, res)
