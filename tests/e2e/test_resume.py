"""Crash safety as a user meets it: ``kill -9`` in the middle of ``bench evaluate``, two runs writing one store at
once, and a corrupted cache file."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.e2e.test_cli import QUICK, bench

pytestmark = pytest.mark.slow  # each test runs `bench evaluate` in subprocesses: 5-11 s apiece on 2 cores

GRID = [*QUICK, "--defense", "standard,noise-aug,pgd-at,fgsm-at", "--attack", "suite:quick"]


def stored(out) -> int:
    try:
        with sqlite3.connect(out / "bench.db", timeout=30) as db:
            return db.execute("SELECT count(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def board_rows(out) -> list[tuple]:
    rows = json.loads((out / "leaderboard.json").read_text())["rows"]
    return sorted((r["defense"], r["seed"], json.dumps(r["robust_accuracy"]), json.dumps(r["per_attack"]),
                   json.dumps(r["samples"])) for r in rows)


def test_kill_9_then_resume_redoes_nothing_and_matches_an_uninterrupted_run(tmp_path):
    out = tmp_path / "killed"
    command = [sys.executable, "-m", "benchmark", "evaluate", *GRID, "--executor", "inline", "--out", str(out)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while stored(out) < 1 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = stored(out)
    assert 1 <= finished < 4, f"expected to kill the run mid-way, {finished} of 4 jobs were stored"

    resumed = bench("evaluate", *GRID, "--executor", "inline", "--out", str(out))
    assert resumed.returncode == 0, resumed.stderr
    assert f"4 jobs: {4 - finished} to run, {finished} cached" in resumed.stdout
    assert stored(out) == 4

    clean = tmp_path / "uninterrupted"
    assert bench("evaluate", *GRID, "--executor", "inline", "--out", str(clean)).returncode == 0
    assert board_rows(out) == board_rows(clean)
    with sqlite3.connect(out / "bench.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_two_evaluations_writing_one_store_at_once(tmp_path):
    out = tmp_path / "shared"
    runs = [subprocess.Popen([sys.executable, "-m", "benchmark", "evaluate", *GRID, "--seed", str(seed),
                              "--executor", "inline", "--out", str(out)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for seed in (0, 1)]
    for run in runs:
        _, stderr = run.communicate(timeout=600)
        assert run.returncode == 0, stderr
    assert stored(out) == 8
    with sqlite3.connect(out / "bench.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    both = bench("evaluate", *GRID, "--seed", "0,1", "--out", str(out))
    assert both.returncode == 0 and "8 jobs: 0 to run, 8 cached" in both.stdout
    assert len(json.loads((out / "leaderboard.json").read_text())["rows"]) == 8


def not_a_state_dict(checkpoint, out) -> None:
    """Replace the checkpoint by ``torch.save`` of a list, with a matching checksum in the store."""
    import hashlib

    import torch

    torch.save([torch.zeros(3)], checkpoint)
    with sqlite3.connect(out / "bench.db") as db:
        db.execute("UPDATE checkpoints SET sha256 = ?", (hashlib.sha256(checkpoint.read_bytes()).hexdigest(),))


@pytest.mark.parametrize(("damage", "reported"), [("truncated", "checksum mismatch"),
                                                  ("not a state dict", "holds a list, not a state dict")])
def test_corrupted_checkpoint_is_reported_once_and_retrained(tmp_path, damage, reported):
    out = tmp_path / "cache"
    first = bench("evaluate", *QUICK, "--defense", "standard", "--attack", "fgsm", "--out", str(out))
    assert first.returncode == 0, first.stderr
    before = json.loads((out / "leaderboard.json").read_text())["rows"]
    (checkpoint,) = (out / "checkpoints").glob("*.pt")
    if damage == "truncated":
        checkpoint.write_bytes(checkpoint.read_bytes()[:200])
    else:
        not_a_state_dict(checkpoint, out)
    again = bench("evaluate", *QUICK, "--defense", "standard", "--attack", "fgsm,pgd", "--out", str(out))
    assert again.returncode == 0, again.stderr
    warnings = [line for line in again.stderr.splitlines() if "corrupted" in line]
    assert len(warnings) == 1 and "retraining" in warnings[0] and reported in warnings[0]
    assert "error" not in again.stderr.lower()
    rows = json.loads((out / "leaderboard.json").read_text())["rows"]
    assert rows[0]["per_attack"]["fgsm"] == before[0]["per_attack"]["fgsm"]  # the same model, retrained
    assert rows[0]["train_cached"] is False
