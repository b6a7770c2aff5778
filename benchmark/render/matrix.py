"""The aggregation × client-attack matrix (``benchmark.matrix``) in every format: Markdown, CSV, JSON, LaTeX and HTML,
and the cells the terminal table shows. One table per client data partition, headed ``partition: iid``; a cell is
the clean accuracy (%) and, in a backdoor column, "ASR" and the backdoor's success rate (%), each ± sd over seeds
when there are two or more; the last column is each row's worst case. A setting line (dataset, model, clients,
rounds, attackers, seeds) says what the numbers are of.

The JSON is the run's ordinary leaderboard (``benchmark.render.jsonfile``: ``config``, ``eps``, ``rows``,
``provenance``, so ``bench check --baseline matrix.json`` re-runs and holds it) plus a ``matrix`` key."""

from __future__ import annotations

import csv
import html
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmark.leaderboard import Leaderboard, percent
from benchmark.matrix import Cell, Matrix, partition_title
from benchmark.render import latex, markdown
from benchmark.render.html import STYLE

FORMATS = ("md", "csv", "json", "tex", "html")
MISSING = "–"
#: How the setting line says the attackers are chosen (``byzantine_sampling``).
SAMPLINGS = {"fixed": "fixed clients", "round": "drawn each round"}
LEGEND = ("Clean accuracy (%) of the global model after federated training{spread}; ASR: the backdoor's success "
          "rate (%) on the test samples not of its target class; worst case: the lowest clean accuracy of the row "
          "and the attack that caused it.")


def stat_text(mean: float, sd: float | None, seeds: int, pm: str = " ± ") -> str:
    """``88.3``, or ``88.3 ± 0.5`` over two or more seeds (in %)."""
    return percent(mean) + (f"{pm}{percent(sd)}" if seeds > 1 and sd is not None else "")


def cell_text(cell: Cell | None, pm: str = " ± ") -> str:
    """A cell as tables show it: ``91.4``, ``91.4 / ASR 96.9``, with ± sd over several seeds; "–" for none."""
    if cell is None:
        return MISSING
    text = stat_text(cell.clean, cell.clean_sd, cell.seeds, pm)
    if cell.backdoor is not None:
        text += f" / ASR {stat_text(cell.backdoor, cell.backdoor_sd, cell.seeds, pm)}"
    return text


def table_header(matrix: Matrix) -> list[str]:
    return ["aggregation", *matrix.attacks, "worst case"]


def table_cells(matrix: Matrix, partition: str, pm: str = " ± ") -> tuple[list[str], list[list[str]]]:
    """Header and body of ``partition``'s table (shared by every format and the terminal)."""
    header = table_header(matrix)
    body = []
    for rule in matrix.rules(partition):
        attack, clean = matrix.worst(partition, rule)
        body.append([rule, *(cell_text(matrix.cells.get((partition, rule, a)), pm) for a in matrix.attacks),
                     f"{percent(clean)} ({attack})"])
    return header, body


def setting_line(matrix: Matrix) -> str:
    """``digits · cnn-small · 10 clients, 2 attacking (fixed clients) · 40 rounds · seed 0 · 360 test samples`` (values
    joined by "/" where cells differ)."""
    setting = matrix.setting

    def listed(key: str) -> str:
        return "/".join(map(str, setting[key])) or MISSING

    clients = f"{listed('clients')} clients"
    if setting["attackers"]:
        sampling = "/".join(SAMPLINGS.get(value, value) for value in setting.get("attacker_sampling", []))
        clients += f", {listed('attackers')} attacking" + (f" ({sampling})" if sampling else "")
    rounds = f"{listed('rounds')} rounds" + (" (a quick run: an eighth of them)" if setting["quick"] else "")
    seeds = ("seeds " if len(setting["seeds"]) > 1 else "seed ") + ", ".join(map(str, setting["seeds"]))
    return " · ".join([setting["dataset"], listed("model"), clients, rounds, seeds, f"{listed('n_test')} test samples"])


def legend(matrix: Matrix) -> str:
    """What the cells mean, and which columns' attackers were omniscient (read the round's honest updates)."""
    from benchmark import CLIENT_ATTACKS
    from benchmark.matrix import NO_ATTACK

    many = len(matrix.setting["seeds"]) > 1
    names = {column.split("(")[0] for column in matrix.attacks} - {NO_ATTACK}  # "ipm(eps=10)" → "ipm"
    omniscient = [name for name in sorted(names) if name in CLIENT_ATTACKS and CLIENT_ATTACKS.get(name).omniscient]
    seen = f" Omniscient attackers (they read the round's honest updates): {', '.join(omniscient)}." if omniscient \
        else ""
    return LEGEND.format(spread=", mean ± sd over seeds" if many else "") + seen


def render_markdown(matrix: Matrix) -> str:
    def line(cells: list[str]) -> str:
        return "| " + " | ".join(map(markdown.escape, cells)) + " |"

    lines = [f"# Aggregation × client attack: {markdown.escape(matrix.setting['dataset'])}", "",
             markdown.escape(setting_line(matrix))]
    for partition in matrix.partitions:
        header, body = table_cells(matrix, partition)
        lines += ["", f"## partition: {markdown.escape(partition_title(partition))}", "", line(header),
                  "|---|" + "---:|" * (len(header) - 1), *map(line, body)]
    return "\n".join([*lines, "", legend(matrix)]) + "\n"


def render_csv(matrix: Matrix) -> str:
    """One line per cell: partition, aggregation, attack, seeds, clean accuracy and backdoor success (fractions, sd
    over seeds), and whether the cell is its row's worst case."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["partition", "aggregation", "attack", "seeds", "clean_accuracy", "clean_sd", "backdoor_success",
                     "backdoor_sd", "worst_case"])
    for partition in matrix.partitions:
        for rule in matrix.rules(partition):
            worst = matrix.worst(partition, rule)[0]
            for attack in matrix.attacks:
                cell = matrix.cells.get((partition, rule, attack))
                if cell is not None:
                    writer.writerow([partition, rule, attack, cell.seeds, cell.clean, cell.clean_sd,
                                     "" if cell.backdoor is None else cell.backdoor,
                                     "" if cell.backdoor_sd is None else cell.backdoor_sd, attack == worst])
    return buffer.getvalue()


def render_json(matrix: Matrix, board: Leaderboard) -> str:
    """The run's leaderboard (what ``bench check`` reads) plus ``matrix``."""
    return json.dumps({**board.to_json(), "matrix": matrix.to_json()}, indent=2) + "\n"


def render_tex(matrix: Matrix) -> str:
    """A booktabs table (``\\usepackage{booktabs}``): one block per partition under its heading row."""
    header = table_header(matrix)
    width = len(header)
    lines = [r"\begin{table}[t]", r"\centering",
             f"\\caption{{Aggregation $\\times$ client attack: {tex_text(setting_line(matrix))}. "
             f"{tex_text(legend(matrix))}}}",
             f"\\label{{tab:bench-{latex.escape(matrix.setting['dataset'])}-matrix}}",
             r"\begin{tabular}{l" + "r" * (width - 1) + "}", r"\toprule",
             " & ".join(map(tex_text, header)) + r" \\"]
    for partition in matrix.partitions:
        _, body = table_cells(matrix, partition, pm=" $\\pm$ ")
        lines += [r"\midrule", f"\\multicolumn{{{width}}}{{l}}{{partition: {tex_text(partition_title(partition))}}}"
                  + r" \\", r"\midrule"]
        lines += [" & ".join(tex_text(text, keep="$\\pm$") for text in cells) + r" \\" for cells in body]
    return "\n".join([*lines, r"\bottomrule", r"\end{tabular}", r"\end{table}"]) + "\n"


def tex_text(text: str, keep: str = "") -> str:
    """``text`` escaped for LaTeX, its ``keep`` markup (e.g. ``$\\pm$``) left as is and its Unicode symbols
    written as LaTeX."""
    pieces = text.split(keep) if keep else [text]
    escaped = keep.join(latex.escape(piece) for piece in pieces)
    for symbol, command in (("α", r"$\alpha$"), ("±", r"$\pm$"), ("–", "--"), ("·", r"$\cdot$"), ("×", r"$\times$")):
        escaped = escaped.replace(symbol, command)
    return escaped


def render_html(matrix: Matrix) -> str:
    """One self-contained page; every string is escaped."""
    tables = []
    for partition in matrix.partitions:
        header, body = table_cells(matrix, partition)
        head = "".join(f"<th>{html.escape(text)}</th>" for text in header)
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(text)}</td>" for text in cells) + "</tr>" for cells in body)
        tables.append(f"<h2>partition: {html.escape(partition_title(partition))}</h2>\n"
                      f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
    title = html.escape(f"Aggregation × client attack: {matrix.setting['dataset']}")
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n'
            f"<style>{STYLE}td:first-child, th:first-child {{ text-align: left; }}</style>\n</head>\n<body>\n"
            f"<h1>{title}</h1>\n<p>{html.escape(setting_line(matrix))}</p>\n" + "\n".join(tables)
            + f"\n<p>{html.escape(legend(matrix))}</p>\n</body>\n</html>\n")


RENDERERS: dict[str, Callable[..., str]] = {"md": render_markdown, "csv": render_csv, "tex": render_tex,
                                            "html": render_html}


def write_matrix(matrix: Matrix, board: Leaderboard, directory: Any, stem: str = "matrix") -> list[Path]:
    """``stem.<fmt>`` in ``directory`` for every format of ``FORMATS``, each written atomically."""
    from benchmark.fileio import write_text

    written = []
    for fmt in FORMATS:
        text = render_json(matrix, board) if fmt == "json" else RENDERERS[fmt](matrix)
        written.append(write_text(Path(directory) / f"{stem}.{fmt}", text))
    return written
