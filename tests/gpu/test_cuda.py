"""Runs only where CUDA is available (see tests/gpu_check.sh); skipped with a reason elsewhere."""

from __future__ import annotations

import pytest
import torch

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (run tests/gpu_check.sh)")]


def test_evaluate_on_cuda_records_the_device(tmp_path):
    from benchmark.config import build_config
    from benchmark.pipeline import run_config

    config = build_config(None, {"out": str(tmp_path), "device": "cuda", "quick": True})
    board = run_config(config)
    assert {row["device"] for row in board.rows} == {"cuda"}
    assert all(row["provenance"]["versions"] for row in board.rows)
    by_defense = {row["defense"]: row for row in board.rows}
    assert by_defense["pgd-at"]["robust_accuracy"]["0.1"] > by_defense["standard"]["robust_accuracy"]["0.1"]


def test_gpu_and_cpu_agree_on_clean_accuracy(tmp_path):
    from benchmark.config import build_config
    from benchmark.pipeline import run_config

    boards = {device: run_config(build_config(None, {"out": str(tmp_path / device), "device": device, "quick": True,
                                                    "defenses": "standard", "attacks": "fgsm"}))
              for device in ("cpu", "cuda")}
    assert abs(boards["cpu"].rows[0]["clean_accuracy"] - boards["cuda"].rows[0]["clean_accuracy"]) <= 0.03
