"""Executors run the jobs of a plan and store each record the moment it is finished."""

from __future__ import annotations

import logging

from benchmark.plan import Job
from benchmark.runner import Event, run_job
from benchmark.store import Store

logger = logging.getLogger(__name__)


def pending(jobs: list[Job], store: Store, *, fresh: bool = False) -> list[Job]:
    """The jobs whose result is not stored yet (all of them with ``fresh``)."""
    return list(jobs) if fresh else [job for job in jobs if not store.has(job.job_hash)]


def run_in_process(jobs: list[Job], store: Store, *, fresh: bool = False, on_event: Event | None = None) -> None:
    """Run ``jobs`` one after another in this process; each record is committed as soon as its job ends."""
    emit = on_event or (lambda *args, **kwargs: None)
    todo = pending(jobs, store, fresh=fresh)
    logger.info("%d of %d jobs to run (%d already stored)", len(todo), len(jobs), len(jobs) - len(todo))
    emit("start", total=len(jobs), todo=len(todo))
    for job in todo:
        record = run_job(job, store, on_event=emit, fresh=fresh)
        store.put(record)
        emit("done", record=record)
