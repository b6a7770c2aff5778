"""Executors run the jobs of a plan; every job's record is committed to the store the moment the job ends.

* ``inline``: one job after another in this process.
* ``process``: a pool of worker processes (``--workers N``, default: one per core), each with ONE torch thread: two
  processes × two threads on two cores ran 20–230× slower here. ``auto`` picks it when there are at least two
  pending jobs per worker; with fewer, one long job would leave the other cores idle, and ``inline`` with all
  threads was faster (default run: 64 s inline vs 85 s with two workers).
* ``ray``: Ray tasks on a local or remote cluster (``--executor ray [--address ADDR]``, ``pip install
  defense-bench[ray]``), one CPU per task and one GPU with ``--device cuda``. With a remote cluster ``--out`` must be
  a path every node can write (a shared filesystem).

Jobs are pure functions of their spec and of torch's thread count: with a different number of threads, oneDNN
reduces convolution gradients in a different order, and a trained CNN can differ in the last bits (seen: 4 of 360
test samples at ε 0.2 for pgd-at). At the same thread count every executor gives the same numbers; the thread
count is recorded with each result (``environment.torch_threads``). Inline runs use every core; pool and Ray
workers one.

Every process that runs jobs keeps freed memory for reuse (``keep_freed_memory``): with glibc's defaults, torch's
tensors above 128 KiB are mmap'ed and unmapped on every allocation, and a process's first job trained ~25 % slower
than its second (PGD-AT on digits: 0.78 s vs 0.58 s per epoch; with the setting every epoch took 0.58 s).
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from functools import cache
from pathlib import Path
from typing import Any

from benchmark.errors import BenchError
from benchmark.plan import Job
from benchmark.runner import Event, run_job
from benchmark.store import Store

logger = logging.getLogger(__name__)

EXECUTORS = ("auto", "inline", "process", "ray")


def pending(jobs: list[Job], store: Store, *, fresh: bool = False) -> list[Job]:
    """The jobs whose result is not stored yet (all of them with ``fresh``)."""
    if fresh:
        return list(jobs)
    stored = store.stored([job.job_hash for job in jobs])
    return [job for job in jobs if job.job_hash not in stored]


#: glibc ``mallopt`` parameters: the mmap threshold (the largest it accepts on 64-bit: 32 MiB), how much freed memory
#: the heap may keep before trimming, and how much it grows by; the cost is up to ~200 MiB of retained memory.
MALLOPT = {-3: 32 << 20, -1: 128 << 20, -2: 64 << 20}  # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, M_TOP_PAD


@cache
def keep_freed_memory() -> bool:
    """Tune glibc's allocator to keep freed memory for reuse (see the module docstring), once per process; False
    where the C library is not glibc (nothing changes there)."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018 -- only glibc has it
    except (OSError, AttributeError):
        return False
    return all(mallopt(ctypes.c_int(option), ctypes.c_int(value)) == 1 for option, value in MALLOPT.items())


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def execute(job: Job, out: str, fresh: bool = False, threads: int | None = 1,
            on_event: Event | None = None) -> dict[str, Any]:
    """Run one job and commit its record; returns a short summary. This is what a worker runs."""
    import torch

    keep_freed_memory()
    if threads is not None:
        torch.set_num_threads(threads)
    with Store(out) as store:
        record = run_job(job, store, fresh=fresh, on_event=on_event)
        store.put(record)
    return {"job_hash": record["job_hash"], "defense": record["defense"], "seed": record["seed"]}


def run_jobs(jobs: list[Job], out: Path, *, executor: str = "auto", workers: int | None = None,
             address: str | None = None, fresh: bool = False, threads: int | None = None,
             on_event: Event | None = None) -> None:
    """Run the pending ``jobs`` of the store in ``out`` with ``executor``."""
    emit = on_event or (lambda *args, **kwargs: None)
    with Store(out) as store:
        todo = pending(jobs, store, fresh=fresh)
    logger.info("%d of %d jobs to run (%d already stored)", len(todo), len(jobs), len(jobs) - len(todo))
    emit("start", total=len(jobs), todo=len(todo))
    if not todo:
        return
    workers = workers or default_workers()
    if executor == "auto":  # a pool pays off once each worker has several jobs to balance the long ones
        executor = "process" if workers > 1 and len(todo) >= 2 * workers else "inline"
    if executor == "inline":
        for job in todo:
            emit("done", record=execute(job, str(out), fresh, threads, on_event=emit))
    elif executor == "process":
        run_process_pool(todo, out, fresh=fresh, workers=min(workers, len(todo)), emit=emit)
    elif executor == "ray":
        run_ray(todo, out, fresh=fresh, address=address, workers=workers, emit=emit)
    else:
        raise BenchError(f"--executor: expected one of {', '.join(EXECUTORS)}, got {executor!r}")


def run_process_pool(todo: list[Job], out: Path, *, fresh: bool, workers: int, emit: Event) -> None:
    import multiprocessing

    failures = []
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_quiet_worker) as pool:
        futures = {pool.submit(execute, job, str(out), fresh, 1): job for job in todo}
        remaining = set(futures)
        while remaining:
            done, remaining = wait(remaining, return_when=FIRST_COMPLETED)
            for future in done:
                try:
                    emit("done", record=future.result())
                except Exception as exc:  # keep the other jobs running; report at the end
                    failures.append((futures[future], exc))
    raise_failures(failures)


def run_ray(todo: list[Job], out: Path, *, fresh: bool, address: str | None, workers: int, emit: Event) -> None:
    try:
        import ray
    except ImportError:
        raise BenchError("--executor ray needs Ray: pip install 'defense-bench[ray]'") from None
    started = not ray.is_initialized()
    if started:
        options = {"address": address} if address else {"num_cpus": workers}
        ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING, **options)
    try:
        task = ray.remote(execute)
        refs = {}
        for job in todo:
            gpus = 1 if job.device.startswith("cuda") else 0
            refs[task.options(num_cpus=1, num_gpus=gpus).remote(job, str(Path(out).resolve()), fresh, 1)] = job
        failures, remaining = [], list(refs)
        while remaining:
            done, remaining = ray.wait(remaining, num_returns=1)
            try:
                emit("done", record=ray.get(done[0]))
            except Exception as exc:
                failures.append((refs[done[0]], exc))
        raise_failures(failures)
    finally:
        if started:
            ray.shutdown()


def raise_failures(failures: list[tuple[Job, BaseException]]) -> None:
    if not failures:
        return
    job, first = failures[0]
    raise BenchError(f"{len(failures)} job(s) failed (finished jobs are stored); first: {job.defense.label} seed "
                     f"{job.seed}: {type(first).__name__}: {first}")


def _quiet_worker() -> None:
    """Worker start-up: warnings only (the parent shows progress)."""
    logging.basicConfig(level=logging.WARNING, format="bench worker: %(levelname)s: %(name)s: %(message)s")
