"""The scan op: a GRU over given input gates, every hidden state out (teacher forcing, nn.GRU).

    out[:, t] = h_t,   h_t = GRU(gi[:, t], h_{t-1}),   h_{-1} = h0

``gi`` is the input projection of all steps (one GEMM outside); the fused kernels keep W_hh and
h on chip for all T steps. Registered as ``torch.ops.rnngen.scan`` (outputs: the hidden states
and, when asked, every step's hidden gates for the backward) with a fake kernel and an autograd
formula whose backward is the op ``torch.ops.rnngen.scan_backward``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ... import dispatch
from .. import _checks
from . import naive  # noqa: F401  (registers the reference kernels)


def scan(gi: Tensor, h0: Tensor | None, w_hh: Tensor, b_hh: Tensor | None = None, *,
         backend: str = "auto") -> Tensor:
    """Run the GRU recurrence over precomputed input gates.

    Args:
        gi: [B, T, 3H] input gates ``x_t @ W_ih^T + b_ih`` for every step (gate order r, z, n).
        h0: [B, H] initial hidden state, or None for zeros.
        w_hh: [3H, H] recurrent weight (nn.GRU's ``weight_hh_l0``).
        b_hh: [3H] recurrent bias, or None for none.
        backend: "auto", "reference", "cpu", "triton" or "cuda".

    Returns: [B, T, H], the hidden state after every step.
    """
    H = _checks.recurrent_weight(w_hh)
    _checks.tensor("gi", gi, (None, None, 3 * H), dtype=w_hh.dtype)
    B, T = gi.shape[:2]
    _checks.positive_int("gi.shape[1] (number of steps)", T)
    h0 = gi.new_zeros(B, H) if h0 is None else _checks.tensor("h0", h0, (B, H), dtype=w_hh.dtype)
    b_hh = _checks.bias("b_hh", b_hh, 3 * H, w_hh)
    device = _checks.same_device(gi=gi, h0=h0, w_hh=w_hh, b_hh=b_hh)
    name = dispatch.resolve(backend, device, "scan_forward", gi.dtype)
    # When a backward will follow, the forward keeps every step's hidden gates (B*T*3H values)
    # so the backward need not recompute them; otherwise it keeps nothing.
    # A jit trace keeps them always: the graph it records must serve a backward too.
    save_gates = torch.jit.is_tracing() or (torch.is_grad_enabled()
                                            and any(x.requires_grad for x in (gi, h0, w_hh, b_hh)))
    if dispatch.under_functorch(gi, h0, w_hh, b_hh):
        return _ScanFunction.apply(gi, h0, w_hh, b_hh, name)[0]
    return dispatch.run_op(torch.ops.rnngen.scan, _scan_body, gi, h0, w_hh, b_hh, save_gates, name)[0]


def _scan_body(gi: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor, save_gates: bool,
               backend: str) -> tuple[Tensor, Tensor]:
    out = dispatch.new_output((gi.shape[0], gi.shape[1], w_hh.shape[1]), gi)
    gates = dispatch.new_output(_gates_shape(gi, save_gates), gi)
    dispatch.get_kernel(backend, "scan_forward")(gi.contiguous(), h0.contiguous(), w_hh.contiguous(),
                                                  b_hh.contiguous(), out, gates)
    return out, gates


_scan = torch.library.custom_op("rnngen::scan", _scan_body, mutates_args=())


def _gates_shape(gi: Tensor, save_gates: bool) -> tuple:
    """The saved hidden gates: [B, T, 3H], or an empty tensor when none are kept."""
    return tuple(gi.shape) if save_gates else (0,)


@_scan.register_fake
def _(gi, h0, w_hh, b_hh, save_gates, backend):
    return gi.new_empty(gi.shape[0], gi.shape[1], w_hh.shape[1]), gi.new_empty(_gates_shape(gi, save_gates))


@torch.library.custom_op("rnngen::scan_backward", mutates_args=())
def _scan_backward(grad_out: Tensor, gi: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor,
                   out: Tensor, gates: Tensor, backend: str) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    grads = tuple(dispatch.new_output(x.shape, x) for x in (gi, h0, w_hh, b_hh))
    inputs = (a.contiguous() for a in (grad_out, gi, h0, w_hh, b_hh, out, gates))
    dispatch.get_kernel(backend, "scan_backward")(*inputs, *grads)
    return grads


@_scan_backward.register_fake
def _(grad_out, gi, h0, w_hh, b_hh, out, gates, backend):
    return (torch.empty_like(gi), torch.empty_like(h0), torch.empty_like(w_hh), torch.empty_like(b_hh))


def _setup_context(ctx, inputs, output):
    gi, h0, w_hh, b_hh, save_gates, backend = inputs
    ctx.save_for_backward(gi, h0, w_hh, b_hh, *output)
    ctx.backend = backend
    ctx.mark_non_differentiable(output[1])
    # No zero gradient is made up for the saved gates ([B, T, 3H], never differentiated): filling
    # one cost 6% of a FusedPixelGRU training step at T=784, B=16, H=256 on the CPU.
    ctx.set_materialize_grads(False)


def _backward(ctx, grad_out, _grad_gates):
    if grad_out is None:  # out itself was not used by the loss
        return None, None, None, None, None, None
    gi, h0, w_hh, b_hh, out, gates = ctx.saved_tensors
    d_gi, d_h0, d_w_hh, d_b_hh = torch.ops.rnngen.scan_backward(grad_out, gi, h0, w_hh, b_hh, out, gates, ctx.backend)
    return d_gi, d_h0, d_w_hh, d_b_hh, None, None


_scan.register_autograd(_backward, setup_context=_setup_context)


class _ScanFunction(torch.autograd.Function):
    """The same op and formula for torch.func transforms (grad, vjp, jacrev): the autograd
    wrapper torch.library generates has no setup_context, which functorch requires
    (pytorch/pytorch#170834), so under a transform the op is called through this Function."""

    generate_vmap_rule = True  # vmap through forward and backward: the ops' own vmap rules

    @staticmethod
    def forward(gi, h0, w_hh, b_hh, backend):
        return torch.ops.rnngen.scan(gi, h0, w_hh, b_hh, True, backend)

    @staticmethod
    def setup_context(ctx, inputs, output):
        gi, h0, w_hh, b_hh, backend = inputs
        _setup_context(ctx, (gi, h0, w_hh, b_hh, True, backend), output)

    @staticmethod
    def backward(ctx, grad_out, _grad_gates):
        if grad_out is None:
            return None, None, None, None, None
        return (*_ScanBackwardFunction.apply(grad_out, *ctx.saved_tensors, ctx.backend), None)


class _ScanBackwardFunction(torch.autograd.Function):
    """scan_backward under a transform (torch.func.grad runs the backward on tensors it tracks)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(grad_out, gi, h0, w_hh, b_hh, out, gates, backend):
        return torch.ops.rnngen.scan_backward(grad_out, gi, h0, w_hh, b_hh, out, gates, backend)

    @staticmethod
    def setup_context(ctx, inputs, output):
        pass

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError("rnngen.scan has no second derivative (its backward is a fused kernel)")


# vmap (jacrev is vmap over vjp): one call per batched element, stacked.
_scan.register_vmap(dispatch.loop_vmap(torch.ops.rnngen.scan))
_scan_backward.register_vmap(dispatch.loop_vmap(torch.ops.rnngen.scan_backward))
