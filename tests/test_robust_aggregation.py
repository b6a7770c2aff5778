"""Norm bounding, centered clipping and FLTrust against hand-computed cases and their defining properties."""

import numpy as np
import pytest

from defenses import aggregation as agg

HONEST = np.array([[1.0, 2.0], [1.1, 2.1], [0.9, 1.9], [1.0, 2.2], [1.05, 1.95], [0.95, 2.05]])


def test_norm_bounded_mean_hand_case():
    # [3, 4] has norm 5 → clipped to norm 1: [0.6, 0.8]; [0, 1] is at the bound and stays
    updates = np.array([[3.0, 4.0], [0.0, 1.0]])
    assert np.allclose(agg.norm_bounded_mean(updates, bound=1.0), [0.3, 0.9])
    assert np.allclose(agg.norm_bounded_mean(updates, np.array([1, 3]), bound=1.0), [0.15, 0.95])


def test_norm_bounding_keeps_small_updates_and_bounds_the_result():
    rng = np.random.default_rng(0)
    small = rng.normal(size=(6, 4))
    bound = np.linalg.norm(small, axis=1).max() + 1e-9
    weights = rng.integers(1, 20, size=6)
    assert np.allclose(agg.norm_bounded_mean(small, weights, bound=bound), agg.mean(small, weights))
    large = 100 * rng.normal(size=(8, 4)) + 50
    result = agg.norm_bounded_mean(large, bound=2.5)
    assert np.linalg.norm(result) <= 2.5 + 1e-12
    assert np.linalg.norm(agg.mean(large)) > 2.5


def test_norm_bounding_noise_is_deterministic_given_rng_and_has_the_std():
    updates = np.random.default_rng(1).normal(size=(5, 20_000))
    clean = agg.norm_bounded_mean(updates, bound=1.0)
    first = agg.norm_bounded_mean(updates, bound=1.0, noise_std=0.025, rng=np.random.default_rng(7))
    again = agg.norm_bounded_mean(updates, bound=1.0, noise_std=0.025, rng=np.random.default_rng(7))
    other = agg.norm_bounded_mean(updates, bound=1.0, noise_std=0.025, rng=np.random.default_rng(8))
    assert np.array_equal(first, again)
    assert not np.allclose(first, other)
    assert np.std(first - clean) == pytest.approx(0.025, rel=0.03)
    rng = np.random.default_rng(3)
    agg.norm_bounded_mean(updates, bound=1.0, rng=rng)  # σ = 0: the generator is not drawn from
    assert rng.random() == np.random.default_rng(3).random()


def test_centered_clipping_hand_case():
    updates = np.array([[3.0, 4.0], [0.0, 0.0]])
    # L = 1 from 0: clip([3, 4], 1) = [0.6, 0.8], clip(0) = 0 → v = [0.3, 0.4]
    assert np.allclose(agg.centered_clipping(updates, tau=1.0), [0.3, 0.4])
    # L = 2: x − v = [2.7, 3.6] (norm 4.5) → [0.6, 0.8]; [-0.3, -0.4] (norm 0.5) stays → v += [0.15, 0.2]
    assert np.allclose(agg.centered_clipping(updates, tau=1.0, iterations=2), [0.45, 0.6])
    # from a centre: x − c = [2, 4] (norm √20) → [2, 4]/√20; [-1, 0] stays
    expected = np.array([1.0, 0.0]) + (np.array([2.0, 4.0]) / np.sqrt(20) + [-1.0, 0.0]) / 2
    assert np.allclose(agg.centered_clipping(updates, center=np.array([1.0, 0.0]), tau=1.0), expected)


def test_centered_clipping_with_infinite_tau_is_the_mean():
    rng = np.random.default_rng(4)
    updates, center = rng.normal(size=(7, 3)), rng.normal(size=3)
    for iterations in (1, 3):
        result = agg.centered_clipping(updates, center=center, tau=np.inf, iterations=iterations)
        assert np.allclose(result, updates.mean(axis=0))


def test_centered_clipping_outlier_moves_the_result_by_at_most_tau_over_n():
    tau, n = 0.5, len(HONEST) + 1
    center = HONEST.mean(axis=0) + 0.1
    attacked = agg.centered_clipping(np.vstack([HONEST, [[1e9, -1e9]]]), center=center, tau=tau)
    absent = agg.centered_clipping(np.vstack([HONEST, [center]]), center=center, tau=tau)  # contributes 0
    assert np.linalg.norm(attacked - absent) == pytest.approx(tau / n)
    assert np.linalg.norm(agg.mean(np.vstack([HONEST, [[1e9, -1e9]]])) - absent) > 1e8


def test_fltrust_hand_case():
    server = np.array([3.0, 4.0])  # ‖g0‖ = 5
    # cos: 1, 24/25, −1 (ReLU → 0), 0; rescaled to norm 5: [3, 4], [4, 3]
    updates = np.array([[6.0, 8.0], [4.0, 3.0], [-3.0, -4.0], [4.0, -3.0]])
    expected = (1.0 * np.array([3.0, 4.0]) + 0.96 * np.array([4.0, 3.0])) / 1.96
    assert np.allclose(agg.fltrust(updates, server), expected)


def test_fltrust_ignores_opposed_updates_and_the_scale_of_an_update():
    rng = np.random.default_rng(5)
    server = HONEST.mean(axis=0)
    honest_only = agg.fltrust(HONEST, server)
    with_opposed = agg.fltrust(np.vstack([HONEST, -1000 * server, [[-2.0, 0.5]]]), server)
    assert np.allclose(with_opposed, honest_only)
    updates = np.vstack([HONEST, rng.normal(size=(2, 2))])
    scaled = updates.copy()
    scaled[-1] *= 1e6
    assert np.allclose(agg.fltrust(scaled, server), agg.fltrust(updates, server))
    assert np.linalg.norm(agg.fltrust(scaled, server)) <= np.linalg.norm(server) + 1e-12


def test_fltrust_is_zero_when_no_update_is_trusted():
    server = np.array([1.0, 0.0])
    assert np.array_equal(agg.fltrust(np.array([[-1.0, 2.0], [0.0, 3.0], [0.0, 0.0]]), server), [0.0, 0.0])


def test_robust_rules_do_not_mutate_their_inputs():
    rng = np.random.default_rng(6)
    updates, weights = 10 * rng.normal(size=(5, 3)), np.arange(1.0, 6.0)
    center, server = rng.normal(size=3), rng.normal(size=3)
    kept = [a.copy() for a in (updates, weights, center, server)]
    results = [agg.norm_bounded_mean(updates, weights, bound=1.0, noise_std=0.1, rng=rng),
               agg.centered_clipping(updates, center=center, tau=1.0, iterations=3),
               agg.fltrust(updates, server)]
    for before, after in zip(kept, (updates, weights, center, server), strict=True):
        assert np.array_equal(before, after)
    for result in results:
        assert not any(np.shares_memory(result, a) for a in (updates, weights, center, server))


@pytest.mark.parametrize(("call", "message"), [
    (lambda u: agg.norm_bounded_mean(u, bound=0.0), "bound must be positive"),
    (lambda u: agg.norm_bounded_mean(u, bound=1.0, noise_std=-0.1), "noise_std must be non-negative"),
    (lambda u: agg.norm_bounded_mean(u, bound=1.0, noise_std=0.1), "rng is required"),
    (lambda u: agg.centered_clipping(u, tau=-1.0), "tau must be positive"),
    (lambda u: agg.centered_clipping(u, tau=1.0, iterations=0), "iterations must be at least 1"),
    (lambda u: agg.centered_clipping(u, center=np.zeros(3), tau=1.0), r"center must have shape \(2,\)"),
    (lambda u: agg.fltrust(u, np.zeros(3)), r"server_update must have shape \(2,\)"),
])
def test_robust_rules_name_the_bad_parameter(call, message):
    with pytest.raises(ValueError, match=message):
        call(HONEST)
