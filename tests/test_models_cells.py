"""The models with every cell: RNNImageGenerator(cell=...) against the article's eager loop with
that nn cell, and PixelGRU(cell=...) against a plain loop of ATen's own cell functions
(torch.gru_cell, torch.lstm_cell, torch.rnn_tanh_cell, torch.rnn_relu_cell, independent of
rnngen's reference), its sampling against greedy decoding by that loop, and its config through a
checkpoint."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import rnngen
from rnngen.checkpoint import CheckpointError, save_checkpoint
from rnngen.models import build_model, load_model
from rnngen.nn.baselines import ArticleRNNImageGenerator

CELLS = ["gru", "lstm", "rnn_tanh", "rnn_relu"]
NN_CELLS = {"gru": nn.GRUCell, "lstm": nn.LSTMCell, "rnn_tanh": nn.RNNCell, "rnn_relu": nn.RNNCell}
GATES = {"gru": 3, "lstm": 4, "rnn_tanh": 1, "rnn_relu": 1}


def _backends(kernel, cell, dtype):
    return [b for b in ("reference", "cpu") if rnngen.dispatch.supports(b, kernel, dtype, cell)]


# ----------------------------------------------------------------------------- RNNImageGenerator


@pytest.mark.parametrize("cell", CELLS)
def test_generator_equals_article_loop(cell):
    """Same parameters (creation order, so initialisation), outputs and gradients as the eager
    loop of H*W nn cell steps; the state_dicts load both ways."""
    torch.manual_seed(3)
    article = ArticleRNNImageGenerator(6, 10, (3, 4), cell=cell).double()
    torch.manual_seed(3)
    model = rnngen.RNNImageGenerator(6, 10, (3, 4), backend="reference", cell=cell).double()
    assert type(model.rnn) is NN_CELLS[cell] and model.rnn.input_size == 1
    if cell.startswith("rnn_"):
        assert model.rnn.nonlinearity == cell[4:]
    assert [(n, p.shape) for n, p in model.named_parameters()] == [(n, p.shape) for n, p in article.named_parameters()]
    for a, b in zip(model.parameters(), article.parameters()):
        assert torch.equal(a, b)
    article.load_state_dict(model.state_dict())
    model.load_state_dict(article.state_dict())
    z = torch.randn(3, 6, dtype=torch.float64)
    for backend in _backends("decode_forward", cell, torch.float64):
        model.backend = backend
        want, got = article(z), model(z)
        assert got.shape == want.shape == (3, 3, 4)
        torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-8)
        dout = torch.randn_like(want)
        g_want = torch.autograd.grad(want, list(article.parameters()), dout)
        g_got = torch.autograd.grad(got, list(model.parameters()), dout)
        for name, g, w in zip([n for n, _ in model.named_parameters()], g_got, g_want):
            torch.testing.assert_close(g, w, atol=1e-10, rtol=1e-8, msg=f"{backend}: gradient of {name}")


def test_generator_default_is_the_gru_and_cell_is_checked():
    model = rnngen.RNNImageGenerator(4, 8, 3)
    assert model.cell == "gru" and type(model.rnn) is nn.GRUCell and "cell" not in repr(model)
    assert "cell='lstm'" in repr(rnngen.RNNImageGenerator(4, 8, 3, cell="lstm"))
    with pytest.raises(ValueError, match="cell must be one of"):
        rnngen.RNNImageGenerator(4, 8, 3, cell="transformer")
    with pytest.raises(TypeError, match="cell must be a str"):
        rnngen.RNNImageGenerator(4, 8, 3, cell=nn.GRUCell)


# ----------------------------------------------------------------------------- PixelGRU


def _step(cell, gi, h, c, w_hh, b_hh):
    """One step of ATen's own cell on input gates gi (W_ih = I, b_ih = 0): (h', c')."""
    G = gi.shape[-1]
    eye, zero = torch.eye(G, dtype=gi.dtype), torch.zeros(G, dtype=gi.dtype)
    if cell == "lstm":
        return torch.lstm_cell(gi, (h, c), eye, w_hh, zero, b_hh)
    fn = {"gru": torch.gru_cell, "rnn_tanh": torch.rnn_tanh_cell, "rnn_relu": torch.rnn_relu_cell}[cell]
    return fn(gi, h, eye, w_hh, zero, b_hh), None


def _truth_start(model, labels, latents):
    """h_0 and the conditioning gates, written out from the parameters."""
    pre = model.h0 + model.class_h0.weight[labels] + latents @ model.latent_h0.weight.T + model.latent_h0.bias
    cond = model.class_gates.weight[labels] + latents @ model.latent_gates.weight.T
    h = torch.tanh(pre)
    return h, torch.zeros_like(h) if model.cell == "lstm" else None, cond


def _truth_nll(model, images, labels, latents):
    """Per-sub-pixel NLL [N, T] by a plain loop (teacher forcing), raster order, channel sub-steps."""
    x = images.permute(0, 2, 3, 1).reshape(images.shape[0], -1)
    C = model.tables
    h, c, cond = _truth_start(model, labels, latents)
    terms = []
    for t in range(x.shape[1]):
        logits = h @ model.head_weight[t % C].T + model.head_bias[t % C]
        terms.append(-F.log_softmax(logits, -1).gather(1, x[:, t:t + 1])[:, 0])
        h, c = _step(model.cell, model.input_gates[t % C][x[:, t]] + cond, h, c, model.weight_hh, model.bias_hh)
    return torch.stack(terms, 1)


def _model(cell, **kwargs):
    torch.manual_seed(0)
    return rnngen.PixelGRU((3, 2), channels=2, levels=5, hidden_size=6, num_classes=3, latent_size=2, cell=cell,
                           backend="reference", **kwargs)


@pytest.mark.parametrize("cell", CELLS)
def test_pixel_model_shapes_loss_and_gradients(cell):
    model = _model(cell).double()
    G = GATES[cell] * 6
    shapes = {"input_gates": (2, 5, G), "weight_hh": (G, 6), "bias_hh": (G,), "class_gates.weight": (3, G),
              "latent_gates.weight": (G, 2), "class_h0.weight": (3, 6), "head_weight": (2, 5, 6)}
    state = model.state_dict()
    for name, shape in shapes.items():
        assert tuple(state[name].shape) == shape, name
    images = torch.randint(0, 5, (3, 2, 3, 2))
    labels, latents = torch.tensor([0, 2, 1]), torch.randn(3, 2, dtype=torch.float64)
    want = _truth_nll(model, images, labels, latents)
    for backend in _backends("scan_forward", cell, torch.float64):
        model.backend = backend
        got = model.log_prob_terms(images, labels, latents)
        torch.testing.assert_close(got, want, atol=1e-10, rtol=1e-8)
        torch.testing.assert_close(model(images, labels, latents), want.sum(1), atol=1e-10, rtol=1e-8)
        params = [p for p in model.parameters()]
        g_got = torch.autograd.grad(got.sum(), params)
        g_want = torch.autograd.grad(want.sum(), params, retain_graph=True)
        for name, g, w in zip([n for n, _ in model.named_parameters()], g_got, g_want):
            torch.testing.assert_close(g, w, atol=1e-10, rtol=1e-8, msg=f"{backend}: gradient of {name}")


@pytest.mark.parametrize("cell", CELLS)
def test_pixel_model_sampling(cell):
    """At a vanishing temperature the draw is the argmax: sampling equals greedy decoding by the
    plain loop. At temperature 1 a seed gives the same images on every backend with the cell's
    kernel, completion keeps the known pixels, and the values are in range."""
    model = _model(cell)
    labels, latents = torch.tensor([0, 2, 1, 1]), torch.randn(4, 2)
    got = model.sample(4, labels, temperature=1e-30, seed=5, latents=latents)
    with torch.no_grad():
        h, c, cond = _truth_start(model, labels, latents)
        values = []
        for t in range(model.steps):
            v = (h @ model.head_weight[t % 2].T + model.head_bias[t % 2]).argmax(-1)
            values.append(v)
            h, c = _step(cell, model.input_gates[t % 2][v] + cond, h, c, model.weight_hh, model.bias_hh)
    want = torch.stack(values, 1).view(4, 3, 2, 2).permute(0, 3, 1, 2)
    assert torch.equal(got, want)
    drawn = model.sample(4, labels, seed=7, latents=latents)
    assert drawn.shape == (4, 2, 3, 2) and drawn.min() >= 0 and drawn.max() < 5
    assert not torch.equal(drawn, got)  # temperature 1 is not the argmax everywhere
    for backend in _backends("sample", cell, torch.float32):
        assert torch.equal(model.sample(4, labels, seed=7, latents=latents, backend=backend), drawn)
    mask = torch.zeros(3, 2, dtype=torch.bool)
    mask[0] = True
    completed = model.complete(drawn.flip(0), mask, labels, seed=9, latents=latents)
    assert torch.equal(completed[:, :, 0], drawn.flip(0)[:, :, 0])


@pytest.mark.parametrize("cell", ["lstm", "rnn_relu"])
def test_pixel_model_config_round_trip(cell, tmp_path):
    model = _model(cell, per_column=True)
    assert model.config["cell"] == cell and f"cell={cell}" in repr(model)
    path = tmp_path / "model.pt"
    save_checkpoint(str(path), {"model": "PixelGRU", "config": model.config, "state": model.state_dict()})
    loaded, _ = load_model(str(path), backend="reference")
    assert loaded.cell == cell and loaded.config == model.config
    images, labels, latents = torch.randint(0, 5, (2, 2, 3, 2)), torch.tensor([1, 2]), torch.randn(2, 2)
    torch.testing.assert_close(loaded(images, labels, latents), model.eval()(images, labels, latents))
    # a config naming another cell does not fit these weights: refused, naming the weight
    wrong = {**model.config, "cell": "gru"}
    with pytest.raises(CheckpointError, match="weights do not match its config"):
        build_model("PixelGRU", wrong, model.state_dict())


def test_pixel_model_old_config_without_cell_is_a_gru():
    torch.manual_seed(0)
    gru = rnngen.PixelGRU((2, 2), levels=4, hidden_size=5, backend="reference")
    config = {k: v for k, v in gru.config.items() if k != "cell"}  # a checkpoint from before cells
    rebuilt = build_model("PixelGRU", config, gru.state_dict(), backend="reference")
    assert rebuilt.cell == "gru" and rebuilt.config == gru.config
    assert tuple(rebuilt.weight_hh.shape) == (15, 5)
    with pytest.raises(ValueError, match="cell must be one of"):
        rnngen.PixelGRU((2, 2), levels=4, hidden_size=5, cell="GRU")
