#!/usr/bin/env bash
# The benchmark's FlashRNN baseline for a GPU machine without a package registry: download its
# wheel and its pure-Python dependency (einops; torch, triton and ninja are on the GPU image) here,
# into bench/gpu/wheels/ (git-ignored), then carry that folder to the GPU machine, where
# bench/gpu/run.sh installs them with --no-deps. The version is the one the tests check the
# weight mapping against (pyproject.toml's test extra).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p wheels
python -m pip download --quiet --no-deps --only-binary :all: -d wheels "flashrnn==1.0.8" einops
ls wheels
