"""Probe (2026-12-05, docs/results-mnist.md "Probes of 2026-12-05"): the article's generator
as the decoder of a VAE trained with teacher forcing (the fused scan op reads the real previous
pixel; a small convolutional encoder gives z; Gaussian reconstruction of scale --sigma, KL weight
--beta, input noise --noise, inputs dropped to 0 with probability --drop; --free: no teacher forcing, the decode op runs free in training too; --ss: scheduled sampling, a
share of the inputs rising to --ss by half-way are the model's own free-running outputs; --hclass:
the weight of a linear probe's loss of the class read from every 7th hidden state; --grow N with
--free: the first row only at first, all 28 after N steps; --chrono T: the update gate's biases
drawn for time scales of 1 to T steps), then run free (the
decode op) from the prior and from the encoder's means of test digits. Prints the losses and the
shipped classifier's scores every 500 steps; writes grids and weights next to --out."""
import argparse
import math
import time

import torch
import torch.nn.functional as F
from torch import nn

import rnngen
from rnngen.evaluation import mnist_classifier, sample_scores
from rnngen.images import save_grid
from rnngen.training.recipes import make_model

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=1500); p.add_argument("--sigma", type=float, default=0.1)
p.add_argument("--beta", type=float, default=1.0); p.add_argument("--noise", type=float, default=0.02)
p.add_argument("--out", default="ae1"); p.add_argument("--drop", type=float, default=0.0)
p.add_argument("--free", action="store_true")
p.add_argument("--ss", type=float, default=0.0)
p.add_argument("--hclass", type=float, default=0.0)
p.add_argument("--grow", type=int, default=0)
p.add_argument("--chrono", type=int, default=0); p.add_argument("--lr", type=float, default=2e-3)
a = p.parse_args()
torch.manual_seed(0)
data = rnngen.load_dataset("mnist")
kind, model = make_model("generator-gan", data, hidden=256, critic_size=32, augment="none")
g = model.generator
if a.chrono:  # chrono initialisation (Tallec & Ollivier 2018): update-gate biases log U(1, T), time scales up to T steps
    with torch.no_grad():
        H = g.rnn.bias_hh.shape[0] // 3
        g.rnn.bias_ih[H:2 * H] = 0
        g.rnn.bias_hh[H:2 * H] = torch.log(torch.empty(H).uniform_(1, a.chrono))
enc = nn.Sequential(nn.Conv2d(1, 32, 4, 2, 1), nn.LeakyReLU(0.2), nn.Conv2d(32, 64, 4, 2, 1), nn.LeakyReLU(0.2),
                    nn.Flatten(), nn.Linear(64 * 49, 256), nn.LeakyReLU(0.2), nn.Linear(256, 128))
probe = nn.Linear(256, 10)  # --hclass: the class read back from every 7th hidden state
opt = torch.optim.Adam(list(g.parameters()) + list(enc.parameters()) + list(probe.parameters()), lr=a.lr)
X, Y = data.train.images, data.train.labels
clf = mnist_classifier()
def h0_of(z, y): return g.fc_init(torch.cat([z, F.one_hot(y, 10).float()], 1))
def free(z, y):
    with torch.no_grad():
        out = rnngen.decode(h0_of(z, y), g.rnn.weight_ih, g.rnn.bias_ih, g.rnn.weight_hh, g.rnn.bias_hh,
                            g.fc_out.weight, g.fc_out.bias, 784)
    return (out.view(-1, 1, 28, 28).clamp(0, 1) * 255).round().long()
def evaluate(tag):
    y = torch.arange(10).repeat_interleave(20)
    s = free(torch.randn(200, 64, generator=torch.Generator().manual_seed(1)), y)
    print(tag, "prior", {k: round(v, 3) if isinstance(v, float) else v for k, v in sample_scores(clf, s, 256, y, data.test.images[:1000]).items()}, flush=True)
    save_grid(f"{a.out}-{tag}-prior.png", s[::2], 256, 10)
    xt, yt = data.test.images[:200], data.test.labels[:200].long()
    with torch.no_grad(): mu = enc(model.intensities(xt) * 2 - 1)[:, :64]
    r = free(mu, yt)
    print(tag, "recon", {k: round(v, 3) if isinstance(v, float) else v for k, v in sample_scores(clf, r, 256, yt, data.test.images[:1000]).items()}, flush=True)
    save_grid(f"{a.out}-{tag}-recon.png", torch.cat([xt[:20].view(-1,1,28,28).long(), r[:20]]), 256, 10)
t0 = time.time()
for step in range(a.steps):
    idx = torch.randint(0, len(X), (32,))
    y = Y[idx].long(); img = model.intensities(X[idx]); real = img.flatten(1)
    st = enc(img * 2 - 1); mu, logv = st[:, :64], st[:, 64:].clamp(-10, 5)
    z = mu + (0.5 * logv).exp() * torch.randn_like(mu)
    h0 = h0_of(z, y)
    inp = (real[:, :-1] + a.noise * torch.randn_like(real[:, :-1])) * (torch.rand_like(real[:, :-1]) >= a.drop)
    if a.free:  # run free: the decode op, each output fed back, backpropagated through all steps
        rows = min(28, 1 + 27 * step // a.grow) if a.grow else 28  # --grow: the first rows only, more later
        pred = rnngen.decode(h0, g.rnn.weight_ih, g.rnn.bias_ih, g.rnn.weight_hh, g.rnn.bias_hh,
                             g.fc_out.weight, g.fc_out.bias, 28 * rows)[..., 0]
        real = real[:, :28 * rows]
    else:
        if a.ss:  # scheduled sampling: some inputs are the model's own free-running outputs (no gradient)
            with torch.no_grad():
                own = rnngen.decode(h0, g.rnn.weight_ih, g.rnn.bias_ih, g.rnn.weight_hh, g.rnn.bias_hh,
                                    g.fc_out.weight, g.fc_out.bias, 783)[..., 0]
            share = a.ss * min(1.0, 2 * step / a.steps)
            inp = torch.where(torch.rand_like(own) < share, own, inp)
        gi = F.linear(inp[..., None], g.rnn.weight_ih, g.rnn.bias_ih)
        hid = rnngen.scan(gi, h0, g.rnn.weight_hh, g.rnn.bias_hh)
        pred = g.fc_out(torch.cat([h0[:, None], hid], 1))[..., 0]
    rec = (pred - real).pow(2).sum(1).mean() / (2 * a.sigma ** 2)
    kl = 0.5 * (mu.pow(2) + logv.exp() - 1 - logv).sum(1).mean()
    loss = rec + a.beta * kl * (real.shape[1] / 784)  # the KL weighed by the share of the image reconstructed
    if a.hclass and not a.free:
        states = hid[:, ::7]
        loss = loss + a.hclass * F.cross_entropy(probe(states).flatten(0, 1), y.repeat_interleave(states.shape[1]))
    lr = a.lr * 0.5 * (1 + math.cos(math.pi * step / a.steps))
    for gr in opt.param_groups: gr["lr"] = lr
    opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(g.parameters(), 1.0); opt.step()
    if step % 100 == 0: print(step, real.shape[1] // 28, round(rec.item(), 1), round(kl.item(), 1), round(time.time() - t0), flush=True)
    if (step + 1) % 500 == 0:
        evaluate(f"s{step+1}"); torch.save({"g": g.state_dict(), "enc": enc.state_dict()}, a.out + ".pt")
