"""One self-contained HTML file: a sortable leaderboard, robustness curves and the cost trade-off as inline SVG,
the validity flags with their legend, per-seed detail and a provenance footer. No external resource is loaded;
every string that comes from a user or a record is escaped."""

from __future__ import annotations

import json
from html import escape

from benchmark import privacy_columns
from benchmark.leaderboard import (
    Leaderboard,
    attack_columns,
    attack_costs,
    eps_key,
    legend_lines,
    per_attack_note,
    percent,
    rank_text,
    seconds_text,
    seeds_text,
    stat_text,
)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; font-variant-numeric: tabular-nums; }
th, td { padding: .3rem .6rem; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }
th.text, td.text { text-align: left; }
#board th { cursor: pointer; user-select: none; background: #f4f4f4; }
#board th[aria-sort=ascending]::after { content: " ▲"; }
#board th[aria-sort=descending]::after { content: " ▼"; }
tr.unreliable td { color: #777; }
.flag { background: #fde2e1; color: #8a1c1c; border-radius: .3rem; padding: 0 .3rem; margin-right: .2rem; }
.plots { display: flex; flex-wrap: wrap; gap: 1rem; }
.plots figure { margin: 0; flex: 1 1 28rem; }
.plots svg { width: 100%; height: auto; }
footer { margin-top: 2rem; font-size: .85rem; color: #555; }
"""

SCRIPT = """
document.querySelectorAll('#board th').forEach(function (header, column) {
  header.addEventListener('click', function () {
    var body = document.querySelector('#board tbody');
    var ascending = header.getAttribute('aria-sort') !== 'ascending';
    document.querySelectorAll('#board th').forEach(function (h) { h.removeAttribute('aria-sort'); });
    header.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[column].dataset.value, y = b.cells[column].dataset.value;
      var nx = parseFloat(x), ny = parseFloat(y);
      var order = (isNaN(nx) || isNaN(ny)) ? String(x).localeCompare(String(y)) : nx - ny;
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
"""


def cell(text: str, value: object, *, numeric: bool = True) -> str:
    css = "" if numeric else ' class="text"'
    return f'<td{css} data-value="{escape(str(value), quote=True)}">{escape(text)}</td>'


def flags_html(flags: list[str]) -> str:
    return "".join(f'<span class="flag">{escape(flag)}</span>' for flag in flags) or "–"


def board_table(board: Leaderboard) -> str:
    """The sortable main table, in rank order: "#" holds the rank ("—" for an unreliable row, which sorts after
    every ranked one)."""
    eps_columns, (metrics, costs) = [e for e in board.eps if e > 0], privacy_columns.main_columns(board)
    headers = ["#", "defense", "model", "seeds", "clean %",
               *[f"ε={e:g} %" + (" ★" if e == board.headline_eps else "") for e in eps_columns],
               *[c.title for c in metrics], "train s", "eval s", *[c.title for c in costs], "flags"]
    text_columns = {"defense", "model", "seeds", "flags"}
    head = "".join(f'<th class="text">{escape(h)}</th>' if h in text_columns else f"<th>{escape(h)}</th>"
                   for h in headers)
    rows = []
    for position, entry in enumerate(board.summary, start=1):
        cells = [cell(rank_text(entry["rank"]), position),
                 cell(entry["defense"], entry["defense"], numeric=False),
                 cell(entry["model"], entry["model"], numeric=False),
                 cell(seeds_text(entry["seeds"]), len(entry["seeds"]), numeric=False),
                 cell(stat_text(entry["clean_accuracy"]), entry["clean_accuracy"]["mean"])]
        for e in eps_columns:
            stat = entry["robust_accuracy"][eps_key(e)]
            cells.append(cell(stat_text(stat), stat["mean"]))
        cells += [privacy_cell(column, entry) for column in metrics]
        cells += [cell(seconds_text(entry["train_seconds"]), entry["train_seconds"] or 0),
                  cell(f"{entry['eval_seconds']:.1f}", entry["eval_seconds"]),
                  *[privacy_cell(column, entry) for column in costs],
                  f'<td class="text" data-value="{len(entry["flags"])}">{flags_html(entry["flags"])}</td>']
        css = "" if entry["rank"] is not None else ' class="unreliable"'
        rows.append(f"<tr{css}>" + "".join(cells) + "</tr>")
    return f'<table id="board"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def privacy_cell(column: privacy_columns.Column, entry: dict) -> str:
    """A privacy cell of the board: sorts by its number; a row without one sorts before every number."""
    value = column.value(entry)
    return cell(column.text(entry), "" if value is None else value)


def privacy_table(board: Leaderboard) -> str:
    """The per-seed privacy (and backdoor) table, or nothing without privacy results or a backdoor."""
    header, body = privacy_columns.detail_cells(board)
    if not body:
        return ""
    head = "".join(f'<th class="text">{escape(h)}</th>' if h == "defense" else f"<th>{escape(h)}</th>" for h in header)
    rows = ["<tr>" + "".join(cell(text, text, numeric=index > 0) for index, text in enumerate(cells)) + "</tr>"
            for cells in body]
    title = escape(privacy_columns.detail_title(board))
    return (f'\n<h2>{title}</h2>\n<table id="privacy"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table>')


def detail_table(board: Leaderboard) -> str:
    key = board.headline_key
    head = "".join(f"<th>{escape(h)}</th>" for h in ["defense", "seed", "clean %", f"ε={key} %", "95% CI",
                                                       *attack_columns(board)])
    rows = []
    for row in board.rows:
        low, high = row["robust_ci"][key]
        cells = [cell(row["defense"], row["defense"], numeric=False), cell(str(row["seed"]), row["seed"]),
                 cell(percent(row["clean_accuracy"]), row["clean_accuracy"]),
                 cell(percent(row["robust_accuracy"][key]), row["robust_accuracy"][key]),
                 cell(f"{percent(low)}–{percent(high)}", low)]
        cells += [cell(percent(row["per_attack"][a][key]) if a in row["per_attack"] else "–", 0)
                  for a in board.attacks]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table id="detail"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def cost_table(board: Leaderboard) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("attack", "seconds per row", "gradients per sample",
                                             "queries per sample"))
    rows = ["<tr>" + "".join(cell(c, c, numeric=i > 0) for i, c in enumerate(line)) + "</tr>"
            for line in attack_costs(board)]
    return f'<table id="costs"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def render(board: Leaderboard) -> str:
    from benchmark.render.plots import figures, svg_text

    norm = "L∞" if board.norm == "inf" else f"L{board.norm}"
    plots = "".join(f'<figure class="plot" id="plot-{name}">{svg_text(figure)}</figure>'
                    for name, figure in figures(board).items())
    legend = "".join(f"<li>{escape(line)}</li>" for line in legend_lines(board))
    provenance = board.provenance
    footer = (f"config hash {escape(str(provenance['config_hash']))}"
              f" · data {escape(str(provenance['data_fingerprint']))}"
              f" · versions {escape(json.dumps(provenance['versions']))} · Python {escape(str(provenance['python']))}"
              f" · device {escape(', '.join(provenance['device']))} ({escape(str(provenance['cpu']))})"
              f" · git {escape(', '.join(provenance['git_sha']))}"
              f" · {escape(provenance['created'][0])} – {escape(provenance['created'][1])}")
    title = f"Leaderboard: {board.dataset}, {norm}"
    return f"""<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{escape(title)}</h1>
<p>Worst-case robust accuracy (%) over the attacks {escape(", ".join(board.attacks))}: a sample counts as robust at
ε only if every attack at every ε' ≤ ε failed on it. Ranked by ε = {board.headline_eps:g} (★); a row whose flags
make its robust accuracy untrustworthy is ranked — and listed after every ranked row. Click a column to sort.
{board.summary[0]["n_test"]} test samples.</p>
{board_table(board)}
<h2>Validity flags</h2>
<ul id="legend">{legend or "<li>No flag fired.</li>"}</ul>
<h2>Plots</h2>
<div class="plots">{plots}</div>
<h2>Per seed at ε = {escape(board.headline_key)}</h2>
<p>{escape(per_attack_note(board))}</p>
{detail_table(board)}{privacy_table(board)}
<h2>Attack cost</h2>
{cost_table(board)}
<footer id="provenance">{footer}</footer>
<script>{SCRIPT}</script>
</body>
</html>
"""
