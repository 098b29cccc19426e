"""Guided sampling (rnngen.sample_guided, PixelGRU.sample(guidance=w)): its draws against the
guided distribution computed independently from the model's teacher-forced likelihood, the op's
own draws at w = 0, shards, completion, and argument checks."""

import itertools

import pytest
import torch

import rnngen
from rnngen.models import PixelGRU

LEVELS, STEPS = 3, 4  # 2x2 images of 3 levels: 81 images, all enumerated


def _model(above=0, cell="gru", num_classes=3, size=(2, 2), levels=LEVELS):
    torch.manual_seed(0)
    model = PixelGRU(size, levels=levels, hidden_size=8, num_classes=num_classes, above=above, cell=cell,
                     backend="reference")
    with torch.no_grad():  # away from the small initial values, so the classes differ clearly
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.6)
    return model.eval()


def _guided_truth(model, label, w, temperature, prefix=0):
    """P(image) [81] of guided sampling for ``label``, from the per-class teacher-forced terms
    log p_c(x_t | x_<t) (model.log_prob_terms: the scan, not a step loop). With ``prefix`` > 0
    the first ``prefix`` values are known: the result is over images given their own prefix
    (one distribution per prefix, each summing to 1), the known values counting in the posterior."""
    seqs = torch.tensor(list(itertools.product(range(LEVELS), repeat=STEPS)))
    images = seqs.view(-1, 1, 2, 2)
    R = model.num_classes
    with torch.no_grad():
        terms = torch.stack([-model.log_prob_terms(images, torch.full((len(seqs),), c)).double()
                             for c in range(R)])  # [R, 81, T]
    place = LEVELS ** torch.arange(STEPS - 1, -1, -1)  # the index of a sequence: digits in base LEVELS
    index = torch.arange(len(seqs))
    prob = torch.ones(len(seqs), dtype=torch.float64)
    for t in range(STEPS):
        # log p_c(v | x_<t) for every v: the term at t of the image with digit t set to v.
        other = index[:, None] + (torch.arange(LEVELS)[None] - seqs[:, t:t + 1]) * place[t]  # [81, K]
        lp = terms[:, other, t]  # [R, 81, K]
        post = terms[:, :, :t].sum(-1)  # [R, 81] log p_c(x_<t), uniform prior
        post = post - torch.logsumexp(post, 0)
        mix = torch.logsumexp(post[:, :, None] + lp, 0)  # [81, K]
        q = torch.softmax(((1 + w) * lp[label] - w * mix) / temperature, -1)
        if t >= prefix:
            prob *= q[index, seqs[:, t]]
    return prob


@pytest.mark.parametrize("above,w,temperature,prefix", [(0, 1.5, 1.0, 0), (1, 3.0, 0.7, 0), (1, 2.0, 1.0, 2)])
def test_draws_follow_the_guided_distribution(above, w, temperature, prefix):
    model = _model(above=above)
    label, n = 2, 20000
    truth = _guided_truth(model, label, w, temperature, prefix)
    unguided = _guided_truth(model, label, 0.0, temperature, prefix)
    groups = LEVELS ** prefix  # one distribution per known prefix
    assert torch.allclose(truth.view(groups, -1).sum(1), torch.ones(groups, dtype=torch.float64))
    labels = torch.full((n,), label)
    if prefix:
        known = torch.randint(0, LEVELS, (n, 1, 2, 2), generator=torch.Generator().manual_seed(0))
        mask = torch.zeros(2, 2, dtype=torch.bool)
        mask.view(-1)[:prefix] = True
        draws = model.complete(known, mask, labels=labels, temperature=temperature, seed=4, guidance=w)
        assert torch.equal(draws.view(n, -1)[:, :prefix], known.view(n, -1)[:, :prefix])
    else:
        draws = model.sample(n, labels=labels, temperature=temperature, seed=4, guidance=w)
    index = (draws.view(n, -1) * LEVELS ** torch.arange(STEPS - 1, -1, -1)).sum(1)
    count = torch.bincount(index, minlength=LEVELS ** STEPS).double()
    prefix_count = count.view(groups, -1).sum(1).repeat_interleave(len(count) // groups)
    freq = count / prefix_count.clamp_min(1)
    bound = 4 * torch.sqrt(truth / prefix_count.clamp_min(1)) + 2e-3
    assert ((freq - truth).abs() <= bound).all()
    # The guidance moved the distribution well beyond that tolerance: the test sees it.
    assert ((truth - unguided).abs() > 3 * bound).any()


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_zero_guidance_draws_what_the_fused_op_draws(cell):
    model = _model(above=1, cell=cell, size=(3, 4), levels=5)
    labels = torch.tensor([0, 1, 2, 1, 0])
    op = model.sample(5, labels=labels, seed=9, temperature=0.8, backend="cpu" if "cpu" in rnngen.backends()
                      else "reference")
    R = model.num_classes
    h0, cond = model._condition(5 * R, torch.arange(R).repeat(5), None)
    guided = rnngen.sample_guided(h0.view(5, R, -1), model.input_gates, model.weight_hh, model.bias_hh,
                                  model.head_weight, model.head_bias, model.steps, target=labels, guidance=0.0,
                                  cond=cond.view(5, R, -1), lag_emb=model.above_gates, lags=model.lags,
                                  temperature=0.8, seed=9, cell=cell)
    assert torch.equal(guided, op.view(5, -1))
    # Guided draws differ from them, and shards with row_offset draw what the whole batch draws.
    whole = model.sample(5, labels=labels, seed=9, temperature=0.8, guidance=2.0)
    assert not torch.equal(whole, op)
    shards = torch.cat([model.sample(2, labels=labels[:2], seed=9, temperature=0.8, guidance=2.0),
                        model.sample(3, labels=labels[2:], seed=9, temperature=0.8, guidance=2.0, row_offset=2)])
    assert torch.equal(shards, whole)


def test_guidance_makes_samples_more_likely_under_their_class():
    """What guidance is for: the drawn images' posterior p(label | image) under the model rises."""
    model = _model(size=(3, 3), levels=4)
    labels = torch.arange(3).repeat_interleave(400)

    def mean_posterior(images):
        with torch.no_grad():
            nll = torch.stack([model(images, torch.full((len(images),), c)) for c in range(3)], 1)
        return torch.softmax(-nll.double(), 1)[torch.arange(len(images)), labels].mean().item()

    plain = mean_posterior(model.sample(len(labels), labels=labels, seed=1))
    guided = mean_posterior(model.sample(len(labels), labels=labels, seed=1, guidance=2.0))
    assert guided > plain + 0.05


def test_argument_checks_name_the_argument():
    model = _model()
    labels = torch.tensor([0, 1])
    for bad in (-0.5, float("nan"), float("inf"), True, "1"):
        with pytest.raises(ValueError, match="guidance must be a finite number >= 0"):
            model.sample(2, labels=labels, guidance=bad)
    with pytest.raises(ValueError, match="guidance needs a class-conditional model"):
        _model(num_classes=None).sample(2, guidance=1.0)
    with pytest.raises(ValueError, match="labels are required"):
        model.sample(2, guidance=1.0)
    R = model.num_classes
    h0, cond = model._condition(2 * R, torch.arange(R).repeat(2), None)
    args = (model.input_gates, model.weight_hh, model.bias_hh, model.head_weight, model.head_bias, model.steps)
    ok = {"target": labels, "guidance": 1.0, "cond": cond.view(2, R, -1)}
    with pytest.raises(ValueError, match=r"h0 must have shape \[B, R, H\]"):
        rnngen.sample_guided(h0, *args, **ok)
    with pytest.raises(ValueError, match=r"target must be in 0..2"):
        rnngen.sample_guided(h0.view(2, R, -1), *args, **{**ok, "target": torch.tensor([0, 3])})
    with pytest.raises(TypeError, match="target must be an integer Tensor"):
        rnngen.sample_guided(h0.view(2, R, -1), *args, **{**ok, "target": torch.tensor([0.0, 1.0])})
    with pytest.raises(ValueError, match=r"target must have shape \[B\] = \[2\]"):
        rnngen.sample_guided(h0.view(2, R, -1), *args, **{**ok, "target": torch.tensor([0])})
    with pytest.raises(ValueError, match=r"cond must have shape \[B, R, ...\]"):
        rnngen.sample_guided(h0.view(2, R, -1), *args, **{**ok, "cond": cond})
    with pytest.raises(ValueError, match=r"log_prior"):
        rnngen.sample_guided(h0.view(2, R, -1), *args, **ok, log_prior=torch.zeros(R + 1))
    with pytest.raises(ValueError, match="known values must lie in 0..2"):
        rnngen.sample_guided(h0.view(2, R, -1), *args, **ok, known=torch.full((2, model.steps), 3))
    with pytest.raises(ValueError, match="temperature"):
        rnngen.sample_guided(h0.view(2, R, -1), *args, **ok, temperature=0.0)
