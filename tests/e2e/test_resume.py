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

from tests.e2e.test_cli import QUICK, bench

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
    assert f"({finished} cached)" in resumed.stderr
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
    assert both.returncode == 0 and "(8 cached)" in both.stderr
    assert len(json.loads((out / "leaderboard.json").read_text())["rows"]) == 8


def test_corrupted_checkpoint_is_reported_once_and_retrained(tmp_path):
    out = tmp_path / "cache"
    first = bench("evaluate", *QUICK, "--defense", "standard", "--attack", "fgsm", "--out", str(out))
    assert first.returncode == 0, first.stderr
    before = json.loads((out / "leaderboard.json").read_text())["rows"]
    (checkpoint,) = (out / "checkpoints").glob("*.pt")
    checkpoint.write_bytes(checkpoint.read_bytes()[:200])  # truncated
    again = bench("evaluate", *QUICK, "--defense", "standard", "--attack", "fgsm,pgd", "--out", str(out))
    assert again.returncode == 0, again.stderr
    warnings = [line for line in again.stderr.splitlines() if "corrupted" in line]
    assert len(warnings) == 1 and "retraining" in warnings[0]
    rows = json.loads((out / "leaderboard.json").read_text())["rows"]
    assert rows[0]["per_attack"]["fgsm"] == before[0]["per_attack"]["fgsm"]  # the same model, retrained
    assert rows[0]["train_cached"] is False
