"""The ``bench`` command line. Only this module prints; everything else logs.

Imports of torch and ART happen inside the commands that need them, so ``bench --help`` and ``bench list`` stay
fast. Every error is one line on stderr with exit code 2; results already stored are never touched by an error.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
from typing import Any

import click

from benchmark.errors import BenchError

KINDS = ("defenses", "attacks", "datasets", "models")


class OneLineErrors(click.Group):
    """A group whose errors (click's usage errors and ours alike) print one line and exit 2, never a traceback."""

    def main(self, args=None, prog_name=None, **extra: Any):  # type: ignore[override]
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
        except (click.Abort, KeyboardInterrupt):
            click.echo("bench: interrupted; finished jobs are kept in the store", err=True)
            sys.exit(130)
        except Exception as exc:  # a bug, not bad input: one line, the traceback only with -v
            if logging.getLogger().isEnabledFor(logging.INFO):
                raise
            fail(f"internal error: {type(exc).__name__}: {exc} (finished jobs are kept; rerun with -v for the "
                 f"traceback)", code=1)
        sys.exit(code if isinstance(code, int) else 0)


def fail(message: str, code: int = 2) -> None:
    click.echo(f"bench: error: {' '.join(message.split())}", err=True)
    sys.exit(code)


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="defense-bench", prog_name="bench")
@click.option("-v", "--verbose", is_flag=True, help="Log details, and show the traceback of internal errors.")
def main(verbose: bool) -> None:
    """How robust is this defense, really, and at what cost?

    Trains defenses under one budget, scores them with ART attacks over ε sweeps and prints leaderboards.
    Start with `bench evaluate` (digits, standard vs PGD-AT, about a minute on two cores).
    """
    setup_logging(verbose)


@main.command("list")
@click.argument("kind", required=False, type=click.Choice(KINDS))
def list_command(kind: str | None) -> None:
    """List registered defenses, attacks, datasets and models, with their parameters."""
    import benchmark

    registries = {"defenses": benchmark.DEFENSES, "attacks": benchmark.ATTACKS,
                  "datasets": benchmark.DATASETS, "models": benchmark.MODELS}
    for name in [kind] if kind else KINDS:
        registry = registries[name]
        click.secho(f"{name}:", bold=True)
        for entry in registry.names():
            plugin = registry.get(entry)
            summary = " ".join((plugin.__doc__ or "").strip().split("\n\n")[0].split())
            click.echo(f"  {entry:<14} {summary}")
            params = describe_params(plugin)
            if params:
                click.echo(f"  {'':<14} {params}")


def describe_params(plugin: Any) -> str:
    """``key=default`` for each constructor field, plus the attack tags."""
    parts = []
    if dataclasses.is_dataclass(plugin):
        parts += [f"{f.name}={f.default}" for f in dataclasses.fields(plugin) if f.init]
    if hasattr(plugin, "needs_grad"):
        tags = ["norms=" + ",".join(f"L{n}" for n in plugin.norms)]
        tags += [t for t in ("needs_grad", "black_box", "minimal_norm") if getattr(plugin, t)]
        parts.append("[" + " ".join(tags) + "]")
    return " ".join(parts)


@main.command()
@click.option("--config", "config_file", type=click.Path(dir_okay=False), help="TOML file; options override it.")
@click.option("--dataset", help="Dataset name (default: digits).")
@click.option("--model", help="Model architecture (default: cnn-small).")
@click.option("--defense", "defenses", help="Comma list; name:key=value,key=value sets parameters "
                                            "(default: standard,pgd-at).")
@click.option("--attack", "attacks", help="Comma list of attacks and suites (suite:quick, suite:standard, "
                                          "suite:full; default: suite:default).")
@click.option("--norm", help="Threat model: inf or 2 (default: inf).")
@click.option("--eps", help="Comma list of ε in input units (default: the dataset's grid for the norm).")
@click.option("--seed", "seeds", help="Seed, or a comma list of seeds (default: 0).")
@click.option("--seeds", "n_seeds", type=int, help="Run seeds 0 … N-1 (instead of --seed).")
@click.option("--device", help="auto (cuda when an NVIDIA driver and CUDA are present), cpu or cuda (default: auto).")
@click.option("--out", help="Output directory: results store, checkpoints, leaderboards (default: ./bench-results).")
@click.option("--quick", is_flag=True, default=None, help="Smoke run: 1/8 of the epochs and 100 test samples.")
@click.option("--n-test", "n_test", help="Evaluate on the first N test samples only.")
@click.option("--survivors", help="shared: at each ε an attack gets only the samples no attack has broken yet "
                                   "(fastest; per-attack numbers are cumulative); per-attack: each attack on the "
                                   "samples it left robust itself (standalone per-attack numbers) (default: shared).")
@click.option("--fresh", is_flag=True, help="Ignore stored results and checkpoints; recompute everything.")
@click.option("--executor", type=click.Choice(("auto", "inline", "process", "ray")), default="auto",
              show_default=True, help="auto: a process pool when at least two jobs per worker are pending, "
                                      "else inline.")
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes (default: one per core).")
@click.option("--address", help="Ray cluster address (with --executor ray; default: a local cluster).")
@click.option("-v", "--verbose", is_flag=True, help="Log progress details.")
def evaluate(config_file: str | None, fresh: bool, executor: str, workers: int | None, address: str | None,
             verbose: bool, **options: Any) -> None:
    """Train each defense, attack it over the ε sweep, and print the leaderboard."""
    from benchmark.config import build_config, load_toml

    setup_logging(verbose)
    n_seeds = options.pop("n_seeds")
    if n_seeds is not None:
        if options["seeds"] is not None:
            raise click.UsageError("give --seed or --seeds, not both")
        if n_seeds < 1:
            raise click.UsageError(f"--seeds: must be at least 1, got {n_seeds}")
        options["seeds"] = ",".join(str(seed) for seed in range(n_seeds))
    overrides = {key: value for key, value in options.items() if value is not None}
    file_values = load_toml(config_file) if config_file else None
    config = build_config(file_values, overrides, file_label=str(config_file))

    from benchmark.evaluate import evaluate as run_evaluation
    from benchmark.render import render

    with progress_reporter() as on_event:
        board = run_evaluation(config, fresh=fresh, executor=executor, workers=workers, address=address,
                               on_event=on_event)
    for fmt in ("md", "json"):
        (config.out / f"leaderboard.{fmt}").write_text(render(board, fmt), encoding="utf-8")
    print_board(board)
    if config.quick:
        click.echo("Quick run: fewer epochs and test samples; not for comparison with full runs.")
    click.echo(f"Wrote {config.out / 'leaderboard.md'} and {config.out / 'leaderboard.json'}; "
               f"results and checkpoints in {config.out}")


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(format="bench: %(levelname)s: %(name)s: %(message)s")
    if verbose or not logging.getLogger().isEnabledFor(logging.INFO):
        logging.getLogger().setLevel(logging.INFO if verbose else logging.WARNING)


class progress_reporter:  # noqa: N801 - used as a context manager like a function
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
                                     description=f"finished {fields['record']['defense']}")

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


def print_board(board) -> None:
    from rich.console import Console
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
    console = Console(width=max(140, Console().width))
    console.print(table)
    for line in legend_lines(board):
        console.print(f"  • {line}", highlight=False, markup=False)


from benchmark import cli_reports  # noqa: E402,F401  (registers leaderboard, compare and check)
