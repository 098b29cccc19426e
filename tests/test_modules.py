"""FusedPixelGRU == nn.GRU and RNNImageGenerator == the article's model, on every backend;
both inside torch.compile(fullgraph=True)."""

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import rnngen
from helpers import BACKENDS, assert_matches, supported
from rnngen.nn.baselines import ArticleRNNImageGenerator

GRU_CONFIGS = [
    dict(input_size=5, hidden_size=40, num_layers=1),
    dict(input_size=3, hidden_size=16, num_layers=3, batch_first=True),
    dict(input_size=4, hidden_size=8, num_layers=2, bias=False),
]


def _grads(module, inputs, outputs, dout):
    loss = sum((o * d).sum() for o, d in zip(outputs, dout))
    params = [p for _, p in sorted(module.named_parameters())]
    return torch.autograd.grad(loss, [*inputs, *params])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("config", GRU_CONFIGS, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
@pytest.mark.parametrize("backend", BACKENDS)
def test_fused_gru_equals_nn_gru(backend, config, dtype):
    if not supported(backend, "scan_forward", dtype):
        pytest.skip(f"{backend} has no {dtype} scan")
    gru = nn.GRU(**config, dtype=dtype)
    fused = rnngen.FusedPixelGRU(**config, dtype=dtype, backend=backend)
    fused.load_state_dict(gru.state_dict())
    assert list(fused.state_dict()) == list(gru.state_dict())
    gru.load_state_dict(fused.state_dict())  # both ways
    B, T, L, H = 3, 63, config["num_layers"], config["hidden_size"]
    shape = (B, T, config["input_size"]) if config.get("batch_first") else (T, B, config["input_size"])
    for with_h0 in (False, True):
        x = torch.randn(*shape, dtype=dtype, requires_grad=True)
        h0 = torch.randn(L, B, H, dtype=dtype, requires_grad=True)
        args = (x, h0) if with_h0 else (x,)
        want, got = gru(*args), fused(*args)
        for o_got, o_want in zip(got, want):
            assert o_got.shape == o_want.shape
            assert_matches(o_got, o_want)
        dout = [torch.randn_like(o) for o in want]
        for g_got, g_want in zip(_grads(fused, args, got, dout), _grads(gru, args, want, dout)):
            assert_matches(g_got, g_want, name="gradient")


@pytest.mark.parametrize("backend", BACKENDS)
def test_fused_gru_unbatched_packed_and_empty(backend):
    gru = nn.GRU(4, 8, num_layers=2)
    fused = rnngen.FusedPixelGRU.from_gru(gru, backend=backend)
    # unbatched input [T, in] with hx [L, H]
    x, hx = torch.randn(9, 4), torch.randn(2, 8)
    for got, want in zip(fused(x, hx), gru(x, hx)):
        assert got.shape == want.shape and torch.allclose(got, want, atol=1e-6)
    # PackedSequence (unsorted lengths): data, batch_sizes, indices and h_n as nn.GRU's
    padded, lengths = torch.randn(7, 3, 4), torch.tensor([4, 7, 2])
    packed = pack_padded_sequence(padded, lengths, enforce_sorted=False)
    h0 = torch.randn(2, 3, 8)
    (p_got, h_got), (p_want, h_want) = fused(packed, h0), gru(packed, h0)
    assert torch.allclose(p_got.data, p_want.data, atol=1e-6)
    assert torch.equal(p_got.batch_sizes, p_want.batch_sizes)
    assert torch.equal(p_got.sorted_indices, p_want.sorted_indices)
    assert torch.allclose(h_got, h_want, atol=1e-6)
    # ... and gradients through the packed path, to the padded input and h0
    padded.requires_grad_()
    h0.requires_grad_()
    grads = []
    for module in (fused, gru):
        out, h_n = module(pack_padded_sequence(padded, lengths, enforce_sorted=False), h0)
        grads.append(torch.autograd.grad((out.data * out.data).sum() + (h_n * h_n).sum(), [padded, h0]))
    for a, b in zip(*grads):
        assert torch.allclose(a, b, atol=1e-6)
    assert torch.equal(p_got.unsorted_indices, p_want.unsorted_indices)
    # an empty batch, as nn.GRU allows
    out, h_n = fused(torch.randn(5, 0, 4))
    assert out.shape == (5, 0, 8) and h_n.shape == (2, 0, 8)


def test_fused_gru_init_and_options():
    torch.manual_seed(1)
    gru = nn.GRU(3, 6, num_layers=2)
    torch.manual_seed(1)
    fused = rnngen.FusedPixelGRU(3, 6, num_layers=2)
    for (n1, p1), (n2, p2) in zip(gru.named_parameters(), fused.named_parameters()):
        assert n1 == n2 and torch.equal(p1, p2)  # same names, shapes and initialisation
    with pytest.raises(ValueError, match="bidirectional"):
        rnngen.FusedPixelGRU(3, 6, bidirectional=True)
    with pytest.raises(ValueError, match="dropout"):
        rnngen.FusedPixelGRU(3, 6, dropout=1.5)
    with pytest.raises(ValueError, match="hidden_size"):
        rnngen.FusedPixelGRU(3, 0)
    # dropout between layers: active in training, off in eval (then equal to nn.GRU)
    gru, fused = nn.GRU(3, 6, num_layers=2, dropout=0.5), rnngen.FusedPixelGRU(3, 6, num_layers=2, dropout=0.5)
    fused.load_state_dict(gru.state_dict())
    x = torch.randn(5, 2, 3)
    assert not torch.allclose(fused(x)[0], fused.eval()(x)[0])
    assert torch.allclose(fused(x)[0], gru.eval()(x)[0], atol=1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_generator_equals_seed(backend):
    torch.manual_seed(3)
    article_model = ArticleRNNImageGenerator(10, 24, (5, 7))
    torch.manual_seed(3)
    model = rnngen.RNNImageGenerator(10, 24, (5, 7), backend=backend)
    assert list(model.state_dict()) == list(article_model.state_dict())
    for a, b in zip(model.state_dict().values(), article_model.state_dict().values()):
        assert torch.equal(a, b)  # same creation order, same initialisation
    article_model.load_state_dict(model.state_dict())
    z = torch.randn(3, 10, requires_grad=True)
    got, want = model(z), article_model(z)
    assert got.shape == want.shape == (3, 5, 7)
    assert_matches(got, want)
    dout = torch.randn_like(want)
    for g_got, g_want in zip(_grads(model, [z], [got], [dout]), _grads(article_model, [z], [want], [dout])):
        assert_matches(g_got, g_want, name="gradient")


def test_article_code_as_printed_fails():
    """Why baselines.ArticleRNNImageGenerator keeps h as [B, H]: the article's [B, 1, 1, H] hidden
    state is refused by GRUCell."""
    cell = nn.GRUCell(1, 4)
    with pytest.raises(ValueError, match="hidden"):
        cell(torch.randn(2, 1), torch.randn(2, 1, 1, 4))


class _Classifier(nn.Module):
    """A model that uses FusedPixelGRU inside it."""

    def __init__(self, backend):
        super().__init__()
        self.gru = rnngen.FusedPixelGRU(3, 16, num_layers=2, batch_first=True, backend=backend)
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        out, h_n = self.gru(x)
        return self.head(out.mean(1) + h_n[-1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_torch_compile_fullgraph(backend):
    torch._dynamo.reset()
    torch._dynamo.config.cache_size_limit = 64
    models = [(_Classifier(backend), torch.randn(2, 9, 3)),
              (rnngen.RNNImageGenerator(6, 12, (3, 4), backend=backend), torch.randn(2, 6))]
    for model, x in models:
        compiled = torch.compile(model, fullgraph=True)
        want, got = model(x), compiled(x)
        assert torch.allclose(got, want, atol=1e-5)
        g_want = torch.autograd.grad(want.square().sum(), list(model.parameters()))
        g_got = torch.autograd.grad(compiled(x).square().sum(), list(model.parameters()))
        for a, b in zip(g_got, g_want):
            assert torch.allclose(a, b, atol=1e-5)
    # sampling compiles too, with temperature and seed changing between calls (Dynamo then
    # passes them as symbolic numbers): same values as eager, no graph break
    H, K = 8, 5
    args = (torch.randn(2, H), torch.randn(K, 3 * H), torch.randn(3 * H, H), None, torch.randn(K, H), None, 12)

    def draw(temperature, seed):
        return rnngen.sample(*args, seed=seed, temperature=temperature, backend=backend)

    for dynamic in (None, True):
        compiled = torch.compile(draw, fullgraph=True, dynamic=dynamic)
        for temperature, seed in ((0.5, 9), (0.7, 10), (1.3, 2**63 + 5)):
            assert torch.equal(compiled(temperature, seed), draw(temperature, seed))


def test_recurrence_dtype_under_autocast(monkeypatch):
    """Under CUDA autocast the drop-ins run the recurrence in the autocast dtype (cuDNN's rule),
    on the CPU in the parameters' dtype."""
    from rnngen.nn.rnn_base import recurrence_dtype
    assert recurrence_dtype("cuda", torch.float32) == torch.float32  # no autocast here
    monkeypatch.setattr(torch, "is_autocast_enabled", lambda device_type=None: True)
    monkeypatch.setattr(torch, "get_autocast_dtype", lambda device_type: torch.bfloat16)
    assert recurrence_dtype("cuda", torch.float32) == torch.bfloat16
    assert recurrence_dtype("cuda", torch.float64) == torch.float64  # autocast leaves float64 alone
    assert recurrence_dtype("cpu", torch.float32) == torch.float32


def test_fused_gru_under_autocast():
    gru = nn.GRU(3, 8)
    fused = rnngen.FusedPixelGRU.from_gru(gru)
    x = torch.randn(5, 2, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, h_n = fused(x)
    assert torch.allclose(out.float(), gru(x)[0], atol=2e-2)
