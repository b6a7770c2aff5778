"""Stored records → a ``Leaderboard``: per-seed rows with Wilson intervals, and a summary per defense (mean ± sd
over seeds, per-seed values kept). Renderers (``benchmark/render/``) read only this object: nothing is recomputed.

Ranking: the summary is sorted by worst-case robust accuracy at the headline ε (then by clean accuracy), trusted
rows first. A row carrying a flag of ``UNRELIABLE`` has a robust number that cannot be trusted: it never outranks a
trusted row. Trusted rows are ranked 1…n; the unreliable ones follow, unranked (``rank`` None, shown as "—").
Rows follow the summary's order, seed by seed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmark import entry_columns, leaderboard_privacy, privacy_columns
from benchmark.adaptive import FLAG_TEXT, naive_broken_at, unanswered
from benchmark.board_config import board_config
from benchmark.errors import BenchError
from benchmark.provenance import content_hash
from benchmark.record import Record, eps_key, keyed
from benchmark.stats import mean_sd, wilson
from benchmark.sweep import accuracy_curve, per_attack_kind, worst_case

LEADERBOARD_SCHEMA_VERSION = 2

#: The validity flags (``benchmark.validity.LEGEND``) that make a row's robust accuracy untrustworthy, and why. A row
#: with any of them is listed after every trusted row and not ranked, whatever its numbers.
UNRELIABLE: dict[str, str] = {
    "non_monotone": "the attack misses at a larger ε what it broke at a smaller one, so it is not finding the worst "
                    "case",
    "large_eps_not_chance": "the attacks fail even where success is guaranteed, so they fail elsewhere too",
    "black_box_beats_white_box": "the gradient attacks were misled; the worst case rests on weaker black-box attacks",
    "gradient_masking": "the gradient attacks were blind, so the robust accuracy is an overestimate",
    "pgd_not_converged": "more attack steps still lower the accuracy, so the attacks stopped short",
    "randomized": "one random draw of the defense was attacked, not its expectation (no EoT)",
    "outside_ball": "an attack was stopped, so the worst case misses what it would have broken later",
    "near_chance": "the model learned next to nothing: its robust accuracy is that of a guess, not of a defense",
    "probability_outputs": "the attacks' losses saw a softmax output, whose vanishing gradients overstate robustness",
    "certificate_violated": "a certificate claims more than the attacks left, so the certificate or the attacks are "
                            "wrong",
}
#: The flags that leave the rank alone, and why.
RANK_NEUTRAL: dict[str, str] = {
    "clean_mismatch": "the evaluated model differs from the one measured after training, but the attacks' worst "
                      "case on the evaluated model still holds",
    "unverified_data": "the attacks' numbers hold for the files used; whether those are the canonical dataset is "
                       "what the row cannot promise",
}

#: suite:aa-standard's attacks as they are labelled on a board, and what its rows must say.
AA_STANDARD = ("apgd-ce(steps=100)", "apgd-t", "square(queries=5000,p_init=0.8)")
AA_STANDARD_NOTE = ("apgd-ce(steps=100), apgd-t and square(queries=5000,p_init=0.8) are suite:aa-standard: "
                    "AutoAttack's standard version (Croce & Hein 2020) without FAB-T, built from ART's attacks. "
                    "FAB-T is not in ART; a minimal-norm attack run after APGD-T on what it left robust, it rarely "
                    "changes the number (in nine published AutoAttack standard logs it lowered robust accuracy once, "
                    "by 0.02 points). Other differences: ART's APGD keeps its last iterate, not any misclassified one")
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
    rows: tuple[dict[str, Any], ...]  # one per (defense, model, seed)
    summary: tuple[dict[str, Any], ...]  # one per (defense, model), aggregated over seeds, in rank order
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
            "unreliable_flags": UNRELIABLE,
            "config": self.config,
            "provenance": self.provenance,
            "summary": list(self.summary),
            "rows": list(self.rows),
        }


def build_leaderboard(records: Sequence[Record], *, headline_eps: float | None = None) -> Leaderboard:
    """All records must share dataset, norm, ε grid and survivor mode (``Record.board_key``)."""
    if not records:
        raise BenchError("no results to put on a leaderboard")
    first = records[0]
    for record in records[1:]:
        for name, mine, theirs in zip(("dataset", "norm", "eps", "survivors"), first.board_key, record.board_key,
                                      strict=True):
            if mine != theirs:
                raise BenchError(f"records differ in {name} ({mine} vs {theirs}): one leaderboard per dataset, norm, "
                                 f"ε grid and survivor mode (filter with --dataset, --norm)")
    if headline_eps is None:
        headline_eps = first.headline_eps
    if headline_eps is None:  # a record from before records kept it
        from benchmark.data import headline_eps as dataset_headline

        headline_eps = dataset_headline(first.dataset, first.norm, first.eps)
    rows = [make_row(record) for record in records]
    summary = ranked(summarise(rows, first.eps), eps_key(headline_eps))
    position = {(entry["defense"], entry["model"]): index for index, entry in enumerate(summary)}
    rows = sorted(({"rank": summary[position[row["defense"], row["model"]]]["rank"], **row} for row in rows),
                  key=lambda row: (position[row["defense"], row["model"]], row["seed"]))  # as the summary, by seed
    # columns in the order the attacks ran, which the cumulative numbers follow
    attacks = tuple(dict.fromkeys(name for record in records for name in record.runs))
    config = board_config(records)
    return Leaderboard(first.dataset, first.norm, headline_eps, first.eps, attacks, tuple(rows), tuple(summary),
                       config, board_provenance(records, config), per_attack_kind(first.survivors))


def board_provenance(records: Sequence[Record], config: dict[str, Any]) -> dict[str, Any]:
    environment = records[-1].environment
    return {
        "config_hash": content_hash(config),
        "data_fingerprint": records[0].data_fingerprint,
        "versions": environment.versions,
        "python": environment.python,
        "device": sorted({r.device for r in records}),
        "cpu": environment.cpu,
        "git_sha": sorted({str(r.environment.git_sha) for r in records}),
        "created": [min(r.created_at for r in records), max(r.created_at for r in records)],
    }


def reliable(flags: Sequence[str]) -> bool:
    """Whether a row with these flags may be ranked: no flag of ``UNRELIABLE`` that its adaptive runs leave
    unanswered (``benchmark.adaptive.ANSWERS``)."""
    return not any(flag in UNRELIABLE for flag in unanswered(list(flags)))


def ranked(summary: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """``summary`` in rank order, each entry with its ``rank``: trusted entries by robust accuracy at ε ``key`` (then
    clean accuracy, then name) ranked 1…n, then the unreliable ones in the same order with rank None."""
    order = sorted(summary, key=lambda s: (not reliable(s["flags"]), -s["robust_accuracy"][key]["mean"],
                                           -s["clean_accuracy"]["mean"], s["defense"]))
    trusted = sum(reliable(entry["flags"]) for entry in order)
    return [{"rank": index + 1 if index < trusted else None, **entry} for index, entry in enumerate(order)]


def make_row(record: Record) -> dict[str, Any]:
    """The leaderboard row of one record (``leaderboards/README.md`` documents its JSON)."""
    n, runs = record.n_test, record.runs
    return {
        "defense": record.defense, "defense_name": record.defense_name, "defense_params": record.defense_params,
        "model": record.model, "seed": record.seed, "clean_accuracy": record.clean_accuracy,
        "robust_accuracy": record.robust_accuracy,
        "per_attack": {name: run.accuracy for name, run in runs.items() if run.accuracy is not None},
        "train_seconds": record.train_seconds, "eval_seconds": record.eval_seconds,
        "train_grad_evals": record.train_grad_evals,
        "attack_seconds": {name: run.seconds for name, run in runs.items()},
        "attack_grad_evals": {name: run.grad_evals for name, run in runs.items()},
        "attack_queries": {name: run.queries for name, run in runs.items()},
        "attack_sample_runs": {name: run.sample_runs for name, run in runs.items()},
        "attack_tags": {name: runs[name].tags for name in record.attacks if name in runs},
        "attack_errors": {name: run.error for name, run in runs.items() if run.error},
        "median_distance": {name: run.median_distance for name, run in runs.items() if run.distances is not None},
        "flags": list(record.flags), "probes": dataclasses.asdict(record.probes), "device": record.device,
        "batch_size": record.batch_size, "n_test": n, "quick": record.quick, "train_cached": record.train_cached,
        "clean_ci": wilson(round(record.clean_accuracy * n), n),
        "robust_ci": {k: wilson(round(v * n), n) for k, v in record.robust_accuracy.items()},
        "samples": {"worst_broken_at": worst_broken_at(record)},
        "provenance": {"job_hash": record.job_hash, "train_hash": record.train_hash,
                       "model_sha256": None if record.model_source is None else record.model_source.sha256,
                       "data_source": record.data_source,
                       "git_sha": record.environment.git_sha, "versions": record.environment.versions,
                       "created_at": record.created_at},
    } | leaderboard_privacy.privacy_row(record) | backdoor_row(record) | naive_row(record) | ibp_row(record)


def naive_row(record: Record) -> dict[str, Any]:
    """``"naive_robust_accuracy"``: the worst case over the naive runs only (what a careless evaluation reports),
    only on a row whose attacks also ran adaptively (BPDA, EoT)."""
    broken = naive_broken_at(record.runs)
    if not broken or not record.correct:
        return {}
    return {"naive_robust_accuracy": keyed(accuracy_curve(worst_case(record.correct, broken, len(record.eps)),
                                                           record.eps))}


def ibp_row(record: Record) -> dict[str, Any]:
    """``"ibp_verified"``: IBP-verified accuracy per ε key, only on a row certified with ``--ibp``."""
    return {} if record.ibp is None else {"ibp_verified": dict(record.ibp.verified)}


def backdoor_row(record: Record) -> dict[str, Any]:
    """``"backdoor"``: the planted backdoor's target, success rate and samples (``bench check`` holds the rate), only
    on a row whose Byzantine clients planted one."""
    return {} if record.backdoor is None else {"backdoor": dataclasses.asdict(record.backdoor)}


def worst_broken_at(record: Record) -> list[int] | None:
    """Per sample, the first ε index at which any attack broke it (what paired tests compare; every stored break
    was verified, see ``benchmark.sweep``); None for a record without per-sample results."""
    broken = [run.broken_at for run in record.runs.values() if run.broken_at]
    if not record.correct:
        return None
    return worst_case(record.correct, broken, len(record.eps)).tolist()


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
            return seed_stat(values, sizes)

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
            "train_seconds": optional_mean([r["train_seconds"] for r in members]),
            "eval_seconds": mean_sd([r["eval_seconds"] for r in members])[0],
            "train_grad_evals": mean_sd([r["train_grad_evals"] or 0 for r in members])[0],
            "flags": sorted({f for r in members for f in r.get("flags") or []}),
            "n_test": members[0]["n_test"],
        } | leaderboard_privacy.summary_privacy(members) | entry_summary(members, eps))
    return summary


def seed_stat(values: list[float], sizes: list[int]) -> dict[str, Any]:
    """Mean ± sd over seeds of an accuracy, its per-seed values, and a Wilson interval over the pooled samples."""
    mean, sd = mean_sd(values)
    pooled = sum(round(v * n) for v, n in zip(values, sizes, strict=True))
    return {"mean": mean, "sd": sd, "values": values, "ci": wilson(pooled, sum(sizes))}


def entry_summary(members: Sequence[dict[str, Any]], eps: tuple[float, ...]) -> dict[str, Any]:
    """Over seeds, the per-ε numbers rows carry only sometimes (``naive_row``, ``ibp_row``): each where every seed's
    row has it."""
    sizes = [row["n_test"] for row in members]
    return {field: {eps_key(e): seed_stat([row[field][eps_key(e)] for row in members], sizes) for e in eps}
            for field in ("naive_robust_accuracy", "ibp_verified") if all(field in row for row in members)}


def legend_lines(board: Leaderboard) -> list[str]:
    """What the flags that fired mean (and which of them leave a row unranked), which attacks failed validation,
    and the AutoAttack caveat."""
    from benchmark.validity import legend

    fired = {flag for row in board.rows for flag in row.get("flags") or []}
    lines = legend(fired) + [f"{flag}: {text}" for flag, text in FLAG_TEXT.items() if flag in fired]
    unranking = {flag for row in board.rows for flag in unanswered(row.get("flags") or [])}
    unranked = [flag for flag in UNRELIABLE if flag in unranking]
    if unranked:
        lines.append(ranking_note(unranked))
    for row in board.rows:
        for attack, error in (row.get("attack_errors") or {}).items():
            lines.append(f"{row['defense']} (seed {row['seed']}): {attack} stopped, no per-attack numbers: {error}")
    if any(name.split("(")[0] == "autoattack" for name in board.attacks):
        lines.append(AUTOATTACK_NOTE)
    if all(label in board.attacks for label in AA_STANDARD):
        lines.append(AA_STANDARD_NOTE)
    return lines + privacy_columns.legend(board) + entry_columns.legend(board) + close_calls(board)


def close_calls(board: Leaderboard) -> list[str]:
    """A warning per pair of neighbouring ranked rows whose order the test samples cannot settle: the 95 % interval
    of either row's robust accuracy at the headline ε is wider than the gap between them (so more test samples, or
    ``bench compare``'s paired test, must decide)."""
    key, lines = board.headline_key, []
    ranked_entries = [entry for entry in board.summary if entry["rank"] is not None]
    for upper, lower in zip(ranked_entries, ranked_entries[1:], strict=False):
        a, b = upper["robust_accuracy"][key], lower["robust_accuracy"][key]
        gap = a["mean"] - b["mean"]
        width = max(a["ci"][1] - a["ci"][0], b["ci"][1] - b["ci"][0])
        if width > gap:
            lines.append(f"ranks {upper['rank']} and {lower['rank']} ({upper['defense']}, {lower['defense']}) are "
                         f"{100 * gap:.1f} points apart at ε = {key}, less than the {100 * width:.1f}-point width of a "
                         f"95 % interval on {upper['n_test']} test samples: the order is not settled (more samples, "
                         f"or bench compare's paired test)")
    return lines


def ranking_note(flags: Sequence[str]) -> str:
    """Why rows with the unreliable ``flags`` are ranked "—" and listed after the trusted rows."""
    reasons = "; ".join(f"{flag}: {UNRELIABLE[flag]}" for flag in flags)
    return (f"Rank —: a row flagged {', '.join(flags)} has a robust accuracy that cannot be trusted ({reasons}); "
            f"it is listed after every ranked row, whatever its numbers.")


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


def optional_mean(values: Sequence[float | None]) -> float | None:
    """The mean of ``values``, or None when any is None (a model not trained here has no training time)."""
    return None if any(value is None for value in values) else mean_sd(values)[0]


def seconds_text(seconds: float | None) -> str:
    """Seconds with one decimal; "–" for none (a model that was not trained here)."""
    return "–" if seconds is None else f"{seconds:.1f}"


def percent(value: float) -> str:
    return f"{100 * value:.1f}"


def rank_text(rank: int | None) -> str:
    """A rank as tables show it: ``3``, or ``—`` for an unreliable row."""
    return "—" if rank is None else str(rank)


def seeds_text(seeds: Sequence[int]) -> str:
    """How many seeds and which: ``1 (0)``, ``2 (0,1)``, ``3 (0–2)`` (a run of three or more as a range)."""
    values = sorted(seeds)
    consecutive = len(values) >= 3 and values == list(range(values[0], values[0] + len(values)))
    listed = f"{values[0]}–{values[-1]}" if consecutive else ",".join(map(str, values))
    return f"{len(values)} ({listed})"


def stat_text(stat: dict[str, Any]) -> str:
    """``88.3`` for one seed, ``88.3 ± 0.5`` over several (in %)."""
    if len(stat["values"]) == 1:
        return percent(stat["mean"])
    return f"{percent(stat['mean'])} ± {percent(stat['sd'])}"


#: Columns aligned left; every other column holds a number.
TEXT_COLUMNS = ("defense", "model", "device", "flags", "attack")


def table_cells(board: Leaderboard) -> tuple[list[str], list[list[str]]]:
    """Header and body of the main table (one row per defense, in rank order; "—" for an unreliable row; privacy
    columns where the board has privacy results), shared by the Markdown and terminal renderers."""
    eps_columns, (metrics, costs) = [e for e in board.eps if e > 0], privacy_columns.main_columns(board)
    header = ["#", "defense", "model", "seeds", "clean %"]
    header += [f"ε={e:g} %" + (" ★" if e == board.headline_eps else "") for e in eps_columns]
    header += [*(c.title for c in metrics), "train s", "eval s", *(c.title for c in costs), "flags"]
    body = []
    for entry in board.summary:
        cells = [rank_text(entry["rank"]), entry["defense"], entry["model"], seeds_text(entry["seeds"]),
                 stat_text(entry["clean_accuracy"])]
        cells += [stat_text(entry["robust_accuracy"][eps_key(e)]) for e in eps_columns]
        cells += [c.text(entry) for c in metrics]  # privacy columns, where the board has any
        cells += [seconds_text(entry["train_seconds"]), f"{entry['eval_seconds']:.1f}",
                  *(c.text(entry) for c in costs), ", ".join(entry["flags"]) or "–"]
        body.append(cells)
    return header, body
