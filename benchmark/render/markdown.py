"""GitHub-ready Markdown: the leaderboard (one row per defense), flags legend, per-seed and per-attack detail, and
the cost of each attack."""

from __future__ import annotations

from benchmark import privacy_columns
from benchmark.leaderboard import (
    TEXT_COLUMNS,
    Leaderboard,
    attack_columns,
    attack_costs,
    legend_lines,
    per_attack_note,
    percent,
    table_cells,
)


def escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def table(header: list[str], body: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(map(escape, header)) + " |",
             "|" + "|".join("---" if cell in TEXT_COLUMNS else "---:" for cell in header) + "|"]
    return lines + ["| " + " | ".join(map(escape, cells)) + " |" for cells in body]


def distance_text(distance: float | None) -> str:
    if distance is None:
        return "–"
    return "∞" if distance == float("inf") else f"{distance:.3f}"


def render(board: Leaderboard) -> str:
    norm = "L∞" if board.norm == "inf" else f"L{board.norm}"
    seeds = board.seeds
    lines = [
        f"# Leaderboard: {board.dataset}, {norm}",
        "",
        f"Worst-case robust accuracy (%) over the attacks {', '.join(board.attacks)}: a sample counts as robust at ε "
        f"only if every attack at every ε' ≤ ε failed on it. Ranked by ε = {board.headline_eps:g} (★); a row whose "
        f"flags make its robust accuracy untrustworthy is ranked — and listed last. "
        + (f"Mean ± sd over seeds {', '.join(map(str, seeds))}." if len(seeds) > 1 else f"Seed {seeds[0]}."),
        "",
        *table(*table_cells(board)),
    ]
    legend = legend_lines(board)
    if legend:
        lines += ["", *[f"- {escape(line)}" for line in legend]]

    key = board.headline_key
    minimal = [a for a in board.attacks if any(a in (row.get("median_distance") or {}) for row in board.rows)]
    header = ["defense", "seed", "clean %", f"ε={key} % (95% CI)", *attack_columns(board),
              *[f"{a} median distance" for a in minimal]]
    body = []
    for row in board.rows:
        low, high = row["robust_ci"][key]
        cells = [row["defense"], str(row["seed"]), percent(row["clean_accuracy"]),
                 f"{percent(row['robust_accuracy'][key])} ({percent(low)}–{percent(high)})"]
        cells += [percent(row["per_attack"][a][key]) if a in row["per_attack"] else "–" for a in board.attacks]
        cells += [distance_text((row.get("median_distance") or {}).get(a)) for a in minimal]
        body.append(cells)
    lines += ["", f"## Per seed and per attack at ε = {key} (%)", "", per_attack_note(board), "",
              *table(header, body)]
    privacy_header, privacy_body = privacy_columns.detail_cells(board)
    if privacy_body:
        lines += ["", f"## {privacy_columns.detail_title(board)}", "", *table(privacy_header, privacy_body)]
    lines += ["", "## Attack cost", "",
              *table(["attack", "seconds per row", "gradients per sample", "queries per sample"], attack_costs(board))]
    quick = any(row["quick"] for row in board.rows)
    lines += ["", f"{board.rows[0]['n_test']} test samples" + (" (quick run: fewer epochs and test samples)"
                                                            if quick else "") + f"; config hash "
              f"{board.provenance['config_hash']}."]
    return "\n".join(lines) + "\n"
