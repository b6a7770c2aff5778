"""The ``bench`` command as a user runs it: a real process, a real store, real files."""

from __future__ import annotations

import ast
import errno
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.errors import STOP_SIGNALS

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


@pytest.mark.slow
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

    progress = re.findall(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (.*)$", first.stdout, flags=re.MULTILINE)
    assert progress[0] == "2 jobs: 2 to run, 0 cached"
    for defense in ("standard", "pgd-at"):
        assert f"started {defense} (seed 0)" in progress
        assert any(re.fullmatch(rf"finished {defense} \(seed 0\) in [\d.]+ s \([12] of 2 jobs\)", line)
                   for line in progress), progress
    assert first.stderr == ""  # stdout is not a terminal: plain progress lines there, nothing else on stderr

    again = bench("evaluate", *QUICK, "--out", str(out))
    assert again.returncode == 0 and "2 jobs: 0 to run, 2 cached" in again.stdout
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
        (["--seed", "-3"], "--seed: must be an int in [0, 2147483647], got -3"),
        (["--seed", "1.5"], "--seed: must be an int in [0, 2147483647], got '1.5'"),
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


def test_cli_modules_import_each_other_in_one_direction_only():
    """``cli`` adds the report commands of ``cli_reports``; neither ``cli_reports`` nor ``console`` imports ``cli``
    (the shared helpers live in ``console``), so there is no import cycle."""
    root = Path(__file__).resolve().parents[2] / "benchmark"

    def imported(name: str) -> set[str]:
        tree = ast.parse((root / f"{name}.py").read_text())
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
            elif isinstance(node, ast.Import):
                found |= {alias.name for alias in node.names}
        return found

    assert "benchmark.cli_reports" in imported("cli")
    for name in ("cli_reports", "console"):
        assert "benchmark.cli" not in imported(name), name
    assert "benchmark.cli_reports" not in imported("console")


@pytest.mark.parametrize("verbose", [False, True])
def test_python_warnings_go_to_the_log(verbose):
    probe = (
        "import warnings\n"
        "from benchmark.console import setup_logging\n"
        f"setup_logging({verbose})\n"
        "warnings.warn('Square at L2: invalid value in divide', RuntimeWarning)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    if verbose:  # in the log, shown with -v
        assert result.stderr.startswith("bench: WARNING: py.warnings: ") and "Square at L2" in result.stderr
    else:
        assert result.stderr == ""


def test_planted_symlinks_are_replaced_never_followed(stored_results, tmp_path):
    out = stored_results
    (out / "report").mkdir(exist_ok=True)
    planted = ["leaderboard.md", "leaderboard.json", "board.html", "board-robustness.png", "report/leaderboard.csv"]
    victims = {}
    for name in planted:
        victim = tmp_path / f"victim-{name.replace('/', '-')}"
        victim.write_text("precious")
        (out / name).unlink(missing_ok=True)
        (out / name).symlink_to(victim)
        victims[name] = victim

    assert bench("evaluate", *QUICK, "--defense", "standard", "--out", str(out)).returncode == 0
    assert bench("leaderboard", "--store", str(out), "--format", "html", "--out", str(out / "board.html")
                 ).returncode == 0
    assert bench("leaderboard", "--store", str(out), "--format", "all", "--out", str(out / "report")).returncode == 0
    for name, victim in victims.items():
        assert victim.read_text() == "precious", name
        assert (out / name).is_file() and not (out / name).is_symlink(), name
    assert "| # | defense |" in (out / "leaderboard.md").read_text()
    assert not list(out.rglob("*.partial"))


def test_leaderboard_into_a_path_that_cannot_be_a_directory_is_one_line(stored_results, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = bench("leaderboard", "--store", str(stored_results), "--format", "all", "--out", str(blocker / "sub"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [f"bench: error: --out: cannot create {blocker / 'sub'}: Not a directory"]


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (errno.ENOSPC, "bench: error: no space left on {path}"),
        (errno.EROFS, "bench: error: cannot write {path}: Read-only file system"),
    ],
)
def test_failed_writes_are_one_line_and_leave_nothing_behind(stored_results, tmp_path, monkeypatch, capsys, error,
                                                             message):
    from benchmark.cli import main

    def refuse(source, target):
        raise OSError(error, os.strerror(error))

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(SystemExit) as exit:
        main(["leaderboard", "--store", str(stored_results), "--format", "all", "--out", str(tmp_path)])
    assert exit.value.code == 2
    assert capsys.readouterr().err.splitlines() == [message.format(path=tmp_path / "leaderboard.md")]
    assert list(tmp_path.iterdir()) == []  # the temporary file is gone too


def test_a_full_disk_under_the_store_says_no_space_left(tmp_path, monkeypatch, capsys):
    from benchmark.cli import main
    from benchmark.store import Store

    def full(self, record):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Store, "put", full)
    with pytest.raises(SystemExit) as exit:
        main(["evaluate", *QUICK, "--defense", "standard", "--attack", "fgsm", "--executor", "inline",
              "--out", str(tmp_path)])
    assert exit.value.code == 2
    assert capsys.readouterr().err.splitlines() == [f"bench: error: no space left on {tmp_path} (database or disk "
                                                    f"is full)"]


def test_leaderboard_files_are_read_and_written_under_an_exclusive_lock(stored_results, tmp_path, monkeypatch):
    """Between reading the store and writing ``leaderboard.md``/``.json``, another run cannot do either: it waits on
    the lock, so the files it writes next are rendered from a store that holds this run's results."""
    import fcntl
    import shutil

    from benchmark import cli_reports, fileio

    out = Path(shutil.copytree(stored_results, tmp_path / "out"))

    def held() -> bool:
        with open(out / ".leaderboard.lock", "a") as other:
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            return False

    seen = []
    stored_board, write_text = cli_reports.stored_board, fileio.write_text
    monkeypatch.setattr(cli_reports, "stored_board", lambda *args: seen.append(("read", held())) or stored_board(*args))
    monkeypatch.setattr(fileio, "write_text", lambda *args: seen.append(("write", held())) or write_text(*args))
    files = cli_reports.write_leaderboards(out, cli_reports.load_board(str(out), None, None))
    assert [path.name for path in files] == ["leaderboard.md", "leaderboard.json"]
    assert seen == [("read", True), ("write", True), ("write", True)]
    assert not held()


@pytest.mark.slow
def test_concurrent_runs_on_one_out_both_reach_the_leaderboard(tmp_path):
    """Two runs with the same settings and different defenses share --out: leaderboard.md and .json show both
    (they are rendered from the store); a run with other settings (attacks) shows only its own rows."""
    out = tmp_path / "shared"
    runs = [subprocess.Popen([sys.executable, "-m", "benchmark", "evaluate", *QUICK, "--defense", defense,
                              "--out", str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            for defense in ("standard", "pgd-at")]
    for run in runs:
        assert run.wait(timeout=600) == 0, run.stderr.read()
    board = json.loads((out / "leaderboard.json").read_text())
    assert sorted(row["defense"] for row in board["rows"]) == ["pgd-at", "standard"]
    markdown = (out / "leaderboard.md").read_text()
    assert "| pgd-at |" in markdown and "| standard |" in markdown

    other = bench("evaluate", *QUICK, "--defense", "standard", "--attack", "fgsm", "--out", str(out))
    assert other.returncode == 0, other.stderr
    board = json.loads((out / "leaderboard.json").read_text())
    assert [row["defense"] for row in board["rows"]] == ["standard"] and board["attacks"] == ["fgsm"]



@pytest.fixture
def test_handlers():
    """SIGINT and SIGTERM handlers of the test's own (a signal that reaches them fails the test instead of ending the
    session or the process); the handlers of all three stop signals as they were before the test."""
    def reached(signum, frame):
        raise AssertionError(f"{signal.Signals(signum).name} reached the handler in place before the run")

    saved = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    signal.signal(signal.SIGINT, reached)
    signal.signal(signal.SIGTERM, reached)
    try:
        yield {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    finally:
        for signum, action in saved.items():
            signal.signal(signum, action)


def test_a_stop_leaves_the_signal_handlers_as_they_were(test_handlers):
    """The time limit raises ``Stopped`` (exit 2) in the main thread, and every handler is put back afterwards."""
    from benchmark.console import stop_on_signals, time_limit
    from benchmark.errors import Stopped

    with pytest.raises(Stopped) as stop, stop_on_signals(), time_limit(0.2):
        signal.pause()  # until the time limit's SIGALRM
    assert stop.value.code == 2 and stop.value.reason == "--time-limit of 0.2 s reached"
    assert {signum: signal.getsignal(signum) for signum in STOP_SIGNALS} == test_handlers


def test_the_first_stop_wins_over_signals_during_the_teardown(test_handlers):
    """A Ctrl-C and a SIGTERM arriving while a run stopped by its time limit tears down (after the time limit's own
    block has ended, inside the outer one) are ignored: the time limit's stop is the one reported."""
    from benchmark.console import stop_on_signals, time_limit
    from benchmark.errors import Stopped

    torn_down = False
    with pytest.raises(Stopped) as stop, stop_on_signals():
        try:
            with time_limit(0.05):
                signal.pause()
        finally:  # the teardown
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGTERM)
            torn_down = True
    assert torn_down and stop.value.code == 2 and stop.value.reason == "--time-limit of 0.05 s reached"
    assert {signum: signal.getsignal(signum) for signum in STOP_SIGNALS} == test_handlers


def test_a_ctrl_c_while_the_stop_line_is_printed_is_ignored(test_handlers, monkeypatch, capsys):
    """``bench``'s own exit handling: a second Ctrl-C while it prints the line of a stopped run changes nothing (no
    KeyboardInterrupt, the same exit code); the handlers are put back afterwards."""
    import click

    from benchmark import console

    @click.group(cls=console.OneLineErrors)
    def group() -> None:
        pass

    @group.command()
    def stall() -> None:
        with console.time_limit(0.05):
            signal.pause()

    def message_during_a_ctrl_c(stop):
        os.kill(os.getpid(), signal.SIGINT)
        return stop_message(stop)

    stop_message = console.stop_message
    monkeypatch.setattr(console, "stop_message", message_during_a_ctrl_c)
    with pytest.raises(SystemExit) as exit:
        group.main(["stall"])
    assert exit.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "bench: error: --time-limit of 0.05 s reached while no job was running; finished jobs are kept"]
    assert {signum: signal.getsignal(signum) for signum in STOP_SIGNALS} == test_handlers


def test_both_progress_reporters_read_the_typed_job_summary(capsys):
    from benchmark.console import BarProgress, LineProgress
    from benchmark.executors import JobSummary

    def run(reporter):
        with reporter as on_event:
            on_event("start", total=2, todo=1)
            on_event("begin", defense="pgd-at", seed=3, job_hash="abc")
            on_event("phase", text="pgd-at (seed 3): training", step=0, steps=2)
            on_event("done", summary=JobSummary(job_hash="abc", defense="pgd-at", seed=3))
        return reporter

    run(LineProgress())
    lines = [line.split(" ", 2)[2] for line in capsys.readouterr().out.splitlines()]
    assert lines[0] == "2 jobs: 1 to run, 1 cached" and lines[1] == "started pgd-at (seed 3)"
    assert re.fullmatch(r"finished pgd-at \(seed 3\) in [\d.]+ s \(1 of 1 jobs\)", lines[-1]), lines
    bars = run(BarProgress())
    assert [task.description for task in bars.progress.tasks] == ["jobs (1 cached)", "finished pgd-at"]
    assert bars.progress.tasks[0].completed == 1
