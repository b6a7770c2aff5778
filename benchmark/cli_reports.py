"""``bench leaderboard``, ``bench compare`` and ``bench check``: reports from stored results, and the CI gate.
``benchmark.cli`` adds ``COMMANDS`` to the ``bench`` group; this module does not import it."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from benchmark.console import dry_run_option, print_board, print_diff, run_or_plan, setup_logging, time_limit_option
from benchmark.errors import BenchError, ConfigError

FORMAT_CHOICES = ("md", "csv", "json", "tex", "html", "all")


def load_board(store_path: str, dataset: str | None, norm: str | None, defenses: list[str] | None = None):
    """The leaderboard of a store: its newest (dataset, norm, ε grid, survivor mode) unless filtered."""
    from benchmark.leaderboard import build_leaderboard
    from benchmark.store import Store

    try:
        with Store(store_path, create=False) as store:
            records = store.records()
    except BenchError as exc:
        raise ConfigError(f"--store: {exc}") from None
    records = [r for r in records if dataset in (None, r.dataset) and norm in (None, r.norm)]
    if defenses is not None:
        records = [r for r in records if r.defense in defenses]
    if not records:
        raise ConfigError(f"--store: no stored results in {store_path} match the filters")
    newest = suite_settings(records[-1])  # the newest record's kind; one row per defense, model and seed
    return build_leaderboard(newest_rows(records, lambda record: suite_settings(record) == newest))


@click.command()
@click.option("--store", "store_path", default="bench-results", show_default=True, help="Results directory.")
@click.option("--format", "fmt", type=click.Choice(FORMAT_CHOICES), default="md", show_default=True)
@click.option("--out", "out_path", help="File to write (a directory with --format all); default: stdout.")
@click.option("--dataset", help="Only this dataset (default: the newest result's).")
@click.option("--norm", help="Only this norm (default: the newest result's).")
@click.option("--uncertainty", type=click.Choice(("sd", "ci")), default="sd", show_default=True,
              help="LaTeX: ± sd over seeds, or Wilson 95% intervals.")
def leaderboard(store_path: str, fmt: str, out_path: str | None, dataset: str | None, norm: str | None,
                uncertainty: str) -> None:
    """Render the stored results as Markdown, CSV, JSON, LaTeX or HTML (with PNG and SVG plots), training nothing."""
    from benchmark.fileio import make_directory, write_text
    from benchmark.render import render, write_all
    from benchmark.render.plots import write_plots

    board = load_board(store_path, dataset, norm)
    if fmt == "all":
        for path in write_all(board, make_directory(out_path or store_path, "--out")):
            click.echo(f"wrote {path}")
        return
    text = render(board, fmt, **({"uncertainty": uncertainty} if fmt == "tex" else {}))
    if out_path is None:
        click.echo(text, nl=False)
        return
    target = write_text(out_path, text)
    click.echo(f"wrote {target}")
    if fmt == "html":
        for path in write_plots(board, target.parent, target.stem):
            click.echo(f"wrote {path}")


#: The lock file in ``--out`` that ``write_leaderboards`` holds.
LEADERBOARD_LOCK = ".leaderboard.lock"


def write_leaderboards(out: Path, board) -> list[Path]:
    """``leaderboard.md`` and ``leaderboard.json`` in ``out`` after ``bench evaluate``: every stored result with
    the run's settings (``stored_board``), so runs that share ``out`` add up instead of overwriting each other. The
    store is read and the files written under an exclusive lock (``LEADERBOARD_LOCK``): a run that read the store
    before another run's last result cannot write its files after that run's."""
    from benchmark.fileio import exclusive_lock, write_text
    from benchmark.render import render

    with exclusive_lock(Path(out) / LEADERBOARD_LOCK):
        merged = stored_board(out, board)
        return [write_text(Path(out) / f"leaderboard.{fmt}", render(merged, fmt)) for fmt in ("md", "json")]


def stored_board(out: Path, board):
    """The leaderboard of every stored record with the settings of ``board``'s records (dataset, norm, model, ε
    grid, attacks, test samples, quick, survivor mode): the newest record per (defense, model, seed)."""
    from benchmark.leaderboard import build_leaderboard
    from benchmark.store import Store

    with Store(out) as store:
        records = store.records()
    this_run = {row["provenance"]["job_hash"] for row in board.rows}
    wanted = {settings(record) for record in records if record.job_hash in this_run}
    return build_leaderboard(newest_rows(records, lambda record: settings(record) in wanted),
                             headline_eps=board.headline_eps)


def newest_rows(records: list, keep) -> list:
    """Of the ``records`` (oldest first) for which ``keep(record)`` holds, the newest per (defense, model, seed): a
    re-run of the same row (e.g. after a harness upgrade changed its job hash) replaces the older result."""
    newest = {}
    for record in records:
        if keep(record):
            newest[record.defense, record.model, record.seed] = record
    return list(newest.values())


def suite_settings(record) -> tuple:
    """What rows on one ``bench leaderboard`` share: dataset, norm, ε grid, survivor mode, attacks and their
    parameters, test samples, quick (the model may differ)."""
    return record.board_key, json.dumps(record.attacks), record.n_test, record.quick


def settings(record) -> tuple:
    """What rows on one ``leaderboard.md`` share: everything of a job but the defense and the seed."""
    return (*suite_settings(record), record.model)


@click.command()
@click.argument("a")
@click.argument("b")
@click.option("--store", "store_path", default="bench-results", show_default=True,
              help="Store holding both defenses (when A and B are defense names).")
@click.option("--dataset", help="Only this dataset.")
@click.option("--norm", help="Only this norm.")
def compare(a: str, b: str, store_path: str, dataset: str | None, norm: str | None) -> None:
    """Compare two defenses of one store (A, B are defense labels), or two stores (A, B are directories): per-ε
    differences and McNemar's paired test on the same test samples."""
    from benchmark.compare import diff, row_key

    if Path(a).is_dir() and Path(b).is_dir():
        board_a, board_b = load_board(a, dataset, norm), load_board(b, dataset, norm)
        if board_a.eps != board_b.eps:
            raise ConfigError(f"the stores have different ε grids: {board_a.eps} vs {board_b.eps}")
        rows_b = {row_key(row): row for row in board_b.rows}
        pairs = [(row, rows_b[row_key(row)]) for row in board_a.rows if row_key(row) in rows_b]
        groups = {}
        for pair in pairs:
            groups.setdefault(f"{pair[0]['defense']} · {pair[0]['model']}", []).append(pair)
        title, eps = f"{a} → {b}", list(board_a.eps)
    else:
        board = load_board(store_path, dataset, norm)
        rows = {name: {row["seed"]: row for row in board.rows if row["defense"] == name} for name in (a, b)}
        for name in (a, b):
            if not rows[name]:
                known = ", ".join(sorted({row["defense"] for row in board.rows}))
                raise ConfigError(f"no stored results for defense {name!r} in {store_path} (stored: {known})")
        seeds = sorted(set(rows[a]) & set(rows[b]))
        groups = {f"{a} → {b} (seeds {', '.join(map(str, seeds))})": [(rows[a][s], rows[b][s]) for s in seeds]}
        title, eps = f"{a} → {b}", list(board.eps)
    if not any(groups.values()):
        raise ConfigError("nothing to compare: no (defense, model, seed) is in both")
    click.echo(f"Paired comparison {title} (accuracy %, McNemar p-value on the same samples)")
    for label, pairs in groups.items():
        print_diff(diff(pairs, eps, label), sides=(a, b))


def read_baseline(path: str) -> dict[str, Any]:
    from benchmark.leaderboard import LEADERBOARD_SCHEMA_VERSION
    from benchmark.leaderboard_privacy import privacy_of

    try:
        baseline = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"--baseline: file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--baseline: {path} is not a readable JSON leaderboard: {exc}") from None
    if not isinstance(baseline, dict) or baseline.get("schema_version") != LEADERBOARD_SCHEMA_VERSION:
        found = baseline.get("schema_version") if isinstance(baseline, dict) else None
        raise ConfigError(f"--baseline: {path} is not a leaderboard of schema version {LEADERBOARD_SCHEMA_VERSION} "
                          f"(found {found!r}); regenerate it with bench evaluate")
    for key in ("config", "rows", "eps"):
        if key not in baseline:
            raise ConfigError(f"--baseline: {path} has no {key!r}; regenerate it with bench evaluate")
    for field, value in numbers(baseline):
        problem = number_problem(field, value, len(baseline["eps"]) if isinstance(baseline["eps"], list) else 0)
        if problem:
            raise ConfigError(f"--baseline: {path} is malformed: {field_name(field)} is {value!r}; expected "
                              f"{problem}")
    for index, row in enumerate(baseline["rows"] if isinstance(baseline["rows"], list) else []):
        try:
            privacy_of(row if isinstance(row, dict) else {})
        except ValueError as exc:
            raise ConfigError(f"--baseline: {path} is malformed: rows[{index}].privacy: {exc}") from None
    return baseline


#: Baseline fields holding fractions in [0, 1] (a key anywhere on the number's path), fields that are ≥ 0 (by name,
#: or by the suffix of the name), and fields that may be +∞ (a minimal-norm attack's median distance when it broke
#: under half its samples; the PSNR of a perfect reconstruction).
FRACTIONS = frozenset({"clean_accuracy", "robust_accuracy", "per_attack", "clean_ci", "robust_ci", "success_rate"})
NON_NEGATIVE = frozenset({"eps", "headline_eps", "seed", "seeds", "n_test", "batch_size"})
NON_NEGATIVE_SUFFIXES = ("_seconds", "_grad_evals", "_queries", "_sample_runs")
MAY_BE_INFINITE = frozenset({"median_distance", "psnr", "psnr_values"})


def numbers(value: Any, path: tuple = ()) -> Iterator[tuple[tuple, float]]:
    """Every number in a parsed JSON value, with its path of keys and list indices (booleans are not numbers)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from numbers(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from numbers(item, (*path, index))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield path, value


def number_problem(path: tuple, value: float, n_eps: int) -> str | None:
    """What a baseline number at ``path`` should be, if it is not (None when it is fine)."""
    keys = {key for key in path if isinstance(key, str)}
    if not math.isfinite(value):  # a minimal-norm attack that broke under half its samples has an infinite median
        return None if value == math.inf and keys & MAY_BE_INFINITE else "a finite number"
    if keys & FRACTIONS and not 0 <= value <= 1:
        return "a fraction in [0, 1]"
    if "worst_broken_at" in keys and not (float(value).is_integer() and 0 <= value <= n_eps):
        return f"an ε index from 0 to {n_eps}"
    if (keys & NON_NEGATIVE or any(key.endswith(NON_NEGATIVE_SUFFIXES) for key in keys)) and value < 0:
        return "a number ≥ 0"
    return None


def field_name(path: tuple) -> str:
    """``("rows", 0, "robust_accuracy", "0.1")`` → ``rows[0].robust_accuracy["0.1"]``."""
    text = ""
    for key in path:
        if isinstance(key, int):
            text += f"[{key}]"
        elif key.isidentifier():
            text += f".{key}" if text else key
        else:
            text += f"[{json.dumps(key)}]"
    return text


@click.command()
@click.option("--baseline", "baseline_path", required=True,
              help="A leaderboard.json (or bench matrix's matrix.json) to hold the results to.")
@click.option("--tolerance", type=float, default=0.02, show_default=True,
              help="Largest accepted drop of any accuracy, and rise of the membership-inference advantage or of "
                   "a backdoor's success rate (fraction, 0.02 = 2 points).")
@click.option("--out", "out_dir", default="bench-results", show_default=True,
              help="Results directory; cached models and results there are reused.")
@click.option("--device", default="cpu", show_default=True, help="auto, cpu or cuda.")
@click.option("--model", help="Score this model instead of the one at the baseline's model path (a model file, "
                             "kind:PATH).")
@time_limit_option
@dry_run_option
@click.option("-v", "--verbose", is_flag=True, help="Log progress details.")
def check(baseline_path: str, tolerance: float, out_dir: str, device: str, model: str | None,
          time_limit_s: float | None, dry_run: bool, verbose: bool) -> None:
    """Re-evaluate a baseline's configuration and fail (exit 1) on a regression beyond the tolerance (an accuracy
    drop, or a rise of the membership-inference advantage or of a backdoor's success rate) or a significant paired
    drop; exit 2 if the baseline is missing, malformed or cannot be reproduced."""
    from benchmark.compare import check_rows

    setup_logging(verbose)
    if not 0 <= tolerance < 1:
        raise ConfigError(f"--tolerance: expected a fraction in [0, 1), got {tolerance}")
    baseline = read_baseline(baseline_path)
    _, board = run_or_plan(lambda create_out: baseline_config(baseline, baseline_path, out_dir, device, model=model,
                                                              dry_run=not create_out),
                           dry_run=dry_run, time_limit_s=time_limit_s)
    if board is None:
        return
    for line in model_lines(baseline, board):
        click.echo(line)
    if list(board.eps) != list(baseline["eps"]):
        raise ConfigError(f"the fresh ε grid {list(board.eps)} differs from the baseline's {baseline['eps']}")
    print_board(board)
    rows = baseline["rows"]
    if model:  # the baseline's rows stand for the model given instead
        rows = [{**row, "model": board.rows[0]["model"]} for row in rows]
    try:
        lines = check_rows(rows, list(board.rows), list(board.eps), tolerance)
    except KeyError as exc:
        raise ConfigError(f"the baseline's configuration cannot be reproduced here: {exc.args[0]}") from None
    print_diff(lines, sides=("baseline", "now"), show_status=True)
    failed = [line for line in lines if line.status != "ok"]
    if failed:
        worst = max(failed, key=lambda line: line.loss)
        click.echo(f"FAIL: {len(failed)} regression(s) against {baseline_path} (tolerance {100 * tolerance:.1f} "
                   f"points); worst: {worst.label}, {worst.metric}, {100 * worst.delta:+.1f} points")
        sys.exit(1)
    click.echo(f"OK: no regression against {baseline_path} (tolerance {100 * tolerance:.1f} points)")


def model_lines(baseline: dict[str, Any], board) -> list[str]:
    """For a model from a file: its SHA-256 now and in the baseline (a changed file is what the gate is for)."""
    before = {row["defense"]: row["provenance"].get("model_sha256") for row in baseline["rows"]}
    lines = []
    for row in board.rows:
        now = row["provenance"].get("model_sha256")
        if now is not None:
            was = before.get(row["defense"])
            same = "unchanged" if was == now else f"baseline {was[:16] if was else 'unknown'}…"
            lines.append(f"model {row['model']} ({row['defense']}, seed {row['seed']}): SHA-256 {now[:16]}… ({same})")
    return lines


def baseline_config(baseline: dict[str, Any], baseline_path: str, out_dir: str, device: str, *,
                    model: str | None = None, dry_run: bool = False):
    """The ``EvalConfig`` that re-evaluates ``baseline`` here (with ``model`` instead of the baseline's, if given),
    or a one-line reason why it cannot (``dry_run``: creating and writing nothing)."""
    from benchmark.config import build_config
    from benchmark.plan import data_facts
    from benchmark.store import Store

    config_values = dict(baseline["config"])
    models = config_values.pop("model")
    if not isinstance(models, list) or len(models) != 1:
        raise ConfigError(f"--baseline: expected one model in the baseline's config, got {models!r}")
    overrides = {"out": out_dir, "device": device, **({"model": model} if model else {})}
    try:
        config = build_config({**config_values, "model": models[0]}, overrides,
                              file_label=f"baseline {baseline_path}", create_out=not dry_run)
        with Store(config.out, read_only=dry_run) as store:
            fingerprint = data_facts(config.dataset, store).fingerprint
    except ConfigError as exc:
        raise ConfigError(f"the baseline's configuration cannot be reproduced here: {exc}") from None
    expected = (baseline.get("provenance") or {}).get("data_fingerprint")
    if expected and expected != fingerprint:
        raise ConfigError(f"the baseline's configuration cannot be reproduced here: dataset {config.dataset!r} has "
                          f"fingerprint {fingerprint}, the baseline was made on {expected}")
    return config


#: The report commands, added to the ``bench`` group by ``benchmark.cli``.
COMMANDS = (leaderboard, compare, check)
