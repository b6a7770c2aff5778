"""Paired comparisons of leaderboard rows: per-ε differences with McNemar's test on the per-sample results, and the
regression verdict of ``bench check``."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.record import eps_key
from benchmark.stats import McNemar, mcnemar

SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class DiffLine:
    label: str  # which row (defense, model, seed)
    metric: str  # "clean" or "ε=0.1"
    before: float
    after: float
    test: McNemar | None  # on the same samples, when both sides have per-sample results
    status: str = ""  # "ok", "regression", "significant drop" (bench check only)

    @property
    def p_value(self) -> float | None:
        return None if self.test is None else self.test.p_value

    @property
    def significant_drop(self) -> bool:
        """McNemar rejects equality and the discordant samples favour the earlier row."""
        return self.test is not None and self.test.p_value < SIGNIFICANCE and self.test.only_a > self.test.only_b

    @property
    def delta(self) -> float:
        return self.after - self.before


def correct_at(row: dict[str, Any], k: int) -> np.ndarray | None:
    """Per sample: still correct at ε index ``k`` (k = 0 is clean); None without per-sample data."""
    worst = (row.get("samples") or {}).get("worst_broken_at")
    return None if worst is None else np.asarray(worst) > k


def accuracy_at(row: dict[str, Any], eps: list[float], k: int) -> float:
    return row["clean_accuracy"] if k == 0 else row["robust_accuracy"][eps_key(eps[k])]


def pooled_test(pairs: Iterable[tuple[dict[str, Any], dict[str, Any]]], k: int) -> McNemar | None:
    """McNemar over the (seed, sample) units of all ``pairs``; None if any side lacks per-sample data."""
    before, after = [], []
    for row_before, row_after in pairs:
        a, b = correct_at(row_before, k), correct_at(row_after, k)
        if a is None or b is None or a.shape != b.shape:
            return None
        before.append(a)
        after.append(b)
    if not before:
        return None
    return mcnemar(np.concatenate(before), np.concatenate(after))


def diff(pairs: list[tuple[dict[str, Any], dict[str, Any]]], eps: list[float], label: str) -> list[DiffLine]:
    """Per ε (clean first), mean accuracy before and after over the paired rows, and McNemar's p-value."""
    lines = []
    for k in range(len(eps)):
        metric = "clean" if k == 0 else f"ε={eps[k]:g}"
        before = float(np.mean([accuracy_at(a, eps, k) for a, _ in pairs]))
        after = float(np.mean([accuracy_at(b, eps, k) for _, b in pairs]))
        lines.append(DiffLine(label, metric, before, after, pooled_test(pairs, k)))
    return lines


def row_key(row: dict[str, Any]) -> tuple[str, str, int]:
    return row["defense"], row["model"], row["seed"]


def check_rows(baseline: list[dict[str, Any]], fresh: list[dict[str, Any]], eps: list[float],
               tolerance: float) -> list[DiffLine]:
    """Every baseline row against the fresh row of the same (defense, model, seed): a regression is a drop beyond
    ``tolerance``, or a drop McNemar finds significant on the same samples."""
    by_key = {row_key(row): row for row in fresh}
    lines = []
    for base in baseline:
        new = by_key.get(row_key(base))
        if new is None:
            raise KeyError(f"the fresh run has no row for {row_key(base)}")
        label = f"{base['defense']} · {base['model']} · seed {base['seed']}"
        for line in diff([(base, new)], eps, label):
            if line.after < line.before - tolerance:
                status = "regression"
            elif line.significant_drop:
                status = "significant drop"
            else:
                status = "ok"
            lines.append(dataclasses.replace(line, status=status))
    return lines
