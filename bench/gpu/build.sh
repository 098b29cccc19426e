#!/usr/bin/env bash
# Build rnngen's extensions in place on a GPU host (the CUDA one forced): bash bench/gpu/build.sh
# A toolkit without the cuBLAS/cuSPARSE headers borrows them from torch's nvidia wheels.
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python}
if [ -z "${CUDA_HOME:-}" ] && command -v nvcc > /dev/null; then
  CUDA_HOME=$(dirname "$(dirname "$(readlink -f "$(command -v nvcc)")")")
  [ -f "$CUDA_HOME/include/cuda_runtime_api.h" ] || CUDA_HOME=/usr/local/cuda
  export CUDA_HOME
fi
if [ -n "${CUDA_HOME:-}" ] && [ ! -f "$CUDA_HOME/include/cusparse.h" ]; then
  WHEEL_INC=$("$PY" -c 'import os, nvidia; print(next((os.path.join(p, d, "include") for p in nvidia.__path__ for d in ("cu13", "cu12", "cusparse") if os.path.isfile(os.path.join(p, d, "include", "cusparse.h"))), ""))' 2>/dev/null)
  [ -n "$WHEEL_INC" ] && export CPATH="$WHEEL_INC${CPATH:+:$CPATH}"
fi
exec env RNNGEN_FORCE_CUDA=1 MAX_JOBS=${MAX_JOBS:-16} "$PY" setup.py build_ext --inplace
