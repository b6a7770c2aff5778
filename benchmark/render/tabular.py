"""CSV: one line per (defense, model, seed), in rank order, with its rank (empty for a row whose flags make its robust
accuracy untrustworthy), every accuracy, its Wilson interval, costs and flags; then, when any row has privacy results,
the privacy columns (``benchmark.privacy_columns.CSV_COLUMNS``), and when any row has a backdoor, its columns
(``BACKDOOR_CSV_COLUMNS``)."""

from __future__ import annotations

import csv
import io

from benchmark import privacy_columns
from benchmark.leaderboard import Leaderboard, attack_columns, eps_key


def render(board: Leaderboard) -> str:
    keys = [eps_key(e) for e in board.eps if e > 0]
    header = ["rank", "defense", "model", "seed", "clean_accuracy", "clean_ci_low", "clean_ci_high"]
    for key in keys:
        header += [f"robust_{key}", f"robust_{key}_ci_low", f"robust_{key}_ci_high"]
    header += [f"{column}_{board.headline_key}" for column in attack_columns(board)]
    header += ["train_seconds", "eval_seconds", "train_grad_evals", "device", "n_test", "flags", "job_hash"]
    privacy = privacy_columns.csv_header(board)  # none without privacy results or a backdoor
    header += privacy
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in board.rows:
        line = ["" if row["rank"] is None else row["rank"], row["defense"], row["model"], row["seed"],
                row["clean_accuracy"], *row["clean_ci"]]
        for key in keys:
            line += [row["robust_accuracy"][key], *row["robust_ci"][key]]
        line += [row["per_attack"].get(a, {}).get(board.headline_key, "") for a in board.attacks]
        line += [row["train_seconds"], row["eval_seconds"], row["train_grad_evals"], row["device"], row["n_test"],
                 ";".join(row.get("flags") or []), row["provenance"]["job_hash"]]
        line += privacy_columns.csv_cells(row, privacy)
        writer.writerow(line)
    return buffer.getvalue()
