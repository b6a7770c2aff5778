"""``--dry-run`` of ``bench evaluate`` and ``bench check``: the configuration checked as a run checks it, one line
per planned job saying whether it is stored, exit 0, and nothing trained, attacked or written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.config import build_config
from benchmark.pipeline import run_config
from benchmark.store import Store

ROOT = Path(__file__).resolve().parents[2]
QUICK = ["--dataset", "synthetic", "--model", "mlp", "--quick", "--device", "cpu", "--attack", "noise"]
SUMMARY = "(dry run: nothing trained, attacked or written)"


def bench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmark", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def jobs(stdout: str) -> list[tuple[str, int, str]]:
    """(defense, seed, status) of each job line; the summary line must follow them."""
    *lines, summary = stdout.splitlines()
    assert summary.endswith(SUMMARY), stdout
    parsed = [re.fullmatch(r"(\S+) +seed (\d+) +(stored|to run)", line) for line in lines]
    assert all(parsed), stdout
    return [(match[1], int(match[2]), match[3]) for match in parsed]


def files(root: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``root`` with its size and modification time."""
    return {str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns) for path in root.rglob("*")}


def test_a_dry_run_lists_every_job_and_creates_nothing(tmp_path):
    result = bench("evaluate", *QUICK, "--defense", "standard,pgd-at:eps=0.05", "--seeds", "2", "--dry-run",
                   cwd=tmp_path)  # the default --out, ./bench-results, does not exist
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert jobs(result.stdout) == [("standard", 0, "to run"), ("standard", 1, "to run"),
                                   ("pgd-at(eps=0.05)", 0, "to run"), ("pgd-at(eps=0.05)", 1, "to run")]
    assert "4 jobs: 4 to run, 0 stored in bench-results" in result.stdout
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--defense", "pgd_at"], "--defense: unknown defense 'pgd_at'; did you mean 'pgd-at'?"),
        (["--attack", "pgd:steps=0"], "--attack: pgd: steps must be an int in [1, 10000], got 0"),
        (["--eps", "-0.1"], "--eps: ε must be a finite number ≥ 0, got '-0.1'"),
        (["--out", "blocker/sub"], "--out: cannot create blocker/sub: blocker is not a writable directory"),
    ],
)
def test_bad_input_in_a_dry_run_is_one_line_exit_2(tmp_path, args, message):
    (tmp_path / "blocker").write_text("a file, not a directory")
    result = bench("evaluate", *QUICK, *args, "--dry-run", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [f"bench: error: {message}"]
    assert [path.name for path in tmp_path.iterdir()] == ["blocker"]


def test_a_dry_run_says_which_jobs_are_stored_and_changes_nothing(tmp_path):
    out = tmp_path / "results"
    run_config(build_config(None, {"out": str(out), "device": "cpu", "dataset": "synthetic", "model": "mlp",
                                 "defenses": "standard", "attacks": "noise", "quick": True}), executor="inline")
    before = files(out)
    result = bench("evaluate", *QUICK, "--defense", "standard,fgsm-at", "--out", str(out), "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert jobs(result.stdout) == [("standard", 0, "stored"), ("fgsm-at", 0, "to run")]
    assert f"2 jobs: 1 to run, 1 stored in {out}" in result.stdout
    fresh = bench("evaluate", *QUICK, "--defense", "standard,fgsm-at", "--out", str(out), "--dry-run", "--fresh",
                  cwd=tmp_path)
    assert jobs(fresh.stdout) == [("standard", 0, "to run"), ("fgsm-at", 0, "to run")]
    assert files(out) == before  # no journal files, no dataset facts, no leaderboard: the store is as it was


def test_a_read_only_store_sees_every_commit_and_writes_nothing(tmp_path):
    with Store(tmp_path) as writer:  # open: its commits sit in the WAL journal
        writer.put_dataset_facts("synthetic", "v1", "abc", 10)
        names = sorted(files(tmp_path))
        with Store(tmp_path, read_only=True) as reader:
            assert reader.dataset_facts("synthetic", "v1") == ("abc", 10)
            reader.put_dataset_facts("synthetic", "v2", "def", 5)  # into the copy in memory only
        assert sorted(files(tmp_path)) == names
    closed = files(tmp_path)  # the writer has folded its journal into bench.db and removed it
    with Store(tmp_path, read_only=True) as reader:
        assert reader.dataset_facts("synthetic", "v1") == ("abc", 10)
        assert reader.dataset_facts("synthetic", "v2") is None
    assert files(tmp_path) == closed
    with Store(tmp_path / "missing", read_only=True) as empty:
        assert empty.stored(["0" * 64]) == set()
    assert not (tmp_path / "missing").exists()


def test_check_dry_run_plans_the_baseline_and_creates_nothing(tmp_path):
    baseline = ROOT / "leaderboards" / "baselines" / "digits-quick.json"
    result = bench("check", "--baseline", str(baseline), "--out", str(tmp_path / "out"), "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert {(defense, status) for defense, _, status in jobs(result.stdout)} == {("standard", "to run"),
                                                                                ("pgd-at", "to run")}
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "bad.json").write_text('{"schema_version": 2, "config": {}, "rows": [], "eps": [NaN]}')
    bad = bench("check", "--baseline", "bad.json", "--dry-run", cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("bench: error: --baseline: bad.json is malformed")
