"""One job's evaluation split across workers (``--shards N``): a CIFAR-10 AutoAttack run of 10,000 samples is hours
of work for one device.

A sharded job runs in three stages, each a task the executors run like a job (``Job.stage``): ``train`` (train or
load the model once, so the shards do not race to train it), ``shard`` (the ε sweep on one contiguous piece of the
test samples, stored as a *part* in the store's ``parts`` table) and, in the calling process, ``merge_job`` (the
parts joined in sample order, then the validity probes on the whole test set, then the one record). Every sample's
randomness is drawn from its key (its place in the test set), so the merged numbers are those of the unsharded run
and its job hash is the same: a sharded and an unsharded run share their cache. Square Attack (and AutoAttack,
which contains it) draws per batch in ART, so its numbers can differ with the shards as they do with the batch.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from benchmark.errors import BenchError
from benchmark.sweep import AttackOutcome, SweepResult


def shard_bounds(n: int, shards: int, index: int) -> tuple[int, int]:
    """Samples ``[lo, hi)`` of shard ``index`` of ``shards``: contiguous, sizes differing by at most one."""
    if not 0 <= index < shards:
        raise ValueError(f"shard index {index} outside 0 … {shards - 1}")
    return index * n // shards, (index + 1) * n // shards


def part_json(sweep: SweepResult, seconds: float) -> str:
    """A shard's sweep result as the store keeps it."""
    outcomes = {name: {"broken_at": o.broken_at.tolist(), "seconds": o.seconds, "grad_evals": o.grad_evals,
                       "queries": o.queries, "attacked": o.attacked, "black_box": o.black_box, "error": o.error,
                       "distances": None if o.distances is None else [None if np.isnan(d) else float(d)
                                                                      for d in o.distances]}
                for name, o in sweep.outcomes.items()}
    return json.dumps({"eps": list(sweep.eps), "correct": sweep.correct.astype(int).tolist(),
                       "survivors": sweep.survivors, "outcomes": outcomes, "seconds": seconds})


def part_from_json(text: str) -> tuple[SweepResult, float]:
    data = json.loads(text)
    outcomes = {
        name: AttackOutcome(broken_at=np.asarray(o["broken_at"], dtype=np.int64), seconds=o["seconds"],
                            grad_evals=o["grad_evals"], queries=o["queries"], attacked=o["attacked"],
                            black_box=o["black_box"], error=o["error"],
                            distances=None if o["distances"] is None else
                            np.array([np.nan if d is None else d for d in o["distances"]], dtype=np.float64))
        for name, o in data["outcomes"].items()
    }
    sweep = SweepResult(eps=tuple(data["eps"]), correct=np.asarray(data["correct"], dtype=bool), outcomes=outcomes,
                        survivors=data["survivors"])
    return sweep, data["seconds"]


def merge(parts: list[tuple[SweepResult, float]]) -> tuple[SweepResult, float]:
    """The parts (in sample order) as one sweep result: per-sample arrays joined, costs added; an attack stopped in
    any part keeps that part's reason. The seconds are the sum (the work done, not the wall time)."""
    sweeps = [sweep for sweep, _ in parts]
    first = sweeps[0]
    outcomes = {}
    for name, outcome in first.outcomes.items():
        pieces = [sweep.outcomes[name] for sweep in sweeps]
        outcomes[name] = AttackOutcome(
            broken_at=np.concatenate([p.broken_at for p in pieces]), seconds=sum(p.seconds for p in pieces),
            grad_evals=sum(p.grad_evals for p in pieces), queries=sum(p.queries for p in pieces),
            attacked=sum(p.attacked for p in pieces), black_box=outcome.black_box,
            distances=None if outcome.distances is None else np.concatenate([p.distances for p in pieces]),
            error=next((p.error for p in pieces if p.error), None))
    return (SweepResult(eps=first.eps, correct=np.concatenate([s.correct for s in sweeps]), outcomes=outcomes,
                        survivors=first.survivors), sum(seconds for _, seconds in parts))


def run_shard(job: Any, store: Any, progress: Any) -> None:
    """Stage ``shard``: the sweep on this shard's samples, stored as a part (skipped when stored)."""
    from benchmark.runner import arm, sample_keys, sweep_samples, train_or_load, verified_data

    if store.has_part(job.job_hash, job.shard, job.shards):
        return
    data = verified_data(job)
    trained = train_or_load(job, data, store, fresh=False, progress=progress)
    test = data.subset_test(job.n_test)
    lo, hi = shard_bounds(len(test.x_test), job.shards, job.shard)
    keys = sample_keys(job.seed, len(test.x_test))[lo:hi]
    sweep, seconds = sweep_samples(job, arm(job, test, trained), test.batch("test", slice(lo, hi)), test.y_test[lo:hi],
                                   keys, progress)
    store.put_part(job.job_hash, job.shard, job.shards, part_json(sweep, seconds))


def merge_job(job: Any, store: Any, progress: Any) -> Any:
    """Stage ``merge``: the stored parts as one sweep, the probes on the whole test set, the privacy attacks (run
    once, here), the job's record."""
    from benchmark.runner import evaluate, make_record, privacy_of, train_or_load, verified_data

    texts = [store.part(job.job_hash, index, job.shards) for index in range(job.shards)]
    if any(text is None for text in texts):
        missing = [index for index, text in enumerate(texts) if text is None]
        raise BenchError(f"{job.defense.label} (seed {job.seed}): shards {missing} of {job.shards} are not stored")
    data = verified_data(job)
    trained = train_or_load(job, data, store, fresh=False, progress=progress)
    evaluation = evaluate(job, data.subset_test(job.n_test), trained, progress=progress,
                          sweep=merge([part_from_json(text) for text in texts]))
    return make_record(job, data, trained, evaluation, privacy_of(job, data, trained, progress))
