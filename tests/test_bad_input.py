"""Bad input: a clear ValueError/TypeError naming the argument, before any kernel runs."""

import pytest
import torch
from torch import nn

import rnngen
from rnngen.nn import RNNInputError

B, T, H, K = 2, 5, 4, 3
W_HH, B_HH = torch.randn(3 * H, H), torch.randn(3 * H)
GI, H0 = torch.randn(B, T, 3 * H), torch.randn(B, H)


def _scan(**kw):
    args = dict(gi=GI, h0=H0, w_hh=W_HH, b_hh=B_HH) | kw
    return rnngen.scan(args["gi"], args["h0"], args["w_hh"], args["b_hh"], backend=kw.get("backend", "reference"))


@pytest.mark.parametrize("kw,error,match", [
    (dict(gi=torch.randn(B, T, 3 * H + 1)), ValueError, "gi must have shape"),
    (dict(gi=torch.randn(T, 3 * H)), ValueError, "gi must have shape"),
    (dict(gi=torch.randn(B, 0, 3 * H)), ValueError, "number of steps"),
    (dict(gi=GI.double()), TypeError, "gi must have dtype"),
    (dict(gi=GI.long()), TypeError, "gi must be a floating-point"),
    (dict(gi=[1.0]), TypeError, "gi must be a torch.Tensor"),
    (dict(h0=torch.randn(B + 1, H)), ValueError, "h0 must have shape"),
    (dict(w_hh=torch.randn(3 * H, H + 1)), ValueError, "w_hh must have shape"),
    (dict(b_hh=torch.randn(H)), ValueError, "b_hh must have shape"),
    (dict(h0=H0.to("meta")), ValueError, "h0 is on meta"),
    (dict(backend="gpu"), ValueError, "backend must be one of"),
    (dict(backend=3), TypeError, "backend must be a str"),
])
def test_scan_rejects(kw, error, match):
    with pytest.raises(error, match=match):
        _scan(**kw)


def test_unavailable_backend_says_why():
    status = rnngen.backend_status()
    for name in ("cpu", "triton", "cuda"):
        if status[name] != "available":
            with pytest.raises(rnngen.BackendUnavailableError, match=name):
                _scan(backend=name)


def test_decode_rejects():
    args = [H0, torch.randn(3 * H, 1), None, W_HH, B_HH, torch.randn(1, H), None]
    with pytest.raises(ValueError, match="steps must be >= 1"):
        rnngen.decode(*args, 0)
    with pytest.raises(TypeError, match="steps must be an int"):
        rnngen.decode(*args, 2.0)
    bad = list(args)
    bad[1] = torch.randn(3 * H, 2)
    with pytest.raises(ValueError, match="w_ih must have shape"):
        rnngen.decode(*bad, 4)
    bad = list(args)
    bad[6] = torch.randn(2)
    with pytest.raises(ValueError, match="b_out must have shape"):
        rnngen.decode(*bad, 4)


def _sample(**kw):
    args = dict(h0=H0, emb=torch.randn(K, 3 * H), w_hh=W_HH, b_hh=B_HH, w_out=torch.randn(K, H), b_out=None,
                steps=T) | kw
    pos = [args.pop(n) for n in ("h0", "emb", "w_hh", "b_hh", "w_out", "b_out", "steps")]
    return rnngen.sample(*pos, backend="reference", **args)


@pytest.mark.parametrize("kw,error,match", [
    (dict(temperature=0.0), ValueError, "temperature"),
    (dict(temperature=-1.0), ValueError, "temperature"),
    (dict(temperature=float("nan")), ValueError, "temperature"),
    (dict(temperature=1e-46), ValueError, "temperature"),  # 0 in float32
    (dict(temperature="hot"), TypeError, "temperature"),
    (dict(seed=1.5), TypeError, "seed"),
    (dict(steps=0), ValueError, "steps"),
    (dict(row_offset=-1), ValueError, "row_offset"),
    (dict(known=torch.full((B, T), K)), ValueError, "known values"),
    (dict(known=torch.full((B, T), -2)), ValueError, "known values"),
    (dict(known=torch.zeros(B, T + 1, dtype=torch.long)), ValueError, "known must have shape"),
    (dict(known=torch.zeros(B, T)), TypeError, "known must be an integer"),
    (dict(mask=torch.ones(B, T, dtype=torch.bool)), ValueError, "mask was given without known"),
    (dict(known=torch.zeros(B, T, dtype=torch.long), mask=torch.ones(B, T)), TypeError, "mask must have dtype"),
    (dict(emb=torch.randn(K + 1, 3 * H)), ValueError, "emb must have shape"),
    (dict(w_out=torch.randn(0, H), emb=torch.randn(0, 3 * H)), ValueError, "number of values"),
    (dict(w_out=torch.randn(0, 4, H), emb=torch.randn(0, 4, 3 * H)), ValueError, "number of channels C"),
    (dict(w_out=torch.randn(3, K, H), emb=torch.randn(3, K, 3 * H), steps=T), ValueError, "multiple of the number of channels"),
    (dict(known=torch.zeros(B, T, dtype=torch.long), mask=torch.ones(B, T, dtype=torch.bool, device="meta")),
     ValueError, "mask is on meta"),
    (dict(w_out=torch.randn(K, H + 1)), ValueError, "w_out must have shape"),
    (dict(cond=torch.randn(B, H)), ValueError, "cond must have shape"),
    (dict(lags=[2]), ValueError, "lags .* without lag_emb"),
    (dict(lags=[0], lag_emb=torch.randn(1, K, 3 * H)), ValueError, "lags must be >= 1"),
    (dict(lags=[2, 2], lag_emb=torch.randn(2, K, 3 * H)), ValueError, "lags must be distinct"),
    (dict(lags=[2.0], lag_emb=torch.randn(1, K, 3 * H)), TypeError, "lags must be ints"),
    (dict(lags=3, lag_emb=torch.randn(1, K, 3 * H)), TypeError, "lags must be a sequence"),
    (dict(lags=list(range(1, 18)), lag_emb=torch.randn(17, K, 3 * H)), ValueError, "at most 16 lags"),
    (dict(lags=[2], lag_emb=torch.randn(2, K, 3 * H)), ValueError, "lag_emb must have shape"),
    (dict(lags=[2], lag_emb=torch.randn(1, K, 3 * H, dtype=torch.float64)), TypeError, "lag_emb must have dtype"),
    (dict(lags=[2], lag_emb=torch.randn(1, K, 3 * H, device="meta")), ValueError, "lag_emb is on meta"),
])
def test_sample_rejects(kw, error, match):
    with pytest.raises(error, match=match):
        _sample(**kw)


def test_masked_out_known_values_may_be_anything():
    known = torch.full((B, T), 99)  # out of range, but nowhere selected by the mask
    known[:, 0] = 1
    mask = torch.zeros(B, T, dtype=torch.bool)
    mask[:, 0] = True
    assert (_sample(known=known, mask=mask)[:, 0] == 1).all()


def test_module_errors_match_nn_gru_types():
    """The drop-in raises RNNInputError: a ValueError, and the RuntimeError nn.GRU raises."""
    gru, fused = nn.GRU(3, 5), rnngen.FusedPixelGRU(3, 5)
    cases = [(torch.randn(4, 2, 4), None), (torch.randn(4, 2, 3), torch.randn(1, 3, 5)),
             (torch.randn(0, 2, 3), None)]
    for x, hx in cases:
        with pytest.raises(RuntimeError):
            gru(x, hx)
        with pytest.raises(RNNInputError) as info:
            fused(x, hx)
        assert isinstance(info.value, ValueError) and isinstance(info.value, RuntimeError)
    for x in (torch.randn(4, 2, 3, 1), torch.randn(4, 2, 3).double()):
        with pytest.raises(ValueError):
            gru(x)
        with pytest.raises(ValueError):
            fused(x)
    with pytest.raises(TypeError, match="input"):
        fused([1, 2, 3])
    with pytest.raises(TypeError, match="hx must be a Tensor"):
        fused(torch.randn(4, 2, 3), (torch.randn(1, 2, 5), torch.randn(1, 2, 5)))
    with pytest.raises(RNNInputError, match="hx is on meta"):
        fused(torch.randn(4, 2, 3), torch.randn(1, 2, 5, device="meta"))


def test_generator_rejects():
    model = rnngen.RNNImageGenerator(4, 8, (2, 3))
    with pytest.raises(ValueError, match="z must have shape"):
        model(torch.randn(2, 5))
    with pytest.raises(TypeError, match="z must have dtype"):
        model(torch.randn(2, 4).double())
    with pytest.raises(ValueError, match="image_size"):
        rnngen.RNNImageGenerator(4, 8, (2, 0))
    with pytest.raises(ValueError, match="z_dim"):
        rnngen.RNNImageGenerator(0, 8, 3)


def test_modules_check_the_backend_name_when_built():
    """A typo in backend fails at construction, not at the first forward (any module)."""
    from rnngen.models import GeneratorVAE, PixelGRU
    for build in (lambda b: rnngen.FusedPixelGRU(3, 5, backend=b), lambda b: rnngen.RNNImageGenerator(4, 8, 3, backend=b),
                  lambda b: PixelGRU(4, levels=3, hidden_size=4, backend=b),
                  lambda b: GeneratorVAE(4, levels=3, hidden_size=4, backend=b)):
        with pytest.raises(ValueError, match="backend must be one of"):
            build("gpu")
        with pytest.raises(TypeError, match="backend must be a str"):
            build(None)


def test_models_empty_batch_meta_inputs_and_bad_latents():
    from rnngen.models import GeneratorVAE, PixelGRU
    model = PixelGRU(4, levels=5, hidden_size=8, num_classes=3, latent_size=2)
    empty = torch.zeros(0, 1, 4, 4, dtype=torch.long)
    no_labels, no_latents = torch.zeros(0, dtype=torch.long), torch.zeros(0, 2)
    assert model(empty, no_labels, no_latents).shape == (0,)
    assert model.complete(empty, torch.ones(0, 1, 4, 4, dtype=torch.bool), no_labels, latents=no_latents).shape == (0, 1, 4, 4)
    assert GeneratorVAE(4, levels=5, hidden_size=8)(empty).shape == (0,)
    images, labels, latents = torch.zeros(2, 1, 4, 4, dtype=torch.long), torch.tensor([0, 2]), torch.zeros(2, 2)
    with pytest.raises(ValueError, match="labels is on meta"):
        model.sample(2, labels=labels.to("meta"), latents=latents)
    with pytest.raises(ValueError, match="images is on meta"):
        model(images.to("meta"), labels, latents)
    with pytest.raises(ValueError, match="latents is on meta"):
        model(images, labels, latents.to("meta"))
    with pytest.raises(TypeError, match="latents must be a floating-point Tensor"):
        model(images, labels, [[0.0, 0.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match="latents must have shape"):
        model(images, labels, torch.zeros(2, 3))
