"""Backends: which implementations of the ops this machine has, and how one is chosen.

Every op has one kernel per backend, all with the same signature (see ``rnngen/ops/*/naive.py``
for the reference of each): contiguous inputs first, then the output buffers, which the op
allocates (see :func:`new_output`) and the kernel fills; kernels return nothing. A backend joins by registering its kernels with
:func:`register_kernel`; from then on the ops can dispatch to it, ``backend="auto"`` may pick
it and the shared test suite runs it against the reference.
"""

from __future__ import annotations

import importlib
import os
import warnings
from typing import Callable

import torch

BACKENDS = ("reference", "cpu", "triton", "cuda")
# The kernel entry points every complete backend provides (for the GRU; a backend may provide
# them for the other cells too, see rnngen/ops/cells.py).
KERNELS = ("scan_forward", "scan_backward", "decode_forward", "decode_backward", "sample")
CELL_NAMES = ("gru", "lstm", "rnn_tanh", "rnn_relu")


class BackendUnavailableError(RuntimeError):
    """A backend was asked for by name but cannot run here; the message says why."""


# backend -> (kernel, cell) -> (function, dtypes or None for any)
_kernels: dict[str, dict[tuple[str, str], tuple[Callable, frozenset | None]]] = {b: {} for b in BACKENDS}
_extension_errors: dict[str, str] = {}
_warned: set[str] = set()


def register_kernel(backend: str, name: str, dtypes=None, cell: str = "gru"):
    """Decorator: register ``fn`` as ``backend``'s kernel ``name`` (one of :data:`KERNELS`) for
    ``cell`` (one of :data:`CELL_NAMES`).

    ``dtypes`` limits the floating dtypes it accepts (None: any)."""
    if backend not in BACKENDS or name not in KERNELS or cell not in CELL_NAMES:
        raise ValueError(f"unknown backend/kernel/cell {backend!r}/{name!r}/{cell!r}")

    def wrap(fn):
        _kernels[backend][(name, cell)] = (fn, None if dtypes is None else frozenset(dtypes))
        return fn

    return wrap


def new_output(shape, like: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """An uninitialised output buffer for a kernel to fill. With RNNGEN_POISON_OUTPUTS=1 (the
    tests set it) it is filled with NaN (floats) or -7 (integers) first, so any element a kernel
    fails to write shows up in the comparison with the reference."""
    dtype = dtype or like.dtype
    if os.environ.get("RNNGEN_POISON_OUTPUTS", "0") != "1":
        return torch.empty(shape, dtype=dtype, device=like.device)
    return torch.full(shape, float("nan") if dtype.is_floating_point else -7, dtype=dtype, device=like.device)


def run_op(op: Callable, body: Callable, *args):
    """``op(*args)`` (a registered op), or ``body(*args)`` (that op's own Python implementation)
    when the op's dispatch has nothing to add: an eager call on plain CPU or CUDA tensors that
    no autograd, tracing (torch.compile, export, jit.trace) or mode (FakeTensorMode, a device context, ...)
    needs to see. torch.library's layers cost about 40 us a call warm and 0.2 ms cold on the
    2-vCPU VM (measured on decode at T=1), several percent of a B=1 image; ``op`` stays what
    autograd, torch.compile and opcheck use."""
    return body(*args) if _plain_eager(args) else op(*args)


_PLAIN_TENSORS = (torch.Tensor, torch.nn.Parameter)


def _plain_eager(args) -> bool:
    if (torch.compiler.is_compiling() or torch._C._is_torch_function_mode_enabled()
            or torch._C._len_torch_dispatch_stack() > 0 or torch.jit.is_tracing()):
        return False
    grad = torch.is_grad_enabled()
    for a in args:
        if not isinstance(a, torch.Tensor):
            continue
        if (type(a) not in _PLAIN_TENSORS or (grad and a.requires_grad) or a.device.type not in ("cpu", "cuda")
                or torch._C._functorch.is_functorch_wrapped_tensor(a)):
            return False
    return True


def under_functorch(*tensors) -> bool:
    """Whether a torch.func transform (grad, vmap, jacrev, ...) wraps any of ``tensors`` (never
    while Dynamo traces: it handles transforms itself and cannot trace this test)."""
    if torch.compiler.is_compiling():
        return False
    return any(isinstance(t, torch.Tensor) and torch._C._functorch.is_functorch_wrapped_tensor(t) for t in tensors)


def loop_vmap(op: Callable) -> Callable:
    """A vmap rule for ``op``: one call per element of the vmapped dimension, outputs stacked
    along a new leading dimension. The kernels are batched already; this is for jacrev and the
    like, where correctness matters more than speed."""

    def rule(info, in_dims, *args):
        calls = []
        for i in range(info.batch_size):
            picked = [a.select(d, i) if d is not None else a for a, d in zip(args, in_dims)]
            calls.append(op(*picked))
        single = not isinstance(calls[0], (tuple, list))
        outputs = [torch.stack(parts) for parts in zip(*([c] if single else c for c in calls))]
        return (outputs[0], 0) if single else (tuple(outputs), (0,) * len(outputs))

    return rule


def get_kernel(backend: str, name: str, cell: str = "gru") -> Callable:
    _load_extensions()
    return _kernels[backend][(name, cell)][0]


def supports(backend: str, name: str, dtype: torch.dtype, cell: str = "gru") -> bool:
    """Whether ``backend`` has kernel ``name`` of ``cell`` for floating dtype ``dtype``."""
    _load_extensions()
    entry = _kernels[backend].get((name, cell))
    return entry is not None and (entry[1] is None or dtype in entry[1])


def _import_extension(module: str, namespace: str, dtypes) -> None:
    """Import a compiled extension and register the kernels it defines under ``namespace``
    (for the floating ``dtypes`` its kernels are instantiated for)."""
    backend = namespace.removeprefix("rnngen_")
    try:
        importlib.import_module(module)
    except Exception as exc:  # ImportError, or an ABI mismatch reported as OSError/RuntimeError
        _extension_errors[backend] = f"{type(exc).__name__}: {exc}"
        return
    ops = getattr(torch.ops, namespace)
    for cell in CELL_NAMES:
        for name in KERNELS:
            op_name = name if cell == "gru" else f"{cell}_{name}"  # e.g. rnngen_cpu::lstm_scan_forward
            if hasattr(ops, op_name) and (name, cell) not in _kernels[backend]:
                _kernels[backend][(name, cell)] = (getattr(ops, op_name), frozenset(dtypes))


_loaded = False


def _load_extensions() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    _import_extension("rnngen._cpu", "rnngen_cpu", (torch.float32, torch.float64))
    _import_extension("rnngen._cuda", "rnngen_cuda", (torch.float32, torch.bfloat16, torch.float16))
    _import_triton_kernels()


# The modules that register the Triton kernels (imported only when ``import triton`` works, so
# a missing or broken Triton leaves every other backend usable).
TRITON_MODULES = ("rnngen.ops.scan.triton", "rnngen.ops.decode.triton", "rnngen.ops.sample.triton")


def _import_triton_kernels() -> None:
    if _triton_importable() is not None:
        return
    for module in TRITON_MODULES:
        try:
            importlib.import_module(module)
        except Exception as exc:  # an incompatible Triton version, a driver problem, ...
            _extension_errors["triton"] = f"{module} did not import: {type(exc).__name__}: {exc}"
            return


def _triton_importable() -> str | None:
    try:
        importlib.import_module("triton")
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def triton_interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def _missing(backend: str) -> str:
    missing = [k for k in KERNELS if (k, "gru") not in _kernels[backend]]
    return ", ".join(missing)


def _status(name: str) -> str:
    """``"available"``, or why backend ``name`` cannot run here (extensions already loaded)."""
    if name == "reference":
        return "available"
    if name == "cpu":
        if "cpu" in _extension_errors:
            return f"not built (rnngen._cpu did not import: {_extension_errors['cpu']})"
        if _missing("cpu"):
            return f"built, but this version has no fused CPU kernels for: {_missing('cpu')}"
        return "available"
    if name == "triton":
        err = _triton_importable()
        if err:
            return f"not installed (pip install triton; {err})"
        if "triton" in _extension_errors:
            return f"installed, but rnngen's Triton kernels failed to load ({_extension_errors['triton']})"
        if _missing("triton"):
            return f"installed, but this version has no Triton kernels for: {_missing('triton')}"
        if not (torch.cuda.is_available() or triton_interpreting()):
            return "installed, no GPU (TRITON_INTERPRET=1 runs it on the CPU, slowly)"
        return "available"
    if "cuda" in _extension_errors:
        return f"not built (rnngen._cuda did not import: {_extension_errors['cuda']})"
    if _missing("cuda"):
        return f"built, but this version has no CUDA kernels for: {_missing('cuda')}"
    if not torch.cuda.is_available():
        return "built, no CUDA device"
    return "available"


def backend_status() -> dict[str, str]:
    """Every backend name mapped to ``"available"`` or the reason it cannot run here."""
    _load_extensions()
    return {name: _status(name) for name in BACKENDS}


def backends() -> list[str]:
    """The backends usable on this machine, in order of preference for ``auto`` last."""
    status = backend_status()
    return [name for name in BACKENDS if status[name] == "available"]


def _runs_on(backend: str, device: torch.device) -> bool:
    if backend == "reference":
        return True
    if backend == "cpu":
        return device.type == "cpu"
    if backend == "triton":
        return device.type == "cuda" or (device.type == "cpu" and triton_interpreting())
    return device.type == "cuda"


def check_name(backend) -> str:
    """Check ``backend`` is a known name (whether it can run here is resolve's business): modules
    check it when built, so a typo fails at construction, not at the first forward."""
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a str, one of {('auto',) + BACKENDS}; got {type(backend).__name__}")
    if backend != "auto" and backend not in BACKENDS:
        raise ValueError(f"backend must be one of {('auto',) + BACKENDS}; got {backend!r}")
    return backend


def resolve(backend: str, device: torch.device, kernel: str, dtype: torch.dtype, cell: str = "gru") -> str:
    """The concrete backend that runs ``kernel`` of ``cell`` for tensors on ``device`` of ``dtype``.

    ``"auto"`` picks cuda > triton on a GPU and cpu on the CPU, and falls back to the reference
    (warning once per reason) when none of those can run. A backend named explicitly must be
    able to run, or this raises saying why."""
    check_name(backend)
    _load_extensions()
    if backend == "auto":
        preferred = [name for name in ("cuda", "triton", "cpu") if name != "triton" or device.type == "cuda"]
        reasons = []
        for name in (name for name in preferred if _runs_on(name, device)):
            status = _status(name)
            if status != "available":
                reasons.append(f"{name}: {status}")
            elif not supports(name, kernel, dtype, cell):
                reasons.append(f"{name}: no {_kernel_name(kernel, cell)} kernel for {dtype}")
            else:
                return name
        message = (f"rnngen: no fused backend runs on {device.type} here ({'; '.join(reasons)}); "
                   "using the slow pure-PyTorch reference backend. rnngen.backend_status() tells more.")
        if message not in _warned:
            _warned.add(message)
            warnings.warn(message, RuntimeWarning, stacklevel=3)
        return "reference"
    status = _status(backend)
    if status != "available":
        raise BackendUnavailableError(f"backend {backend!r} is not available: {status}")
    if not _runs_on(backend, device):
        raise ValueError(f"backend {backend!r} cannot run on {device.type} tensors; "
                         f"move the inputs or choose another backend")
    if not supports(backend, kernel, dtype, cell):
        raise ValueError(f"backend {backend!r} has no {_kernel_name(kernel, cell)} kernel for {dtype}")
    return backend


def _kernel_name(kernel: str, cell: str) -> str:
    return kernel if cell == "gru" else f"{cell} {kernel}"


# Under torch.compile, Dynamo runs resolve eagerly at trace time and bakes the name into the graph:
# what the decorator torch.compiler.assume_constant_result does, by the mark it sets. The
# decorator itself imports Dynamo (about 3 s on a 2-core machine), which every `import rnngen`
# would pay; tests/test_modules.py::test_torch_compile_fullgraph fails if the mark stops working.
resolve._dynamo_marked_constant = True
