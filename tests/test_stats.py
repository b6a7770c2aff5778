"""Statistics against scipy and published worked examples."""

import numpy as np
import pytest
from scipy import stats as sp

from benchmark.stats import mcnemar, mean_sd, wilson


@pytest.mark.parametrize(("k", "n", "expected"), [
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I, method 3 (score)
    (81, 263, (0.2553, 0.3662)),
    (15, 148, (0.0624, 0.1605)),
    (0, 20, (0.0, 0.1611)),
    (1, 29, (0.0061, 0.1718)),
])
def test_wilson_matches_newcombe(k, n, expected):
    assert wilson(k, n) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize(("k", "n"), [(0, 1), (3, 7), (50, 100), (359, 360), (360, 360), (17, 360)])
def test_wilson_matches_scipy(k, n):
    expected = sp.binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert wilson(k, n) == pytest.approx((expected.low, expected.high), abs=1e-9)


def test_wilson_bad_input():
    with pytest.raises(ValueError, match="successes"):
        wilson(5, 3)
    assert wilson(0, 0) == (0.0, 1.0)


def test_mean_sd():
    assert mean_sd([0.8, 0.9, 1.0]) == pytest.approx((0.9, 0.1))
    assert mean_sd([0.5]) == (0.5, 0.0)


def test_mcnemar_matches_scipy_exact_test():
    rng = np.random.default_rng(0)
    a = rng.random(300) < 0.8
    b = a.copy()
    b[rng.choice(300, 25, replace=False)] ^= True
    result = mcnemar(a, b)
    expected = sp.binomtest(result.only_a, result.only_a + result.only_b, 0.5).pvalue
    assert result.p_value == pytest.approx(expected, rel=1e-12)


def test_mcnemar_worked_example():
    # Wikipedia's McNemar example: discordant cells b = 121, c = 59 → χ² with continuity correction 20.67
    a = np.array([True] * 101 + [True] * 121 + [False] * 59 + [False] * 33)
    b = np.array([True] * 101 + [False] * 121 + [True] * 59 + [False] * 33)
    result = mcnemar(a, b)
    assert (result.only_a, result.only_b) == (121, 59)
    assert result.statistic == pytest.approx((62 - 1) ** 2 / 180)
    assert result.statistic == pytest.approx(20.67, abs=0.01)
    assert result.p_value < 1e-5
    assert mcnemar(a, a).p_value == 1.0
