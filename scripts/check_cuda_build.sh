#!/usr/bin/env bash
# Full build check of the CUDA extension on a machine without a GPU.
#
#   scripts/check_cuda_build.sh [VENV]        (default VENV: /work/venv-cu, outside the repo)
#
# 1. makes VENV (if missing) with torch 2.14.1 (a CUDA 13.0 build: large, ~5.5 GB) + build tools;
# 2. copies the tracked tree to a scratch folder and builds it there with RNNGEN_FORCE_CUDA=1
#    (a failed rnngen._cuda build is an error), for TORCH_CUDA_ARCH_LIST (default 8.0;9.0+PTX);
# 3. imports rnngen._cuda in VENV and lists the ops of torch.ops.rnngen_cuda (no GPU needed),
#    and checks that every kernel of rnngen.dispatch.KERNELS is among them for every cell of
#    rnngen.dispatch.CELL_NAMES (with a CUDA implementation, found by rnngen.dispatch);
# 4. prints what ptxas reports for every kernel of the build (nvcc runs with -Xptxas -v, through
#    NVCC_APPEND_FLAGS): registers per instantiation (rows per block 1, 2, 4, 8), static shared
#    memory; any register spill or stack frame (on sm_80 or sm_90) is an error.
# The build log is kept in $LOG (default /tmp/rnngen-cuda-build.log).
# nvcc must be on PATH (or CUDA_HOME set). MAX_JOBS (default 2) bounds parallel compiles.
set -euo pipefail

VENV=${1:-/work/venv-cu}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY="$VENV/bin/python"

if [ ! -x "$PY" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install torch==2.14.1 ninja setuptools wheel numpy
fi
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
if [ -z "${CUDA_HOME:-}" ]; then
  # torch guesses CUDA_HOME from nvcc's folder; a /usr/local/bin/nvcc link would give /usr/local
  NVCC=$(command -v nvcc) || { echo "nvcc not found (put it on PATH or set CUDA_HOME)" >&2; exit 1; }
  CUDA_HOME=$(dirname "$(dirname "$(readlink -f "$NVCC")")")
  # (here /usr/local/bin/nvcc is a wrapper script: fall back to the usual toolkit folder)
  [ -f "$CUDA_HOME/include/cuda_runtime_api.h" ] || CUDA_HOME=/usr/local/cuda
  export CUDA_HOME
fi
echo "CUDA_HOME=$CUDA_HOME"
# torch's CUDA headers include cuBLAS/cuSPARSE/cuSOLVER headers; a toolkit installed without
# those libraries (nvcc only, as here) can borrow them from the nvidia-* wheels torch depends on.
if [ ! -f "$CUDA_HOME/include/cusparse.h" ]; then
  WHEEL_INC=$("$PY" -c 'import os, nvidia; print(next((os.path.join(p, d, "include") for p in nvidia.__path__ for d in ("cu13", "cu12", "cusparse") if os.path.isfile(os.path.join(p, d, "include", "cusparse.h"))), ""))')
  [ -n "$WHEEL_INC" ] || { echo "no cusparse.h in $CUDA_HOME or in torch's nvidia wheels" >&2; exit 1; }
  export CPATH="$WHEEL_INC${CPATH:+:$CPATH}"
  echo "CPATH=$CPATH (library headers from torch's nvidia wheels)"
fi

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/rnngen-cuda-build.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT
# the tracked files plus untracked ones git does not ignore (the working tree as it is)
(cd "$ROOT" && git ls-files -z --cached --others --exclude-standard) | (cd "$ROOT" && xargs -0 cp --parents -t "$SCRATCH")

export RNNGEN_FORCE_CUDA=1 MAX_JOBS=${MAX_JOBS:-2} TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-8.0;9.0+PTX}
export NVCC_APPEND_FLAGS="${NVCC_APPEND_FLAGS:+$NVCC_APPEND_FLAGS }-Xptxas -v"  # the registers, below
start=$(date +%s)
LOG=${LOG:-${TMPDIR:-/tmp}/rnngen-cuda-build.log}
(cd "$SCRATCH" && "$VENV/bin/pip" install --no-build-isolation --no-deps -v . ) > "$LOG" 2>&1 || {
  grep -n -E "error|Error" "$LOG" | head -40; echo "BUILD FAILED (log: $LOG)" >&2; exit 1; }
echo "built in $(( $(date +%s) - start )) s (arch list $TORCH_CUDA_ARCH_LIST)"
grep -i "warning" "$LOG" | grep -v "^ *$" | tail -20 || true
c++filt < "$LOG" > "$SCRATCH/build-demangled.log"
"$PY" - "$SCRATCH/build-demangled.log" <<'PYEOF'
import re, sys
kernels, bad, name = {}, [], None
for line in open(sys.argv[1]):
    if m := re.search(r"Compiling entry function '(.+)' for '(sm_\d+)'", line):
        # void rnngen::cuda::(anonymous namespace)::sample_kernel<rnngen::cuda::GruCell, 1>(...)
        name, arch = re.sub(r"\w+::|\(anonymous namespace\)::|^void ", "", m.group(1)).split("(")[0], m.group(2)
        stack = spill = 0
    elif name and (m := re.search(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads", line)):
        stack, spill = int(m.group(1)), int(m.group(2)) + int(m.group(3))
    elif name and (m := re.search(r"Used (\d+) registers", line)):
        smem = re.search(r"(\d+) bytes smem", line)
        base, _, rows = name.rpartition(", ")  # sample_kernel<GruCell, 1>: rows per block 1
        key = (arch, base + ">") if rows[:-1].isdigit() else (arch, name)
        kernels.setdefault(key, []).append((rows[:-1] if rows[:-1].isdigit() else "", int(m.group(1)),
                                            int(smem.group(1)) if smem else 0))
        if spill or stack:
            bad.append(f"  {arch} {name}: {spill} bytes spilled, {stack} bytes of stack frame")
        name = None
print("ptxas: registers (by rows per block), static shared memory:")
for (arch, kernel), runs in sorted(kernels.items()):
    runs.sort(key=lambda r: int(r[0] or 0))
    regs = "/".join(str(n) for _, n, _ in runs)
    rows = f" (rows {'/'.join(r for r, _, _ in runs)})" if runs[0][0] else ""
    print(f"  {arch} {kernel}: {regs} registers{rows}, {max(s for _, _, s in runs)} B smem")
if not kernels:
    sys.exit("no ptxas report in the build log")
if bad:
    sys.exit("register spills or stack frames:\n" + "\n".join(bad))
print("no register spills, no stack frames")
PYEOF


cd /  # import the installed package, not the source tree
"$PY" - <<'PYEOF'
import torch
import rnngen._cuda  # noqa: F401  (loads the library: runs its TORCH_LIBRARY registrations)
from rnngen import dispatch

ops = sorted(n.split("::", 1)[1] for n in torch._C._dispatch_get_all_op_names() if n.startswith("rnngen_cuda::"))
print("torch.ops.rnngen_cuda:", ", ".join(ops))
for name in ops:
    op = getattr(torch.ops.rnngen_cuda, name).default
    print(" ", op._schema, "| CUDA kernel:", torch._C._dispatch_has_kernel_for_dispatch_key(op.name(), "CUDA"))
# every cell's five kernels (the GRU's under their plain names, the others' prefixed: lstm_scan_forward, ...)
wanted = [k if cell == "gru" else f"{cell}_{k}" for cell in dispatch.CELL_NAMES for k in dispatch.KERNELS]
missing = [k for k in wanted if k not in ops]
assert not missing, f"kernels missing from rnngen_cuda: {missing}"
no_impl = [k for k in wanted if not torch._C._dispatch_has_kernel_for_dispatch_key(f"rnngen_cuda::{k}", "CUDA")]
assert not no_impl, f"kernels without a CUDA implementation: {no_impl}"
# and rnngen.dispatch finds them by name as the "cuda" backend's float32 kernels of each cell
unfound = [(k, cell) for cell in dispatch.CELL_NAMES for k in dispatch.KERNELS
           if not dispatch.supports("cuda", k, torch.float32, cell) or dispatch.supports("cuda", k, torch.float64, cell)]
assert not unfound, f"rnngen.dispatch does not see these as float32 cuda kernels: {unfound}"
print("cuda kernels of every cell:", len(wanted))
import rnngen._cpu  # noqa: F401  (a different namespace: both may load in one process)
for name in ops:  # the same schemas as the CPU extension's, namespace aside
    cuda_schema = str(getattr(torch.ops.rnngen_cuda, name).default._schema).replace("rnngen_cuda::", "")
    cpu_schema = str(getattr(torch.ops.rnngen_cpu, name).default._schema).replace("rnngen_cpu::", "")
    assert cuda_schema == cpu_schema, (cuda_schema, cpu_schema)
print("schemas equal to rnngen_cpu's:", len(ops))
import rnngen
print("backend_status cuda:", rnngen.backend_status()["cuda"])
print("CUDA BUILD CHECK OK")
PYEOF
