"""The ``bench`` command as a user runs it: a real process, a real store, real files."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

QUICK = ["--dataset", "synthetic", "--model", "mlp", "--quick", "--device", "cpu"]


def bench(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmark", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def rows(out) -> list[tuple]:
    with sqlite3.connect(out / "bench.db") as db:
        return db.execute("SELECT job_hash, defense, clean_accuracy FROM results ORDER BY job_hash").fetchall()


def test_help_and_list_import_neither_torch_nor_art():
    probe = (
        "import sys\n"
        "from benchmark.cli import main\n"
        "for args in (['--help'], ['list'], ['list', 'attacks']):\n"
        "    try:\n"
        "        main(args)\n"
        "    except SystemExit as exit:\n"
        "        assert exit.code == 0, exit.code\n"
        "print('\\nheavy:', sorted(m for m in ('torch', 'art', 'sklearn') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith("heavy: []")
    assert "pgd-at" in result.stdout and "steps=7" in result.stdout and "[norms=Linf,L2 needs_grad]" in result.stdout


def test_evaluate_records_renders_and_resumes(tmp_path):
    out = tmp_path / "results"
    first = bench("evaluate", *QUICK, "--out", str(out))
    assert first.returncode == 0, first.stderr
    assert "Quick run" in first.stdout and "pgd-at" in first.stdout
    board = json.loads((out / "leaderboard.json").read_text())
    assert board["schema_version"] == 2 and board["dataset"] == "synthetic" and board["norm"] == "inf"
    assert board["headline_eps"] == 0.1
    assert [row["defense"] for row in board["rows"]] != [] and len(board["rows"]) == 2
    for row in board["rows"]:
        assert {"defense", "model", "seed", "clean_accuracy", "robust_accuracy", "per_attack", "train_seconds",
                "eval_seconds", "device"} <= set(row)
        assert set(row["robust_accuracy"]) == {"0", "0.1", "0.2", "0.3"}
        assert set(row["per_attack"]) == {"fgsm", "pgd", "apgd-ce", "apgd-dlr", "square", "noise"}
        values = [row["robust_accuracy"][k] for k in ("0", "0.1", "0.2", "0.3")]
        assert values == sorted(values, reverse=True) and values[0] == row["clean_accuracy"]
        assert row["quick"] is True and row["n_test"] == 80
    headline = [row["robust_accuracy"]["0.1"] for row in board["rows"]]
    assert headline == sorted(headline, reverse=True)
    assert "| # | defense |" in (out / "leaderboard.md").read_text()
    stored = rows(out)
    assert len(stored) == 2 and len(list((out / "checkpoints").glob("*.pt"))) == 2

    again = bench("evaluate", *QUICK, "--out", str(out))
    assert again.returncode == 0 and "2 cached" in again.stderr
    assert rows(out) == stored
    assert json.loads((out / "leaderboard.json").read_text())["rows"] == board["rows"]

    other = tmp_path / "other"
    fresh = bench("evaluate", *QUICK, "--out", str(other), "--fresh")
    assert fresh.returncode == 0, fresh.stderr
    recomputed = json.loads((other / "leaderboard.json").read_text())["rows"]
    for a, b in zip(board["rows"], recomputed, strict=True):  # same seed, same numbers
        assert (a["defense"], a["robust_accuracy"], a["per_attack"]) == (b["defense"], b["robust_accuracy"],
                                                                        b["per_attack"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--defense", "pgd_at"], "unknown defense 'pgd_at'; did you mean 'pgd-at'?"),
        (["--attack", "fgsn"], "unknown attack 'fgsn'; did you mean 'fgsm'?"),
        (["--eps", "-0.1"], "--eps: ε must be a finite number ≥ 0"),
        (["--eps", "abc"], "--eps: 'abc' is not a number"),
        (["--eps", "2"], "exceeds 1"),
        (["--seed", "-3"], "--seed: must be ≥ 0"),
        (["--seed", "1.5"], "--seed: expected an integer"),
        (["--device", "cuda"], "CUDA is not available"),
        (["--defense", ""], "--defense: the defense list is empty"),
        (["--defense", "pgd-at:epz=1"], "has no parameter 'epz'; did you mean 'eps'?"),
        (["--bogus"], "No such option '--bogus'"),
        (["--config", "missing.toml"], "--config: file not found"),
        (["--survivors", "per_attack"], "--survivors: must be one of shared, per-attack, got 'per_attack'; "
                                        "did you mean 'per-attack'?"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_keeps_results(tmp_path, stored_results, args, message):
    out = stored_results
    before = rows(out)
    result = bench("evaluate", *QUICK, "--out", str(out), *args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bench: error: ") and message in lines[0], result.stderr
    assert rows(out) == before


def test_unwritable_out_is_one_line(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = bench("evaluate", *QUICK, "--out", str(blocker / "sub"))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--out: cannot create" in result.stderr


@pytest.fixture(scope="module")
def stored_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("stored")
    result = bench("evaluate", *QUICK, "--defense", "standard", "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def test_trained_model_loads_back_in_two_lines(stored_results):
    probe = (
        "import benchmark\n"
        f"model = benchmark.load_model({str(stored_results)!r}, defense='standard')\n"
        "print(type(model).__name__, sum(p.numel() for p in model.parameters()))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Sequential ")


@pytest.mark.slow
def test_default_run_ranks_pgd_at_far_ahead(tmp_path):
    """The README's first command, with no options: PGD-AT ≥ 20 points ahead of standard at ε = 0.1."""
    result = bench("evaluate", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    board = json.loads((tmp_path / "leaderboard.json").read_text())
    assert board["dataset"] == "digits" and board["headline_eps"] == 0.1
    by_defense = {row["defense"]: row for row in board["rows"]}
    assert [row["defense"] for row in board["rows"]] == ["pgd-at", "standard"]
    gap = by_defense["pgd-at"]["robust_accuracy"]["0.1"] - by_defense["standard"]["robust_accuracy"]["0.1"]
    assert gap >= 0.20, gap
    for row in board["rows"]:
        values = [row["robust_accuracy"][f"{e:g}"] for e in board["eps"]]
        assert values == sorted(values, reverse=True)
        assert row["n_test"] == 360 and not row["quick"]
