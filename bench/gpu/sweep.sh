#!/usr/bin/env bash
# The digits training sweep on a GPU host, evidence in $OUT: bash bench/gpu/sweep.sh [sweep options]
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python}
OUT=${OUT:-bench/results/sweep-$(date -u +%Y-%m-%dT%H%M)}
mkdir -p "$OUT"
bash bench/gpu/build.sh > "$OUT/build.log" 2>&1 || { tail -30 "$OUT/build.log"; exit 1; }
PYTHONPATH=$PWD PYTHONUNBUFFERED=1 "$PY" bench/gpu/digits_sweep.py --out "$OUT" "$@"
