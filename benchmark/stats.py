"""Statistics for leaderboards (pure functions).

* ``wilson``: Wilson score 95 % interval of a proportion (Wilson 1927; Newcombe 1998 recommends it over the Wald
  interval, which collapses at 0 and 1 and undercovers for small n).
* ``mean_sd``: mean and sample standard deviation over seeds.
* ``mcnemar``: McNemar's paired test of two classifiers on the same samples (exact binomial p-value on the
  discordant pairs; the continuity-corrected χ² statistic is reported too).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

Z95 = 1.959963984540054  # the 97.5 % quantile of the standard normal


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for ``successes`` out of ``n`` (``(0, 1)`` when ``n`` is 0)."""
    if n < 0 or not 0 <= successes <= n:
        raise ValueError(f"need 0 ≤ successes ≤ n, got successes={successes}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof = 1; 0 for a single value)."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        raise ValueError("no values")
    return float(array.mean()), float(array.std(ddof=1)) if array.size > 1 else 0.0


@dataclass(frozen=True)
class McNemar:
    """Paired comparison of A and B on the same samples."""

    only_a: int  # samples A gets right and B wrong
    only_b: int  # samples B gets right and A wrong
    statistic: float  # continuity-corrected χ² (1 degree of freedom)
    p_value: float  # exact two-sided binomial p-value on the discordant pairs

    @property
    def n_discordant(self) -> int:
        return self.only_a + self.only_b


def mcnemar(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> McNemar:
    """McNemar's test on per-sample correctness of two classifiers over the same samples."""
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired samples must match: {a.shape} vs {b.shape}")
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    discordant = only_a + only_b
    if discordant == 0:
        return McNemar(only_a, only_b, 0.0, 1.0)
    statistic = (abs(only_a - only_b) - 1) ** 2 / discordant
    tail = sum(math.comb(discordant, i) for i in range(min(only_a, only_b) + 1)) / 2**discordant
    return McNemar(only_a, only_b, statistic, min(1.0, 2 * tail))
