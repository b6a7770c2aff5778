"""Stopping a real ``bench evaluate``: SIGINT (Ctrl-C reaches the whole process group) and SIGTERM end every
executor within seconds with one line, exit 130 / 143, no traceback from any process, and the next run resumes
with the finished jobs as they were; ``--time-limit`` stops the same way with exit 2 and names the running job."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmark.record import Record
from benchmark.store import Store

#: Ten jobs of a few seconds each: a run that is surely still going when the first job is stored.
LONG_RUN = ["--dataset", "synthetic", "--model", "mlp", "--device", "cpu", "--attack", "pgd", "--seeds", "10",
            "--workers", "2"]
EPOCHS_80 = ["--defense", "pgd-at:epochs=80"]


def start(out: Path, *args: str) -> tuple[subprocess.Popen, Path]:
    """``bench evaluate`` in its own process group (as a shell runs it), output to files (a full pipe would stall
    it)."""
    log = out.parent / f"{out.name}.log"
    command = [sys.executable, "-m", "benchmark", "evaluate", *LONG_RUN, "--out", str(out), *args]
    with open(log.with_suffix(".out"), "w") as stdout, open(log.with_suffix(".err"), "w") as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, start_new_session=True)
    return process, log


def stored_count(out: Path) -> int:
    try:
        with sqlite3.connect(f"file:{out / 'bench.db'}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.Error:  # not created yet
        return 0


def wait_for_a_stored_job(process: subprocess.Popen, out: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while stored_count(out) == 0:
        assert process.poll() is None, "the run ended before storing a job"
        assert time.monotonic() < deadline, "no job stored in time"
        time.sleep(0.2)


def ended(process: subprocess.Popen, log: Path, within: float) -> tuple[int, str, str]:
    """Wait for the process (at most ``within`` seconds); its exit code, stdout and stderr."""
    try:
        code = process.wait(timeout=within)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        pytest.fail(f"still running {within} s after the signal")
    return code, log.with_suffix(".out").read_text(), log.with_suffix(".err").read_text()


def records(out: Path) -> dict[str, Record]:
    with Store(out) as store:
        return {record.job_hash: record for record in store.records()}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("executor", "signum", "to_group", "code", "line"),
    [  # each executor and each signal once by default; the two other pairings with --heavy (25 s more)
        ("process", signal.SIGINT, True, 130, "bench: interrupted; "),
        pytest.param("process", signal.SIGTERM, False, 143, "bench: interrupted (SIGTERM); ",
                     marks=pytest.mark.heavy),
        pytest.param("inline", signal.SIGINT, True, 130, "bench: interrupted; ", marks=pytest.mark.heavy),
        ("inline", signal.SIGTERM, False, 143, "bench: interrupted (SIGTERM); "),
    ],
    ids=["process-SIGINT", "process-SIGTERM", "inline-SIGINT", "inline-SIGTERM"],
)
def test_a_signal_stops_the_run_in_one_line_and_the_next_run_resumes(tmp_path, executor, signum, to_group, code,
                                                                      line):
    out = tmp_path / "results"
    process, log = start(out, *EPOCHS_80, "--executor", executor)
    wait_for_a_stored_job(process, out)
    (os.killpg if to_group else os.kill)(process.pid, signum)  # Ctrl-C reaches every process of the group
    exit_code, stdout, stderr = ended(process, log, within=5)

    kept = records(out)
    assert exit_code == code, stderr
    assert "Traceback" not in stdout + stderr
    plural = "" if len(kept) == 1 else "s"
    assert stderr.splitlines() == [f"{line}{len(kept)} finished job{plural} kept"], stderr
    assert 1 <= len(kept) < 10

    again = subprocess.run([sys.executable, "-m", "benchmark", "evaluate", *LONG_RUN, *EPOCHS_80, "--executor",
                            executor, "--out", str(out)], capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"10 jobs: {10 - len(kept)} to run, {len(kept)} cached" in again.stdout
    resumed = records(out)
    assert len(resumed) == 10
    assert {job: resumed[job] for job in kept} == kept  # not recomputed: same numbers, same time stamps


#: Long enough for both pool workers to spawn, import torch and begin their job on a loaded 2-core CI machine (each
#: job trains for far longer), so both are running when the limit fires.
TIME_LIMIT = 30


@pytest.mark.slow
def test_time_limit_stops_the_pool_and_names_the_running_jobs(tmp_path):
    out = tmp_path / "results"
    process, log = start(out, "--executor", "process", "--defense", "pgd-at:epochs=5000", "--time-limit",
                         str(TIME_LIMIT))
    exit_code, stdout, stderr = ended(process, log, within=2 * TIME_LIMIT)
    jobs = ["pgd-at(epochs=5000) (seed 0)", "pgd-at(epochs=5000) (seed 1)"]
    started = sorted(line.split(" started ", 1)[1] for line in stdout.splitlines() if " started " in line)
    assert started == jobs, f"both jobs should have begun within {TIME_LIMIT} s: {stdout}"
    assert exit_code == 2, stderr
    assert "Traceback" not in stdout + stderr
    [message] = stderr.splitlines()
    head, running, kept = re.fullmatch(r"(.*) while running (.*); (.*)", message).groups()
    assert head == f"bench: error: --time-limit of {TIME_LIMIT} s reached" and kept == "0 finished jobs kept"
    assert sorted(running.split(", ")) == jobs
