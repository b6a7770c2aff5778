"""The privacy axis end to end: a reduced run of the reference privacy setting (``leaderboards/configs/
privacy-digits.toml``) through the real CLI, its baseline re-checked by ``bench check``, and the committed reference
leaderboard (``leaderboards/digits-privacy.json``) holding what the issue asked the setting to show."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "leaderboards" / "configs" / "privacy-digits.toml"
COMMITTED = ROOT / "leaderboards" / "digits-privacy.json"
#: The reduced run: one seed, an eighth of the training (--quick), four of the six defenses, fewer rounds, and
#: gradient inversion of one client's batch-1 update only.
REDUCED = ["--seed", "0", "--quick", "--defense", "standard:epochs=100,dp-sgd:epochs=40,target_epsilon=4,"
           "fedavg:rounds=16,dp-fedavg:rounds=8", "--privacy",
           "mia-rule,mia-blackbox,gradient-inversion:batch_sizes=1,local_steps=1,iterations=200,victims=1"]


def bench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmark", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)


def rows_by_defense(board: dict) -> dict[str, dict]:
    return {row["defense"].split("(")[0]: row for row in board["rows"]}


@pytest.mark.slow
def test_a_reduced_reference_run_scores_privacy_and_its_baseline_checks(tmp_path):
    result = bench("evaluate", "--config", str(CONFIG), *REDUCED, "--device", "cpu", "--out", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    board = json.loads((tmp_path / "out" / "leaderboard.json").read_text(encoding="utf-8"))
    rows = rows_by_defense(board)
    assert sorted(rows) == ["dp-fedavg", "dp-sgd", "fedavg", "standard"]
    for row in rows.values():  # every model is scored by both membership attacks, on the same split
        membership = row["privacy"]["membership"]
        assert membership["attacks"] == ["mia-rule", "mia-blackbox"] and membership["nonmember_source"] == "holdout"
        assert 0.0 <= membership["auc"]["mean"] <= 1.0 and membership["auc"]["n_members"] == 50
    assert rows["dp-sgd"]["privacy"]["dp"]["epsilon"] <= 4.0 and rows["dp-sgd"]["privacy"]["dp"]["level"] == "sample"
    assert rows["dp-fedavg"]["privacy"]["dp"]["level"] == "client"
    assert rows["standard"]["privacy"]["dp"] is None
    psnr = {name: rows[name]["privacy"]["inversion"]["psnr"] for name in ("fedavg", "dp-fedavg")}
    assert psnr["fedavg"] >= 25 > psnr["dp-fedavg"], psnr  # DP-FedAvg's noised release defeats the inversion
    assert rows["standard"]["privacy"].get("inversion") is None  # not federated: no client update to invert
    check = bench("check", "--baseline", "out/leaderboard.json", "--out", "out", cwd=tmp_path)
    assert check.returncode == 0, check.stdout + check.stderr  # re-runs the privacy attacks from the baseline
    assert "MIA adv." in check.stdout


def test_the_committed_privacy_leaderboard_shows_what_the_setting_is_for():
    """In the reference setting the undefended model leaks (MIA AUC ≥ 0.60), DP-SGD at ε ≤ 4 brings it to ≤ 0.55,
    batch-1 client updates of FedAvg are reconstructed (PSNR ≥ 25 dB) and DP-FedAvg's are not."""
    board = json.loads(COMMITTED.read_text(encoding="utf-8"))
    rows = {row["defense"].split("(")[0]: row for row in board["summary"]}  # mean over the seeds
    assert sorted(rows) == ["dp-fedavg", "dp-sgd", "fed-at", "fedavg", "pgd-at", "standard"]
    assert all(row["seeds"] == [0, 1, 2] for row in rows.values())
    auc = {name: row["privacy"]["membership"]["auc"]["mean"] for name, row in rows.items()}
    assert auc["standard"] >= 0.60 and auc["dp-sgd"] <= 0.55, auc
    assert rows["dp-sgd"]["privacy"]["dp"]["epsilon"] <= 4.0
    psnr = {name: rows[name]["privacy"]["inversion"]["psnr"] for name in ("fedavg", "fed-at", "dp-fedavg")}
    assert min(psnr["fedavg"], psnr["fed-at"]) >= 25 > psnr["dp-fedavg"], psnr
