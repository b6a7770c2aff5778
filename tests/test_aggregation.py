"""Aggregation rules against hand-computed cases and their defining properties."""

import numpy as np
import pytest
from scipy import stats

from defenses import aggregation as agg

HONEST = np.array([[1.0, 2.0], [1.1, 2.1], [0.9, 1.9], [1.0, 2.2], [1.05, 1.95], [0.95, 2.05]])
WILD = np.array([[100.0, -100.0]])


def test_mean_is_the_weighted_average():
    updates = np.array([[1.0, 0.0], [3.0, 4.0]])
    assert np.allclose(agg.mean(updates, np.array([1, 3])), [2.5, 3.0])
    assert np.allclose(agg.mean(updates), [2.0, 2.0])
    rng = np.random.default_rng(0)
    many, weights = rng.normal(size=(7, 5)), rng.integers(1, 50, size=7)
    assert np.allclose(agg.mean(many, weights), np.average(many, axis=0, weights=weights))
    with pytest.raises(ValueError, match="weights"):
        agg.mean(updates, np.array([0, 0]))


def test_median_hand_case_and_ignores_one_wild_client():
    assert np.allclose(agg.median(np.array([[1.0, 5.0], [2.0, -1.0], [10.0, 0.0]])), [2.0, 0.0])
    honest = agg.median(HONEST)
    with_wild = agg.median(np.vstack([HONEST, WILD]))
    assert np.abs(with_wild - honest).max() < 0.1
    assert np.abs(agg.mean(np.vstack([HONEST, WILD])) - honest).max() > 10


def test_trimmed_mean_matches_scipy_and_ignores_one_wild_client():
    rng = np.random.default_rng(1)
    updates = rng.normal(size=(10, 4))
    for beta in (0.0, 0.1, 0.2, 0.35):
        assert np.allclose(agg.trimmed_mean(updates, beta), stats.trim_mean(updates, beta, axis=0))
    assert np.allclose(agg.trimmed_mean(np.array([[1.0], [2.0], [3.0], [1000.0]]), 0.25), [2.5])
    robust = agg.trimmed_mean(np.vstack([HONEST, WILD]), 0.2)
    assert np.abs(robust - HONEST.mean(axis=0)).max() < 0.1
    with pytest.raises(ValueError, match=r"\[0, 0.5\)"):
        agg.trimmed_mean(updates, 0.5)


def test_krum_hand_case():
    # n = 5, f = 1: each score sums the n - f - 2 = 2 nearest squared distances
    updates = np.array([[0.0], [1.0], [2.0], [10.0], [11.0]])
    assert np.allclose(agg.krum_scores(updates, 1), [1 + 4, 1 + 1, 1 + 4, 1 + 64, 1 + 81])
    assert np.allclose(agg.krum(updates, 1), [1.0])


def test_krum_and_multi_krum_pick_honest_updates():
    byzantine = np.array([[50.0, 50.0], [-40.0, 60.0]])
    updates = np.vstack([byzantine, HONEST, [[1.0, 2.0]]])  # 9 clients, 2 Byzantine
    chosen = agg.krum(updates, f=2)
    assert any(np.array_equal(chosen, h) for h in updates[2:])
    kept = agg.multi_krum(updates, f=2)  # averages the n - f = 7 best: all honest
    assert np.allclose(kept, updates[2:].mean(axis=0))
    with pytest.raises(ValueError, match=r"krum needs n ≥ 2f \+ 3 clients: n = 9, f = 4 needs n ≥ 11"):
        agg.krum(updates, f=4)


def test_bulyan_hand_case_and_requirement():
    # n = 7, f = 1: Krum selects θ = 5 updates, the coordinate-wise β = 3 values nearest the median are averaged
    updates = np.array([[0.0], [1.0], [2.0], [3.0], [4.0], [100.0], [-100.0]])
    assert np.allclose(agg.bulyan(updates, f=1), [2.0])
    byzantine = np.array([[80.0, -80.0], [-70.0, 90.0]])
    updates = np.vstack([HONEST, HONEST[:5] + 0.01, byzantine])  # n = 13 ≥ 4·2 + 3
    assert np.abs(agg.bulyan(updates, f=2) - HONEST.mean(axis=0)).max() < 0.15
    with pytest.raises(ValueError, match=r"bulyan needs n ≥ 4f \+ 3 clients: n = 10, f = 2 needs n ≥ 11"):
        agg.bulyan(np.zeros((10, 2)), f=2)


def test_rules_are_translation_equivariant():
    """Aggregating deltas or weights gives the same model: rule(u + c) = rule(u) + c."""
    rng = np.random.default_rng(2)
    updates, shift = rng.normal(size=(11, 3)), rng.normal(size=3)
    for rule in (agg.median, lambda u: agg.trimmed_mean(u, 0.2), lambda u: agg.krum(u, 2),
                 lambda u: agg.multi_krum(u, 2), lambda u: agg.bulyan(u, 2), agg.mean):
        assert np.allclose(rule(updates + shift), rule(updates) + shift)


def test_bad_shapes():
    with pytest.raises(ValueError, match="non-empty"):
        agg.median(np.zeros((0, 3)))
