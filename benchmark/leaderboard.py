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
    "device", "batch_size", "n_test", "quick", "train_cached",
)


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
        from benchmark import DATASETS

        wanted = DATASETS.get(first["dataset"]).headline_eps.get(first["norm"], eps[-1])
        headline_eps = min(eps[1:] or eps, key=lambda e: abs(e - wanted))
    key = f"{headline_eps:g}"
    rows = [
        {
            **{field: record[field] for field in ROW_FIELDS},
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
TEXT_COLUMNS = ("defense", "model", "device")


def percent(value: float) -> str:
    return f"{100 * value:.1f}"


def table_cells(board: Leaderboard) -> tuple[list[str], list[list[str]]]:
    """Header and body of the main table, shared by the Markdown and terminal renderers."""
    eps_columns = [e for e in board.eps if e > 0]
    header = ["#", "defense", "model", "seed", "clean %"]
    header += [f"ε={e:g} %" + (" ★" if e == board.headline_eps else "") for e in eps_columns]
    header += ["train s", "eval s", "device"]
    body = []
    for rank, row in enumerate(board.rows, start=1):
        cells = [str(rank), row["defense"], row["model"], str(row["seed"]), percent(row["clean_accuracy"])]
        cells += [percent(row["robust_accuracy"][f"{e:g}"]) for e in eps_columns]
        cells += [f"{row['train_seconds']:.1f}", f"{row['eval_seconds']:.1f}", row["device"]]
        body.append(cells)
    return header, body


def render_markdown(board: Leaderboard) -> str:
    header, body = table_cells(board)
    norm = "L∞" if board.norm == "inf" else f"L{board.norm}"
    lines = [
        f"# Leaderboard: {board.dataset}, {norm}",
        "",
        f"Worst-case robust accuracy (%) over the attacks {', '.join(board.attacks)}: a sample counts as robust at ε "
        f"only if every attack at every ε' ≤ ε failed on it. Sorted by ε = {board.headline_eps:g} (★).",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if cell in TEXT_COLUMNS else "---:" for cell in header) + "|",
    ]
    lines += ["| " + " | ".join(cells) + " |" for cells in body]
    lines += ["", f"## Per-attack robust accuracy (%) at ε = {board.headline_eps:g}", ""]
    lines.append("| defense | seed | " + " | ".join(board.attacks) + " | worst case |")
    lines.append("|---|---:|" + "---:|" * (len(board.attacks) + 1))
    for row in board.rows:
        per_attack = [percent(row["per_attack"][a][board.headline_key]) if a in row["per_attack"] else "–"
                      for a in board.attacks]
        worst = percent(row["robust_accuracy"][board.headline_key])
        lines.append(f"| {row['defense']} | {row['seed']} | " + " | ".join(per_attack) + f" | {worst} |")
    quick = any(row["quick"] for row in board.rows)
    lines += ["", f"{board.rows[0]['n_test']} test samples" + (" (quick run: fewer epochs and test samples)"
                                                            if quick else "") + "."]
    return "\n".join(lines) + "\n"


def render_json(board: Leaderboard) -> str:
    return json.dumps(board.to_json(), indent=2, sort_keys=False) + "\n"
