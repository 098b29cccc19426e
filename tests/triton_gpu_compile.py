"""Compile every Triton kernel of rnngen for an H100 (sm_90) on a machine without a GPU.

Runs Triton's whole pipeline (TTIR -> TTGIR -> LLVM -> PTX -> cubin with the ptxas bundled in
the triton wheel) for the launch configurations the launchers pick, and fails when a kernel
does not compile or needs more shared memory than an H100 block may have. What the Triton
interpreter accepts but a GPU refuses (tl.dot dimensions < 16, non-power-of-two blocks, ...)
shows up here. Run as a script, without TRITON_INTERPRET (tests/test_triton.py does).

    python tests/triton_gpu_compile.py H:DTYPE [H:DTYPE ...]
"""

import os
import sys

os.environ.pop("TRITON_INTERPRET", None)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from rnngen.ops.decode import triton as decode_triton  # noqa: E402
from rnngen.ops.sample import triton as sample_triton  # noqa: E402
from rnngen.ops.scan import triton as scan_triton  # noqa: E402

H100_SHARED_PER_BLOCK = 232448  # 227 KiB
TARGET = GPUTarget("cuda", 90, 32)
# Buffers the launchers allocate in float32 whatever the inputs' dtype.
FLOAT32_BUFFERS = {"hprev_ptr", "dgh_ptr", "gi_ptr@decode_backward", "gh_ptr", "dgi_ptr@decode_backward",
                   "dx_ptr", "gates_ptr@scan_backward"}
SCALARS = dict(B="i32", T="i32", H="i32", C="i32", K="i32", temperature="fp32", seed="i64", row_offset="i64")


def compile_kernel(label, fn, kernel, dtype, launch):
    launch = dict(launch)
    options = dict(num_warps=launch.pop("num_warps"), num_stages=launch.pop("num_stages"))
    signature = {}
    for name in fn.arg_names:
        if name in launch:
            signature[name] = "constexpr"
        elif name in SCALARS:
            signature[name] = SCALARS[name]
        elif name in ("known_ptr", "val_ptr"):
            signature[name] = "*i64"
        elif name in FLOAT32_BUFFERS or f"{name}@{kernel}" in FLOAT32_BUFFERS:
            signature[name] = "*fp32"
        else:
            signature[name] = f"*{dtype}"
    constexprs = {(fn.arg_names.index(k),): v for k, v in launch.items()}
    compiled = triton.compile(ASTSource(fn=fn, signature=signature, constexprs=constexprs), target=TARGET,
                              options=options)
    shared = compiled.metadata.shared
    print(f"{label}: {shared} B shared memory")
    assert shared <= H100_SHARED_PER_BLOCK, f"{label} needs {shared} B of shared memory"


def main(configs):
    for config in configs:
        H, dtype = config.split(":")
        H = int(H)
        scan = scan_triton._launch_args(H)
        compile_kernel(f"scan_forward H={H} {dtype}", scan_triton._scan_forward_kernel, "scan_forward", dtype,
                       dict(scan, SAVE_GATES=True))
        compile_kernel(f"scan_backward H={H} {dtype}", scan_triton._scan_backward_kernel, "scan_backward", dtype,
                       scan)
        decode = decode_triton._launch_args(H, 3)
        compile_kernel(f"decode_forward H={H} {dtype}", decode_triton._decode_forward_kernel, "decode_forward",
                       dtype, decode)
        compile_kernel(f"decode_backward H={H} {dtype}", decode_triton._decode_backward_kernel, "decode_backward",
                       dtype, decode)
        for C, K in ((1, 16), (3, 256)):
            compile_kernel(f"sample H={H} C={C} K={K} {dtype}", sample_triton._sample_kernel, "sample", dtype,
                           dict(sample_triton._launch_args(H, C, K), HAS_KNOWN=True))


if __name__ == "__main__":
    main(sys.argv[1:])
