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
import signal
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from benchmark.errors import STOP_SIGNALS, BenchError, Stopped
from benchmark.fileio import disk_problem
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


@dataclass(frozen=True, kw_only=True)
class JobSummary:
    """What a ``done`` event says about a stored job (all a worker sends back)."""

    job_hash: str
    defense: str  # the defense's label
    seed: int


def execute(job: Job, out: str, fresh: bool = False, threads: int | None = 1,
            on_event: Event | None = None) -> JobSummary:
    """Run one job and commit its record; returns its summary. This is what a worker runs."""
    import torch

    keep_freed_memory()
    if threads is not None:
        torch.set_num_threads(threads)
    with Store(out) as store:
        record = run_job(job, store, fresh=fresh, on_event=on_event)
        if record is not None:
            store.put(record)
    return JobSummary(job_hash=job.job_hash, defense=job.defense.label, seed=job.seed)


def run_jobs(jobs: list[Job], out: Path, *, executor: str = "auto", workers: int | None = None,
             address: str | None = None, fresh: bool = False, threads: int | None = None,
             on_event: Event | None = None) -> None:
    """Run the pending ``jobs`` of the store in ``out`` with ``executor``. Events: ``start`` (total, todo),
    ``begin`` (defense, seed, job_hash) when a job starts (not with Ray), the runner's ``phase`` events, and
    ``done`` (summary: a ``JobSummary``) when a job is stored. On ``Stopped`` (a signal or the time limit, see
    ``benchmark.errors``) every worker is ended before it propagates, with how many of ``jobs`` are stored."""
    emit = on_event or (lambda *args, **kwargs: None)
    try:
        dispatch(jobs, out, executor=executor, workers=workers, address=address, fresh=fresh, threads=threads,
                 emit=emit)
    except (Stopped, SystemError) as exc:
        stop = stopped(exc)
        if stop is None:
            raise
        with Store(out) as store:
            stop.kept = len(store.stored([job.job_hash for job in jobs]))
        raise stop from None


def stopped(exc: BaseException) -> Stopped | None:
    """The ``Stopped`` that ``exc`` is or carries: compiled code that checks for signals itself (Ray's ``wait``)
    turns the exception a signal handler raised into a ``SystemError`` caused by it."""
    if isinstance(exc, SystemError):
        exc = exc.__cause__
    return exc if isinstance(exc, Stopped) else None


def dispatch(jobs: list[Job], out: Path, *, executor: str, workers: int | None, address: str | None, fresh: bool,
             threads: int | None, emit: Event) -> None:
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
        run_inline(todo, out, fresh=fresh, threads=threads, emit=emit)
    elif executor == "process":
        run_process_pool(todo, out, fresh=fresh, workers=min(workers, len(todo)), emit=emit)
    elif executor == "ray":
        run_ray(todo, out, fresh=fresh, address=address, workers=workers, emit=emit)
    else:
        raise BenchError(f"--executor: expected one of {', '.join(EXECUTORS)}, got {executor!r}")


def job_fields(job: Job) -> dict[str, Any]:
    """What a ``begin`` event says about a job."""
    return {"defense": job.defense.label, "seed": job.seed, "job_hash": job.job_hash}


def job_label(job: Job) -> str:
    return f"{job.defense.label} (seed {job.seed})"


def run_inline(todo: list[Job], out: Path, *, fresh: bool, threads: int | None, emit: Event) -> None:
    for job in todo:
        emit("begin", **job_fields(job))
        try:
            summary = execute(job, str(out), fresh, threads, on_event=emit)
        except Stopped as stop:
            stop.running = [job_label(job)]
            raise
        emit("done", summary=summary)


def run_process_pool(todo: list[Job], out: Path, *, fresh: bool, workers: int, emit: Event) -> None:
    """Jobs on a pool of spawned workers that ignore SIGINT (the parent stops the run: Ctrl-C reaches the whole
    process group). Workers send their events through a queue. On any exception the parent kills the workers (a
    worker mid-job would hold ``shutdown`` until its job ends), then cancels what is left."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    events = context.SimpleQueue()
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                               initargs=(events,))  # workers start on the first submits
    running: dict[str, Job] = {}
    futures: dict[Future, Job] = {}
    try:
        with signals_blocked():  # workers start with the stop signals held until they ignore SIGINT
            futures.update({pool.submit(_work, job, str(out), fresh): job for job in todo})
        failures = collect(futures, events, emit, running)
    except BaseException as exc:
        if isinstance(exc, Stopped):  # before the workers die: the queue still holds the begins not yet passed on
            exc.running = [job_label(job) for job in still_running(futures, events, running)]
        kill_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    raise_failures(failures, out)


def still_running(futures: dict[Future, Job], events, running: dict[str, Job]) -> list[Job]:
    """The jobs begun and not done: ``running`` and the jobs whose ``begin`` is still queued (noted, not passed on:
    the run is stopping), less those whose future is done."""
    forward(events, lambda *args, **fields: None, running, {job.job_hash: job for job in futures.values()})
    done = {job.job_hash for future, job in futures.items() if future.done()}
    return [job for job_hash, job in running.items() if job_hash not in done]


def collect(futures: dict[Future, Job], events, emit: Event,
            running: dict[str, Job]) -> list[tuple[Job, BaseException]]:
    """Wait for every future, passing the workers' events on; ``running`` holds the jobs begun and not done."""
    by_hash = {job.job_hash: job for job in futures.values()}
    failures = []
    remaining = set(futures)
    while remaining:
        done, remaining = wait(remaining, timeout=0.5, return_when=FIRST_COMPLETED)
        with signals_blocked():  # a stop never lands mid-message: ``still_running`` reads the queue after it
            forward(events, emit, running, by_hash)
        for future in done:
            running.pop(futures[future].job_hash, None)
            try:
                emit("done", summary=future.result())
            except Exception as exc:  # keep the other jobs running; report at the end
                failures.append((futures[future], exc))
    return failures


def forward(events, emit: Event, running: dict[str, Job], by_hash: dict[str, Job]) -> None:
    """Pass the workers' queued events on to ``emit``, noting which jobs have begun."""
    while not events.empty():
        kind, fields = events.get()
        if kind == "begin":
            running[fields["job_hash"]] = by_hash[fields["job_hash"]]
        emit(kind, **fields)


def kill_workers(pool: ProcessPoolExecutor) -> None:
    """End every worker process of ``pool`` now (Python 3.14 has ``pool.kill_workers()``; before it, the
    processes are only reachable through ``_processes``)."""
    kill = getattr(pool, "kill_workers", None)
    if kill is not None:
        kill()
        return
    for process in list((getattr(pool, "_processes", None) or {}).values()):
        if process.is_alive():
            process.kill()


class signals_blocked:  # noqa: N801 - used as a context manager like a function
    """Hold the signals that stop a run (``STOP_SIGNALS``) in this thread (children started meanwhile inherit the
    held mask); a signal that arrives meanwhile is delivered on exit."""

    def __enter__(self) -> None:
        self.previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)

    def __exit__(self, *exc: object) -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, self.previous)


def run_ray(todo: list[Job], out: Path, *, fresh: bool, address: str | None, workers: int, emit: Event) -> None:
    try:
        import ray
    except ImportError:
        raise BenchError("--executor ray needs Ray: pip install 'defense-bench[ray]'") from None
    started = not ray.is_initialized()
    if started:
        options = {"address": address} if address else {"num_cpus": workers}
        on_sigterm = signal.getsignal(signal.SIGTERM)
        ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR, **options)
        if on_sigterm is not None:  # Ray replaces it with its own (exit 15, a stack dump): SIGTERM stays ours
            signal.signal(signal.SIGTERM, on_sigterm)
    task, refs, finished = ray.remote(execute), {}, set()
    try:
        for job in todo:
            gpus = 1 if job.device.startswith("cuda") else 0
            refs[task.options(num_cpus=1, num_gpus=gpus).remote(job, str(Path(out).resolve()), fresh, 1)] = job
        failures = []
        while len(finished) < len(refs):
            [ref], _ = ray.wait([ref for ref in refs if ref not in finished], num_returns=1)
            finished.add(ref)
            try:
                emit("done", summary=ray.get(ref))
            except Exception as exc:
                failures.append((refs[ref], exc))
        raise_failures(failures, out)
    except BaseException as exc:
        unfinished = [ref for ref in refs if ref not in finished]
        for ref in unfinished:
            ray.cancel(ref, force=True)
        stop = stopped(exc)
        if stop is None:
            raise
        stop.running = [job_label(refs[ref]) for ref in unfinished]  # Ray does not say which had started
        raise stop from None
    finally:
        if started:
            ray.shutdown()


def raise_failures(failures: list[tuple[Job, BaseException]], out: Path) -> None:
    if not failures:
        return
    job, first = failures[0]
    problem = disk_problem(first, out)
    if problem is not None:
        raise BenchError(f"{problem} ({first}); finished jobs are stored")
    raise BenchError(f"{len(failures)} job(s) failed (finished jobs are stored); first: {job.defense.label} seed "
                     f"{job.seed}: {type(first).__name__}: {first}")


#: The queue a pool worker sends its events to (set in each worker by ``_init_worker``).
_events = None


def _init_worker(events) -> None:
    """Pool worker start-up: ignore SIGINT (the parent stops the run), then take the signals the parent held;
    warnings only, and Python warnings (ART's) into the log, not the terminal (the parent shows progress)."""
    global _events
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    _events = events
    logging.basicConfig(level=logging.WARNING, format="bench worker: %(levelname)s: %(name)s: %(message)s")
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.ERROR)


def _work(job: Job, out: str, fresh: bool) -> JobSummary:
    """A pool worker's job: ``execute`` with one torch thread, its events sent to the parent."""
    def emit(kind: str, **fields: Any) -> None:
        _events.put((kind, fields))

    emit("begin", **job_fields(job))
    return execute(job, out, fresh, 1, on_event=emit)
