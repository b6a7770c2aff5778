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
    run_jobs(jobs, config.out, executor=executor, workers=workers, address=address, fresh=fresh, threads=threads,
             on_event=on_event)
    with Store(config.out) as store:
        records = store.records([job.job_hash for job in jobs])
    return build_leaderboard(records, headline_eps=config.headline_eps)
