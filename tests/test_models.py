"""Image models: PixelGRU's likelihood against an independent loop, its samples against its
likelihood, sampling and completion on every backend, argument checks; GeneratorVAE's loss."""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from helpers import BACKENDS
from rnngen.models import GeneratorVAE, PixelGRU
from rnngen.training.augment import transform


def _model(channels=1, levels=5, hidden=8, size=(3, 2), num_classes=3, per_column=False, augmentations=0,
           mixture="none", above=0, above_rows=1, above_rank=0, positions=False):
    torch.manual_seed(0)
    model = PixelGRU(size, channels=channels, levels=levels, hidden_size=hidden, num_classes=num_classes,
                     per_column=per_column, augmentations=augmentations, mixture=mixture, above=above,
                     above_rows=above_rows, above_rank=above_rank, positions=positions, backend="reference")
    with torch.no_grad():  # away from the zero/symmetric initial values
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return model.eval()


def _truth_nll(model, images, labels, augmentation=None):
    """Step by step with torch.gru_cell, in float64: h_0 from the label (and the augmentation),
    then each sub-pixel's log-probability from its channel's head and its value fed on through its
    channel's table (with per_column: the table of its column and channel); with ``above`` also
    the pixels of the rows above the next one, each through its neighbour's table (with
    ``above_rank``: the value's embedding times the neighbour's projection); with ``positions``
    the row of its column and channel added to its logits and to its input gates."""
    m = {k: v.double() for k, v in model.state_dict().items()}
    C, K, H = model.channels, model.levels, model.hidden_size
    W = model.image_size[1]
    seq = images.long().permute(0, 2, 3, 1).reshape(len(images), -1)
    h = torch.tanh(m["h0"] + m["class_h0.weight"][labels])
    cond = m["class_gates.weight"][labels]
    if augmentation is not None:
        h = torch.tanh(m["h0"] + m["class_h0.weight"][labels] + m["augmentation_h0.weight"][augmentation])
        cond = cond + m["augmentation_gates.weight"][augmentation]
    eye, zero = torch.eye(3 * H, dtype=torch.float64), torch.zeros(3 * H, dtype=torch.float64)
    total = torch.zeros(len(images), dtype=torch.float64)
    def table(t):
        channel, column = t % C, (t // C) % W
        return column * C + channel if model.per_column else channel

    for t in range(seq.shape[1]):
        c = table(t)
        place = t % (W * C)  # column * C + channel
        position = (m["position_logits"][place], m["position_gates"][place]) if model.positions else (0, 0)
        logp = F.log_softmax(h @ m["head_weight"][c].T + m["head_bias"][c] + position[0], -1)
        total -= logp.gather(1, seq[:, t:t + 1])[:, 0]
        x = m["input_gates"][c][seq[:, t]] + cond + position[1]
        i, j = divmod((t + 1) // C, W)  # the next sub-pixel's row and column; its neighbours above:
        rows = range(1, model.above_rows + 1) if model.above else ()
        for n, (k, d) in enumerate((k, d) for k in rows for d in range(model.above, -model.above - 1, -1)):
            above = ((i - k) * W + j + d) * C + (t + 1) % C  # k rows up, d to the right; wrapping at the row ends
            if above >= 0 and model.above_rank:
                x = x + m["above_embedding"][table(above)][seq[:, above]] @ m["above_projection"][n][table(above)]
            elif above >= 0:
                x = x + m["above_gates"][n][table(above)][seq[:, above]]
        h = torch.gru_cell(x, h, eye, m["weight_hh"], zero, m["bias_hh"])
    return total


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("channels,per_column,above,above_rows,above_rank", [
    (1, False, 0, 1, 0), (3, False, 0, 1, 0), (3, True, 0, 1, 0), (1, False, 1, 1, 0), (3, True, 1, 1, 0),
    (1, False, 1, 2, 0), (3, True, 1, 2, 0), (1, False, 1, 2, 3), (3, True, 1, 1, 2)])
def test_nll_matches_a_step_by_step_loop(backend, channels, per_column, above, above_rows, above_rank):
    model = _model(channels=channels, per_column=per_column, above=above, above_rows=above_rows,
                   above_rank=above_rank)
    model.backend = backend
    images = torch.randint(0, 5, (4, channels, 3, 2))
    labels = torch.tensor([0, 2, 1, 2])
    nll = model(images, labels)
    truth = _truth_nll(model, images, labels)
    torch.testing.assert_close(nll.double(), truth, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(model.bits_per_dim(images, labels), nll / (6 * channels * math.log(2)))
    nll.sum().backward()  # the fused scan's backward runs
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("channels,above,above_rank", [(1, 0, 0), (3, 1, 0), (1, 1, 3)])
def test_positions_add_a_row_per_column(backend, channels, above, above_rank):
    model = _model(channels=channels, above=above, above_rank=above_rank,
                   positions=True)
    model.backend = backend
    assert model.position_gates.shape == (2 * channels, 24) and model.position_logits.shape == (2 * channels, 5)
    images = torch.randint(0, 5, (4, channels, 3, 2))
    labels = torch.tensor([0, 2, 1, 2])
    nll = model(images, labels)
    torch.testing.assert_close(nll.double(), _truth_nll(model, images, labels), rtol=1e-5, atol=1e-5)
    nll.sum().backward()
    assert model.position_gates.grad.abs().sum() > 0 and model.position_logits.grad.abs().sum() > 0
    # Zero rows: the model without positions, to the last bit of its samples too.
    plain = _model(channels=channels, above=above, above_rank=above_rank)
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("position")})
    with torch.no_grad():
        model.position_gates.zero_()
        model.position_logits.zero_()
        torch.testing.assert_close(model(images, labels), plain(images, labels))
    some = torch.arange(5) % 3
    assert torch.equal(model.sample(5, labels=some, seed=2), plain.sample(5, labels=some, seed=2))
    with pytest.raises(ValueError, match="give one of them"):
        PixelGRU(8, per_column=True, positions=True)


def test_augmentation_conditions_like_a_second_label():
    """A model trained with distribution augmentation is told each image's transform through h_0
    and the gates; everything that is not told (likelihood, sampling) means the identity, 0."""
    model = _model(augmentations=4)
    images = torch.randint(0, 5, (4, 1, 3, 2))
    labels, augmentation = torch.tensor([0, 2, 1, 2]), torch.tensor([3, 0, 1, 2])
    nll = model(images, labels, augmentation=augmentation)
    torch.testing.assert_close(nll.double(), _truth_nll(model, images, labels, augmentation), rtol=1e-5, atol=1e-5)
    identity = _truth_nll(model, images, labels, torch.zeros(4, dtype=torch.long))
    torch.testing.assert_close(model(images, labels).double(), identity, rtol=1e-5, atol=1e-5)
    assert (nll.double() - identity).abs()[[0, 2, 3]].min() > 1e-3  # the transform matters
    # Sampling uses the identity: the same images as a model whose h_0 and gates hold its rows.
    plain = _model()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("augmentation")})
    with torch.no_grad():
        plain.h0.copy_(model.h0 + model.augmentation_h0.weight[0])
        plain.class_gates.weight.copy_(model.class_gates.weight + model.augmentation_gates.weight[0])
    assert torch.equal(model.sample(6, labels=torch.arange(6) % 3, seed=1),
                       plain.sample(6, labels=torch.arange(6) % 3, seed=1))
    with pytest.raises(ValueError, match="augmentation must be in 0..3"):
        model(images, labels, augmentation=torch.tensor([0, 1, 2, 4]))
    with pytest.raises(ValueError, match=r"augmentation must have shape \[4\]"):
        model(images, labels, augmentation=torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="augmentation must be integers"):
        model(images, labels, augmentation=torch.zeros(4))
    with pytest.raises(ValueError, match="augmentations=0"):
        _model()(images, labels, augmentation=augmentation)
    with pytest.raises(ValueError, match="augmentations"):
        PixelGRU(8, augmentations=-1)


@pytest.mark.parametrize("mixture", ["flips", "dihedral"])
def test_mixture_over_transforms_is_exact_normalised_and_sampled(mixture):
    """mixture: p(x) = mean_k p(T_k x | k), each by its own ordering (the float64 loop), over
    every image of a tiny model sums to 1, and samples have those frequencies; the same images on
    every backend and in shards; completion keeps the identity's ordering."""
    count = 4 if mixture == "flips" else 8
    model = _model(levels=3, size=(2, 2), augmentations=count, mixture=mixture)
    images = torch.tensor(list(itertools.product(range(3), repeat=4))).view(81, 1, 2, 2)
    labels = torch.full((81,), 1)
    with torch.no_grad():
        nll = model(images, labels)
    each = torch.stack([_truth_nll(model, transform(images, mixture, k), labels, torch.full((81,), k))
                        for k in range(count)])
    assert (each - each[0]).abs().max() > 0.1  # the orderings differ: the mixture is not one of them
    truth = math.log(count) - torch.logsumexp(-each, 0)
    torch.testing.assert_close(nll.double(), truth, rtol=1e-5, atol=1e-5)
    p = torch.exp(-truth)
    assert abs(p.sum().item() - 1) < 1e-9
    draws = model.sample(20000, labels=torch.full((20000,), 1), seed=3)  # every backend alike: below
    freq = torch.bincount((draws.reshape(-1, 4) * torch.tensor([27, 9, 3, 1])).sum(1), minlength=81).double() / 20000
    assert (freq - p).abs().max() < 4 * math.sqrt(p.max() / 20000) + 1e-3
    some = torch.tensor([0, 2, 1, 1, 0, 2, 2])
    results = [model.sample(7, labels=some, seed=-5, backend=b) for b in BACKENDS]
    assert all(torch.equal(results[0], other) for other in results[1:])
    shards = torch.cat([model.sample(3, labels=some[:3], seed=-5), model.sample(4, labels=some[3:], seed=-5, row_offset=3)])
    assert torch.equal(shards, results[0])
    plain = _model(levels=3, size=(2, 2), augmentations=count)  # the same weights, no mixture
    mask = torch.tensor([[True, False], [False, False]])
    assert torch.equal(model.complete(images[:9], mask, labels[:9], seed=2), plain.complete(images[:9], mask, labels[:9], seed=2))
    with pytest.raises(TypeError, match="seed must be an int"):
        model.sample(2, labels=some[:2], seed=1.5)
    with pytest.raises(ValueError, match="row_offset must be >= 0"):
        model.sample(2, labels=some[:2], row_offset=-1)
    with pytest.raises(ValueError, match="mixture must be one of"):
        PixelGRU(8, augmentations=8, mixture="rotations")
    with pytest.raises(ValueError, match=f"needs augmentations={count}, got 2"):
        PixelGRU(8, augmentations=2, mixture=mixture)
    if mixture == "dihedral":
        with pytest.raises(ValueError, match="square images, got 8x6"):
            PixelGRU((8, 6), augmentations=8, mixture=mixture)


@pytest.mark.parametrize("channels,size,per_column,num_classes,above,positions", [
    (1, (2, 2), True, None, 0, False), (2, (1, 2), True, 3, 0, False), (2, (2, 1), False, 3, 0, False),
    (1, (2, 2), False, 3, 1, False), (1, (2, 2), False, 3, 1, True), (2, (1, 2), False, None, 0, True)])
def test_likelihood_normalised_and_samples_follow_it(channels, size, per_column, num_classes, above, positions):
    """Every image of a tiny 3-level model (4 sub-pixels: 81 images): probabilities sum to 1, and
    20000 samples (the fused sample op, on the auto backend: cpu where built) have those
    frequencies. The other backends draw the same images for the same seed
    (test_same_seed_same_images_on_every_backend), so this holds for them too, without 20000
    draws in Triton's CPU interpreter (about 100 s each case)."""
    model = _model(channels=channels, levels=3, size=size, num_classes=num_classes, per_column=per_column,
                   above=above, positions=positions)
    # All images, in raster order with channels as sub-steps (the index below reads them so).
    seqs = torch.tensor(list(itertools.product(range(3), repeat=4)))
    images = seqs.view(-1, *size, channels).permute(0, 3, 1, 2)
    labels = None if num_classes is None else torch.full((81,), 2)
    with torch.no_grad():
        p = torch.exp(-model(images, labels).double())
    assert abs(p.sum().item() - 1) < 1e-5
    draws = model.sample(20000, labels=None if num_classes is None else torch.full((20000,), 2), seed=3)
    index = (draws.permute(0, 2, 3, 1).reshape(-1, 4) * torch.tensor([27, 9, 3, 1])).sum(1)
    freq = torch.bincount(index, minlength=81).double() / 20000
    assert (freq - p).abs().max() < 4 * math.sqrt(p.max() / 20000) + 1e-3


@pytest.mark.parametrize("channels,per_column,above,above_rows,above_rank,positions", [
    (1, False, 0, 1, 0, False), (3, False, 0, 1, 0, False), (1, True, 0, 1, 0, False), (3, True, 2, 1, 0, False),
    (1, False, 1, 3, 0, False), (3, True, 1, 2, 4, False), (3, False, 1, 2, 4, True)])
def test_same_seed_same_images_on_every_backend(channels, per_column, above, above_rows, above_rank, positions):
    model = _model(channels=channels, levels=7, hidden=16, size=(4, 3), per_column=per_column, above=above,
                   above_rows=above_rows, above_rank=above_rank, positions=positions)
    labels = torch.tensor([0, 1, 2, 1, 0])
    results = [model.sample(5, labels=labels, seed=11, temperature=0.8, backend=b) for b in BACKENDS]
    for other in results[1:]:
        assert torch.equal(results[0], other)
    assert results[0].shape == (5, channels, 4, 3) and results[0].dtype == torch.long
    assert 0 <= int(results[0].min()) and int(results[0].max()) < 7
    # Shards with row_offset draw what the whole batch draws.
    shards = torch.cat([model.sample(2, labels=labels[:2], seed=11, temperature=0.8),
                        model.sample(3, labels=labels[2:], seed=11, temperature=0.8, row_offset=2)])
    assert torch.equal(shards, results[0])


def test_above_rank_factors_every_neighbour_table_through_one_value_embedding():
    model = PixelGRU(8, levels=256, hidden_size=16, above=2, above_rows=2, above_rank=5)
    names = {name: tuple(p.shape) for name, p in model.named_parameters() if name.startswith("above")}
    assert names == {"above_embedding": (1, 256, 5), "above_projection": (10, 1, 5, 48)}
    full = PixelGRU(8, levels=256, hidden_size=16, above=2, above_rows=2)
    assert sum(p.numel() for p in full.parameters()) - sum(p.numel() for p in model.parameters()) == (
        10 * 256 * 48 - 256 * 5 - 10 * 5 * 48)
    table = model.above_table()
    assert table.shape == full.above_table().shape == (10, 1, 256, 48)
    # Row (neighbour 3, value 7) is that value's embedding through neighbour 3's projection.
    torch.testing.assert_close(table[3, 0, 7], model.above_embedding[0, 7] @ model.above_projection[3, 0])
    # The product starts with the free tables' spread.
    assert 0.7 < float(table.detach().std() / full.above_gates.detach().std()) < 1.3
    # Both factors learn.
    images = torch.randint(0, 256, (2, 1, 8, 8))
    model(images).sum().backward()
    assert model.above_embedding.grad.abs().sum() > 0 and model.above_projection.grad.abs().sum() > 0
    assert PixelGRU(8, above=1).above_rank == 0 and PixelGRU(8).above_table() is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_complete_keeps_known_pixels(backend):
    model = _model(levels=6, hidden=16, size=(4, 4))
    images = torch.randint(0, 6, (3, 1, 4, 4))
    labels = torch.tensor([0, 1, 2])
    top = torch.zeros(4, 4, dtype=torch.bool)
    top[:2] = True
    out = model.complete(images, top, labels=labels, seed=5, backend=backend)
    assert torch.equal(out[:, :, :2], images[:, :, :2])
    full = model.complete(images, torch.ones(3, 4, 4, dtype=torch.bool), labels=labels, backend=backend)
    assert torch.equal(full, images)
    # Completion's free pixels follow the model given the known ones: with all but the last
    # pixel known, the last one's frequencies match the conditional probabilities. In Triton's
    # CPU interpreter (80 s for 4000 rows) fewer rows, which must be the reference's draws (same
    # seed, same images), so the frequencies the reference meets hold for them too.
    last = torch.ones(4, 4, dtype=torch.bool)
    last[3, 3] = False
    n = 300 if backend == "triton" else 4000
    one = images[:1].repeat(n, 1, 1, 1)
    draws = model.complete(one, last, labels=torch.zeros(n, dtype=torch.long), seed=1, backend=backend)
    if backend == "triton":
        reference = model.complete(one, last, labels=torch.zeros(n, dtype=torch.long), seed=1, backend="reference")
        assert torch.equal(draws, reference)
        return
    freq = torch.bincount(draws[:, 0, 3, 3], minlength=6).double() / 4000
    candidates = images[:1].repeat(6, 1, 1, 1)
    candidates[:, 0, 3, 3] = torch.arange(6)
    p = torch.softmax(-model(candidates, torch.zeros(6, dtype=torch.long)).double(), 0)
    assert (freq - p).abs().max() < 0.04


def test_argument_checks_name_the_argument():
    model = _model()
    images = torch.randint(0, 5, (2, 1, 3, 2))
    with pytest.raises(ValueError, match="n must be"):
        model.sample(-1, labels=torch.tensor([]))
    for bad in (0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="temperature"):
            model.sample(2, labels=torch.tensor([0, 1]), temperature=bad)
    with pytest.raises(ValueError, match="labels must be in 0..2"):
        model.sample(2, labels=torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="labels are required"):
        model(images)
    with pytest.raises(ValueError, match="images values must be in 0..4"):
        model(images + 5, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"images must have shape \[N, 1, 3, 2\]"):
        model(images[:, :, :2], torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="images must hold integer"):
        model(images.float(), torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="mask must be a bool"):
        model.complete(images, torch.ones(3, 2), labels=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="hidden_size"):
        PixelGRU(8, hidden_size=0)
    for bad in (1.0, -0.1, float("nan"), True):
        with pytest.raises(ValueError, match="weight_dropout"):
            PixelGRU(8, weight_dropout=bad)
    for bad in (-1, 1.0, True):
        with pytest.raises(ValueError, match="above must be an int >= 0"):
            PixelGRU(8, above=bad)
    with pytest.raises(ValueError, match="above must be below the image width 8"):
        PixelGRU(8, above=8)
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="above_rows must be an int >= 1"):
            PixelGRU(8, above=1, above_rows=bad)
    with pytest.raises(ValueError, match="above_rows must be below the image height 8"):
        PixelGRU((8, 3), above=1, above_rows=8)
    with pytest.raises(ValueError, match=r"neighbours must be at most 16 \(the sample op's lags\), got 4 \* 5"):
        PixelGRU(8, above=2, above_rows=4)
    for bad in (-1, 2.0, True):
        with pytest.raises(ValueError, match="above_rank must be an int >= 0"):
            PixelGRU(8, above=1, above_rank=bad)
    with pytest.raises(ValueError, match="above_rank factors the tables of the pixels above: it needs above >= 1"):
        PixelGRU(8, above_rank=4)
    assert model.sample(0, labels=torch.zeros(0, dtype=torch.long)).shape == (0, 1, 3, 2)


@pytest.mark.parametrize("backend", BACKENDS)
def test_weight_dropout_is_one_dropconnect_mask_on_w_hh_per_batch(backend):
    """In training the likelihood is the eval-mode likelihood with W_hh replaced by one dropout
    draw of it (the same mask for every image and step); in eval mode nothing is dropped."""
    model = _model(hidden=16)
    model.weight_dropout, model.backend = 0.5, backend
    images, labels = torch.randint(0, 5, (4, 1, 3, 2)), torch.tensor([0, 1, 2, 0])
    plain = model(images, labels)
    model.train()
    torch.manual_seed(3)
    dropped = model(images, labels)
    torch.manual_seed(3)
    weight = F.dropout(model.weight_hh, 0.5)
    assert (weight == 0).any() and (weight != 0).any()
    model.eval()
    expected = torch.func.functional_call(model, {"weight_hh": weight}, (images, labels))
    torch.testing.assert_close(dropped, expected)
    assert not torch.allclose(dropped, plain)
    torch.testing.assert_close(model(images, labels), plain)  # eval: no dropout
    # The gradient reaches W_hh through the mask: zero exactly where the mask dropped a weight.
    model.train()
    torch.manual_seed(3)
    model(images, labels).sum().backward()
    assert (model.weight_hh.grad[weight == 0] == 0).all() and model.weight_hh.grad[weight != 0].abs().sum() > 0


def test_generator_vae_discretised_gaussian_is_normalised_and_trains():
    model = GeneratorVAE((4, 4), levels=5, z_dim=3, hidden_size=8, encoder_size=16, backend="reference")
    mean = torch.rand(1, 1) * 1.2 - 0.1
    probs = torch.stack([model.log_likelihood(torch.tensor([[k / 4]]), mean).exp() for k in range(5)])
    assert abs(probs.sum().item() - 1) < 1e-5
    images = torch.randint(0, 5, (6, 1, 4, 4))
    loss = model(images)
    assert loss.shape == (6,) and torch.isfinite(loss).all()
    loss.mean().backward()
    assert model.generator.rnn.weight_hh.grad.abs().sum() > 0  # through the decode op
    samples = model.sample(3, seed=2)
    assert samples.shape == (3, 1, 4, 4) and torch.equal(samples, model.sample(3, seed=2))
    with pytest.raises(ValueError, match="temperature"):
        model.sample(3, temperature=float("inf"))


def test_generator_vae_keeps_its_old_names(tmp_path):
    """GeneratorVAE and baselines.ArticleRNNImageGenerator were SeedVAE and SeedRNNImageGenerator
    (after the "seed" article, not the RNG seed): the old names still import, and a checkpoint of
    model kind "SeedVAE" still loads."""
    import rnngen
    from rnngen.checkpoint import save_checkpoint
    from rnngen.models import MODELS, load_model
    from rnngen.models.seed_vae import SeedVAE
    from rnngen.nn.baselines import ArticleRNNImageGenerator, SeedRNNImageGenerator

    assert SeedVAE is rnngen.SeedVAE is rnngen.models.SeedVAE is rnngen.GeneratorVAE is GeneratorVAE
    assert SeedRNNImageGenerator is ArticleRNNImageGenerator
    assert MODELS["SeedVAE"] is MODELS["GeneratorVAE"] is GeneratorVAE
    model = GeneratorVAE((4, 4), levels=5, z_dim=3, hidden_size=8, encoder_size=16).eval()
    save_checkpoint(str(tmp_path / "old.pt"), {"model": "SeedVAE", "config": model.config, "state": model.state_dict()})
    loaded, payload = load_model(str(tmp_path / "old.pt"))
    assert isinstance(loaded, GeneratorVAE) and payload["model"] == "SeedVAE"
    assert torch.equal(loaded.sample(3, seed=5), model.sample(3, seed=5))
