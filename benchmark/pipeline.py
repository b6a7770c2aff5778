"""The evaluation pipeline as one call, shared by ``bench evaluate`` and ``bench check``: config → preflight (a
user's model against the data) → plan → run (skipping stored jobs) → records → leaderboard."""

from __future__ import annotations

from benchmark.config import EvalConfig
from benchmark.leaderboard import Leaderboard, build_leaderboard
from benchmark.runner import Event


def run_config(config: EvalConfig, *, fresh: bool = False, executor: str = "auto", workers: int | None = None,
               address: str | None = None, threads: int | None = None,
               on_event: Event | None = None) -> Leaderboard:
    """Run every job of ``config`` that is not stored yet in ``config.out`` and return the leaderboard of all of
    them, stored ones included (``benchmark.executors`` explains ``executor``, ``workers``, ``address``,
    ``threads``)."""
    from benchmark.executors import run_jobs
    from benchmark.plan import data_facts, plan
    from benchmark.preflight import preflight
    from benchmark.store import Store

    config = preflight(config)
    with Store(config.out) as store:
        facts = data_facts(config.dataset, store, fresh=fresh)
    jobs = plan(config, facts)
    options = {"executor": executor, "workers": workers, "address": address, "threads": threads, "on_event": on_event}
    if config.shards > 1:
        run_sharded(jobs, config.out, config.shards, fresh=fresh, **options)
    else:
        run_jobs(jobs, config.out, fresh=fresh, **options)
    with Store(config.out) as store:
        records = store.records([job.job_hash for job in jobs])
    return build_leaderboard(records, headline_eps=config.headline_eps)


def run_sharded(jobs: list, out, shards: int, *, fresh: bool, on_event: Event | None = None, **options) -> None:
    """The pending ``jobs``, each split into ``shards`` pieces of its test samples (``benchmark.shards``): every
    model trained (or loaded) first, then every shard as its own task on the executors, then each job's parts
    merged here into its record."""
    import dataclasses

    import torch

    from benchmark.executors import pending, run_jobs
    from benchmark.runner import Progress
    from benchmark.shards import merge_job
    from benchmark.store import Store

    with Store(out) as store:
        todo = pending(jobs, store, fresh=fresh)
        if fresh:
            for job in todo:
                store.drop_parts(job.job_hash)
    run_jobs([dataclasses.replace(job, stage="train") for job in todo], out, fresh=fresh, on_event=on_event,
             **options)
    pieces = [dataclasses.replace(job, stage="shard", shard=index, shards=min(shards, job.n_test))
              for job in todo for index in range(min(shards, job.n_test))]
    run_jobs(pieces, out, fresh=True, on_event=on_event, **options)  # stored parts are skipped by the shards
    if options.get("threads"):
        torch.set_num_threads(options["threads"])
    with Store(out) as store:
        for job in todo:
            merged = dataclasses.replace(job, shards=min(shards, job.n_test))
            store.put_merged(merge_job(merged, store, Progress(merged, on_event)))
