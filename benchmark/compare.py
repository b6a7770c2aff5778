"""Paired comparisons of leaderboard rows: per-ε differences with McNemar's test on the per-sample results, the
membership-inference advantage and the backdoor success rate where both rows have one, and the regression verdict of
``bench check``."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.leaderboard_privacy import advantage_of
from benchmark.record import eps_key
from benchmark.stats import McNemar, mcnemar

SIGNIFICANCE = 0.05


@dataclass(frozen=True)
class DiffLine:
    label: str  # which row (defense, model, seed)
    metric: str  # "clean", "ε=0.1", "MIA adv." or "backdoor ASR"
    before: float
    after: float
    test: McNemar | None  # on the same samples, when both sides have per-sample results
    status: str = ""  # "ok", "regression", "significant drop" (bench check only)
    higher_is_better: bool = True  # False for a leak (MIA advantage, backdoor success): there a rise is the regression

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

    @property
    def loss(self) -> float:
        """How much worse ``after`` is than ``before`` (negative: better)."""
        return -self.delta if self.higher_is_better else self.delta

    def worse_beyond(self, tolerance: float) -> bool:
        """An accuracy fell, or a leak rose, by more than ``tolerance``."""
        if self.higher_is_better:
            return self.after < self.before - tolerance
        return self.after > self.before + tolerance


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
    return lines + rise_lines(pairs, label)


def backdoor_of(row: dict[str, Any]) -> float | None:
    """A row's backdoor success rate (``benchmark.leaderboard.backdoor_row``); None without a backdoor, or without
    a sample to measure it on."""
    rate = (row.get("backdoor") or {}).get("success_rate")
    return None if rate is None or not math.isfinite(rate) else float(rate)


#: A row's optional numbers for which lower is better, so a rise is the regression: the membership advantage (worst
#: case over the attacks) and the backdoor's success rate. Each: its label, its name in errors, how a row gives it.
RISES: tuple[tuple[str, str, Callable[[dict[str, Any]], float | None]], ...] = (
    ("MIA adv.", "membership-inference advantage", advantage_of),
    ("backdoor ASR", "backdoor success rate", backdoor_of),
)


def rise_lines(pairs: list[tuple[dict[str, Any], dict[str, Any]]], label: str) -> list[DiffLine]:
    """Per number of ``RISES``, its mean over the paired rows before and after, when every row of both sides has one
    (no line otherwise); there is no paired test."""
    lines = []
    for metric, _, value_of in RISES:
        values = [(value_of(a), value_of(b)) for a, b in pairs]
        if not values or any(None in pair for pair in values):
            continue
        before, after = (float(np.mean(side)) for side in zip(*values, strict=True))
        lines.append(DiffLine(label, metric, before, after, None, higher_is_better=False))
    return lines


def row_key(row: dict[str, Any]) -> tuple[str, str, int]:
    return row["defense"], row["model"], row["seed"]


def check_rows(baseline: list[dict[str, Any]], fresh: list[dict[str, Any]], eps: list[float],
               tolerance: float) -> list[DiffLine]:
    """Every baseline row against the fresh row of the same (defense, model, seed): a regression is an accuracy drop,
    or a rise of the membership advantage or of the backdoor success rate, beyond ``tolerance``, or a drop McNemar
    finds significant on the same samples. A baseline row with an advantage or a backdoor rate needs one in the fresh
    row."""
    by_key = {row_key(row): row for row in fresh}
    lines = []
    for base in baseline:
        new = by_key.get(row_key(base))
        if new is None:
            raise KeyError(f"the fresh run has no row for {row_key(base)}")
        for _, name, value_of in RISES:
            if value_of(base) is not None and value_of(new) is None:
                raise KeyError(f"the fresh run has no {name} for {row_key(base)}, the baseline has")
        label = f"{base['defense']} · {base['model']} · seed {base['seed']}"
        for line in diff([(base, new)], eps, label):
            if line.worse_beyond(tolerance):
                status = "regression"
            elif line.significant_drop:
                status = "significant drop"
            else:
                status = "ok"
            lines.append(dataclasses.replace(line, status=status))
    return lines
