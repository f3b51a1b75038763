#!/usr/bin/env bash
# End-to-end check on a machine with an NVIDIA GPU (target: under 8 minutes):
# 2,000 synthetic clips of 7 s (320x240, 25 fps, audio) -> InceptionV3 + audio features on CUDA
# with decoding spread over the CPU cores -> one training epoch -> predict -> one table.
#
#   bash benchmarks/gpu_check.sh             # the GPU run
#   bash benchmarks/gpu_check.sh --smoke     # CPU-sized smoke run (tests/test_engine.py runs it)
#   bash benchmarks/gpu_check.sh --clips 500 # fewer clips
#
# Uses ./.venv when present (`make setup` creates it), else the python on PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python)}"
export FIFTYONE_DO_NOT_TRACK=true FIFTYONE_SHOW_PROGRESS_BARS="${FIFTYONE_SHOW_PROGRESS_BARS:-false}"
export FIFTYONE_DATABASE_NAME="${FIFTYONE_DATABASE_NAME:-fiftyone-genre-gpu-check}"
exec timeout 900 "$PY" benchmarks/gpu_check.py "$@"
