"""``bench leaderboard``, ``bench compare`` and ``bench check``: reports from stored results, and the CI gate."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from benchmark.cli import main, print_board, progress_reporter, setup_logging
from benchmark.errors import BenchError, ConfigError

FORMAT_CHOICES = ("md", "csv", "json", "tex", "html", "all")


def load_board(store_path: str, dataset: str | None, norm: str | None, defenses: list[str] | None = None):
    """The leaderboard of a store: its newest (dataset, norm, ε grid, survivor mode) unless filtered."""
    from benchmark.leaderboard import build_leaderboard, same_kind_key
    from benchmark.store import Store

    try:
        with Store(store_path, create=False) as store:
            records = store.records()
    except BenchError as exc:
        raise ConfigError(f"--store: {exc}") from None
    records = [r for r in records if dataset in (None, r["dataset"]) and norm in (None, r["norm"])]
    if defenses is not None:
        records = [r for r in records if r["defense"] in defenses]
    if not records:
        raise ConfigError(f"--store: no stored results in {store_path} match the filters")
    newest = records[-1]
    kind = ("dataset", "norm", "eps", "survivors")
    same = [r for r in records if all(same_kind_key(r, k) == same_kind_key(newest, k) for k in kind)]
    return build_leaderboard(same)


@main.command()
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
    from benchmark.render import render, write_all
    from benchmark.render.plots import write_plots

    board = load_board(store_path, dataset, norm)
    if fmt == "all":
        directory = Path(out_path or store_path)
        directory.mkdir(parents=True, exist_ok=True)
        for path in write_all(board, directory):
            click.echo(f"wrote {path}")
        return
    text = render(board, fmt, **({"uncertainty": uncertainty} if fmt == "tex" else {}))
    if out_path is None:
        click.echo(text, nl=False)
        return
    target = Path(out_path)
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--out: cannot write {target}: {exc.strerror or exc}") from None
    click.echo(f"wrote {target}")
    if fmt == "html":
        for path in write_plots(board, target.parent, target.stem):
            click.echo(f"wrote {path}")


@main.command()
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
        print_diff(diff(pairs, eps, label))


def print_diff(lines, *, show_status: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table()
    for column in ("row", "metric", "before", "after", "Δ", "p", *(("status",) if show_status else ())):
        table.add_column(column, justify="left" if column in ("row", "metric", "status") else "right")
    for line in lines:
        p_value = "–" if line.p_value is None else f"{line.p_value:.3g}"
        cells = [line.label, line.metric, f"{100 * line.before:.1f}", f"{100 * line.after:.1f}",
                 f"{100 * line.delta:+.1f}", p_value]
        if show_status:
            cells.append(line.status.upper() if line.status != "ok" else "ok")
        table.add_row(*(Text(cell) for cell in cells))
    Console(width=max(120, Console().width)).print(table)


def read_baseline(path: str) -> dict[str, Any]:
    from benchmark.leaderboard import LEADERBOARD_SCHEMA_VERSION

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
    return baseline


@main.command()
@click.option("--baseline", "baseline_path", required=True, help="A leaderboard.json to hold the results to.")
@click.option("--tolerance", type=float, default=0.02, show_default=True,
              help="Largest accepted drop of any accuracy (fraction, 0.02 = 2 points).")
@click.option("--out", "out_dir", default="bench-results", show_default=True,
              help="Results directory; cached models and results there are reused.")
@click.option("--device", default="cpu", show_default=True, help="auto, cpu or cuda.")
@click.option("-v", "--verbose", is_flag=True, help="Log progress details.")
def check(baseline_path: str, tolerance: float, out_dir: str, device: str, verbose: bool) -> None:
    """Re-evaluate a baseline's configuration and fail (exit 1) on a regression beyond the tolerance or a
    significant paired drop; exit 2 if the baseline is missing, malformed or cannot be reproduced."""
    from benchmark.compare import check_rows
    from benchmark.config import build_config
    from benchmark.evaluate import evaluate
    from benchmark.plan import data_facts
    from benchmark.store import Store

    setup_logging(verbose)
    if not 0 <= tolerance < 1:
        raise ConfigError(f"--tolerance: expected a fraction in [0, 1), got {tolerance}")
    baseline = read_baseline(baseline_path)
    config_values = dict(baseline["config"])
    models = config_values.pop("model")
    if not isinstance(models, list) or len(models) != 1:
        raise ConfigError(f"--baseline: expected one model in the baseline's config, got {models!r}")
    try:
        config = build_config({**config_values, "model": models[0]}, {"out": out_dir, "device": device},
                              file_label=f"baseline {baseline_path}")
        with Store(config.out) as store:
            fingerprint = data_facts(config.dataset, store)[0]
    except ConfigError as exc:
        raise ConfigError(f"the baseline's configuration cannot be reproduced here: {exc}") from None
    expected = (baseline.get("provenance") or {}).get("data_fingerprint")
    if expected and expected != fingerprint:
        raise ConfigError(f"the baseline's configuration cannot be reproduced here: dataset {config.dataset!r} has "
                          f"fingerprint {fingerprint}, the baseline was made on {expected}")
    with progress_reporter() as on_event:
        board = evaluate(config, on_event=on_event)
    if list(board.eps) != list(baseline["eps"]):
        raise ConfigError(f"the fresh ε grid {list(board.eps)} differs from the baseline's {baseline['eps']}")
    print_board(board)
    try:
        lines = check_rows(baseline["rows"], list(board.rows), list(board.eps), tolerance)
    except KeyError as exc:
        raise ConfigError(f"the baseline's configuration cannot be reproduced here: {exc.args[0]}") from None
    print_diff(lines, show_status=True)
    failed = [line for line in lines if line.status != "ok"]
    if failed:
        worst = min(failed, key=lambda line: line.delta)
        click.echo(f"FAIL: {len(failed)} regression(s) against {baseline_path} (tolerance {100 * tolerance:.1f} "
                   f"points); worst: {worst.label}, {worst.metric}, {100 * worst.delta:+.1f} points")
        sys.exit(1)
    click.echo(f"OK: no regression against {baseline_path} (tolerance {100 * tolerance:.1f} points)")
