"""``bench check`` (the CI gate) and ``bench compare`` as a team's CI runs them."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.e2e.test_cli import QUICK, bench

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = ROOT / "leaderboards" / "baselines" / "digits-quick.json"


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    out = tmp_path_factory.mktemp("check")
    result = bench("evaluate", *QUICK, "--attack", "suite:quick", "--out", str(out))
    assert result.returncode == 0, result.stderr
    path = out / "baseline.json"
    shutil.copy(out / "leaderboard.json", path)
    return out, path


def edited(baseline_path: Path, tmp_path: Path, edit) -> Path:
    data = json.loads(baseline_path.read_text())
    edit(data)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))
    return path


def test_check_passes_against_its_own_baseline(baseline):
    out, path = baseline
    result = bench("check", "--baseline", str(path), "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK: no regression" in result.stdout and "2 jobs: 0 to run, 2 cached" in result.stdout  # nothing redone
    assert re.search(r"metric\s*┃\s*baseline\s*┃\s*now\s*┃", result.stdout)


def test_demanding_five_points_more_fails_and_names_the_row(baseline, tmp_path):
    out, path = baseline

    def demand_more(data):
        row = next(r for r in data["rows"] if r["defense"] == "pgd-at")
        row["robust_accuracy"]["0.1"] += 0.05

    result = bench("check", "--baseline", str(edited(path, tmp_path, demand_more)), "--out", str(out))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "REGRESSION" in result.stdout
    assert "FAIL: 1 regression(s)" in result.stdout
    assert "worst: pgd-at · mlp · seed 0, ε=0.1, -5.0 points" in result.stdout


def test_significant_paired_drop_fails_within_tolerance(baseline, tmp_path):
    out, path = baseline

    def every_sample_robust(data):
        row = next(r for r in data["rows"] if r["defense"] == "standard")
        row["samples"]["worst_broken_at"] = [len(data["eps"])] * len(row["samples"]["worst_broken_at"])

    result = bench("check", "--baseline", str(edited(path, tmp_path, every_sample_robust)), "--out", str(out),
                   "--tolerance", "0.99")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "SIGNIFICANT DROP" in result.stdout


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (None, "--baseline: file not found"),
        ("not json", "is not a readable JSON leaderboard"),
        ({"schema_version": 1, "rows": []}, "is not a leaderboard of schema version 2"),
        ("no-config", "has no 'config'"),
        ("unknown-defense", "cannot be reproduced here: defenses (in baseline"),
        ("other-data", "cannot be reproduced here: dataset 'synthetic' has fingerprint"),
    ],
)
def test_bad_baselines_exit_2_with_one_line(baseline, tmp_path, edit, message):
    out, path = baseline
    target = tmp_path / "bad.json"
    if edit == "not json":
        target.write_text("{ nope")
    elif isinstance(edit, dict):
        target.write_text(json.dumps(edit))
    elif edit is not None:
        data = json.loads(path.read_text())
        if edit == "no-config":
            del data["config"]
        elif edit == "unknown-defense":
            data["config"]["defenses"] = [{"name": "fancy-new-defense"}]
        else:
            data["provenance"]["data_fingerprint"] = "0123456789abcdef"
        target.write_text(json.dumps(data))
    result = bench("check", "--baseline", str(target), "--out", str(out))
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr


def test_an_infinite_median_distance_is_a_valid_baseline_number():
    """A minimal-norm attack that broke under half the samples it attacked has an infinite median distance: the
    leaderboard writes it (shown as ∞), and the baseline stays valid; anywhere else an infinity is malformed."""
    from benchmark.cli_reports import number_problem

    assert number_problem(("rows", 0, "median_distance", "hopskipjump"), float("inf"), 4) is None
    assert number_problem(("rows", 0, "median_distance", "hopskipjump"), float("nan"), 4) == "a finite number"
    assert number_problem(("rows", 0, "train_seconds"), float("inf"), 4) == "a finite number"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        (("rows", 0, "clean_accuracy"), float("nan"), "rows[0].clean_accuracy is nan; expected a finite number"),
        (("rows", 1, "robust_accuracy", "0.1"), float("inf"),
         'rows[1].robust_accuracy["0.1"] is inf; expected a finite number'),
        (("rows", 0, "robust_accuracy", "0.2"), 1.5, 'rows[0].robust_accuracy["0.2"] is 1.5; expected a fraction in '
                                                     "[0, 1]"),
        (("summary", 0, "clean_accuracy", "mean"), -0.25, "summary[0].clean_accuracy.mean is -0.25; expected a "
                                                          "fraction in [0, 1]"),
        (("eps", 1), -0.1, "eps[1] is -0.1; expected a number ≥ 0"),
        (("rows", 0, "samples", "worst_broken_at", 3), 9, "rows[0].samples.worst_broken_at[3] is 9; expected an ε "
                                                          "index from 0 to 4"),
        (("rows", 0, "train_seconds"), float("-inf"), "rows[0].train_seconds is -inf; expected a finite number"),
    ],
)
def test_baselines_with_a_bad_number_are_malformed(baseline, tmp_path, field, value, message):
    """NaN, infinite or out-of-range numbers (once "+nan ok", exit 0) make the baseline malformed: exit 2, naming
    the field."""
    out, path = baseline

    def plant(data):
        *parents, last = field
        for key in parents:
            data = data[key]
        data[last] = value

    bad = edited(path, tmp_path, plant)
    result = bench("check", "--baseline", str(bad), "--out", str(out))
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == [f"bench: error: --baseline: {bad} is malformed: {message}"]


@pytest.mark.slow
def test_check_stops_at_its_time_limit_and_names_the_running_job(baseline, tmp_path):
    _, path = baseline

    def train_for_ages(data):
        data["config"]["defenses"] = [{"name": "pgd-at", "epochs": 10000}]

    result = bench("check", "--baseline", str(edited(path, tmp_path, train_for_ages)), "--out", str(tmp_path / "new"),
                   "--time-limit", "8")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines() == ["bench: error: --time-limit of 8 s reached while running "
                                          "pgd-at(epochs=10000) (seed 0); 0 finished jobs kept"]


def test_compare_two_defenses_and_two_stores(baseline, tmp_path):
    out, _ = baseline
    result = bench("compare", "pgd-at", "standard", "--store", str(out))
    assert result.returncode == 0, result.stderr
    assert "pgd-at → standard" in result.stdout and "ε=0.1" in result.stdout and "clean" in result.stdout
    assert re.search(r"metric\s*┃\s*pgd-at\s*┃\s*standard\s*┃\s*Δ", result.stdout) and "before" not in result.stdout
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    result = bench("compare", str(out), str(copy))
    assert result.returncode == 0, result.stderr
    assert "+0.0" in result.stdout and "1" in result.stdout  # identical stores: no difference, p = 1
    result = bench("compare", "pgd-at", "nope", "--store", str(out))
    assert result.returncode == 2 and "no stored results for defense 'nope'" in result.stderr


@pytest.mark.slow
def test_committed_ci_baseline_has_no_regression(tmp_path):
    """The project's own CI gate: the committed baseline, re-evaluated from scratch, still holds."""
    result = bench("check", "--baseline", str(COMMITTED), "--out", str(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
