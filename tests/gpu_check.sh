#!/usr/bin/env bash
# The GPU check, in one call on a fresh machine with CUDA (under 8 minutes: install ~2, tests ~1, speed table ≤ 5):
# install, run the GPU-marked tests, time a quick evaluation on the GPU, and print the speed table of PGD-10
# evaluation and PGD-AT training (preact-resnet18, wrn-28-10; bf16 autocast and channels_last on and off; the harness
# vs a hand-written loop; tests/gpu/speed.py). Everything lands in $OUT (default ./gpu-check).
# Usage: bash tests/gpu_check.sh     (check the speed script without a GPU: python -m tests.gpu.speed --dry)
set -euo pipefail
OUT=${OUT:-gpu-check}
mkdir -p "$OUT"
python3 -m venv /tmp/gpu-venv && . /tmp/gpu-venv/bin/activate
pip install -q torch==2.13.0 || pip install -q torch
pip install -q -e . "pytest>=8" "pytest-benchmark>=4"
nvidia-smi | tee "$OUT/nvidia-smi.txt"
python -c "import torch; assert torch.cuda.is_available(), 'torch sees no CUDA device'; print(torch.__version__)"
timeout 180 pytest -m gpu -v tests/gpu 2>&1 | tee "$OUT/gpu-tests.txt"
/usr/bin/time -v timeout 120 bench evaluate --quick --device cuda --out "$OUT/results" 2> "$OUT/time.txt" \
    | tee "$OUT/evaluate.txt"
timeout 330 python -m tests.gpu.speed --device cuda --budget-s 270 --json "$OUT/speed.json" 2> "$OUT/speed.log" \
    | tee "$OUT/speed.txt"
