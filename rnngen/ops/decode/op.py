"""The decode op: the article's RNNImageGenerator loop, where each step's output is the next input.

    x_t = W_out h_{t-1} + b_out,   h_t = cell(W_ih x_t + b_ih, h_{t-1}),   h_{-1} = h0

With C = 1 and T = H*W this is the article's ``forward``. Registered as ``torch.ops.rnngen.decode``
(outputs: every x_t, every h_t and, for the LSTM, every c_t (empty for the other
cells), all differentiable; the cell is an argument, see rnngen/ops/cells.py) with its backward as the op
``torch.ops.rnngen.decode_backward``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ... import dispatch
from .. import _checks, cells
from . import naive  # noqa: F401  (registers the reference kernels)


def decode(h0: Tensor, w_ih: Tensor, b_ih: Tensor | None, w_hh: Tensor, b_hh: Tensor | None,
           w_out: Tensor, b_out: Tensor | None, steps: int, *, cell: str = "gru", c0: Tensor | None = None,
           backend: str = "auto", return_hidden: bool = False, precision: str = "fp32"):
    """Generate ``steps`` outputs, each fed back as the next step's input.

    Args:
        h0: [B, H] initial hidden state (the article: ``fc_init(z)``).
        w_ih, b_ih: [G*H, C], [G*H] input weight and bias of the cell (nn.GRUCell's, nn.LSTMCell's
            or nn.RNNCell's ``weight_ih``, ``bias_ih``; G = 3, 4 or 1 gate blocks).
        w_hh, b_hh: [G*H, H], [G*H] recurrent weight and bias.
        w_out, b_out: [C, H], [C] output head (the article's ``fc_out``).
        steps: number of steps T (the article: H*W).
        cell: "gru" (default), "lstm", "rnn_tanh" or "rnn_relu" (rnngen/ops/cells.py).
        c0: [B, H] initial cell state of the LSTM, or None for zeros (other cells: None).
        return_hidden: also return every hidden state h_t, [B, T, H] (and, for the LSTM, every
            cell state c_t, [B, T, H]).
        precision: "fp32" (default), or "bf16" (float32 inputs only): the weights w_ih, w_hh and
            w_out are rounded to bfloat16 once; everything else (h0, biases, states, gates, sums)
            stays float32. Every backend computes exactly that (the reference rounds the weights
            and runs its float32 path); the CPU kernels store the rounded weights in half the
            bytes, which is faster at small batches. The gradient reaches the float32 weights
            unchanged (straight-through). Error against "fp32": see tests/test_precision.py.

    Returns: out [B, T, C] (and hidden [B, T, H], and for the LSTM the cell states [B, T, H],
    when ``return_hidden``). Biases may be None (no bias).
    """
    spec = cells.get(cell)
    H = _checks.recurrent_weight(w_hh, spec.gates)
    G = spec.gates * H
    dtype = w_hh.dtype
    _checks.tensor("w_out", w_out, (None, H), dtype=dtype)
    C = w_out.shape[0]
    _checks.positive_int("w_out.shape[0] (output size)", C)
    _checks.tensor("w_ih", w_ih, (G, C), dtype=dtype)
    _checks.tensor("h0", h0, (None, H), dtype=dtype)
    c0 = _checks.cell_state(spec, c0, h0)
    _checks.positive_int("steps", steps)
    _checks.precision(precision, dtype)
    b_ih = _checks.bias("b_ih", b_ih, G, w_hh)
    b_hh = _checks.bias("b_hh", b_hh, G, w_hh)
    b_out = _checks.bias("b_out", b_out, C, w_hh)
    device = _checks.same_device(h0=h0, c0=c0, w_ih=w_ih, b_ih=b_ih, w_hh=w_hh, b_hh=b_hh, w_out=w_out, b_out=b_out)
    name = dispatch.resolve(backend, device, "decode_forward", dtype, spec.name)
    w_ih, w_hh, w_out = (_checks.weight_in(precision, w) for w in (w_ih, w_hh, w_out))
    out, hidden, c_hidden = dispatch.run_op(torch.ops.rnngen.decode, _decode_body, h0, c0, w_ih, b_ih, w_hh, b_hh,
                                            w_out, b_out, steps, spec.name, name)
    if not return_hidden:
        return out
    return (out, hidden, c_hidden) if spec.has_cell_state else (out, hidden)


def _decode_body(h0: Tensor, c0: Tensor, w_ih: Tensor, b_ih: Tensor, w_hh: Tensor, b_hh: Tensor, w_out: Tensor,
                 b_out: Tensor, steps: int, cell: str, backend: str) -> tuple[Tensor, Tensor, Tensor]:
    (B, H), C = h0.shape, w_out.shape[0]
    out, hidden = dispatch.new_output((B, steps, C), h0), dispatch.new_output((B, steps, H), h0)
    c_hidden = dispatch.new_output(_cell_states_shape(h0, steps, cell), h0)
    kernel = dispatch.get_kernel(backend, "decode_forward", cell)
    if cells.CELLS[cell].has_cell_state:
        kernel(*(a.contiguous() for a in (h0, c0, w_ih, b_ih, w_hh, b_hh, w_out, b_out)), out, hidden, c_hidden)
    else:
        kernel(*(a.contiguous() for a in (h0, w_ih, b_ih, w_hh, b_hh, w_out, b_out)), out, hidden)
    return out, hidden, c_hidden


def _cell_states_shape(h0: Tensor, steps: int, cell: str) -> tuple:
    """Every step's cell state, [B, T, H], for a cell that has one; else an empty tensor."""
    return (h0.shape[0], steps, h0.shape[1]) if cells.CELLS[cell].has_cell_state else (0,)


_decode = torch.library.custom_op("rnngen::decode", _decode_body, mutates_args=())


@_decode.register_fake
def _(h0, c0, w_ih, b_ih, w_hh, b_hh, w_out, b_out, steps, cell, backend):
    B, H = h0.shape
    return (h0.new_empty(B, steps, w_out.shape[0]), h0.new_empty(B, steps, H),
            h0.new_empty(_cell_states_shape(h0, steps, cell)))


@torch.library.custom_op("rnngen::decode_backward", mutates_args=())
def _decode_backward(grad_out: Tensor, grad_hidden: Tensor, grad_c: Tensor, h0: Tensor, c0: Tensor, w_ih: Tensor,
                     b_ih: Tensor, w_hh: Tensor, b_hh: Tensor, w_out: Tensor, b_out: Tensor, out: Tensor,
                     hidden: Tensor, c_hidden: Tensor, cell: str,
                     backend: str) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor]:
    grads = tuple(dispatch.new_output(x.shape, x) for x in (h0, c0, w_ih, b_ih, w_hh, b_hh, w_out, b_out))
    kernel = dispatch.get_kernel(backend, "decode_backward", cell)
    weights = (w_ih, b_ih, w_hh, b_hh, w_out, b_out)
    if cells.CELLS[cell].has_cell_state:
        inputs = (grad_out, grad_hidden, grad_c, h0, c0, *weights, out, hidden, c_hidden)
        kernel(*(a.contiguous() for a in inputs), *grads)
    else:
        inputs = (grad_out, grad_hidden, h0, *weights, out, hidden)
        kernel(*(a.contiguous() for a in inputs), grads[0], *grads[2:])
    return grads


@_decode_backward.register_fake
def _(grad_out, grad_hidden, grad_c, h0, c0, w_ih, b_ih, w_hh, b_hh, w_out, b_out, out, hidden, c_hidden, cell,
      backend):
    return tuple(torch.empty_like(x) for x in (h0, c0, w_ih, b_ih, w_hh, b_hh, w_out, b_out))


def _setup_context(ctx, inputs, output):
    *tensors, _steps, cell, backend = inputs
    ctx.save_for_backward(*tensors, *output)
    ctx.cell, ctx.backend = cell, backend


def _backward(ctx, grad_out, grad_hidden, grad_c):
    grads = torch.ops.rnngen.decode_backward(grad_out, grad_hidden, grad_c, *ctx.saved_tensors, ctx.cell,
                                             ctx.backend)
    return (*grads, None, None, None)


_decode.register_autograd(_backward, setup_context=_setup_context)
