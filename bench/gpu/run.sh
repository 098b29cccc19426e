#!/usr/bin/env bash
# The one-shot GPU check of rnngen (see the workplace's gpu-check.md): everything in one go,
# evidence in one folder ($OUT when set, else bench/results/gpu-<date>).
#
#   bash bench/gpu/run.sh          (from anywhere; PYTHON=python3.12 to pick the interpreter)
#
# Steps, each under `timeout` so one failure still leaves the rest:
#   1. nvidia-smi; python, torch, triton, nvcc versions
#   2. build: pip install --no-build-isolation -e . with RNNGEN_FORCE_CUDA=1 (log kept)
#   3. GPU tests: tests/test_gpu.py on the cuda and triton backends (float32 and bf16), and the
#      CPU-side checks of the CUDA sources (tests/test_cuda_sources.py)
#   4. compute-sanitizer memcheck and racecheck on a short sample run and a scan fwd+bwd run
#      (and decode fwd+bwd with memcheck)
#   5. the benchmark suite, python -m rnngen.bench --device cuda (sampling B=64 h=128/256 28x28
#      vs the eager and CUDA-graph loops, the seed's generator, scan fwd+bwd T=784 vs cuDNN
#      nn.GRU, FlashRNN where it imports), JSON into the evidence folder; then the cuda backend
#      again with RNNGEN_CUDA_CLUSTERS=0 (no sm_90 cluster variants)
#   6. a short table: workload, backend, baseline, speed-up, card; then each step's status
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
PY=${PYTHON:-python}
EVID=${OUT:-$ROOT/bench/results/gpu-$(date -u +%Y-%m-%dT%H%M)}
mkdir -p "$EVID"
STATUS=()

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log to $EVID/NAME.log, keep going
  local name=$1 limit=$2
  shift 2
  echo "=== $name (limit ${limit}s)"
  local start=$(date +%s)
  timeout --kill-after=20 "$limit" "$@" > "$EVID/$name.log" 2>&1
  local rc=$?
  tail -25 "$EVID/$name.log"
  STATUS+=("$name: rc=$rc ($(( $(date +%s) - start )) s)")
  echo "=== $name: rc=$rc"
  return 0
}

# 1. the machine
{
  nvidia-smi || true
  "$PY" -c 'import sys, torch; print("python", sys.version.split()[0]); print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name() if torch.cuda.is_available() else None)'
  "$PY" -c 'import triton; print("triton", triton.__version__)' || echo "triton: not importable"
  nvcc --version | tail -2 || true
  command -v compute-sanitizer || echo "compute-sanitizer: not on PATH"
} 2>&1 | tee "$EVID/machine.log"

# 2. build (a toolkit without the cuBLAS/cuSPARSE headers borrows them from torch's nvidia wheels)
if [ -z "${CUDA_HOME:-}" ] && command -v nvcc > /dev/null; then
  CUDA_HOME=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
  [ -f "$CUDA_HOME/include/cuda_runtime_api.h" ] || CUDA_HOME=/usr/local/cuda
  export CUDA_HOME
fi
if [ -n "${CUDA_HOME:-}" ] && [ ! -f "$CUDA_HOME/include/cusparse.h" ]; then
  WHEEL_INC=$("$PY" -c 'import os, nvidia; print(next((os.path.join(p, d, "include") for p in nvidia.__path__ for d in ("cu13", "cu12", "cusparse") if os.path.isfile(os.path.join(p, d, "include", "cusparse.h"))), ""))' 2>/dev/null)
  [ -n "$WHEEL_INC" ] && export CPATH="$WHEEL_INC${CPATH:+:$CPATH}"
fi
step build 1500 env RNNGEN_FORCE_CUDA=1 MAX_JOBS=${MAX_JOBS:-8} "$PY" -m pip install --no-build-isolation --no-deps -v -e .
"$PY" -c 'import rnngen; print(rnngen.backend_status())' 2>&1 | tee "$EVID/backend_status.log"

# 3. tests
step tests_cuda 1200 env RNNGEN_GPU_BACKENDS=cuda "$PY" -m pytest -q -p no:cacheprovider tests/test_gpu.py
step tests_triton 1800 env RNNGEN_GPU_BACKENDS=triton TRITON_INTERPRET=0 "$PY" -m pytest -q -p no:cacheprovider tests/test_gpu.py
step tests_cuda_sources 900 "$PY" -m pytest -q -p no:cacheprovider tests/test_cuda_sources.py

# 4. compute-sanitizer on the fused kernels (small shapes: racecheck is slow)
if command -v compute-sanitizer > /dev/null; then
  for case in sample scan; do
    for tool in memcheck racecheck; do
      step "sanitizer_${tool}_${case}" 900 compute-sanitizer --tool "$tool" --error-exitcode 1 \
        "$PY" bench/gpu/sanitize_case.py "$case"
    done
  done
  step sanitizer_memcheck_decode 900 compute-sanitizer --tool memcheck --error-exitcode 1 \
    "$PY" bench/gpu/sanitize_case.py decode
  # H = 256 without the sm_90 cluster variants: the one-block path streaming W_hh from global memory
  for case in sample scan; do
    step "sanitizer_memcheck_${case}_no_clusters" 900 env RNNGEN_CUDA_CLUSTERS=0 compute-sanitizer --tool memcheck \
      --error-exitcode 1 "$PY" bench/gpu/sanitize_case.py "$case"
  done
else
  STATUS+=("compute-sanitizer: not found, skipped")
fi

# 5. the benchmark
step bench 900 "$PY" -m rnngen.bench --device cuda --compile-timeout 60 --budget ${BENCH_BUDGET:-600} \
  --json "$EVID/bench-gpu.json"
# the cuda backend without its sm_90 cluster variants (they only change H >= 256 on sm_90)
step bench_no_clusters 600 env RNNGEN_CUDA_CLUSTERS=0 "$PY" -m rnngen.bench --device cuda --backends cuda \
  --no-compile -k sampling -k scan --repeats 3 --json "$EVID/bench-gpu-no-clusters.json"

# 6. summary: the table last
echo
echo "=== steps"
printf '%s\n' "${STATUS[@]}" | tee "$EVID/steps.log"
echo
echo "evidence: $EVID"
for f in "$EVID/bench-gpu.json" "$EVID/bench-gpu-no-clusters.json"; do
  "$PY" -m rnngen.bench --from-json "$f" --markdown || echo "no benchmark results in $f"
done
