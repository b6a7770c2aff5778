"""What the ``bench`` commands share on the console: exit handling (one line, never a traceback), signals and the
time limit, logging, progress, and printing boards and diffs. Only the CLI modules use it; library code logs.

Imports stay light (click only): rich, torch and the rest load inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import click

from benchmark.errors import STOP_SIGNALS, BenchError, Stopped

#: Exit codes of a run stopped by a signal: 128 + the signal's number, as shells report it.
SIGNAL_CODES = {signal.SIGINT: 130, signal.SIGTERM: 143}

#: Seconds between two plain progress lines about the same job's steps (jobs starting and ending always print).
PROGRESS_EVERY = 5.0


#: ``--time-limit`` of ``bench evaluate`` and ``bench check``.
time_limit_option = click.option(
    "--time-limit", "time_limit_s", type=click.FloatRange(min=0, min_open=True), metavar="SECONDS",
    help="Stop after this many seconds of wall time (finished jobs are kept) and exit 2, naming the job(s) that "
         "were running.")


class OneLineErrors(click.Group):
    """A group whose errors (click's usage errors and ours alike) print one line and exit 2, never a traceback;
    SIGINT and SIGTERM stop a run with one line and exit 130 / 143. The first stop wins: once a signal (or the time
    limit) has stopped the run, further ones are ignored until that line is printed."""

    def main(self, args=None, prog_name=None, **extra: Any):  # type: ignore[override]
        with stop_on_signals():  # outermost: its exit, after the line below, puts the handlers back
            try:
                code = super().main(args=args, prog_name=prog_name or "bench", standalone_mode=False, **extra)
            except click.exceptions.NoArgsIsHelpError as exc:
                click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
                sys.exit(0)
            except click.UsageError as exc:
                command = exc.ctx.command_path if exc.ctx else "bench"
                fail(f"{exc.format_message()} (see '{command} --help')")
            except click.ClickException as exc:
                fail(exc.format_message())
            except BenchError as exc:
                fail(str(exc))
            except Stopped as stop:
                click.echo(stop_message(stop), err=True)
                sys.exit(stop.code)
            except (click.Abort, KeyboardInterrupt):
                click.echo("bench: interrupted; finished jobs are kept in the store", err=True)
                sys.exit(SIGNAL_CODES[signal.SIGINT])
            except Exception as exc:  # a bug, not bad input: one line, the traceback only with -v
                if logging.getLogger().isEnabledFor(logging.INFO):
                    raise
                fail(f"internal error: {type(exc).__name__}: {exc} (finished jobs are kept; rerun with -v for the "
                     f"traceback)", code=1)
            sys.exit(code if isinstance(code, int) else 0)


def fail(message: str, code: int = 2) -> None:
    click.echo(f"bench: error: {' '.join(message.split())}", err=True)
    sys.exit(code)


def stop_message(stop: Stopped) -> str:
    """The one line for a stopped run: what stopped it, what was running (time limit), what was kept."""
    if stop.kept is None:
        kept = "finished jobs are kept"
    else:
        kept = f"{stop.kept} finished job{'' if stop.kept == 1 else 's'} kept"
    if stop.code == 2:
        running = f"running {', '.join(stop.running)}" if stop.running else "no job was running"
        return f"bench: error: {stop.reason} while {running}; {kept}"
    return f"bench: {stop.reason}; {kept}"


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Inside the block, SIGINT and SIGTERM raise ``Stopped`` (exit 130, 143) in the main thread."""
    reasons = {signal.SIGINT: "interrupted", signal.SIGTERM: "interrupted (SIGTERM)"}
    with raising(tuple(reasons), lambda signum: Stopped(reasons[signum], SIGNAL_CODES[signum])):
        yield


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Inside the block, ``Stopped`` (exit 2) once ``seconds`` of wall time have passed (no limit for None)."""
    if seconds is None:
        yield
        return
    with raising((signal.SIGALRM,), lambda signum: Stopped(f"--time-limit of {seconds:g} s reached", 2)):
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            yield
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)




class _Blocks:
    """The ``raising`` blocks open in the main thread, and whether a stop has fired in them."""

    depth = 0
    stopping = False


@contextlib.contextmanager
def raising(signals: tuple[signal.Signals, ...], make) -> Iterator[None]:
    """Handlers that raise ``make(signum)`` for ``signals``. The first stop wins: from then on every one of
    ``STOP_SIGNALS`` stays ignored until the outermost block exits (an inner block, such as ``time_limit``'s inside
    ``stop_on_signals``', does not put its handlers back), so the teardown runs to its end; then all are restored.
    Outside the main thread (where Python runs no handlers) nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        _Blocks.stopping = True
        for ignored in STOP_SIGNALS:
            signal.signal(ignored, signal.SIG_IGN)
        raise make(signum)

    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    _Blocks.depth += 1
    try:
        for signum in signals:
            signal.signal(signum, handler)
        yield
    finally:
        leave_block(previous)


def leave_block(previous: dict[int, Any]) -> None:
    """The end of a ``raising`` block: put back the handlers it found, unless a stop has fired and an outer block is
    still open (the stop signals then stay ignored)."""
    _Blocks.depth -= 1
    if _Blocks.stopping and _Blocks.depth > 0:
        return
    if _Blocks.depth == 0:
        _Blocks.stopping = False
    for signum, action in previous.items():
        if action is not None:  # None: a handler not installed from Python, which cannot be put back
            signal.signal(signum, action)


def setup_logging(verbose: bool) -> None:
    """Warnings only (details with ``verbose``); Python warnings (ART's RuntimeWarnings) go to the log, shown
    only with ``verbose``."""
    logging.basicConfig(format="bench: %(levelname)s: %(name)s: %(message)s")
    if verbose or not logging.getLogger().isEnabledFor(logging.INFO):
        logging.getLogger().setLevel(logging.INFO if verbose else logging.WARNING)
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.INFO if verbose else logging.ERROR)


def progress_reporter():
    """Progress of a run: rich bars on stderr when stdout is a terminal, else plain timestamped lines on stdout
    (CI logs). A context manager that gives the ``on_event`` callback of ``benchmark.executors.run_jobs``."""
    return BarProgress() if sys.stdout.isatty() else LineProgress()


class BarProgress:
    """Two rich progress bars on stderr: one over jobs, one over the current job's steps (training, each attack)."""

    def __enter__(self):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description:<44}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=Console(stderr=True))
        self.progress.start()
        self.jobs = self.steps = None
        return self.on_event

    def on_event(self, kind: str, **fields: Any) -> None:
        if kind == "start":
            skipped = fields["total"] - fields["todo"]
            label = "jobs" + (f" ({skipped} cached)" if skipped else "")
            self.jobs = self.progress.add_task(label, total=fields["todo"])
        elif kind == "phase":
            if self.steps is None:
                self.steps = self.progress.add_task("", total=fields["steps"])
            self.progress.update(self.steps, description=fields["text"], completed=fields["step"],
                                 total=fields["steps"])
        elif kind == "done" and self.jobs is not None:
            self.progress.advance(self.jobs)
            if self.steps is not None:
                self.progress.update(self.steps, completed=self.progress.tasks[self.steps].total,
                                     description=f"finished {fields['summary'].defense}")

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


class LineProgress:
    """Plain progress lines on stdout, each with a timestamp: the plan, each job's start and end, and its steps
    (training, each attack) at most every ``PROGRESS_EVERY`` seconds."""

    def __enter__(self):
        self.todo = self.finished = 0
        self.started: dict[tuple[str, int], float] = {}
        self.last_step = 0.0
        return self.on_event

    def on_event(self, kind: str, **fields: Any) -> None:
        if kind == "start":
            cached = fields["total"] - fields["todo"]
            self.todo = fields["todo"]
            self.line(f"{fields['total']} jobs: {self.todo} to run, {cached} cached")
        elif kind == "begin":
            self.started[fields["defense"], fields["seed"]] = time.monotonic()
            self.line(f"started {fields['defense']} (seed {fields['seed']})")
        elif kind == "phase" and time.monotonic() - self.last_step >= PROGRESS_EVERY:
            self.last_step = time.monotonic()
            self.line(f"{fields['text']} (step {fields['step'] + 1} of {fields['steps']})")
        elif kind == "done":
            summary = fields["summary"]  # a benchmark.executors.JobSummary
            self.finished += 1
            began = self.started.pop((summary.defense, summary.seed), None)
            took = "" if began is None else f" in {time.monotonic() - began:.1f} s"
            self.line(f"finished {summary.defense} (seed {summary.seed}){took} ({self.finished} of {self.todo} jobs)")

    @staticmethod
    def line(text: str) -> None:
        click.echo(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}")

    def __exit__(self, *exc: object) -> None:
        pass


#: ``--dry-run`` of ``bench evaluate`` and ``bench check``.
dry_run_option = click.option(
    "--dry-run", is_flag=True, help="Check the configuration and list the jobs it plans (stored in --out or to run), "
                                    "training, attacking and writing nothing.")


def run_or_plan(make_config, *, dry_run: bool, time_limit_s: float | None, fresh: bool = False, **options: Any):
    """What ``bench evaluate`` and ``bench check`` do with their configuration: with ``dry_run``, print the plan of
    ``make_config(create_out=False)`` and return ``(None, None)``; otherwise build it, run it within the time limit
    with progress on the console and disk problems as one line, and return ``(config, leaderboard)``. ``options``
    go to ``benchmark.pipeline.run_config`` (executor, workers, address)."""
    from benchmark.fileio import disk_errors
    from benchmark.pipeline import run_config

    if dry_run:
        print_plan(make_config(create_out=False), fresh=fresh)
        return None, None
    with time_limit(time_limit_s):
        config = make_config(create_out=True)
        with disk_errors(config.out), progress_reporter() as on_event:
            return config, run_config(config, fresh=fresh, on_event=on_event, **options)


def print_plan(config, *, fresh: bool = False) -> None:
    """``--dry-run``: one line per job a run of ``config`` plans (defense, seed, stored in ``config.out`` or to run),
    found as the run finds them but on a copy in memory of the store: nothing is trained, attacked or written."""
    from benchmark.plan import data_facts, plan
    from benchmark.preflight import preflight
    from benchmark.store import Store

    config = preflight(config)
    with Store(config.out, read_only=True) as store:
        jobs = plan(config, data_facts(config.dataset, store, fresh=fresh))
        stored = set() if fresh else store.stored([job.job_hash for job in jobs])
    width = max(len(job.defense.label) for job in jobs)
    for job in jobs:
        click.echo(f"{job.defense.label:<{width}}  seed {job.seed}  {'stored' if job.job_hash in stored else 'to run'}")
    click.echo(f"{len(jobs)} jobs: {len(jobs) - len(stored)} to run, {len(stored)} stored in {config.out} "
               f"(dry run: nothing trained, attacked or written)")


def print_board(board) -> None:
    from rich.console import Console
    from rich.measure import Measurement
    from rich.table import Table
    from rich.text import Text

    from benchmark.leaderboard import TEXT_COLUMNS, legend_lines, table_cells

    header, body = table_cells(board)
    norm = "L∞" if board.norm == "inf" else f"L{board.norm}"
    table = Table(title=f"{board.dataset} · {norm} · worst case over {', '.join(board.attacks)} (%)")
    for column in header:
        if column == "defense":
            table.add_column(column, overflow="fold", ratio=1)
        else:
            table.add_column(column, justify="left" if column in TEXT_COLUMNS else "right", no_wrap=True)
    for cells in body:
        table.add_row(*(Text(cell) for cell in cells))  # Text: no rich markup in user strings
    unbounded = Console(width=10_000)  # the table's natural width: numbers are never cut, the defense never folds away
    natural = Measurement.get(unbounded, unbounded.options, table).maximum
    console = Console(width=max(140, Console().width, natural))
    console.print(table)
    for line in legend_lines(board):
        console.print(f"  • {line}", highlight=False, markup=False)


def print_diff(lines, *, sides: tuple[str, str] = ("before", "after"), show_status: bool = False) -> None:
    """A table of ``DiffLine``s; ``sides`` names the two compared columns (two defenses, two stores, baseline and
    now)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table()
    columns = [("row", "left"), ("metric", "left"), *((side, "right") for side in sides), ("Δ", "right"),
               ("p", "right"), *((("status", "left"),) if show_status else ())]
    for column, justify in columns:
        table.add_column(Text(column), justify=justify)
    for line in lines:
        p_value = "–" if line.p_value is None else f"{line.p_value:.3g}"
        cells = [line.label, line.metric, f"{100 * line.before:.1f}", f"{100 * line.after:.1f}",
                 f"{100 * line.delta:+.1f}", p_value]
        if show_status:
            cells.append(line.status.upper() if line.status != "ok" else "ok")
        table.add_row(*(Text(cell) for cell in cells))
    Console(width=max(120, Console().width)).print(table)
