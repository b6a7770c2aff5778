#!/usr/bin/env bash
# The GPU check, in one call on a machine with CUDA: install, run the GPU-marked tests and the quick benchmark on the
# GPU, and leave the numbers in $OUT (or ./gpu-check). Usage: bash tests/gpu_check.sh
set -euo pipefail
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
python3 -m venv /tmp/gpu-venv && . /tmp/gpu-venv/bin/activate
pip install -q torch==2.13.0 || pip install -q torch
pip install -q -e ".[dev]"
nvidia-smi | tee "$OUT/nvidia-smi.txt"
pytest -m gpu -v tests 2>&1 | tee "$OUT/gpu-tests.txt"
/usr/bin/time -v bench evaluate --device cuda --out "$OUT/results" 2> "$OUT/time.txt" | tee "$OUT/evaluate.txt"
bench evaluate --device cpu --out "$OUT/results-cpu" | tee "$OUT/evaluate-cpu.txt"
pytest tests/benchmarks --benchmark-enable --benchmark-json="$OUT/benchmarks.json" -s 2>&1 | tee "$OUT/benchmarks.txt"
