"""FusedPixelGRU judged by PyTorch's own test material for nn.GRU: the nn.GRU ModuleInfo's inputs
and error inputs from torch.testing._internal.common_modules (same outputs, gradients, exception
types and messages), and the generic module checks of PyTorch's test/test_modules.py that a
drop-in must pass (state_dict, deepcopy, pickling, .to, hooks, meta + to_empty, torch.func,
torch.jit.trace, torch.compile(fullgraph=True) with PackedSequence, torch.export)."""

import copy
import io
import warnings

import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import rnngen

pytest.importorskip("expecttest", reason="PyTorch's test helpers need expecttest (the test extra)")
_flag = "__allow_nonbracketed_mutation_flag"
_saved = torch.backends.__dict__.get(_flag, True)
from torch.testing._internal import common_modules  # noqa: E402

# Importing PyTorch's test utilities freezes torch.backends' global flags for its own suite;
# the rest of this suite sets them normally.
torch.backends.__dict__[_flag] = _saved

GRU_INFO = next(m for m in common_modules.module_db if m.module_cls is nn.GRU)
PARITY_BACKENDS = ["reference", "cpu"]  # the triton interpreter runs the same suite in test_modules.py


def _module_inputs(dtype, training):
    return GRU_INFO.module_inputs_func(GRU_INFO, device="cpu", dtype=dtype, requires_grad=True, training=training)


def _clone(value):
    if isinstance(value, torch.Tensor):
        return value.detach().clone().requires_grad_(value.requires_grad)
    if isinstance(value, (tuple, list)):
        return type(value)(_clone(v) for v in value)
    return value


def _tensors(value):
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    if hasattr(value, "data") and hasattr(value, "batch_sizes"):  # PackedSequence
        return [value.data]
    return []


def _tol(dtype):
    return {"atol": 1e-5, "rtol": 1e-4} if dtype == torch.float32 else {"atol": 1e-10, "rtol": 1e-8}


def _assert_outputs_and_grads(want, got, a_args, b_args, torch_module, fused, dtype):
    """The same outputs (shape, dtype, values) and the same gradients of inputs and parameters."""
    tol = _tol(dtype)
    outs_want, outs_got = _tensors(want), _tensors(got)
    assert len(outs_want) == len(outs_got)
    for w, g in zip(outs_want, outs_got):
        assert g.shape == w.shape and g.dtype == w.dtype
        torch.testing.assert_close(g, w, **tol)
    grads = [torch.randn_like(w) for w in outs_want]
    leaves_want = [t for t in _tensors(a_args) if t.requires_grad] + list(torch_module.parameters())
    leaves_got = [t for t in _tensors(b_args) if t.requires_grad] + list(fused.parameters())
    assert len(leaves_want) == len(leaves_got)
    d_want = torch.autograd.grad(outs_want, leaves_want, grads, allow_unused=True)
    d_got = torch.autograd.grad(outs_got, leaves_got, grads, allow_unused=True)
    for w, g in zip(d_want, d_got):
        assert (w is None) == (g is None)
        if w is not None:
            torch.testing.assert_close(g, w, **tol)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("backend", PARITY_BACKENDS)
def test_pytorch_module_inputs(backend, dtype, training):
    """Every nn.GRU ModuleInput: same outputs and gradients (inputs and parameters). Inputs with
    bidirectional=True are refused by name, the one option FusedPixelGRU leaves out."""
    checked = 0
    for sample in _module_inputs(dtype, training):
        args, kwargs = sample.constructor_input.args, sample.constructor_input.kwargs
        if kwargs.get("bidirectional"):
            with pytest.raises(ValueError, match="bidirectional"):
                rnngen.FusedPixelGRU(*args, **kwargs, dtype=dtype, backend=backend)
            continue
        torch.manual_seed(0)
        gru = nn.GRU(*args, **kwargs, dtype=dtype).train(training)
        fused = rnngen.FusedPixelGRU.from_gru(gru, backend=backend).train(training)
        fwd_args, fwd_kwargs = sample.forward_input.args, sample.forward_input.kwargs
        a_args, b_args = _clone(fwd_args), _clone(fwd_args)
        torch.manual_seed(1)
        want = gru(*a_args, **fwd_kwargs)
        torch.manual_seed(1)
        got = fused(*b_args, **fwd_kwargs)
        _assert_outputs_and_grads(want, got, a_args, b_args, gru, fused, dtype)
        checked += 1
    assert checked >= 6


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_pytorch_error_inputs(dtype):
    """Every nn.GRU ErrorModuleInput raises the same exception type with a matching message."""
    samples = GRU_INFO.module_error_inputs_func(GRU_INFO, device="cpu", dtype=dtype, requires_grad=False,
                                                training=True)
    assert len(samples) >= 14
    for error in samples:
        module_input = error.module_error_input
        args, kwargs = module_input.constructor_input.args, module_input.constructor_input.kwargs
        if error.error_on == common_modules.ModuleErrorEnum.CONSTRUCTION_ERROR:
            with pytest.raises(error.error_type, match=error.error_regex):
                nn.GRU(*args, **kwargs)
            with pytest.raises(error.error_type, match=error.error_regex):
                rnngen.FusedPixelGRU(*args, **kwargs)
        else:
            fused = rnngen.FusedPixelGRU(*args, **kwargs)
            with pytest.raises(error.error_type, match=error.error_regex):
                fused(*module_input.forward_input.args, **module_input.forward_input.kwargs)


def test_more_constructor_errors_match():
    cases = [dict(input_size=3, hidden_size=5, num_layers=2.0), dict(input_size=3, hidden_size=5, proj_size=2),
             dict(input_size=3, hidden_size=5, dropout=1.5), dict(input_size=3, hidden_size=5, dropout=True),
             dict(input_size=3, hidden_size=5, bias="yes")]
    for kwargs in cases:
        with pytest.raises(Exception) as want:
            nn.GRU(**kwargs)
        with pytest.raises(type(want.value)) as got:
            rnngen.FusedPixelGRU(**kwargs)
        if kwargs.get("num_layers") != 2.0:  # nn.GRU: range()'s error; ours names num_layers
            assert str(got.value) == str(want.value)
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        rnngen.FusedPixelGRU(3, 5, dropout=0.2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rnngen.FusedPixelGRU(3, 5, num_layers=2, dropout=0.2)


def test_forward_errors_match():
    gru, fused = nn.GRU(3, 5), rnngen.FusedPixelGRU(3, 5)
    cases = [(torch.randn(4, 2, 4),), (torch.randn(4, 2, 3), torch.randn(2, 2, 5)), (torch.randn(4, 3),),
             (torch.randn(4, 3), torch.randn(1, 1, 5)), (torch.randn(4, 2, 3), torch.randn(2, 5)),
             (torch.randn(2, 4, 2, 3),), (torch.randn(4, 2, 3, dtype=torch.float64),)]
    for args in cases[2:3]:
        assert [o.shape for o in fused(*args)] == [o.shape for o in gru(*args)]
    for args in cases[:2] + cases[3:]:
        with pytest.raises(Exception) as want:
            gru(*args)
        with pytest.raises(type(want.value)) as got:
            fused(*args)
        assert str(got.value) == str(want.value)


def _pair(backend="cpu", **kwargs):
    torch.manual_seed(0)
    gru = nn.GRU(3, 5, **kwargs)
    return gru, rnngen.FusedPixelGRU.from_gru(gru, backend=backend)


def test_flat_weights_all_weights_and_repr():
    gru, fused = _pair(num_layers=2)
    assert fused._flat_weights_names == gru._flat_weights_names
    assert all(a is getattr(fused, n) for a, n in zip(fused._flat_weights, fused._flat_weights_names))
    assert [[p.shape for p in layer] for layer in fused.all_weights] == [[p.shape for p in layer] for layer in gru.all_weights]
    assert repr(fused).startswith("FusedPixelGRU(3, 5, num_layers=2")


def test_state_dict_deepcopy_pickle_and_to():
    gru, fused = _pair(num_layers=2)
    x = torch.randn(6, 2, 3)
    want = gru(x)[0]
    twin = copy.deepcopy(fused)
    buffer = io.BytesIO()
    torch.save(fused, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    for module in (twin, loaded):
        torch.testing.assert_close(module(x)[0], want)
    state = io.BytesIO()
    torch.save(fused.state_dict(), state)
    state.seek(0)
    fresh = rnngen.FusedPixelGRU(3, 5, num_layers=2)
    fresh.load_state_dict(torch.load(state, weights_only=True))
    torch.testing.assert_close(fresh(x)[0], want)
    double = copy.deepcopy(fused).to(torch.float64)
    assert double.weight_hh_l0.dtype == torch.float64
    torch.testing.assert_close(double(x.double())[0], want.double(), atol=1e-5, rtol=1e-4)


def test_meta_to_empty_and_hooks():
    with torch.device("meta"):
        meta = rnngen.FusedPixelGRU(3, 5)
    assert meta.weight_hh_l0.device.type == "meta"
    real = meta.to_empty(device="cpu")
    real.reset_parameters()
    assert real(torch.randn(4, 2, 3))[0].shape == (4, 2, 5)
    _, fused = _pair()
    seen = []
    fused.register_forward_pre_hook(lambda m, args: seen.append("pre"))
    fused.register_forward_hook(lambda m, args, out: seen.append("post"))
    fused.register_full_backward_hook(lambda m, gin, gout: seen.append("backward"))
    x = torch.randn(4, 2, 3, requires_grad=True)
    fused(x)[0].sum().backward()
    assert seen == ["pre", "post", "backward"]


@pytest.mark.parametrize("backend", PARITY_BACKENDS)
def test_torch_func_grad_and_jacrev(backend):
    from torch.func import functional_call, grad, jacrev

    gru, fused = _pair(backend, num_layers=2)
    gru, fused = gru.double(), fused.double()
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    loss = lambda module: (lambda p, x: functional_call(module, p, (x,))[0].pow(2).sum())  # noqa: E731
    got, want = grad(loss(fused))(dict(fused.named_parameters()), x), grad(loss(gru))(dict(gru.named_parameters()), x)
    for name in want:
        torch.testing.assert_close(got[name], want[name])
    last = lambda module: (lambda p, x: functional_call(module, p, (x,))[1])  # noqa: E731
    got = jacrev(last(fused))(dict(fused.named_parameters()), x)
    want = jacrev(last(gru))(dict(gru.named_parameters()), x)
    for name in want:
        torch.testing.assert_close(got[name], want[name])
    torch.testing.assert_close(jacrev(lambda x: fused(x)[0])(x), jacrev(lambda x: gru(x)[0])(x))


def test_jit_trace_and_script():
    gru, fused = _pair(num_layers=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(fused, (torch.randn(4, 2, 3, requires_grad=True),))
    x = torch.randn(7, 3, 3, requires_grad=True)  # another length and batch than traced
    got, want = traced(x), gru(x)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w)
    torch.testing.assert_close(torch.autograd.grad(got[0].sum(), x)[0], torch.autograd.grad(want[0].sum(), x)[0])
    with pytest.raises(RuntimeError, match="does not support torch.jit.script.*torch.jit.trace"):
        torch.jit.script(fused)


def _packed(batch_first=False):
    lengths = torch.tensor([3, 6, 2, 5])  # unsorted: the packed sequence carries the permutation
    x = torch.randn(4, 6, 3) if batch_first else torch.randn(6, 4, 3)
    return pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)


@pytest.mark.parametrize("backend", PARITY_BACKENDS)
def test_packed_sequence_with_hx(backend):
    gru, fused = _pair(backend, num_layers=2)
    packed, hx = _packed(), torch.randn(2, 4, 5)
    for want, got in ((gru(packed, hx), fused(packed, hx)), (gru(packed), fused(packed))):
        torch.testing.assert_close(got[0].data, want[0].data)
        assert torch.equal(got[0].batch_sizes, want[0].batch_sizes)
        assert torch.equal(got[0].unsorted_indices, want[0].unsorted_indices)
        torch.testing.assert_close(got[1], want[1])


def test_torch_compile_fullgraph_packed_sequence():
    torch._dynamo.reset()
    gru, fused = _pair(num_layers=2)
    packed, hx = _packed(), torch.randn(2, 4, 5)
    compiled = torch.compile(fused, fullgraph=True, backend="aot_eager")
    got, want = compiled(packed, hx), gru(packed, hx)
    torch.testing.assert_close(got[0].data, want[0].data)
    torch.testing.assert_close(got[1], want[1])


def test_torch_export():
    gru, fused = _pair(num_layers=2, batch_first=True)
    x = torch.randn(2, 6, 3)
    program = torch.export.export(fused, (x,))
    y = torch.randn(2, 6, 3)
    for g, w in zip(program.module()(y), gru(y)):
        torch.testing.assert_close(g, w)
