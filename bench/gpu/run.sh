#!/usr/bin/env bash
# The one-shot GPU check of rnngen (see the workplace's gpu-check.md): everything in one go,
# evidence in one folder, inside a fixed time (GPU leases are short).
#
#   bash bench/gpu/run.sh          (from anywhere; PYTHON=python3.12 to pick the interpreter)
#   RNNGEN_GPU_SECONDS=450         the whole script's time; every step's limit is cut to fit it
#
# Steps, each under `timeout` so one failure still leaves the rest:
#   1. nvidia-smi; python, torch, triton, nvcc versions; FlashRNN's wheels installed where they came
#      along (bench/gpu/wheels.sh downloads them on a machine with a registry; carry bench/gpu/wheels)
#   2. build: bench/gpu/build.sh (setup.py build_ext --inplace, CUDA forced; log kept). Meanwhile the
#      triton tests (the same files, triton on the GPU) run from a copy of the tree (triton needs no build, and the copy keeps them
#      from importing a half-written .so)
#   3. after the build, side by side: tests/test_gpu.py and the shared suites' GPU targets
#      (tests/test_ops.py, test_cells.py, -k gpu) on the cuda backend (float32 and bf16),
#      and compute-sanitizer memcheck and racecheck on short sample, scan and decode runs
#      (bench/gpu/sanitize_case.py), also with RNNGEN_CUDA_CLUSTERS=0
#   4. the benchmark alone on the GPU, then bench/gpu/step_clocks.cu (where a B=1 step's time goes, in
#      clock64 cycles per phase; built during step 3), python -m rnngen.bench --device cuda (sampling, the article's
#      generator, scan fwd+bwd T=784 vs cuDNN nn.GRU, CUDA graphs, FlashRNN where it imports)
#      with the torch.compile baseline off, then the cuda backend with RNNGEN_CUDA_CLUSTERS=0 and
#      torch.compile on the sampling workloads, as far as the time allows
#   5. a short table: workload, backend, baseline, speed-up, card; then each step's status
# Evidence: $OUT when set (the device tool brings back at most 8 files: the JSONs, the step
# list and a tarball of every log), else bench/results/gpu-<date>.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
PY=${PYTHON:-python}
START=$(date +%s)
DEADLINE=$(( START + ${RNNGEN_GPU_SECONDS:-3600} ))
DEST=${OUT:-$ROOT/bench/results/gpu-$(date -u +%Y-%m-%dT%H%M)}
EVID=$(mktemp -d /tmp/rnngen-gpu-XXXX)
mkdir -p "$DEST"
STATUS_FILE=$EVID/steps.log
: > "$STATUS_FILE"

left() { echo $(( DEADLINE - $(date +%s) )); }

step() {  # step NAME SECONDS COMMAND...: run with a limit (cut to the time left), log to $EVID/NAME.log
  local name=$1 limit=$2
  shift 2
  local room=$(( $(left) - 15 ))
  if (( room < 10 )); then
    echo "$name: skipped (no time left)" >> "$STATUS_FILE"
    return 0
  fi
  (( limit > room )) && limit=$room
  echo "=== $name (limit ${limit}s)"
  local t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" > "$EVID/$name.log" 2>&1
  local rc=$?
  echo "$name: rc=$rc ($(( $(date +%s) - t0 )) s)" >> "$STATUS_FILE"
  echo "=== $name: rc=$rc ($(( $(date +%s) - t0 )) s)"
  tail -6 "$EVID/$name.log"
  return 0
}

finish() {  # the evidence into $DEST, the step list and the table last
  cp "$EVID"/bench-gpu*.json "$DEST"/ 2> /dev/null
  cp "$STATUS_FILE" "$DEST"/steps.log
  tar czf "$DEST/logs.tar.gz" -C "$EVID" . 2> /dev/null
  echo
  echo "=== steps"
  cat "$STATUS_FILE"
  for f in "$EVID"/bench-gpu*.json; do
    [ -f "$f" ] && { echo "--- $(basename "$f")"; "$PY" -m rnngen.bench --from-json "$f" --markdown | grep '^|'; }
  done
  echo "evidence: $DEST (total $(( $(date +%s) - START )) s)"
}
trap finish EXIT

# 1. the machine
{
  nvidia-smi || true
  "$PY" -c 'import sys, torch; print("python", sys.version.split()[0]); print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name() if torch.cuda.is_available() else None)'
  "$PY" -c 'import triton; print("triton", triton.__version__)' || echo "triton: not importable"
  nvcc --version | tail -2 || true
  command -v compute-sanitizer || echo "compute-sanitizer: not on PATH"
} > "$EVID/machine.log" 2>&1
grep -E "^(python|torch|triton)|Cuda compilation|H100|H200" "$EVID/machine.log"

# FlashRNN for the benchmark's baseline, when its wheels came along (bench/gpu/wheels.sh, carried:
# the GPU machine has no package registry)
if ls bench/gpu/wheels/*.whl > /dev/null 2>&1; then
  "$PY" -m pip install --quiet --no-deps --no-index bench/gpu/wheels/*.whl > "$EVID/wheels.log" 2>&1 \
    && echo "wheels: installed $(ls bench/gpu/wheels)" >> "$STATUS_FILE" \
    || echo "wheels: install failed (logs.tar.gz wheels.log)" >> "$STATUS_FILE"
fi

# pytest-xdist where it is installed (the GPU image has it): tests run on 4 workers
XDIST=$("$PY" -c 'import xdist' 2> /dev/null && echo "-n 4")

# 2. the triton tests (no build needed) from a copy, while the extensions build here
TRITON_TREE=$(mktemp -d /tmp/rnngen-triton-XXXX)
cp -r rnngen tests pyproject.toml "$TRITON_TREE"/
( cd "$TRITON_TREE" && step tests_triton 420 env PYTHONPATH="$TRITON_TREE" RNNGEN_GPU_BACKENDS=triton \
    TRITON_INTERPRET=0 "$PY" -m pytest -q -p no:cacheprovider $XDIST tests/test_gpu.py tests/test_ops.py \
    tests/test_cells.py -k gpu ) &
TRITON_JOB=$!

step build 400 bash bench/gpu/build.sh
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
"$PY" -c 'import rnngen; print(rnngen.backend_status())' 2>&1 | tee "$EVID/backend_status.log"

# 3. the cuda tests and compute-sanitizer side by side (small shapes: racecheck is slow)
step tests_cuda 300 env RNNGEN_GPU_BACKENDS=cuda TRITON_INTERPRET=0 "$PY" -m pytest -q -p no:cacheprovider $XDIST \
  tests/test_gpu.py tests/test_ops.py tests/test_cells.py -k gpu &
SIDE=($!)
if command -v compute-sanitizer > /dev/null; then
  for case in sample scan decode; do
    for tool in memcheck racecheck; do
      step "sanitizer_${tool}_${case}" 240 compute-sanitizer --tool "$tool" --error-exitcode 1 \
        "$PY" bench/gpu/sanitize_case.py "$case" &
      SIDE+=($!)
    done
  done
  # H = 256 without the sm_90 cluster variants (and H = 1024 without the grid split): the one-block path
  for case in sample scan; do
    step "sanitizer_memcheck_${case}_no_clusters" 240 env RNNGEN_CUDA_CLUSTERS=0 RNNGEN_CUDA_GRID=0 compute-sanitizer \
      --tool memcheck --error-exitcode 1 "$PY" bench/gpu/sanitize_case.py "$case" &
    SIDE+=($!)
  done
else
  echo "compute-sanitizer: not found, skipped" >> "$STATUS_FILE"
fi
# the step-clock probe (bench/gpu/step_clocks.cu: where a B=1 step's time goes), built meanwhile
step step_clocks_build 180 nvcc -arch=sm_90 -std=c++17 -O3 -DRNNGEN_STEP_CLOCKS -Icsrc bench/gpu/step_clocks.cu \
  -o "$EVID/step_clocks" &
SIDE+=($!)
wait "${SIDE[@]}" "$TRITON_JOB"

# 4. the benchmark, alone on the GPU
budget() { echo $(( $(left) - 45 )); }
step bench 600 "$PY" -m rnngen.bench --device cuda --no-compile --repeats 5 --budget "$(budget)" \
  --json "$EVID/bench-gpu.json"
[ -x "$EVID/step_clocks" ] && step step_clocks 60 "$EVID/step_clocks" 20
if (( $(budget) > 40 )); then  # scan in float16: cuDNN as under autocast, rnngen's tensor-core path at 16 rows
  step bench_fp16 240 "$PY" -m rnngen.bench --device cuda --dtype float16 --no-compile -k scan --repeats 3 \
    --budget "$(( $(budget) / 2 ))" --json "$EVID/bench-gpu-fp16.json"
fi
if (( $(budget) > 30 )); then
  step bench_no_clusters 300 env RNNGEN_CUDA_CLUSTERS=0 "$PY" -m rnngen.bench --device cuda --backends cuda \
    --no-compile -k sampling -k scan --repeats 3 --budget "$(( $(budget) / 2 ))" --json "$EVID/bench-gpu-no-clusters.json"
fi
if (( $(budget) > 40 )); then
  step bench_compile 300 "$PY" -m rnngen.bench --device cuda --compile --compile-timeout 60 -k sampling \
    --repeats 3 --budget "$(budget)" --json "$EVID/bench-gpu-compile.json"
fi
