"""The scan op: a recurrent cell over given input gates, every hidden state out (teacher forcing,
the nn.GRU / nn.LSTM / nn.RNN drop-ins).

    out[:, t] = h_t,   h_t = cell(gi[:, t], h_{t-1}),   h_{-1} = h0      (LSTM: (h, c) together)

``gi`` is the input projection of all steps (one GEMM outside); the fused kernels keep W_hh and
h on chip for all T steps. Registered as ``torch.ops.rnngen.scan`` (outputs: the hidden states,
the LSTM's cell states (empty for the other cells) and, when asked, every step's hidden gates for
the backward; the cell is an argument, see rnngen/ops/cells.py) with a fake kernel and an autograd
formula whose backward is the op ``torch.ops.rnngen.scan_backward``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ... import dispatch
from .. import _checks, cells
from . import naive  # noqa: F401  (registers the reference kernels)


def scan(gi: Tensor, h0: Tensor | None, w_hh: Tensor, b_hh: Tensor | None = None, *, cell: str = "gru",
         c0: Tensor | None = None, return_cell_state: bool = False, backend: str = "auto"):
    """Run a recurrent cell over precomputed input gates.

    Args:
        gi: [B, T, G*H] input gates ``x_t @ W_ih^T + b_ih`` for every step (G gate blocks in the
            cell's order: GRU r, z, n; LSTM i, f, g, o; Elman RNN one).
        h0: [B, H] initial hidden state, or None for zeros.
        w_hh: [G*H, H] recurrent weight (nn.GRU's, nn.LSTM's or nn.RNN's ``weight_hh_l0``).
        b_hh: [G*H] recurrent bias, or None for none.
        cell: "gru" (default), "lstm", "rnn_tanh" or "rnn_relu" (rnngen/ops/cells.py).
        c0: [B, H] initial cell state of the LSTM, or None for zeros (other cells: must be None).
        return_cell_state: also return the LSTM's cell state after every step.
        backend: "auto", "reference", "cpu", "triton" or "cuda".

    Returns: [B, T, H], the hidden state after every step (and, with ``return_cell_state``, the
    cell states [B, T, H]).
    """
    spec = cells.get(cell)
    H = _checks.recurrent_weight(w_hh, spec.gates)
    G = spec.gates * H
    _checks.tensor("gi", gi, (None, None, G), dtype=w_hh.dtype)
    B, T = gi.shape[:2]
    _checks.positive_int("gi.shape[1] (number of steps)", T)
    h0 = gi.new_zeros(B, H) if h0 is None else _checks.tensor("h0", h0, (B, H), dtype=w_hh.dtype)
    c0 = _checks.cell_state(spec, c0, h0)
    if return_cell_state and not spec.has_cell_state:
        raise ValueError(f"return_cell_state=True needs a cell with a cell state (lstm), got cell={spec.name!r}")
    b_hh = _checks.bias("b_hh", b_hh, G, w_hh)
    device = _checks.same_device(gi=gi, h0=h0, c0=c0, w_hh=w_hh, b_hh=b_hh)
    name = dispatch.resolve(backend, device, "scan_forward", gi.dtype, spec.name)
    # When a backward will follow, the forward keeps every step's hidden gates (B*T*G*H values)
    # so the backward need not recompute them; otherwise it keeps nothing.
    # A jit trace keeps them always: the graph it records must serve a backward too.
    save_gates = torch.jit.is_tracing() or (torch.is_grad_enabled()
                                            and any(x.requires_grad for x in (gi, h0, c0, w_hh, b_hh)))
    if dispatch.under_functorch(gi, h0, c0, w_hh, b_hh):
        out, c_out, _ = _ScanFunction.apply(gi, h0, c0, w_hh, b_hh, spec.name, name)
    else:
        out, c_out, _ = dispatch.run_op(torch.ops.rnngen.scan, _scan_body, gi, h0, c0, w_hh, b_hh, save_gates,
                                        spec.name, name)
    return (out, c_out) if return_cell_state else out


def _scan_body(gi: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor, b_hh: Tensor, save_gates: bool, cell: str,
               backend: str) -> tuple[Tensor, Tensor, Tensor]:
    out = dispatch.new_output((gi.shape[0], gi.shape[1], w_hh.shape[1]), gi)
    c_out = dispatch.new_output(_cell_states_shape(gi, w_hh, cell), gi)
    gates = dispatch.new_output(_gates_shape(gi, save_gates), gi)
    kernel = dispatch.get_kernel(backend, "scan_forward", cell)
    gi, h0, c0, w_hh, b_hh = (a.contiguous() for a in (gi, h0, c0, w_hh, b_hh))
    if cells.CELLS[cell].has_cell_state:
        kernel(gi, h0, c0, w_hh, b_hh, out, c_out, gates)
    else:
        kernel(gi, h0, w_hh, b_hh, out, gates)
    return out, c_out, gates


_scan = torch.library.custom_op("rnngen::scan", _scan_body, mutates_args=())


def _gates_shape(gi: Tensor, save_gates: bool) -> tuple:
    """The saved hidden gates: [B, T, G*H], or an empty tensor when none are kept."""
    return tuple(gi.shape) if save_gates else (0,)


def _cell_states_shape(gi: Tensor, w_hh: Tensor, cell: str) -> tuple:
    """Every step's cell state, [B, T, H], for a cell that has one; else an empty tensor."""
    return (gi.shape[0], gi.shape[1], w_hh.shape[1]) if cells.CELLS[cell].has_cell_state else (0,)


@_scan.register_fake
def _(gi, h0, c0, w_hh, b_hh, save_gates, cell, backend):
    return (gi.new_empty(gi.shape[0], gi.shape[1], w_hh.shape[1]), gi.new_empty(_cell_states_shape(gi, w_hh, cell)),
            gi.new_empty(_gates_shape(gi, save_gates)))


@torch.library.custom_op("rnngen::scan_backward", mutates_args=())
def _scan_backward(grad_out: Tensor, grad_c: Tensor, gi: Tensor, h0: Tensor, c0: Tensor, w_hh: Tensor, b_hh: Tensor,
                   out: Tensor, c_out: Tensor, gates: Tensor, cell: str,
                   backend: str) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    grads = tuple(dispatch.new_output(x.shape, x) for x in (gi, h0, c0, w_hh, b_hh))
    kernel = dispatch.get_kernel(backend, "scan_backward", cell)
    if cells.CELLS[cell].has_cell_state:
        if grad_c.numel() == 0:  # the cell states were not used by the loss
            grad_c = torch.zeros_like(c_out)
        inputs = (a.contiguous() for a in (grad_out, grad_c, gi, h0, c0, w_hh, b_hh, out, c_out, gates))
        kernel(*inputs, *grads)
    else:
        d_gi, d_h0, _, d_w_hh, d_b_hh = grads
        inputs = (a.contiguous() for a in (grad_out, gi, h0, w_hh, b_hh, out, gates))
        kernel(*inputs, d_gi, d_h0, d_w_hh, d_b_hh)
    return grads


@_scan_backward.register_fake
def _(grad_out, grad_c, gi, h0, c0, w_hh, b_hh, out, c_out, gates, cell, backend):
    return tuple(torch.empty_like(x) for x in (gi, h0, c0, w_hh, b_hh))


def _setup_context(ctx, inputs, output):
    gi, h0, c0, w_hh, b_hh, _save_gates, cell, backend = inputs
    ctx.save_for_backward(gi, h0, c0, w_hh, b_hh, *output)
    ctx.cell, ctx.backend = cell, backend
    ctx.mark_non_differentiable(output[2])
    # No zero gradient is made up for the saved gates ([B, T, G*H], never differentiated): filling
    # one cost 6% of a FusedPixelGRU training step at T=784, B=16, H=256 on the CPU.
    ctx.set_materialize_grads(False)


def _grads(ctx, grad_out, grad_c, apply):
    """The op's input gradients for upstream grad_out and grad_c (either may be None)."""
    gi, h0, c0, w_hh, b_hh, out, c_out, gates = ctx.saved_tensors
    if grad_out is None and grad_c is None:
        return None, None, None, None, None
    grad_out = torch.zeros_like(out) if grad_out is None else grad_out
    grad_c = c_out.new_empty(0) if grad_c is None else grad_c
    return apply(grad_out, grad_c, gi, h0, c0, w_hh, b_hh, out, c_out, gates, ctx.cell, ctx.backend)


def _backward(ctx, grad_out, grad_c, _grad_gates):
    return (*_grads(ctx, grad_out, grad_c, torch.ops.rnngen.scan_backward), None, None, None)


_scan.register_autograd(_backward, setup_context=_setup_context)


class _ScanFunction(torch.autograd.Function):
    """The same op and formula for torch.func transforms (grad, vjp, jacrev): the autograd
    wrapper torch.library generates has no setup_context, which functorch requires
    (pytorch/pytorch#170834), so under a transform the op is called through this Function."""

    generate_vmap_rule = True  # vmap through forward and backward: the ops' own vmap rules

    @staticmethod
    def forward(gi, h0, c0, w_hh, b_hh, cell, backend):
        return torch.ops.rnngen.scan(gi, h0, c0, w_hh, b_hh, True, cell, backend)

    @staticmethod
    def setup_context(ctx, inputs, output):
        gi, h0, c0, w_hh, b_hh, cell, backend = inputs
        _setup_context(ctx, (gi, h0, c0, w_hh, b_hh, True, cell, backend), output)

    @staticmethod
    def backward(ctx, grad_out, grad_c, _grad_gates):
        return (*_grads(ctx, grad_out, grad_c, _ScanBackwardFunction.apply), None, None)


class _ScanBackwardFunction(torch.autograd.Function):
    """scan_backward under a transform (torch.func.grad runs the backward on tensors it tracks)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(grad_out, grad_c, gi, h0, c0, w_hh, b_hh, out, c_out, gates, cell, backend):
        return torch.ops.rnngen.scan_backward(grad_out, grad_c, gi, h0, c0, w_hh, b_hh, out, c_out, gates, cell,
                                              backend)

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError("rnngen.scan has no second derivative (its backward is a fused kernel)")


# vmap (jacrev is vmap over vjp): one call per batched element, stacked.
_scan.register_vmap(dispatch.loop_vmap(torch.ops.rnngen.scan))
_scan_backward.register_vmap(dispatch.loop_vmap(torch.ops.rnngen.scan_backward))
