"""``bench matrix``: the federated defenses' aggregation rules × client attacks (× client data partitions), each
cell a ``fedavg`` job of the ordinary run (stored, cached, resumable), printed and written as a matrix in every format
(``benchmark/matrix.py``, ``benchmark/render/matrix.py``); ``matrix.json`` is also a baseline for ``bench check``."""

from __future__ import annotations

import click

from benchmark.console import dry_run_option, run_or_plan, setup_logging, time_limit_option

DEFAULT_RULES = "mean,median,trimmed-mean,krum,norm-bounding,centered-clipping,fltrust"
DEFAULT_ATTACKS = "none,sign-flip,ipm:eps=10,ipm,alie,min-max,label-flip,backdoor:quiet_rounds=1"


@click.command()
@click.option("--aggregation", "rules", default=DEFAULT_RULES, show_default=True,
              help="Comma list of aggregation rules (the rows).")
@click.option("--client-attack", "client_attacks", default=DEFAULT_ATTACKS, show_default=True,
              help="Comma list of client attacks (the columns), NAME[:key=value;key=value]; none: no attacker.")
@click.option("--partition", "partitions", default="iid", show_default=True,
              help="Comma list of client data partitions, a table each: iid, dirichlet (α 0.5) or dirichlet:ALPHA.")
@click.option("--byzantine", default=2, show_default=True, type=click.IntRange(min=1), help="Attacking clients.")
@click.option("--fedavg", "base", default="clients=10,rounds=40", show_default=True,
              help="The other fedavg parameters of every cell, key=value,… (clients, rounds, …).")
@click.option("--dataset", help="Dataset (default: digits).")
@click.option("--model", help="Model (default: cnn-small).")
@click.option("--attack", "attacks", default="fgsm", show_default=True, help="Evasion attacks scored in every cell.")
@click.option("--eps", help="ε grid of the evasion attacks (default: the dataset's).")
@click.option("--seed", "seeds", help="Seed, or a comma list of seeds (default: 0).")
@click.option("--device", help="auto, cpu or cuda (default: auto).")
@click.option("--quick", is_flag=True, default=None, help="An eighth of the rounds: a smoke run.")
@click.option("--out", default="bench-results", show_default=True,
              help="Results directory; matrix.md, .csv, .json, .tex and .html.")
@click.option("--executor", type=click.Choice(("auto", "inline", "process", "ray")), default="auto",
              show_default=True)
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes (default: one per core).")
@time_limit_option
@dry_run_option
def matrix(rules: str, client_attacks: str, partitions: str, byzantine: int, base: str, executor: str,
           workers: int | None, time_limit_s: float | None, dry_run: bool, **options) -> None:
    """Run every aggregation rule against every client attack (on every partition) and print the matrix of clean
    accuracy (and backdoor success), with each rule's worst case; matrix.json is a baseline for bench check."""
    from benchmark.config import build_config, split_list
    from benchmark.matrix import build_matrix, check_base, column, matrix_specs, parse_partitions
    from benchmark.render.matrix import write_matrix

    setup_logging(False)
    chosen = parse_partitions(partitions)
    check_base(base)
    specs = matrix_specs(split_list(rules), split_list(client_attacks), base=base, byzantine=byzantine,
                         partitions=chosen)
    overrides = {key: value for key, value in {**options, "defenses": ",".join(specs)}.items() if value is not None}
    config, board = run_or_plan(lambda create_out: build_config(None, overrides, create_out=create_out),
                                dry_run=dry_run, time_limit_s=time_limit_s, executor=executor, workers=workers)
    if config is None:
        return
    table = build_matrix(board.rows, dataset=board.dataset, partitions=[p.key for p in chosen],
                         aggregations=split_list(rules), attacks=[column(text) for text in split_list(client_attacks)])
    print_matrix(table)
    for path in write_matrix(table, board, config.out):
        click.echo(f"wrote {path}")


def print_matrix(table) -> None:
    """The setting line, one rich table per partition and the legend."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from benchmark.matrix import partition_title
    from benchmark.render.matrix import legend, setting_line, table_cells

    console = Console(width=max(140, Console().width))
    console.print(Text(setting_line(table)))
    for partition in table.partitions:
        header, body = table_cells(table, partition)
        grid = Table(title=Text(f"partition: {partition_title(partition)}"))
        for index, name in enumerate(header):
            grid.add_column(Text(name), justify="left" if index == 0 else "right", no_wrap=True)
        for cells in body:
            grid.add_row(*(Text(cell) for cell in cells))  # Text: no rich markup in user strings
        console.print(grid)
    console.print(Text(legend(table)))
