"""Every executor gives the same numbers on the same small grid at the same torch thread count (one): inline, a
process pool, and Ray (a real local cluster of 2 CPUs)."""

from __future__ import annotations

import json

import pytest

from benchmark.config import build_config
from benchmark.pipeline import run_config

GRID = {"device": "cpu", "dataset": "synthetic", "model": "mlp", "quick": True, "seeds": "0,1",
        "defenses": "standard,pgd-at", "attacks": "suite:quick,noise"}


def numbers(board) -> list[tuple]:
    return sorted((r["defense"], r["seed"], json.dumps(r["robust_accuracy"]), json.dumps(r["per_attack"]),
                   json.dumps(r["samples"])) for r in board.rows)


@pytest.fixture(scope="module")
def inline(tmp_path_factory):
    config = build_config(None, {**GRID, "out": str(tmp_path_factory.mktemp("inline"))})
    return numbers(run_config(config, executor="inline", threads=1))


@pytest.mark.slow
def test_process_pool_matches_inline(inline, tmp_path):
    config = build_config(None, {**GRID, "out": str(tmp_path)})
    assert numbers(run_config(config, executor="process", workers=2)) == inline


@pytest.mark.slow
def test_ray_local_cluster_matches_inline(inline, tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'defense-bench[ray]')")
    config = build_config(None, {**GRID, "out": str(tmp_path)})
    assert numbers(run_config(config, executor="ray", workers=2)) == inline


def test_job_processes_keep_freed_memory_on_glibc():
    import platform

    from benchmark.executors import keep_freed_memory

    assert keep_freed_memory() is (platform.libc_ver()[0] == "glibc")


def test_a_stop_ends_the_pool_workers_mid_job_and_says_what_ran(tmp_path):
    """``Stopped`` (what SIGINT, SIGTERM and --time-limit raise in the parent) ends every worker at once, without
    waiting for the jobs in flight (each would train for minutes), and reports the running jobs and what was kept."""
    import multiprocessing

    from benchmark.errors import Stopped

    config = build_config(None, {**GRID, "defenses": "pgd-at:epochs=5000", "out": str(tmp_path)})

    def stop_once_training(kind: str, **fields) -> None:
        if kind == "phase":  # a worker has begun training
            raise Stopped("stopped by the test", 2)

    with pytest.raises(Stopped) as stop:  # with a worker left mid-job, shutdown would wait for its 5000 epochs
        run_config(config, executor="process", workers=2, on_event=stop_once_training)
    assert stop.value.kept == 0
    assert stop.value.running and set(stop.value.running) <= {"pgd-at(epochs=5000) (seed 0)",
                                                              "pgd-at(epochs=5000) (seed 1)"}
    assert multiprocessing.active_children() == []


def test_a_stop_names_the_jobs_whose_begin_is_still_queued(tmp_path, monkeypatch):
    """A stop that lands before the parent has passed the workers' ``begin`` events on (it does so every 0.5 s) still
    names the jobs that were running: the queue is read before the workers are ended."""
    import multiprocessing
    import time

    from benchmark import executors
    from benchmark.errors import Stopped

    config = build_config(None, {**GRID, "defenses": "pgd-at:epochs=5000", "out": str(tmp_path)})

    def stop_once_a_begin_is_queued(futures, events, emit, running):
        deadline = time.monotonic() + 300  # a guard against a hang, not a timing assertion
        while events.empty():
            assert time.monotonic() < deadline, "no worker began a job"
            time.sleep(0.05)
        raise Stopped("stopped by the test", 2)

    monkeypatch.setattr(executors, "collect", stop_once_a_begin_is_queued)
    with pytest.raises(Stopped) as stop:
        run_config(config, executor="process", workers=2)
    assert stop.value.running and set(stop.value.running) <= {"pgd-at(epochs=5000) (seed 0)",
                                                              "pgd-at(epochs=5000) (seed 1)"}
    assert stop.value.kept == 0
    assert multiprocessing.active_children() == []
