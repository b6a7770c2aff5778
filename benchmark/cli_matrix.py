"""``bench matrix``: the federated defenses' aggregation rules × client attacks, each cell a ``fedavg`` job of the
ordinary run (stored, cached, resumable), printed and written as a matrix (``benchmark/matrix.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from benchmark.console import dry_run_option, run_or_plan, setup_logging, time_limit_option

DEFAULT_RULES = "mean,median,trimmed-mean,krum,norm-bounding,centered-clipping,fltrust"
DEFAULT_ATTACKS = "none,sign-flip,ipm,alie,min-max,label-flip,backdoor"


@click.command()
@click.option("--aggregation", "rules", default=DEFAULT_RULES, show_default=True,
              help="Comma list of aggregation rules (the rows).")
@click.option("--client-attack", "client_attacks", default=DEFAULT_ATTACKS, show_default=True,
              help="Comma list of client attacks (the columns), NAME[:key=value;key=value]; none: no attacker.")
@click.option("--byzantine", default=2, show_default=True, type=click.IntRange(min=1), help="Attacking clients.")
@click.option("--fedavg", "base", default="clients=10", show_default=True,
              help="The other fedavg parameters of every cell, key=value,… (clients, rounds, partition, alpha, …).")
@click.option("--dataset", help="Dataset (default: digits).")
@click.option("--model", help="Model (default: cnn-small).")
@click.option("--attack", "attacks", default="fgsm", show_default=True, help="Evasion attacks scored in every cell.")
@click.option("--eps", help="ε grid of the evasion attacks (default: the dataset's).")
@click.option("--seed", "seeds", help="Seed, or a comma list of seeds (default: 0).")
@click.option("--device", help="auto, cpu or cuda (default: auto).")
@click.option("--quick", is_flag=True, default=None, help="An eighth of the rounds: a smoke run.")
@click.option("--out", default="bench-results", show_default=True, help="Results directory; matrix.md and .json.")
@click.option("--executor", type=click.Choice(("auto", "inline", "process", "ray")), default="auto",
              show_default=True)
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes (default: one per core).")
@time_limit_option
@dry_run_option
def matrix(rules: str, client_attacks: str, byzantine: int, base: str, executor: str, workers: int | None,
           time_limit_s: float | None, dry_run: bool, **options) -> None:
    """Run every aggregation rule against every client attack and print the matrix of clean accuracy (and backdoor
    success), with each rule's worst case."""
    from benchmark.config import build_config, split_list
    from benchmark.matrix import build_matrix, column, markdown, matrix_specs
    from benchmark.plan import plan
    from benchmark.store import Store

    setup_logging(False)
    specs = matrix_specs(split_list(rules), split_list(client_attacks), base=base, byzantine=byzantine)
    overrides = {key: value for key, value in {**options, "defenses": ",".join(specs)}.items() if value is not None}
    config, _ = run_or_plan(lambda create_out: build_config(None, overrides, create_out=create_out), dry_run=dry_run,
                            time_limit_s=time_limit_s, executor=executor, workers=workers)
    if config is None:
        return
    planned = {job.job_hash for job in plan(config)}
    with Store(config.out, create=False, read_only=True) as store:
        records = [r for r in store.records() if r.job_hash in planned]  # this matrix's cells only
    table = build_matrix(records, order=[column(text) for text in split_list(client_attacks)])
    text = markdown(table)
    click.echo(text)
    Path(config.out, "matrix.md").write_text(f"# Aggregation × client attack: {config.dataset}\n\n{text}",
                                             encoding="utf-8")
    cells = [{"aggregation": rule, "attack": attack, "clean_accuracy": cell.clean, "backdoor_success": cell.backdoor,
              "seeds": cell.seeds} for (rule, attack), cell in table.cells.items()]
    worst = {rule: dict(zip(("attack", "clean_accuracy"), table.worst(rule), strict=True))
             for rule in table.aggregations}
    Path(config.out, "matrix.json").write_text(json.dumps({"dataset": config.dataset, "cells": cells,
                                                           "worst_case": worst}, indent=1), encoding="utf-8")
    click.echo(f"Wrote {Path(config.out, 'matrix.md')} and matrix.json; results in {config.out}")
