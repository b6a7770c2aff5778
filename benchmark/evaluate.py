"""The evaluation pipeline as one call, shared by ``bench evaluate``, ``bench check`` and the pytest plugin:
config → plan → run (skipping stored jobs) → records → leaderboard."""

from __future__ import annotations

from benchmark.config import EvalConfig
from benchmark.leaderboard import Leaderboard, build_leaderboard
from benchmark.runner import Event


def evaluate(config: EvalConfig, *, fresh: bool = False, on_event: Event | None = None) -> Leaderboard:
    """Run every job of ``config`` that is not stored yet in ``config.out`` and return the leaderboard of all of
    them (stored ones included)."""
    from benchmark.executors import run_in_process
    from benchmark.plan import plan
    from benchmark.store import Store

    jobs = plan(config)
    with Store(config.out) as store:
        run_in_process(jobs, store, fresh=fresh, on_event=on_event)
        records = store.records([job.job_hash for job in jobs])
    return build_leaderboard(records, headline_eps=config.headline_eps)
