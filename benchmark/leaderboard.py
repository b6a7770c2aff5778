"""Stored records → a ``Leaderboard``: per-seed rows with Wilson intervals, and a summary per defense (mean ± sd
over seeds, per-seed values kept). Renderers (``benchmark/render/``) read only this object: nothing is recomputed.

The summary is sorted by worst-case robust accuracy at the headline ε (then by clean accuracy); rows follow the
summary's order, seed by seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmark.errors import BenchError
from benchmark.plan import content_hash
from benchmark.stats import mean_sd, wilson
from benchmark.sweep import per_attack_kind, worst_case

LEADERBOARD_SCHEMA_VERSION = 2

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


def eps_key(eps: float) -> str:
    """How an ε is written as a JSON key: ``0.1`` → ``"0.1"``."""
    return f"{eps:g}"


@dataclass(frozen=True)
class Leaderboard:
    dataset: str
    norm: str
    headline_eps: float
    eps: tuple[float, ...]
    attacks: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]  # one per (defense, model, seed)
    summary: tuple[dict[str, Any], ...]  # one per (defense, model), aggregated over seeds
    config: dict[str, Any]  # enough to re-run the evaluation (``bench check``)
    provenance: dict[str, Any]
    per_attack_kind: str = "cumulative"  # per-attack numbers: "cumulative" (shared survivors) or "standalone"

    @property
    def headline_key(self) -> str:
        return eps_key(self.headline_eps)

    @property
    def seeds(self) -> list[int]:
        return sorted({row["seed"] for row in self.rows})

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": LEADERBOARD_SCHEMA_VERSION,
            "dataset": self.dataset,
            "norm": self.norm,
            "headline_eps": self.headline_eps,
            "eps": list(self.eps),
            "attacks": list(self.attacks),
            "per_attack_kind": self.per_attack_kind,
            "config": self.config,
            "provenance": self.provenance,
            "summary": list(self.summary),
            "rows": list(self.rows),
        }


def build_leaderboard(records: list[dict[str, Any]], *, headline_eps: float | None = None) -> Leaderboard:
    """All records must share dataset, norm and ε grid."""
    if not records:
        raise BenchError("no results to put on a leaderboard")
    first = records[0]
    for record in records[1:]:
        for key in ("dataset", "norm", "eps", "survivors"):
            if same_kind_key(record, key) != same_kind_key(first, key):
                raise BenchError(f"records differ in {key} ({same_kind_key(first, key)} vs "
                                 f"{same_kind_key(record, key)}): one leaderboard per dataset, norm, ε grid and "
                                 f"survivor mode (filter with --dataset, --norm)")
    eps = tuple(first["eps"])
    if headline_eps is None:
        from benchmark.data import headline_eps as dataset_headline

        headline_eps = dataset_headline(first["dataset"], first["norm"], eps)
    key = eps_key(headline_eps)
    rows = [make_row(record) for record in records]
    summary = sorted(summarise(rows, eps),
                     key=lambda s: (-s["robust_accuracy"][key]["mean"], -s["clean_accuracy"]["mean"], s["defense"]))
    rank = {(entry["defense"], entry["model"]): index for index, entry in enumerate(summary)}
    rows.sort(key=lambda r: (rank[r["defense"], r["model"]], r["seed"]))  # grouped as the summary, then by seed
    # columns in the order the attacks ran, which the cumulative numbers follow
    attacks = tuple(dict.fromkeys(name for r in records for name in r.get("attack_order") or r["attacks"]))
    config = {
        "dataset": first["dataset"],
        "model": sorted({r["model"] for r in records}),
        "defenses": unique([{"name": r["defense_name"], **r["defense_params"]} for r in records]),
        "attacks": [{"name": name.split("(")[0], **params} for name, params in first["attacks"].items()],
        "eps": list(eps),
        "norm": first["norm"],
        "seeds": sorted({r["seed"] for r in records}),
        "quick": first["quick"],
        "n_test": first["n_test"],
        "survivors": survivors(first),
    }
    environment = records[-1]["environment"]
    provenance = {
        "config_hash": content_hash(config),
        "data_fingerprint": first.get("data_fingerprint"),
        "versions": environment.get("versions"),
        "python": environment.get("python"),
        "device": sorted({r["device"] for r in records}),
        "cpu": environment.get("cpu"),
        "git_sha": sorted({str(r["environment"].get("git_sha")) for r in records}),
        "created": [min(r["created_at"] for r in records), max(r["created_at"] for r in records)],
    }
    return Leaderboard(first["dataset"], first["norm"], headline_eps, eps, attacks, tuple(rows), tuple(summary),
                       config, provenance, per_attack_kind(survivors(first)))


def survivors(record: dict[str, Any]) -> str:
    """The record's survivor mode (records written before the option existed: "per-attack")."""
    return record.get("survivors", "per-attack")


def same_kind_key(record: dict[str, Any], key: str) -> Any:
    """What records on one leaderboard must share: dataset, norm, eps, survivors."""
    return survivors(record) if key == "survivors" else record[key]


def unique(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``items`` without repeats, in order (plugin tables: name plus every parameter, as config files write them)."""
    kept: list[dict[str, Any]] = []
    for item in items:
        if item not in kept:
            kept.append(item)
    return kept


def make_row(record: dict[str, Any]) -> dict[str, Any]:
    n = record["n_test"]
    worst = worst_broken_at(record)
    return {
        **{field: record.get(field) for field in ROW_FIELDS},
        "clean_ci": wilson(round(record["clean_accuracy"] * n), n),
        "robust_ci": {k: wilson(round(v * n), n) for k, v in record["robust_accuracy"].items()},
        "samples": {"worst_broken_at": worst},
        "provenance": {
            "job_hash": record["job_hash"],
            "train_hash": record["train_hash"],
            "git_sha": record["environment"].get("git_sha"),
            "versions": record["environment"].get("versions"),
            "created_at": record["created_at"],
        },
    }


def worst_broken_at(record: dict[str, Any]) -> list[int] | None:
    """Per sample, the first ε index at which any attack broke it (what paired tests compare; every stored break
    was verified, see ``benchmark.sweep``)."""
    samples = record.get("samples")
    if not samples:
        return None
    return worst_case(samples["correct"], list(samples["broken_at"].values()), len(record["eps"])).tolist()


def summarise(rows: Sequence[dict[str, Any]], eps: tuple[float, ...]) -> list[dict[str, Any]]:
    """One entry per (defense, model): mean ± sd over seeds of every accuracy, per-seed values and a Wilson interval
    over the pooled samples, mean costs, and the union of the flags."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["defense"], row["model"]), []).append(row)
    summary = []
    for (defense, model), members in groups.items():
        members.sort(key=lambda r: r["seed"])
        sizes = [r["n_test"] for r in members]

        def stat(values: list[float], sizes: list[int] = sizes) -> dict[str, Any]:
            mean, sd = mean_sd(values)
            pooled = sum(round(v * n) for v, n in zip(values, sizes, strict=True))
            return {"mean": mean, "sd": sd, "values": values, "ci": wilson(pooled, sum(sizes))}

        attacks = dict.fromkeys(a for r in members for a in r["per_attack"])
        summary.append({
            "defense": defense,
            "model": model,
            "seeds": [r["seed"] for r in members],
            "clean_accuracy": stat([r["clean_accuracy"] for r in members]),
            "robust_accuracy": {eps_key(e): stat([r["robust_accuracy"][eps_key(e)] for r in members]) for e in eps},
            "per_attack": {a: {eps_key(e): mean_sd([r["per_attack"][a][eps_key(e)] for r in members
                                                    if a in r["per_attack"]])[0]
                               for e in eps} for a in attacks},
            "train_seconds": mean_sd([r["train_seconds"] for r in members])[0],
            "eval_seconds": mean_sd([r["eval_seconds"] for r in members])[0],
            "train_grad_evals": mean_sd([r["train_grad_evals"] or 0 for r in members])[0],
            "flags": sorted({f for r in members for f in r.get("flags") or []}),
            "n_test": members[0]["n_test"],
        })
    return summary


def legend_lines(board: Leaderboard) -> list[str]:
    """What the flags that fired mean, which attacks failed validation, and the AutoAttack caveat."""
    from benchmark.validity import legend

    fired = {flag for row in board.rows for flag in row.get("flags") or []}
    lines = legend(fired)
    for row in board.rows:
        for attack, error in (row.get("attack_errors") or {}).items():
            lines.append(f"{row['defense']} (seed {row['seed']}): {attack} stopped, no per-attack numbers: {error}")
    if any(name.split("(")[0] == "autoattack" for name in board.attacks):
        lines.append(AUTOATTACK_NOTE)
    return lines


def attack_columns(board: Leaderboard) -> list[str]:
    """Titles of the per-attack columns: the attack's name (standalone numbers) or "+name" (cumulative)."""
    return [("+" if board.per_attack_kind == "cumulative" else "") + attack for attack in board.attacks]


def per_attack_note(board: Leaderboard) -> str:
    """What the per-attack columns mean."""
    if board.per_attack_kind == "cumulative":
        return ("Attack columns (+name): robust accuracy after that attack and every one before it, in the order "
                "they ran; with shared survivors each attack ran only on the samples the ones before it left robust, "
                "so the last column is the worst case.")
    return "Attack columns: each attack's own robust accuracy (standalone, on the samples it left robust itself)."


def attack_costs(board: Leaderboard) -> list[list[str]]:
    """Per attack: seconds per row, and gradient and query evaluations per attacked sample (means over rows)."""
    body = []
    for attack in board.attacks:
        rows = [row for row in board.rows if attack in (row.get("attack_sample_runs") or {})]
        runs = sum(row["attack_sample_runs"][attack] for row in rows) or 1
        body.append([
            attack,
            f"{sum(row['attack_seconds'][attack] for row in rows) / max(1, len(rows)):.2f}",
            f"{sum(row['attack_grad_evals'][attack] for row in rows) / runs:.1f}",
            f"{sum(row['attack_queries'][attack] for row in rows) / runs:.1f}",
        ])
    return body


def percent(value: float) -> str:
    return f"{100 * value:.1f}"


def stat_text(stat: dict[str, Any]) -> str:
    """``88.3`` for one seed, ``88.3 ± 0.5`` over several (in %)."""
    if len(stat["values"]) == 1:
        return percent(stat["mean"])
    return f"{percent(stat['mean'])} ± {percent(stat['sd'])}"


#: Columns aligned left; every other column holds a number.
TEXT_COLUMNS = ("defense", "model", "device", "flags", "attack")


def table_cells(board: Leaderboard) -> tuple[list[str], list[list[str]]]:
    """Header and body of the main table (one row per defense), shared by the Markdown and terminal renderers."""
    eps_columns = [e for e in board.eps if e > 0]
    header = ["#", "defense", "model", "seeds", "clean %"]
    header += [f"ε={e:g} %" + (" ★" if e == board.headline_eps else "") for e in eps_columns]
    header += ["train s", "eval s", "flags"]
    body = []
    for rank, entry in enumerate(board.summary, start=1):
        cells = [str(rank), entry["defense"], entry["model"], ",".join(map(str, entry["seeds"])),
                 stat_text(entry["clean_accuracy"])]
        cells += [stat_text(entry["robust_accuracy"][eps_key(e)]) for e in eps_columns]
        cells += [f"{entry['train_seconds']:.1f}", f"{entry['eval_seconds']:.1f}", ", ".join(entry["flags"]) or "–"]
        body.append(cells)
    return header, body
