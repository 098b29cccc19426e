"""Compile every Triton kernel of rnngen for an H100 (sm_90) on a machine without a GPU.

Runs Triton's whole pipeline (TTIR -> TTGIR -> LLVM -> PTX -> cubin with the ptxas bundled in
the triton wheel) for the launch configurations the launchers pick, for each cell asked for (the
sampler once without lagged inputs and once with NL = 3 of them), and fails when a kernel does
not compile or needs more shared memory than an H100 block may have. What the Triton
interpreter accepts but a GPU refuses (tl.dot dimensions < 16,
non-power-of-two blocks, ...) shows up here. Prints, per kernel, the shared memory and ptxas'
registers per thread and spill stores. Run as a script, without TRITON_INTERPRET
(tests/test_triton.py does).

    python tests/triton_gpu_compile.py H:DTYPE[:CELL[,CELL...]] [...]

CELL is gru (the default), lstm, rnn_tanh, rnn_relu or all; a hidden size beyond what the
kernels hold (rnngen/ops/triton_common.py MAX_HP: the launchers run the reference there) is
skipped with a note. Where W_hh does not fit one program, the split kernels are compiled
(rnngen/ops/triton_split.py), in their cooperative form (COOP, with the step barrier).
"""

import contextlib
import io
import os
import re
import sys

os.environ.pop("TRITON_INTERPRET", None)
os.environ["TRITON_ALWAYS_COMPILE"] = "1"  # no cache hit: ptxas runs and its log is read
os.environ["TRITON_DUMP_PTXAS_LOG"] = "1"
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import triton  # noqa: E402
from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from rnngen.ops import triton_common as tc  # noqa: E402
from rnngen.ops.cells import CELLS  # noqa: E402
from rnngen.ops.decode import triton as decode_triton  # noqa: E402
from rnngen.ops.sample import triton as sample_triton  # noqa: E402
from rnngen.ops.scan import triton as scan_triton  # noqa: E402

H100_SHARED_PER_BLOCK = 232448  # 227 KiB
TARGET = GPUTarget("cuda", 90, 32)
# Buffers the launchers allocate in float32 whatever the inputs' dtype.
FLOAT32_BUFFERS = {"hprev_ptr", "cprev_ptr", "dgh_ptr", "gi_ptr@decode_backward", "gh_ptr", "dgi_ptr@decode_backward",
                   "dx_ptr", "gates_ptr@scan_backward", "hbuf_ptr", "cbuf_ptr", "ebuf_ptr", "dbuf_ptr",
                   "lbuf_ptr"}
SCALARS = dict(B="i32", T="i32", H="i32", C="i32", K="i32", temperature="fp32", seed="i64", row_offset="i64",
               t_begin="i32", t_end="i32", s_begin="i32", s_end="i32", q_begin="i32", q_end="i32")


def compile_kernel(label, fn, kernel, dtype, launch):
    # the forward kernels multiply bfloat16 and float16 inputs on tensor cores (triton_common.dot_mode)
    half = {"bf16": tc.DOT_BF16, "fp16": tc.DOT_FP16}.get(dtype, tc.DOT_IEEE)
    launch = dict(launch, DOT=tc.DOT_IEEE if kernel.endswith("backward") else half)
    options = dict(num_warps=launch.pop("num_warps"), num_stages=launch.pop("num_stages"))
    signature = {}
    for name in fn.arg_names:
        if name in launch:
            signature[name] = "constexpr"
        elif name in SCALARS:
            signature[name] = SCALARS[name]
        elif name in ("known_ptr", "val_ptr", "lags_ptr"):
            signature[name] = "*i64"
        elif name == "sync_ptr":
            signature[name] = "*i32"
        elif name in FLOAT32_BUFFERS or f"{name}@{kernel}" in FLOAT32_BUFFERS:
            signature[name] = "*fp32"
        else:
            signature[name] = f"*{dtype}"
    constexprs = {(fn.arg_names.index(k),): v for k, v in launch.items()}
    log = io.StringIO()
    with contextlib.redirect_stdout(log):
        compiled = triton.compile(ASTSource(fn=fn, signature=signature, constexprs=constexprs), target=TARGET,
                                  options=options)
    shared = compiled.metadata.shared
    regs = re.search(r"Used (\d+) registers", log.getvalue())
    spills = re.search(r"(\d+) bytes spill stores", log.getvalue())
    regs = regs.group(1) if regs else "?"
    spills = spills.group(1) if spills else "?"
    print(f"{label}: {shared} B shared memory ({shared / 1024:.1f} KiB), {regs} registers, {spills} B spill stores",
          flush=True)
    assert shared <= H100_SHARED_PER_BLOCK, f"{label} needs {shared} B of shared memory"


def main(configs):
    for config in configs:
        H, dtype, *rest = config.split(":")
        H = int(H)
        cells = list(CELLS) if rest == ["all"] else (rest[0].split(",") if rest else ["gru"])
        for cell in cells:
            if tc.pow2(H) > tc.MAX_HP:
                print(f"{cell} H={H}: beyond the kernels' limit (HP {tc.MAX_HP}), skipped")
                continue
            split = scan_triton._split_args(H, cell)
            if split is None:  # W_hh on chip in one program a tile
                tag = f"{cell} H={H} (HP={tc.pow2(H)}, on chip) {dtype}"
                scan = scan_triton._launch_args(H, cell)
                compile_kernel(f"scan_forward {tag}", scan_triton._scan_forward_kernel, "scan_forward", dtype,
                               dict(scan, SAVE_GATES=True))
                compile_kernel(f"scan_backward {tag}", scan_triton._scan_backward_kernel, "scan_backward", dtype,
                               dict(scan, STORE_DGH=True))
                decode = decode_triton._launch_args(H, 3, cell)
                compile_kernel(f"decode_forward {tag}", decode_triton._decode_forward_kernel, "decode_forward",
                               dtype, decode)
                compile_kernel(f"decode_backward {tag}", decode_triton._decode_backward_kernel, "decode_backward",
                               dtype, decode)
                for C, K, NL in ((1, 16, 0), (3, 256, 3)):  # NL lagged tables
                    compile_kernel(f"sample C={C} K={K} NL={NL} {tag}", sample_triton._sample_kernel, "sample",
                                   dtype, dict(sample_triton._launch_args(H, C, K, cell), HAS_KNOWN=True, NL=NL))
                continue
            # W_hh split over NSPLIT programs, compiled as the cooperative launch runs them
            nsplit, scan = split
            tag = (f"{cell} H={H} (HP={scan['HP']}, split over {nsplit} programs of {scan['BLOCK_N']} units, "
                   f"{'on chip' if scan['ON_CHIP'] else 'streamed'}) {dtype}")
            compile_kernel(f"scan_forward {tag}", scan_triton._scan_forward_split_kernel, "scan_forward", dtype,
                           dict(scan, SAVE_GATES=True, COOP=True))
            compile_kernel(f"scan_backward {tag}", scan_triton._scan_backward_split_kernel, "scan_backward", dtype,
                           dict(scan, STORE_DGH=True, COOP=True))
            decode = dict(decode_triton._split_args(H, 3, cell)[1], COOP=True)
            compile_kernel(f"decode_forward {tag}", decode_triton._decode_forward_split_kernel, "decode_forward",
                           dtype, decode)
            compile_kernel(f"decode_backward {tag}", decode_triton._decode_backward_split_kernel, "decode_backward",
                           dtype, decode)
            for C, K, NL in ((1, 16, 0), (3, 256, 3)):  # NL lagged tables
                compile_kernel(f"sample C={C} K={K} NL={NL} {tag}", sample_triton._sample_split_kernel, "sample",
                               dtype, dict(sample_triton._split_args(H, K, cell)[1], HAS_KNOWN=True, NL=NL, COOP=True))


if __name__ == "__main__":
    main(sys.argv[1:])
