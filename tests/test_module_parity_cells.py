"""FusedPixelLSTM and FusedPixelRNN judged as FusedPixelGRU is in test_module_parity.py: by the
nn.LSTM and nn.RNN ModuleInfos' inputs and error inputs from torch.testing._internal.common_modules
(same outputs, gradients, exception types and messages), state_dicts both ways, and the generic
module checks that apply (deepcopy, pickling, meta + to_empty, hooks, torch.func, torch.jit.trace,
torch.compile(fullgraph=True) with PackedSequence, torch.export). On the reference backend, and on
"cpu" where it has the cell's scan."""

import copy
import io
import warnings

import pytest
import torch
from test_module_parity import _assert_outputs_and_grads, _clone, _tensors, common_modules
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

import rnngen

INFOS = {kind: next(m for m in common_modules.module_db if m.module_cls is kind) for kind in (nn.LSTM, nn.RNN)}
FUSED = {nn.LSTM: rnngen.FusedPixelLSTM, nn.RNN: rnngen.FusedPixelRNN}
# The ops' cells each module runs (nn.RNN: both nonlinearities among its inputs).
CELLS = {nn.LSTM: ("lstm",), nn.RNN: ("rnn_tanh", "rnn_relu")}


def _backends(kind, dtype=torch.float32):
    """reference, and cpu where it has the scan of every cell ``kind`` runs (forward and backward)."""
    return ["reference"] + (["cpu"] if all(rnngen.dispatch.supports("cpu", k, dtype, cell) for cell in CELLS[kind]
                                           for k in ("scan_forward", "scan_backward")) else [])


PARITY = [pytest.param(kind, backend, id=f"{kind.__name__}-{backend}") for kind in (nn.LSTM, nn.RNN)
          for backend in _backends(kind)]
KINDS = [pytest.param(kind, id=kind.__name__) for kind in (nn.LSTM, nn.RNN)]


def _convert(module, backend="reference"):
    """The drop-in for ``module`` through its classmethod (from_lstm / from_rnn)."""
    convert = {nn.LSTM: rnngen.FusedPixelLSTM.from_lstm, nn.RNN: rnngen.FusedPixelRNN.from_rnn}[type(module)]
    return convert(module, backend=backend)


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("kind, backend", PARITY)
def test_pytorch_module_inputs(kind, backend, dtype, training):
    """Every nn.LSTM / nn.RNN ModuleInput: same outputs and gradients (inputs and parameters).
    Inputs with bidirectional=True, or an LSTM's proj_size > 0, are refused by name: the options
    the drop-ins leave out."""
    if backend not in _backends(kind, dtype):
        pytest.skip(f"{backend} has no {dtype} scan for {CELLS[kind]}")
    info = INFOS[kind]
    checked = refused = 0
    for sample in info.module_inputs_func(info, device="cpu", dtype=dtype, requires_grad=True, training=training):
        args, kwargs = sample.constructor_input.args, sample.constructor_input.kwargs
        left_out = "bidirectional" if kwargs.get("bidirectional") else "proj_size" if kwargs.get("proj_size") else None
        if left_out:
            with pytest.raises(ValueError, match=left_out):
                FUSED[kind](*args, **kwargs, dtype=dtype, backend=backend)
            refused += 1
            continue
        torch.manual_seed(0)
        module = kind(*args, **kwargs, dtype=dtype).train(training)
        fused = _convert(module, backend).train(training)
        fwd_args, fwd_kwargs = sample.forward_input.args, sample.forward_input.kwargs
        a_args, b_args = _clone(fwd_args), _clone(fwd_args)
        torch.manual_seed(1)
        want = module(*a_args, **fwd_kwargs)
        torch.manual_seed(1)
        got = fused(*b_args, **fwd_kwargs)
        if kind is nn.LSTM:  # (output, (h_n, c_n)), as nn.LSTM
            assert isinstance(got[1], tuple) and len(got[1]) == 2
        _assert_outputs_and_grads(want, got, a_args, b_args, module, fused, dtype)
        checked += 1
    assert checked >= 8 and refused >= 8


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
@pytest.mark.parametrize("kind", KINDS)
def test_pytorch_error_inputs(kind, dtype):
    """Every ErrorModuleInput raises the same exception type with a matching message."""
    info = INFOS[kind]
    samples = info.module_error_inputs_func(info, device="cpu", dtype=dtype, requires_grad=False, training=True)
    assert len(samples) >= 14
    for error in samples:
        module_input = error.module_error_input
        args, kwargs = module_input.constructor_input.args, module_input.constructor_input.kwargs
        if error.error_on == common_modules.ModuleErrorEnum.CONSTRUCTION_ERROR:
            with pytest.raises(error.error_type, match=error.error_regex):
                kind(*args, **kwargs)
            with pytest.raises(error.error_type, match=error.error_regex):
                FUSED[kind](*args, **kwargs)
        else:
            fused = FUSED[kind](*args, **kwargs, backend="reference")
            with pytest.raises(error.error_type, match=error.error_regex):
                fused(*module_input.forward_input.args, **module_input.forward_input.kwargs)


@pytest.mark.parametrize("kind", KINDS)
def test_more_constructor_errors_match(kind):
    cases = [{"dropout": 1.5}, {"dropout": True}, {"bias": "yes"}, {"hidden_size": 0}, {"num_layers": 0}]
    if kind is nn.LSTM:
        cases += [{"proj_size": -1}, {"proj_size": 5}, {"proj_size": 7}]
    else:
        cases += [{"proj_size": 2}, {"nonlinearity": "sigmoid"}]
    for extra in cases:
        kwargs = {"input_size": 3, "hidden_size": 5, **extra}
        with pytest.raises(Exception) as want:
            kind(**kwargs)
        with pytest.raises(type(want.value)) as got:
            FUSED[kind](**kwargs)
        assert str(got.value) == str(want.value)
    # nn.RNN takes the nonlinearity fourth, positionally
    assert rnngen.FusedPixelRNN(3, 5, 2, "relu").nonlinearity == "relu" == nn.RNN(3, 5, 2, "relu").nonlinearity
    # the options left out, refused by name
    with pytest.raises(ValueError, match=r"proj_size=2 is not supported by FusedPixelLSTM"):
        rnngen.FusedPixelLSTM(3, 5, proj_size=2)
    with pytest.raises(ValueError, match=f"bidirectional=True is not supported by {FUSED[kind].__name__}.*"
                                         f"nn.{kind.__name__}"):
        FUSED[kind](3, 5, bidirectional=True)
    with pytest.raises(TypeError, match=f"{FUSED[kind].__name__} got an unexpected keyword argument 'cell'"):
        FUSED[kind](3, 5, cell="gru")
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1") as record:
        FUSED[kind](3, 5, dropout=0.2)
    assert record[0].filename == __file__  # points at the caller's line, as nn's does
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FUSED[kind](3, 5, num_layers=2, dropout=0.2)


def _forward_error_cases(kind):
    x = torch.randn(4, 2, 3)
    if kind is nn.RNN:
        return [(torch.randn(4, 2, 4),), (x, torch.randn(2, 2, 5)), (torch.randn(4, 3), torch.randn(1, 1, 5)),
                (x, torch.randn(2, 5)), (torch.randn(2, 4, 2, 3),), (x.double(),)]
    h, c = torch.randn(1, 2, 5), torch.randn(1, 2, 5)
    return [(torch.randn(4, 2, 4),), (x, (torch.randn(2, 2, 5), c)), (x, (h, torch.randn(1, 3, 5))),
            (x, (torch.randn(2, 5), c)), (x, (h, torch.randn(2, 5))), (torch.randn(4, 3), (h, c)),
            (torch.randn(2, 4, 2, 3),), (x.double(),), (x.double(), (h.double(), c.double()))]


@pytest.mark.parametrize("kind", KINDS)
def test_forward_errors_match(kind):
    module = kind(3, 5)
    fused = _convert(module)
    for args in _forward_error_cases(kind):
        with pytest.raises(Exception) as want:
            module(*args)
        with pytest.raises(type(want.value)) as got:
            fused(*args)
        assert str(got.value) == str(want.value)
    if kind is nn.LSTM:  # a bare Tensor for hx: named (nn.LSTM would index it and fail further in)
        with pytest.raises(TypeError, match=r"hx must be a tuple \(h_0, c_0\) of two Tensors for an LSTM, got Tensor"):
            fused(torch.randn(4, 2, 3), torch.randn(1, 2, 5))
    else:
        with pytest.raises(TypeError, match=r"hx must be a Tensor \(an RNN has no cell state\), got tuple"):
            fused(torch.randn(4, 2, 3), (torch.randn(1, 2, 5), torch.randn(1, 2, 5)))


def _pair(kind, backend="reference", **kwargs):
    torch.manual_seed(0)
    module = kind(3, 5, **kwargs)
    return module, _convert(module, backend)


def _hx(kind, layers, batch, dtype=torch.float32):
    h = torch.randn(layers, batch, 5, dtype=dtype)
    return (h, torch.randn(layers, batch, 5, dtype=dtype)) if kind is nn.LSTM else h


@pytest.mark.parametrize("kind", KINDS)
def test_state_dict_both_ways_initialisation_and_flat_weights(kind):
    extra = {"nonlinearity": "relu"} if kind is nn.RNN else {}
    torch.manual_seed(4)
    module = kind(3, 5, num_layers=2, **extra)
    torch.manual_seed(4)
    fused = FUSED[kind](3, 5, num_layers=2, **extra, backend="reference")
    # same names, shapes, order and initialisation
    assert [(n, p.shape) for n, p in fused.named_parameters()] == [(n, p.shape) for n, p in module.named_parameters()]
    for a, b in zip(fused.parameters(), module.parameters()):
        assert torch.equal(a, b)
    x = torch.randn(6, 2, 3)
    # nn -> fused, and fused (changed) -> nn
    torch.manual_seed(5)
    other = kind(3, 5, num_layers=2, **extra)
    fused.load_state_dict(other.state_dict())
    torch.testing.assert_close(fused(x)[0], other(x)[0])
    with torch.no_grad():
        for p in fused.parameters():
            p.mul_(0.5)
    module.load_state_dict(fused.state_dict())
    assert list(module.state_dict()) == list(fused.state_dict())
    torch.testing.assert_close(module(x)[0], fused(x)[0])
    assert fused._flat_weights_names == module._flat_weights_names
    assert all(a is getattr(fused, n) for a, n in zip(fused._flat_weights, fused._flat_weights_names))
    assert [[p.shape for p in layer] for layer in fused.all_weights] == \
        [[p.shape for p in layer] for layer in module.all_weights]
    assert repr(fused).startswith(f"{FUSED[kind].__name__}(3, 5, num_layers=2")
    fused.flatten_parameters()  # a no-op, as code written for nn calls it
    if kind is nn.RNN:
        assert "nonlinearity='relu'" in repr(fused)
    else:
        assert fused.proj_size == module.proj_size == 0


@pytest.mark.parametrize("kind", KINDS)
def test_deepcopy_pickle_to_meta_and_hooks(kind):
    module, fused = _pair(kind, num_layers=2)
    x = torch.randn(6, 2, 3)
    want = module(x)[0]
    buffer = io.BytesIO()
    torch.save(fused, buffer)
    buffer.seek(0)
    for twin in (copy.deepcopy(fused), torch.load(buffer, weights_only=False)):
        torch.testing.assert_close(twin(x)[0], want)
    double = copy.deepcopy(fused).to(torch.float64)
    torch.testing.assert_close(double(x.double())[0], want.double(), atol=1e-5, rtol=1e-4)
    with torch.device("meta"):
        meta = FUSED[kind](3, 5, backend="reference")
    assert meta.weight_hh_l0.device.type == "meta"
    real = meta.to_empty(device="cpu")
    real.reset_parameters()
    assert real(torch.randn(4, 2, 3))[0].shape == (4, 2, 5)
    seen = []
    fused.register_forward_pre_hook(lambda m, args: seen.append("pre"))
    fused.register_forward_hook(lambda m, args, out: seen.append("post"))
    fused.register_full_backward_hook(lambda m, gin, gout: seen.append("backward"))
    x.requires_grad_()
    fused(x)[0].sum().backward()
    assert seen == ["pre", "post", "backward"]


@pytest.mark.parametrize("kind", KINDS)
def test_dropout_between_layers(kind):
    module, fused = _pair(kind, num_layers=2, dropout=0.5)
    x = torch.randn(5, 2, 3)
    assert not torch.allclose(fused(x)[0], fused.eval()(x)[0])
    torch.testing.assert_close(fused.eval()(x)[0], module.eval()(x)[0])


@pytest.mark.parametrize("kind, backend", PARITY)
def test_packed_sequence_with_hx(kind, backend):
    """h_n (and the LSTM's c_n) at each row's last step, in the caller's row order; gradients to
    the padded input and to the initial state."""
    module, fused = _pair(kind, backend, num_layers=2)
    lengths = torch.tensor([3, 6, 2, 5])  # unsorted: the packed sequence carries the permutation
    padded = torch.randn(6, 4, 3, requires_grad=True)
    hx = _hx(kind, 2, 4)
    for state in _tensors(hx):
        state.requires_grad_()
    for args in ((hx,), ()):
        results = []
        for m in (module, fused):
            out, state = m(pack_padded_sequence(padded, lengths, enforce_sorted=False), *args)
            loss = (out.data ** 2).sum() + sum((s ** 2).sum() for s in _tensors(state))
            leaves = [padded, *(_tensors(hx) if args else [])]
            results.append((out, state, torch.autograd.grad(loss, leaves)))
        (out_w, state_w, d_w), (out_g, state_g, d_g) = results
        torch.testing.assert_close(out_g.data, out_w.data)
        assert torch.equal(out_g.batch_sizes, out_w.batch_sizes)
        assert torch.equal(out_g.unsorted_indices, out_w.unsorted_indices)
        assert len(_tensors(state_g)) == len(_tensors(state_w)) == (2 if kind is nn.LSTM else 1)
        for g, w in zip(_tensors(state_g) + list(d_g), _tensors(state_w) + list(d_w)):
            torch.testing.assert_close(g, w)


@pytest.mark.parametrize("kind", KINDS)
def test_torch_func_grad_and_jacrev(kind):
    from torch.func import functional_call, grad, jacrev

    module, fused = _pair(kind, num_layers=2)
    module, fused = module.double(), fused.double()
    x = torch.randn(4, 2, 3, dtype=torch.float64)
    loss = lambda m: (lambda p, x: functional_call(m, p, (x,))[0].pow(2).sum())
    got = grad(loss(fused))(dict(fused.named_parameters()), x)
    want = grad(loss(module))(dict(module.named_parameters()), x)
    for name in want:
        torch.testing.assert_close(got[name], want[name])
    # the last state (the LSTM's c_n too, which only the cell-state path of the op gives)
    last = lambda m: (lambda p, x: torch.cat(_tensors(functional_call(m, p, (x,))[1])))
    got = jacrev(last(fused))(dict(fused.named_parameters()), x)
    want = jacrev(last(module))(dict(module.named_parameters()), x)
    for name in want:
        torch.testing.assert_close(got[name], want[name])


@pytest.mark.parametrize("kind", KINDS)
def test_jit_trace_and_script(kind):
    module, fused = _pair(kind, num_layers=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(fused, (torch.randn(4, 2, 3, requires_grad=True),))
    x = torch.randn(7, 3, 3, requires_grad=True)  # another length and batch than traced
    got, want = traced(x), module(x)
    for g, w in zip(_tensors(got), _tensors(want)):
        torch.testing.assert_close(g, w)
    torch.testing.assert_close(torch.autograd.grad(got[0].sum(), x)[0], torch.autograd.grad(want[0].sum(), x)[0])
    with pytest.raises(RuntimeError, match=f"{FUSED[kind].__name__} does not support torch.jit.script"):
        torch.jit.script(fused)


def test_torch_compile_fullgraph_packed_lstm():
    """The LSTM's (h, c) path through Dynamo (the Elman RNN's is the GRU's, compiled in
    test_module_parity.py)."""
    torch._dynamo.reset()
    module, fused = _pair(nn.LSTM, num_layers=2)
    lengths = torch.tensor([3, 6, 2, 5])
    packed = pack_padded_sequence(torch.randn(6, 4, 3), lengths, enforce_sorted=False)
    hx = _hx(nn.LSTM, 2, 4)
    compiled = torch.compile(fused, fullgraph=True, backend="aot_eager")
    got, want = compiled(packed, hx), module(packed, hx)
    torch.testing.assert_close(got[0].data, want[0].data)
    for g, w in zip(got[1], want[1]):
        torch.testing.assert_close(g, w)


@pytest.mark.parametrize("kind", KINDS)
def test_torch_export(kind):
    module, fused = _pair(kind, num_layers=2, batch_first=True)
    x, hx = torch.randn(2, 6, 3), _hx(kind, 2, 2)
    program = torch.export.export(fused, (x, hx))
    y, hy = torch.randn(2, 6, 3), _hx(kind, 2, 2)
    for g, w in zip(_tensors(program.module()(y, hy)), _tensors(module(y, hy))):
        torch.testing.assert_close(g, w)
