"""Probe (2026-12-05, docs/results-mnist.md "Probes of 2026-12-05"): the article's generator
trained adversarially outside rnngen's loop, with two changes to GeneratorGAN's recipe to try: an
auxiliary classifier head on the critic (AC-GAN, Odena et al. 2017; --ac its weight) and a growing
image (the critic sees the first --start-rows rows, one more row every --grow/(28-start) steps;
only those rows are generated). --lr is the generator's learning rate, --lr-d the critic's (default
4x), --lr-init fc_init's; --hclass weighs a linear probe's loss of the class read from every
7th hidden state. --init starts the generator from reconstruction_warmup.py's
weights. Prints the losses and, every --eval-every steps, the shipped classifier's scores of 200
samples; writes grids and weights next to --out."""
import argparse
import copy
import math
import time

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

import rnngen
from rnngen.evaluation import mnist_classifier, sample_scores
from rnngen.images import save_grid
from rnngen.training.recipes import make_model

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=1500); p.add_argument("--ac", type=float, default=1.0)
p.add_argument("--grow", type=int, default=1000); p.add_argument("--start-rows", type=int, default=7)
p.add_argument("--lr", type=float, default=1e-4); p.add_argument("--out", default="g1")
p.add_argument("--eval-every", type=int, default=500); p.add_argument("--init", default="")
p.add_argument("--lr-d", type=float, default=0.0)
p.add_argument("--hclass", type=float, default=0.0)
p.add_argument("--lr-init", type=float, default=0.0)
a = p.parse_args()
torch.manual_seed(0)
data = rnngen.load_dataset("mnist")
kind, model = make_model("generator-gan", data, hidden=256, critic_size=32, augment="none")
G, D = model.generator, model.critic
if a.init: G.load_state_dict(torch.load(a.init)['g'])
feat_dim = D.head.in_features if hasattr(D.head, "in_features") else D.head.parametrizations.weight.original.shape[1]
aux = spectral_norm(nn.Linear(feat_dim, 10))
def critic(x, y):
    x = x * 2 - 1
    for conv in D.convs: x = F.leaky_relu(conv(x), 0.2)
    f = x.flatten(1)
    return D.head(f)[:, 0] + (D.embed(y) * f).sum(1), aux(f)
probe = nn.Linear(256, 10)  # --hclass: the class read back from every hidden state (a training device)
fast = list(G.fc_init.parameters()) + list(probe.parameters())
opt_g = torch.optim.Adam([{"params": [q for n, q in G.named_parameters() if not n.startswith("fc_init")]},
                          {"params": fast, "lr": a.lr_init or a.lr}], lr=a.lr, betas=(0.0, 0.9))
opt_d = torch.optim.Adam(list(D.parameters()) + list(aux.parameters()), lr=a.lr_d or 4 * a.lr, betas=(0.0, 0.9))
ema = copy.deepcopy(G)
X, Y = data.train.images, data.train.labels
clf = mnist_classifier()
def gen(g, z, y, rows, hidden=False):
    zc = torch.cat([z, F.one_hot(y, 10).float()], 1)
    out = rnngen.decode(g.fc_init(zc), g.rnn.weight_ih, g.rnn.bias_ih, g.rnn.weight_hh, g.rnn.bias_hh,
                        g.fc_out.weight, g.fc_out.bias, rows * 28, return_hidden=hidden)
    if hidden:
        out, hid = out
        return F.pad(out.view(len(z), 1, rows, 28), (0, 0, 0, 28 - rows)), hid
    return F.pad(out.view(len(z), 1, rows, 28), (0, 0, 0, 28 - rows))
def evaluate(g, tag):
    with torch.no_grad():
        y = torch.arange(10).repeat_interleave(20); z = torch.randn(200, 64, generator=torch.Generator().manual_seed(1))
        img = (gen(g, z, y, 28).clamp(0, 1) * 255).round().long()
    s = sample_scores(clf, img, 256, y, data.test.images[:1000])
    print(tag, {k: round(v, 3) if isinstance(v, float) else v for k, v in s.items()}, flush=True)
    save_grid(f"{a.out}-{tag}.png", img[::2], 256, 10)
t0 = time.time(); hist = []
evaluate(G, 'init')
for step in range(a.steps):
    rows = min(28, a.start_rows + math.floor((28 - a.start_rows) * step / max(1, a.grow)))
    idx = torch.randint(0, len(X), (32,))
    y = Y[idx].long()
    real = model.intensities(X[idx]); real[:, :, rows:] = 0
    z = torch.randn(32, 64)
    fake, hid = gen(G, z, y, rows, hidden=True)
    s, c = critic(torch.cat([real, fake.detach()]), torch.cat([y, y]))
    ld = F.relu(1 - s[:32]).mean() + F.relu(1 + s[32:]).mean() + a.ac * F.cross_entropy(c[:32], y)
    opt_d.zero_grad(); ld.backward(); opt_d.step()
    for q in list(D.parameters()) + list(aux.parameters()): q.requires_grad_(False)
    s, c = critic(fake, y)
    lg = -s.mean() + a.ac * F.cross_entropy(c, y)
    if a.hclass:  # the class must stay readable from the state at every step
        lg = lg + a.hclass * F.cross_entropy(probe(hid[:, ::7]).flatten(0, 1), y.repeat_interleave(hid[:, ::7].shape[1]))
    opt_g.zero_grad(); lg.backward()
    for q in list(D.parameters()) + list(aux.parameters()): q.requires_grad_(True)
    torch.nn.utils.clip_grad_norm_(G.parameters(), 1.0); opt_g.step()
    w = 1 - min(0.999, (1 + step) / (10 + step))
    with torch.no_grad():
        for pe, pg in zip(ema.parameters(), G.parameters()): pe.lerp_(pg, w)
    hist.append((ld.item(), lg.item(), c.argmax(1).eq(y).float().mean().item()))
    if step % 50 == 49:
        m = torch.tensor(hist[-50:]).mean(0).tolist()
        print(step + 1, rows, [round(v, 3) for v in m], round(time.time() - t0), flush=True)
    if (step + 1) % a.eval_every == 0:
        evaluate(G, f"raw{step+1}"); evaluate(ema, f"ema{step+1}")
        torch.save({"g": G.state_dict(), "ema": ema.state_dict()}, a.out + ".pt")
