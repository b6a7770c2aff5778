"""Stored records → a ``Leaderboard`` → Markdown and JSON, with no recomputation.

Rows are sorted by worst-case robust accuracy at the headline ε (then by clean accuracy).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from benchmark.errors import BenchError

LEADERBOARD_SCHEMA_VERSION = 1

#: Record fields copied into each leaderboard row as they are.
ROW_FIELDS = (
    "defense", "defense_name", "defense_params", "model", "seed", "clean_accuracy", "robust_accuracy", "per_attack",
    "train_seconds", "eval_seconds", "train_grad_evals", "attack_seconds", "attack_grad_evals", "attack_queries",
    "attack_sample_runs", "attack_tags", "attack_errors", "median_distance", "flags", "probes",
    "device", "batch_size", "n_test", "quick", "train_cached",
)

AUTOATTACK_NOTE = ("autoattack is ART's AutoAttack ensemble with this harness's members and budgets (APGD-CE, "
                   "APGD-DLR, Square), not RobustBench's standard AutoAttack: its numbers are not comparable to the "
                   "RobustBench leaderboard")


@dataclass(frozen=True)
class Leaderboard:
    dataset: str
    norm: str
    headline_eps: float
    eps: tuple[float, ...]
    attacks: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]

    @property
    def headline_key(self) -> str:
        return f"{self.headline_eps:g}"

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": LEADERBOARD_SCHEMA_VERSION,
            "dataset": self.dataset,
            "norm": self.norm,
            "headline_eps": self.headline_eps,
            "eps": list(self.eps),
            "attacks": list(self.attacks),
            "rows": list(self.rows),
        }


def build_leaderboard(records: list[dict[str, Any]], *, headline_eps: float | None = None) -> Leaderboard:
    """One row per record; all records must share dataset, norm and ε grid."""
    if not records:
        raise BenchError("no results to put on a leaderboard")
    first = records[0]
    for record in records[1:]:
        for key in ("dataset", "norm", "eps"):
            if record[key] != first[key]:
                raise BenchError(f"records differ in {key} ({first[key]} vs {record[key]}): one leaderboard per "
                                 f"dataset, norm and ε grid")
    eps = tuple(first["eps"])
    if headline_eps is None:
        from benchmark.data import headline_eps as dataset_headline

        headline_eps = dataset_headline(first["dataset"], first["norm"], eps)
    key = f"{headline_eps:g}"
    rows = [
        {
            **{field: record.get(field) for field in ROW_FIELDS},
            "provenance": {
                "job_hash": record["job_hash"],
                "train_hash": record["train_hash"],
                "git_sha": record["environment"].get("git_sha"),
                "versions": record["environment"].get("versions"),
                "created_at": record["created_at"],
            },
        }
        for record in records
    ]
    rows.sort(key=lambda row: (-row["robust_accuracy"][key], -row["clean_accuracy"], row["defense"], row["seed"]))
    attacks = tuple(dict.fromkeys(name for record in records for name in record["attacks"]))
    return Leaderboard(first["dataset"], first["norm"], headline_eps, eps, attacks, tuple(rows))


#: Columns aligned left; every other column holds a number.
TEXT_COLUMNS = ("defense", "model", "device", "flags", "attack")


def percent(value: float) -> str:
    return f"{100 * value:.1f}"


def table_cells(board: Leaderboard) -> tuple[list[str], list[list[str]]]:
    """Header and body of the main table, shared by the Markdown and terminal renderers."""
    eps_columns = [e for e in board.eps if e > 0]
    header = ["#", "defense", "model", "seed", "clean %"]
    header += [f"ε={e:g} %" + (" ★" if e == board.headline_eps else "") for e in eps_columns]
    header += ["train s", "eval s", "device", "flags"]
    body = []
    for rank, row in enumerate(board.rows, start=1):
        cells = [str(rank), row["defense"], row["model"], str(row["seed"]), percent(row["clean_accuracy"])]
        cells += [percent(row["robust_accuracy"][f"{e:g}"]) for e in eps_columns]
        cells += [f"{row['train_seconds']:.1f}", f"{row['eval_seconds']:.1f}", row["device"]]
        cells.append(", ".join(row.get("flags") or []) or "–")
        body.append(cells)
    return header, body


def legend_lines(board: Leaderboard) -> list[str]:
    """What the flags that fired mean, which attacks failed validation, and the AutoAttack caveat."""
    from benchmark.validity import legend

    fired = {flag for row in board.rows for flag in row.get("flags") or []}
    lines = legend(fired)
    for row in board.rows:
        for attack, error in (row.get("attack_errors") or {}).items():
            lines.append(f"{row['defense']} (seed {row['seed']}): {attack} discarded: {error}")
    if any(name.split("(")[0] == "autoattack" for name in board.attacks):
        lines.append(AUTOATTACK_NOTE)
    return lines


def attack_costs(board: Leaderboard) -> list[list[str]]:
    """Per attack: seconds per row, and gradient and query evaluations per attacked sample (means over rows)."""
    body = []
    for attack in board.attacks:
        rows = [row for row in board.rows if attack in (row.get("attack_seconds") or {})]
        runs = sum(row["attack_sample_runs"][attack] for row in rows) or 1
        body.append([
            attack,
            f"{sum(row['attack_seconds'][attack] for row in rows) / max(1, len(rows)):.2f}",
            f"{sum(row['attack_grad_evals'][attack] for row in rows) / runs:.1f}",
            f"{sum(row['attack_queries'][attack] for row in rows) / runs:.1f}",
        ])
    return body


def markdown_table(header: list[str], body: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if cell in TEXT_COLUMNS else "---:" for cell in header) + "|"]
    return lines + ["| " + " | ".join(cells) + " |" for cells in body]


def render_markdown(board: Leaderboard) -> str:
    header, body = table_cells(board)
    norm = "L∞" if board.norm == "inf" else f"L{board.norm}"
    lines = [
        f"# Leaderboard: {board.dataset}, {norm}",
        "",
        f"Worst-case robust accuracy (%) over the attacks {', '.join(board.attacks)}: a sample counts as robust at ε "
        f"only if every attack at every ε' ≤ ε failed on it. Sorted by ε = {board.headline_eps:g} (★).",
        "",
        *markdown_table(header, body),
    ]
    legend = legend_lines(board)
    if legend:
        lines += ["", *[f"- {line}" for line in legend]]
    lines += ["", f"## Per-attack robust accuracy (%) at ε = {board.headline_eps:g}", ""]
    minimal = [a for a in board.attacks if any(a in (row.get("median_distance") or {}) for row in board.rows)]
    per_header = ["defense", "seed", *board.attacks, "worst case", *[f"{a} median distance" for a in minimal]]
    per_body = []
    for row in board.rows:
        cells = [row["defense"], str(row["seed"])]
        cells += [percent(row["per_attack"][a][board.headline_key]) if a in row["per_attack"] else "–"
                  for a in board.attacks]
        cells.append(percent(row["robust_accuracy"][board.headline_key]))
        cells += [distance_text((row.get("median_distance") or {}).get(a)) for a in minimal]
        per_body.append(cells)
    lines += markdown_table(per_header, per_body)
    lines += ["", "## Attack cost", "",
              *markdown_table(["attack", "seconds per row", "gradients per sample", "queries per sample"],
                              attack_costs(board))]
    quick = any(row["quick"] for row in board.rows)
    lines += ["", f"{board.rows[0]['n_test']} test samples" + (" (quick run: fewer epochs and test samples)"
                                                            if quick else "") + "."]
    return "\n".join(lines) + "\n"


def distance_text(distance: float | None) -> str:
    if distance is None:
        return "–"
    return "∞" if distance == float("inf") else f"{distance:.3f}"


def render_json(board: Leaderboard) -> str:
    return json.dumps(board.to_json(), indent=2, sort_keys=False) + "\n"
