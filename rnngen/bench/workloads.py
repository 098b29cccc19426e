"""The benchmark's workloads, and the baselines each is measured against.

A workload is one job at one size (the article's generator, categorical sampling, a
teacher-forced scan), built as a list of implementations: the baselines people would otherwise
run (the article's eager loop, ``torch.compile`` of its step function, a CUDA graph of the whole loop, ``nn.GRU``,
FlashRNN) and rnngen on each backend. Every implementation is a function of no arguments that
runs the whole H*W-step job once and returns its output (for forward+backward, the output and
the parameter gradients), so :func:`Workload.check` can compare it with the first baseline's
before any time is taken. Each step's input is the previous step's output (or, for the scan,
the previous hidden state), so no step can be skipped.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

import rnngen
from rnngen.nn.baselines import ArticleRNNImageGenerator
from rnngen.nn.generator import make_cell_module


@dataclass(frozen=True)
class Spec:
    kind: str                 # "generator", "sampling" or "scan"
    B: int
    hidden: int
    side: int                 # image side: T = side * side steps
    grad: bool = False        # forward+backward instead of forward only
    levels: int = 0           # sampling: values per pixel
    z_dim: int = 100          # generator: latent size
    cell: str = "gru"         # the recurrent cell (rnngen/ops/cells.py)

    @property
    def steps(self) -> int:
        return self.side * self.side

    @property
    def name(self) -> str:
        mode = "fwd+bwd" if self.grad else "no grad" if self.kind != "scan" else "fwd"
        label = "" if self.cell == "gru" else f"{_CELL_LABELS[self.cell]} "  # the GRU rows keep their names
        if self.kind == "generator":
            return f"{label}generator h={self.hidden} {self.side}x{self.side} B={self.B} {mode}"
        if self.kind == "sampling":
            return f"{label}sampling {self.levels} levels h={self.hidden} {self.side}x{self.side} B={self.B}"
        return f"{_CELL_LABELS[self.cell]} scan T={self.steps} h={self.hidden} B={self.B} {mode}"

    def shapes(self) -> dict[str, Any]:
        shapes = {"B": self.B, "hidden": self.hidden, "steps": self.steps, "image": f"{self.side}x{self.side}",
                  "grad": self.grad}
        if self.kind == "generator":
            shapes["z_dim"] = self.z_dim
        if self.kind == "sampling":
            shapes["levels"] = self.levels
        if self.kind == "scan":
            shapes["input_size"] = 1
        if self.cell != "gru":
            shapes["cell"] = self.cell
        return shapes


_CELL_LABELS = {"gru": "GRU", "lstm": "LSTM", "rnn_tanh": "RNN tanh", "rnn_relu": "RNN relu"}
_CELL_MODULES = {"gru": nn.GRU, "lstm": nn.LSTM, "rnn_tanh": nn.RNN}


def specs(quick: bool = False) -> list[Spec]:
    """The suite: the issue's sizes, or tiny ones (``quick``, for CI) that exercise the same code."""
    if quick:
        side, h = 6, 32
        return ([Spec("generator", B, h, side) for B in (1, 4)] + [Spec("generator", 2, h, side, grad=True)]
                + [Spec("sampling", B, h, side, levels=16) for B in (1, 3)]
                + [Spec("scan", 2, h, side), Spec("scan", 2, h, side, grad=True)]
                + [Spec("scan", 2, h, side, grad=True, cell=cell) for cell in ("lstm", "rnn_tanh")]
                + [Spec("generator", 1, h, side, cell="lstm"), Spec("sampling", 1, h, side, levels=16, cell="lstm")])
    return ([Spec("generator", B, h, 28) for h in (128, 256) for B in (1, 16, 64, 256)]
            + [Spec("generator", 16, h, 28, grad=True) for h in (128, 256)]
            + [Spec("sampling", B, 256, 28, levels=256) for B in (1, 64)] + [Spec("sampling", 64, 128, 28, levels=256)]
            + [Spec("scan", B, 256, 28, grad=grad) for grad in (False, True) for B in (16, 64)]
            + [Spec("scan", 256, 256, 28, grad=True)]  # 16 rows a cluster: the CUDA tensor-core path (bf16/fp16)
            + [Spec("scan", 16, 256, 28, grad=True, cell=cell) for cell in ("lstm", "rnn_tanh")]
            + [Spec("generator", 1, 256, 28, cell=cell) for cell in ("lstm", "rnn_tanh")]
            + [Spec("sampling", 1, 256, 28, levels=256, cell="lstm")]
            # h=1024: the largest hidden size every fused kernel holds (Triton: split over programs)
            + [Spec("scan", 16, 1024, 28, grad=grad) for grad in (False, True)]
            + [Spec("sampling", 1, 1024, 28, levels=256)])


@dataclass
class Options:
    device: str = "cpu"
    dtype: torch.dtype = torch.float32
    backends: tuple[str, ...] = ("cpu",)          # rnngen backends to measure
    compile: bool = True                          # the torch.compile baseline
    compile_off: str = "torch.compile baseline off"  # the reason given when it is off
    cuda_graph: bool = True                       # the CUDA-graph baseline (GPU only)
    flashrnn: bool = True                         # the FlashRNN baseline (GPU scan only)


@dataclass
class Impl:
    name: str                                     # e.g. "article eager loop", "rnngen cuda"
    role: str                                     # "baseline" or "rnngen"
    make: Callable[[], Callable[[], Any]] | None   # builds the timed function (may compile or capture)
    backend: str | None = None                    # rnngen backend, or the library behind a baseline
    skip: str | None = None                       # why it does not run here
    builds: bool = False                          # make() or its first call compiles code (torch.compile,
                                                  # FlashRNN's JIT build): limited by --compile-timeout
    precision: str = "fp32"                       # rnngen's precision option ("bf16": rounded weights)
    tolerance: float | None = None                # its own check tolerance (None: the workload's)


@dataclass
class Workload:
    spec: Spec
    impls: list[Impl]
    check: Callable[[Impl, Any], None]            # raises AssertionError when an output is wrong
    tolerance: float = 1e-3

    @property
    def name(self) -> str:
        return self.spec.name


def candidate_backends(device: str, requested: list[str] | None = None) -> tuple[list[str], dict[str, str]]:
    """The rnngen backends to measure on ``device`` and, for those left out, why.

    By default every available fused backend that runs there (the reference only when named;
    triton only on a GPU, since on the CPU it is Triton's slow interpreter)."""
    status = rnngen.backend_status()
    names = list(requested) if requested else [b for b in rnngen.dispatch.BACKENDS if b != "reference"]
    chosen, left_out = [], {}
    for name in names:
        if name not in status:
            raise ValueError(f"unknown backend {name!r}; choose from {', '.join(status)}")
        if status[name] != "available":
            left_out[name] = status[name]
        elif device == "cpu" and name in ("triton", "cuda"):
            left_out[name] = "runs on GPU tensors only"
        elif device == "cuda" and name == "cpu":
            left_out[name] = "runs on CPU tensors only"
        else:
            chosen.append(name)
    return chosen, left_out


def _in_mode(grad: bool, fn: Callable[[], Any]) -> Callable[[], Any]:
    def run():
        with torch.set_grad_enabled(grad):
            return fn()
    return run


def _with_grads(grad: bool, forward: Callable[[], torch.Tensor], params: list[torch.Tensor],
                dout: torch.Tensor | None) -> Callable[[], Any]:
    """Forward only, or forward + backward returning (output, *parameter gradients).

    The gradients come from torch.autograd.grad, so nothing accumulates in .grad between calls."""
    if not grad:
        return _in_mode(False, forward)

    def fwd_bwd():
        out = forward()
        grads = torch.autograd.grad((out * dout).sum(), params)
        return (out.detach(), *grads)
    return _in_mode(True, fwd_bwd)


def close_enough(actual, expected, tolerance: float, what: str) -> None:
    """Every tensor of ``actual`` within tolerance * max(1, max|expected|) of ``expected``."""
    actual = actual if isinstance(actual, tuple) else (actual,)
    expected = expected if isinstance(expected, tuple) else (expected,)
    assert len(actual) == len(expected), f"{what}: {len(actual)} outputs, expected {len(expected)}"
    for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
        label = "output" if i == 0 else f"gradient {i}"
        assert tuple(a.shape) == tuple(e.shape), f"{what}: {label} has shape {list(a.shape)}, expected {list(e.shape)}"
        err = (a.double() - e.double()).abs().max().item() if a.numel() else 0.0
        bound = tolerance * max(1.0, e.abs().max().item() if e.numel() else 0.0)
        assert err <= bound, f"{what}: {label} differs from the eager baseline's by {err:.2e} (allowed {bound:.1e})"


def _cuda_graph(fn: Callable[[], Any]) -> Callable[[], Any]:
    """Capture ``fn`` (the whole step loop, reading static inputs it closes over) into one CUDA
    graph; the returned function replays it and returns the static output. Warm-up runs on a
    side stream first, as capture requires (lazy initialisation, cuBLAS workspaces)."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out = fn()
    torch.cuda.synchronize()

    def replay():
        graph.replay()
        return static_out
    return replay


def _compile(fn):
    """torch.compile for one workload: Dynamo's caches are reset first (every workload compiles
    the same step code with other weights and shapes, and past the recompile limit Dynamo would
    quietly run it eagerly), and fullgraph=True makes a graph break an error, recorded as the
    baseline's failure, instead of a half-compiled baseline."""
    torch._dynamo.reset()
    return torch.compile(fn, dynamic=False, fullgraph=True)


# -- the article's generator ------------------------------------------------------------------------

def _generator(spec: Spec, opts: Options, candidates: list[str]) -> Workload:
    factory = {"device": opts.device, "dtype": opts.dtype}
    article = ArticleRNNImageGenerator(spec.z_dim, spec.hidden, (spec.side, spec.side), cell=spec.cell).to(**factory)
    z = torch.randn(spec.B, spec.z_dim, **factory)
    dout = torch.randn(spec.B, spec.side, spec.side, **factory) if spec.grad else None
    params = list(article.parameters())

    def compiled_step_loop():
        # The article's forward with its per-step body (fc_out + GRUCell) compiled; the Python loop
        # over the H*W steps stays, as it must for a step function.
        fc_init, fc_out, cell = article.fc_init, article.fc_out, article.rnn

        def step(h, c):
            x = fc_out(h)
            return (x, cell(x, h), None) if c is None else (x, *cell(x, (h, c)))
        step = _compile(step)

        def forward():
            h = fc_init(z)
            c = torch.zeros_like(h) if spec.cell == "lstm" else None
            pixels = []
            for _ in range(spec.steps):
                x, h, c = step(h, c)
                pixels.append(x.squeeze(1))
            return torch.stack(pixels, 1).view(spec.B, spec.side, spec.side)
        return _with_grads(spec.grad, forward, params, dout)

    impls = [Impl("article eager loop", "baseline", lambda: _with_grads(spec.grad, lambda: article(z), params, dout),
                  backend="eager")]
    impls.append(Impl("torch.compile step", "baseline", compiled_step_loop, backend="inductor", builds=True,
                      skip=None if opts.compile else opts.compile_off))
    if opts.device == "cuda":
        impls.append(Impl("CUDA graph of the loop", "baseline",
                          lambda: _cuda_graph(_in_mode(False, lambda: article(z))), backend="cudagraph",
                          skip=("a training step is not captured" if spec.grad
                                else None if opts.cuda_graph else "CUDA graph baseline off")))
    for backend, precision in _rnngen_rows(spec, opts, candidates):
        def make(backend=backend, precision=precision):
            model = rnngen.RNNImageGenerator(spec.z_dim, spec.hidden, (spec.side, spec.side), backend=backend,
                                             precision=precision, cell=spec.cell, **factory)
            model.load_state_dict(article.state_dict())
            return _with_grads(spec.grad, lambda: model(z), list(model.parameters()), dout)
        impls.append(_rnngen_impl(backend, precision, make))

    reference = {}

    def check(impl: Impl, out) -> None:
        if impl is impls[0]:
            reference["out"] = out
            return
        close_enough(out, reference["out"], impl.tolerance or workload.tolerance, impl.name)

    workload = Workload(spec, impls, check)
    return workload


# rnngen's precision="bf16" (weights rounded to bfloat16, everything else float32) is measured
# where it has its own kernel path: the CPU backend (weights stored as bf16, half the bytes
# streamed per step), float32 inputs, no grad. Other backends run their float32 kernels on the
# rounded weights: no speed to report. Its outputs are checked against the float32 baseline
# with the option's own tolerance (tests/test_precision.py: relative error 5e-4 to 2.5e-3 at h=256).
BF16_TOLERANCE = 1e-2


def _rnngen_rows(spec: Spec, opts: Options, candidates: list[str]) -> list[tuple[str, str]]:
    rows = [(backend, "fp32") for backend in candidates]
    if "cpu" in candidates and opts.dtype == torch.float32 and not spec.grad:
        rows.append(("cpu", "bf16"))
    return rows


def _rnngen_impl(backend: str, precision: str, make: Callable[[], Callable[[], Any]]) -> Impl:
    if precision == "fp32":
        return Impl(f"rnngen {backend}", "rnngen", make, backend=backend)
    # its own backend label, so reports give it its own column beside the float32 one
    return Impl(f"rnngen {backend} {precision}", "rnngen", make, backend=f"{backend} {precision}",
                precision=precision, tolerance=BF16_TOLERANCE)


# -- categorical sampling ---------------------------------------------------------------------------

class CategoricalLoop(nn.Module):
    """The eager way to sample a categorical pixel model: Embedding + GRUCell (or LSTMCell, or
    RNNCell) + Linear + softmax + multinomial, one step at a time, each drawn value the next
    step's input. The state is h, or (h, c) for the LSTM."""

    def __init__(self, hidden: int, levels: int, cell: str = "gru"):
        super().__init__()
        self.embed = nn.Embedding(levels, hidden)
        self.cell = make_cell_module(cell, hidden, hidden)
        self.head = nn.Linear(hidden, levels)

    def step(self, state, generator: torch.Generator | None = None):
        h = state[0] if isinstance(state, tuple) else state
        probs = torch.softmax(self.head(h), dim=-1)
        v = torch.multinomial(probs, 1, generator=generator)[:, 0]
        return v, self.cell(self.embed(v), state)

    def forward(self, h, steps: int, generator: torch.Generator | None = None, step=None):
        step = step or self.step
        values = []
        for _ in range(steps):
            v, h = step(h, generator) if generator is not None else step(h)
            values.append(v)
        return torch.stack(values, 1)

    def sample_args(self, h0: torch.Tensor, steps: int):
        """The same model as rnngen.sample's arguments: the embedding folded into a table of input
        gates (emb[v] = W_ih embed[v] + b_ih, exactly what the cell computes for input v)."""
        table = F.linear(self.embed.weight, self.cell.weight_ih, self.cell.bias_ih)
        return tuple(x.detach() for x in (h0, table, self.cell.weight_hh, self.cell.bias_hh, self.head.weight,
                                          self.head.bias)) + (steps,)


def _sampling(spec: Spec, opts: Options, candidates: list[str]) -> Workload:
    factory = {"device": opts.device, "dtype": opts.dtype}
    loop = CategoricalLoop(spec.hidden, spec.levels, spec.cell).to(**factory)
    h0 = torch.zeros(spec.B, spec.hidden, **factory)
    args = loop.sample_args(h0, spec.steps)
    cell = {"cell": spec.cell}  # the LSTM's c0 defaults to zeros, as the loop's state below
    if spec.cell == "lstm":
        h0 = (h0, torch.zeros_like(h0))
    T = spec.steps

    def eager():
        generator = torch.Generator(device=opts.device).manual_seed(0)
        return _in_mode(False, lambda: loop(h0, T, generator))

    def compiled_step_loop():
        step = _compile(loop.step)  # the default generator: Dynamo does not take a Generator argument
        return _in_mode(False, lambda: loop(h0, T, step=step))

    impls = [Impl("eager multinomial loop", "baseline", eager, backend="eager"),
             Impl("torch.compile step", "baseline", compiled_step_loop, backend="inductor", builds=True,
                  skip=None if opts.compile else opts.compile_off)]
    if opts.device == "cuda":
        impls.append(Impl("CUDA graph of the loop", "baseline",
                          lambda: _cuda_graph(_in_mode(False, lambda: loop(h0, T))), backend="cudagraph",
                          skip=None if opts.cuda_graph else "CUDA graph baseline off"))
    for backend, precision in _rnngen_rows(spec, opts, candidates):
        impls.append(_rnngen_impl(backend, precision, lambda backend=backend, precision=precision:
                                  lambda: rnngen.sample(*args, seed=1, backend=backend, precision=precision,
                                                        **cell)))

    reference = {}

    def check(impl: Impl, out) -> None:
        # The baselines draw with torch.multinomial, the fused op with its own Philox stream, so
        # their values cannot be compared. Every output must be a [B, T] image of values in
        # range; rnngen's must equal the reference backend's for the same seed (but for a draw
        # that lands within float32 rounding of a CDF boundary, after which that row goes its
        # own way: hence the 99% bar). A bf16 row is compared with the reference in bf16 mode.
        assert tuple(out.shape) == (spec.B, T) and out.dtype == torch.long, \
            f"{impl.name}: values of shape {list(out.shape)} {out.dtype}, expected [{spec.B}, {T}] int64"
        assert out.device.type == opts.device, f"{impl.name}: values on {out.device}, expected {opts.device}"
        assert bool(((out >= 0) & (out < spec.levels)).all()), f"{impl.name}: a value outside 0..{spec.levels - 1}"
        if impl.role == "rnngen":
            if impl.precision not in reference:
                reference[impl.precision] = rnngen.sample(*args, seed=1, backend="reference",
                                                          precision=impl.precision, **cell)
            agree = (out == reference[impl.precision]).double().mean().item()
            assert agree >= 0.99, f"{impl.name}: only {agree:.3f} of the values equal the reference backend's"

    return Workload(spec, impls, check)


# -- teacher-forced scan ------------------------------------------------------------------------------

def _flashrnn_gru(gru: nn.GRU, x: torch.Tensor, grad: bool, dout, backend: str = "cuda_fused"):
    """FlashRNN's fused GRU on nn.GRU's weights. FlashRNN's GRU takes input gates [r, z, n],
    recurrent gates [n, r, z] (R[g] used as R[g] @ h) and four biases [b_hn, b_ir+b_hr,
    b_iz+b_hz, b_in]; h' = z h + (1 - z) tanh(n + r (W_hn h + b_hn)), which is nn.GRU's cell.
    ``backend``: FlashRNN's ("cuda_fused", which it runs on its alternating "cuda" kernel for the
    GRU; "vanilla", its PyTorch loop, runs on a CPU and tests this mapping)."""
    module = importlib.import_module("flashrnn.flashrnn")
    flashrnn = module.flashrnn
    B, T, _ = x.shape
    H = gru.hidden_size
    params = [p.detach().clone().requires_grad_(grad) for p in
              (gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0)]

    def forward():
        w_ih, w_hh, b_ih, b_hh = params
        wx = F.linear(x, w_ih).view(B, T, 3, 1, H)
        r_w, z_w, n_w = w_hh.view(3, H, H)
        R = torch.stack([n_w, r_w, z_w]).view(3, 1, H, H)
        (bir, biz, bin_), (bhr, bhz, bhn) = b_ih.view(3, H), b_hh.view(3, H)
        b = torch.stack([bhn, bir + bhr, biz + bhz, bin_]).view(4, 1, H)
        h, _ = flashrnn(wx, R, b, function="gru", backend=backend, dtype=str(x.dtype).removeprefix("torch."))
        return h.reshape(B, T, H)
    return _with_grads(grad, forward, params, dout)


def _scan(spec: Spec, opts: Options, candidates: list[str]) -> Workload:
    factory = {"device": opts.device, "dtype": opts.dtype}
    module = _CELL_MODULES[spec.cell]
    rnn = module(1, spec.hidden, batch_first=True).to(**factory)
    x = torch.randn(spec.B, spec.steps, 1, **factory)
    dout = torch.randn(spec.B, spec.steps, spec.hidden, **factory) if spec.grad else None
    on_gpu = opts.device == "cuda"
    library = f"cuDNN {torch.backends.cudnn.version()}" if on_gpu else "ATen"

    impls = [Impl(f"nn.{module.__name__} ({library})", "baseline",
                  lambda: _with_grads(spec.grad, lambda: rnn(x)[0], list(rnn.parameters()), dout),
                  backend="cudnn" if on_gpu else "aten")]
    if spec.cell != "gru":  # the other cells: the ops themselves on the module's weights
        for backend in candidates:
            def make(backend=backend):
                params = [p.detach().clone().requires_grad_(spec.grad) for p in rnn.parameters()]

                def forward():
                    w_ih, w_hh, b_ih, b_hh = params
                    gi = F.linear(x, w_ih, b_ih)
                    return rnngen.scan(gi, None, w_hh, b_hh, cell=spec.cell, backend=backend)
                return _with_grads(spec.grad, forward, params, dout)
            missing = not rnngen.dispatch.supports(backend, "scan_forward", opts.dtype, spec.cell)
            impls.append(Impl(f"rnngen {backend}", "rnngen", make, backend=backend,
                              skip=f"{backend} has no {spec.cell} scan kernel" if missing else None))
        return _scan_workload(spec, impls)
    if on_gpu:
        skip = None if opts.flashrnn else "FlashRNN baseline off"
        if skip is None:
            try:
                importlib.import_module("flashrnn.flashrnn")
            except Exception as exc:  # not installed, or its import needs something missing
                skip = f"flashrnn does not import: {type(exc).__name__}: {exc}"
        impls.append(Impl("FlashRNN fused GRU", "baseline", lambda: _flashrnn_gru(rnn, x, spec.grad, dout),
                          backend="flashrnn", skip=skip, builds=True))
    for backend in candidates:
        def make(backend=backend):
            fused = rnngen.FusedPixelGRU.from_gru(rnn, backend=backend)
            return _with_grads(spec.grad, lambda: fused(x)[0], list(fused.parameters()), dout)
        impls.append(Impl(f"rnngen {backend}", "rnngen", make, backend=backend))
    return _scan_workload(spec, impls)


def _scan_workload(spec: Spec, impls: list[Impl]) -> Workload:
    """The scan's workload: every implementation checked against the first (the nn module)."""
    reference = {}

    def check(impl: Impl, out) -> None:
        if impl is impls[0]:
            reference["out"] = out
            return
        close_enough(out, reference["out"], workload.tolerance, impl.name)

    workload = Workload(spec, impls, check)
    return workload


def build(spec: Spec, opts: Options, candidates: list[str]) -> Workload:
    """The workload's implementations (not yet made: nothing compiles or captures here)."""
    torch.manual_seed(0)
    workload = {"generator": _generator, "sampling": _sampling, "scan": _scan}[spec.kind](spec, opts, candidates)
    if opts.device == "cuda":
        # cuDNN may run float32 RNNs in TF32 (torch.backends.cudnn.allow_tf32, on by default), and
        # summation orders differ over hundreds of steps.
        workload.tolerance = 1e-2
    if opts.dtype in (torch.bfloat16, torch.float16):
        # cuDNN keeps its state in the low dtype, rnngen in float32: over hundreds of steps they part
        # by far more than rounding; the check still catches a wrong kernel (errors of order 1)
        workload.tolerance = 1e-1
    return workload
