#!/usr/bin/env bash
# MNIST on a GPU in one go (the built-in 28x28 digits, `rnngen train --data mnist [--binarize]`):
#
#   bash bench/gpu/mnist.sh          RNNGEN_GPU_SECONDS=420 (the whole script's time)
#
#   1. the machine; the extensions built in place (bench/gpu/build.sh). Without the CUDA
#      extension the steps below use the triton backend.
#   2. training time per step of MNIST's two recipes on the GPU, per backend (cuda, then triton):
#      two runs each that differ only in --steps (bench/gpu/mnist_check.py per-step), alone on the GPU
#   3. torchrun on the GPU: one process per GPU (here one: a group of one, so NCCL's collectives
#      run, NCCL_DEBUG=INFO shows its version), trained and resumed, against a plain process;
#      sharded sampling under torchrun against plain sampling
#   4. with the time left: the 256-level recipe trained for as many steps as fit (its checkpoint
#      and metrics come back), beside tests/test_gpu.py on the cuda backend
# Evidence: $OUT when set (at most 8 files come back), else bench/results/gpu-mnist-<date>.
# A dry run of the script's logic on a machine without a GPU (tiny runs on the CPU backend):
#   RNNGEN_DEVICE=cpu RNNGEN_BACKEND=cpu RNNGEN_SKIP_BUILD=1 RNNGEN_STEPS="2 6 4 6" bash bench/gpu/mnist.sh
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
PY=${PYTHON:-python3}
START=$(date +%s)
DEADLINE=$(( START + ${RNNGEN_GPU_SECONDS:-420} ))
DEST=${OUT:-$ROOT/bench/results/gpu-mnist-$(date -u +%Y-%m-%dT%H%M)}
W=$(mktemp -d /tmp/rnngen-mnist-XXXX)    # run folders and logs
mkdir -p "$DEST"
STATUS=$W/steps.log
: > "$STATUS"
export PYTHONUNBUFFERED=1 TRITON_INTERPRET=0

left() { echo $(( DEADLINE - $(date +%s) )); }

step() {  # step NAME SECONDS COMMAND...: with a limit cut to the time left, logged to $W/NAME.log
  local name=$1 limit=$2
  shift 2
  local room=$(( $(left) - 20 ))
  if (( room < 10 )); then echo "$name: skipped (no time left)" >> "$STATUS"; return 1; fi
  (( limit > room )) && limit=$room
  local t0=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" > "$W/$name.log" 2>&1
  local rc=$?
  echo "$name: rc=$rc ($(( $(date +%s) - t0 )) s)" | tee -a "$STATUS"
  (( rc == 0 )) || tail -5 "$W/$name.log"
  return $rc
}

finish() {
  cp "$STATUS" "$DEST/steps.log"
  cp "$W/results.log" "$DEST/results.log" 2> /dev/null
  for f in checkpoint.pt model.pt metrics.json; do
    [ -f "$W/long/$f" ] && cp "$W/long/$f" "$DEST/long-$f"
  done
  tar czf "$DEST/logs.tar.gz" -C "$W" --exclude='*.pt' --exclude='*.npz' . 2> /dev/null
  echo "=== steps"; cat "$STATUS"
  echo "=== results"; cat "$W/results.log" 2> /dev/null
  echo "evidence: $DEST (total $(( $(date +%s) - START )) s)"
}
trap finish EXIT

# 1. the machine and the build
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  "$PY" -c 'import sys, torch, triton; print("python", sys.version.split()[0], "torch", torch.__version__, "triton", triton.__version__, torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU")'
  "$PY" -c 'import torch; print("nccl", torch.cuda.nccl.version())' || true
} 2>&1 | tee "$W/machine.log"
[ -n "${RNNGEN_SKIP_BUILD:-}" ] || step build 240 bash bench/gpu/build.sh
export PYTHONPATH=$ROOT${PYTHONPATH:+:$PYTHONPATH}
DEVICE=${RNNGEN_DEVICE:-cuda}
BACKEND=${RNNGEN_BACKEND:-}
[ -n "$BACKEND" ] || BACKEND=$("$PY" -c 'import rnngen; print("cuda" if rnngen.backend_status()["cuda"] == "available" else "triton")' 2>> "$W/machine.log")
"$PY" -c 'import rnngen; print(rnngen.backend_status())' >> "$W/machine.log" 2>&1
echo "backend for the runs: $BACKEND" | tee -a "$W/machine.log"

# steps of the timing runs (short, long) and of the torchrun runs (trained, resumed to); triton's
# one-program kernels are far slower than cuda's, so its timing runs are shorter
read -r T_SHORT T_LONG N_STEPS N_RESUME <<< "${RNNGEN_STEPS:-20 $([ "$BACKEND" = cuda ] && echo 520 || echo 70) 60 90}"
TRAIN=(-m rnngen train --data mnist --device "$DEVICE" --eval-every 0 --no-progress)
R=$W/results.log

# 2. time per step, alone on the GPU: the recipes as `rnngen train --data mnist [--binarize]` train them
timing() {  # timing BACKEND NAME SHORT LONG [options]
  local backend=$1 name=$2 short=$3 long=$4
  shift 4
  step "time_${name}_${backend}_a" 120 "$PY" "${TRAIN[@]}" --backend "$backend" --steps "$short" \
    --out "$W/t-$name-$backend-a" "$@" || return 1
  step "time_${name}_${backend}_b" 180 "$PY" "${TRAIN[@]}" --backend "$backend" --steps "$long" \
    --out "$W/t-$name-$backend-b" "$@" || return 1
  echo "time per step, $name, $backend: $("$PY" bench/gpu/mnist_check.py per-step "$W/t-$name-$backend-a" \
    "$W/t-$name-$backend-b")" >> "$R"
}
timing "$BACKEND" 256 "$T_SHORT" "$T_LONG"
timing "$BACKEND" bin "$T_SHORT" "$T_LONG" --binarize

# 3. torchrun with NCCL on the GPU against a plain process (the same seed, recipe and steps)
RUN=("$PY" -m torch.distributed.run --standalone --nproc-per-node 1)
NCCL=(--binarize --backend "$BACKEND" --steps "$N_STEPS" --checkpoint-every "$N_STEPS")
step nccl_train 120 env NCCL_DEBUG=INFO "${RUN[@]}" "${TRAIN[@]}" "${NCCL[@]}" --out "$W/nccl" \
  && step plain_train 120 "$PY" "${TRAIN[@]}" "${NCCL[@]}" --out "$W/plain" \
  && "$PY" bench/gpu/mnist_check.py same-weights "$W/nccl" "$W/plain" >> "$R" 2>&1
grep -m1 -o "NCCL version [^ ]*" "$W/nccl_train.log" >> "$R"
step nccl_resume 120 "${RUN[@]}" -m rnngen train --device "$DEVICE" --out "$W/nccl" --resume --steps "$N_RESUME" --no-progress \
  && step plain_resume 120 "$PY" -m rnngen train --device "$DEVICE" --out "$W/plain" --resume --steps "$N_RESUME" --no-progress \
  && "$PY" bench/gpu/mnist_check.py same-weights "$W/nccl" "$W/plain" >> "$R" 2>&1
SAMPLE=(-m rnngen sample --device "$DEVICE" --backend "$BACKEND" --checkpoint "$W/plain/model.pt" --num-samples 40 --seed 3)
step nccl_sample 120 "${RUN[@]}" "${SAMPLE[@]}" --out "$W/nccl.png" --save-array "$W/nccl.npz" \
  && step plain_sample 120 "$PY" "${SAMPLE[@]}" --out "$W/plain.png" --save-array "$W/plain.npz" \
  && "$PY" bench/gpu/mnist_check.py same-arrays "$W/nccl.npz" "$W/plain.npz" >> "$R" 2>&1

# 4. the 256-level recipe for as many steps as fit (at the measured rate, less a margin for the
#    GPU tests beside it and the evaluation), and the cuda backend's GPU tests beside it
if [ -f "$W/t-256-$BACKEND-b/metrics.json" ]; then
  STEPS=$("$PY" bench/gpu/mnist_check.py steps-for "$W/t-256-$BACKEND-a" "$W/t-256-$BACKEND-b" \
    "$(( ($(left) - 60) * 7 / 10 ))")
  (( STEPS > 30000 )) && STEPS=30000
  [ -n "${RNNGEN_STEPS:-}" ] && STEPS=$T_LONG
  echo "long run: the 256-level recipe, $STEPS steps, backend $BACKEND" >> "$R"
  if (( STEPS >= 1000 )) || [ -n "${RNNGEN_STEPS:-}" ]; then
    step long $(( $(left) - 25 )) "$PY" "${TRAIN[@]}" --backend "$BACKEND" --steps "$STEPS" \
      --eval-every $(( STEPS / 5 )) --checkpoint-every 500 --out "$W/long" &
    LONG=$!
  fi
fi
if [ "$BACKEND" = cuda ]; then
  XDIST=$("$PY" -c 'import xdist' 2> /dev/null && echo "-n 4")
  step tests_gpu_cuda 200 env RNNGEN_GPU_BACKENDS=cuda "$PY" -m pytest -q -p no:cacheprovider $XDIST tests/test_gpu.py
  grep -E "passed|failed" "$W/tests_gpu_cuda.log" | tail -1 >> "$R"
fi
[ -n "${LONG:-}" ] && wait "$LONG"
[ -f "$W/long/metrics.json" ] && "$PY" -c 'import json,sys; m=json.load(open(sys.argv[1])); print("long run:", m["steps"], "steps,", round(m["seconds"]), "s, test bits/dim", m.get("test_bits_per_dim"), "history", [(h["step"], round(h["test_bits_per_dim"], 4)) for h in m["history"]])' "$W/long/metrics.json" >> "$R"
