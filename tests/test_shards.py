"""``--shards N``: one job's test samples split into pieces run as separate tasks and merged into one record whose
numbers are those of the unsharded run."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from benchmark.config import build_config
from benchmark.pipeline import run_config
from benchmark.shards import merge, part_from_json, part_json, shard_bounds
from benchmark.store import Store
from benchmark.sweep import AttackOutcome, SweepResult


def test_shard_bounds_cover_every_sample_once_in_order():
    for n in (1, 7, 80, 101):
        for shards in (1, 2, 3, 7):
            pieces = [shard_bounds(n, shards, index) for index in range(shards)]
            assert pieces[0][0] == 0 and pieces[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:], strict=False))
            assert max(hi - lo for lo, hi in pieces) - min(hi - lo for lo, hi in pieces) <= 1
    with pytest.raises(ValueError):
        shard_bounds(10, 3, 3)


def sweep(correct, broken, distances=None, error=None, seconds=1.0) -> SweepResult:
    outcome = AttackOutcome(broken_at=np.asarray(broken), seconds=seconds, grad_evals=len(broken), queries=2,
                            attacked=len(broken), distances=None if distances is None else np.asarray(distances),
                            error=error)
    return SweepResult(eps=(0.0, 0.1), correct=np.asarray(correct, dtype=bool), outcomes={"a": outcome})


def test_parts_round_trip_through_the_store_form_and_merge_in_order():
    one = sweep([1, 0], [1, 0], distances=[0.05, np.nan])
    two = sweep([1], [2], distances=[np.inf], error="stopped", seconds=2.0)
    again = [part_from_json(part_json(s, 3.0)) for s in (one, two)]
    merged, seconds = merge(again)
    assert seconds == 6.0 and merged.correct.tolist() == [True, False, True]
    outcome = merged.outcomes["a"]
    assert outcome.broken_at.tolist() == [1, 0, 2] and outcome.seconds == 3.0 and outcome.grad_evals == 3
    assert np.isnan(outcome.distances[1]) and outcome.distances[2] == np.inf and outcome.error == "stopped"


def per_sample(out) -> list:
    with Store(out) as store:
        return [(r.defense, r.correct, r.robust_accuracy, r.flags, {n: run.broken_at for n, run in r.runs.items()},
                 {n: run.distances for n, run in r.runs.items()}, r.probes) for r in store.records()]


def sharded_run(out, shards, executor="inline"):
    config = build_config(None, {"out": str(out), "dataset": "synthetic", "model": "mlp", "quick": True,
                                 "defenses": "standard,pgd-at", "attacks": "fgsm,pgd,apgd-ce,cw-linf,noise",
                                 "device": "cpu", "shards": str(shards)})
    return run_config(config, executor=executor, threads=1, **({"workers": 2} if executor != "inline" else {}))


@pytest.fixture(scope="module")
def unsharded(tmp_path_factory):
    """The run in one piece, shared by both identity tests: (its leaderboard, its per-sample results)."""
    out = tmp_path_factory.mktemp("one")
    return sharded_run(out, 1), per_sample(out)


@pytest.mark.slow
def test_three_shards_give_the_numbers_of_one(tmp_path, unsharded):
    run = sharded_run
    whole, whole_samples = unsharded
    sharded = run(tmp_path / "three", 3)
    assert whole_samples == per_sample(tmp_path / "three")
    assert [row["robust_accuracy"] for row in whole.rows] == [row["robust_accuracy"] for row in sharded.rows]
    with sqlite3.connect(tmp_path / "three" / "bench.db") as db:
        assert db.execute("SELECT COUNT(*) FROM parts").fetchone()[0] == 0  # merged, then dropped
    again = run(tmp_path / "three", 3)  # stored: nothing re-runs
    assert [row["provenance"]["job_hash"] for row in again.rows] == [row["provenance"]["job_hash"] for row in
                                                                     sharded.rows]


@pytest.mark.slow
def test_shards_on_worker_processes_give_the_numbers_of_one(tmp_path, unsharded):
    sharded_run(tmp_path / "pool", 3, executor="process")
    assert unsharded[1] == per_sample(tmp_path / "pool")


@pytest.mark.heavy  # 17 s (a local Ray cluster); e2e/test_executors.py runs jobs on Ray in every run
def test_shards_on_a_local_ray_cluster_give_the_numbers_of_one(tmp_path, unsharded):
    """Each shard is a Ray task of its own (one per GPU on a cluster); the parts merge into the one record."""
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'defense-bench[ray]')")
    sharded_run(tmp_path / "ray", 3, executor="ray")
    assert unsharded[1] == per_sample(tmp_path / "ray")
