"""Randomized-smoothing certificates (``benchmark.certify``; Cohen et al. 2019): the Clopper–Pearson bound against
closed forms and its defining equation, CERTIFY and PREDICT on hand counts, the certified-accuracy curve, the
sampling on tiny torch models whose answer is known, and the refusals of bad settings."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest
import torch
from scipy.stats import beta, binom, norm

from benchmark.certify import (
    ABSTAIN,
    Certification,
    _generators,
    certified_accuracy,
    certify,
    certify_counts,
    check_parameters,
    check_radius_grid,
    clopper_pearson_lower,
    default_n,
    predict_counts,
    sample_counts,
)

ALPHA = 0.001

# ------------------------------------------------------------------------------------------------- Clopper–Pearson


@pytest.mark.parametrize("n", [1, 10, 100, 100_000])
def test_lower_bound_when_every_draw_succeeds_is_alpha_to_the_one_over_n(n):
    # Beta(n, 1) has CDF p^n, so its α quantile is α^(1/n)
    assert clopper_pearson_lower(n, n, ALPHA) == pytest.approx(ALPHA ** (1 / n), rel=1e-9)


def test_lower_bound_with_no_success_is_zero():
    assert clopper_pearson_lower(0, 50, ALPHA) == 0.0
    assert clopper_pearson_lower(np.array([0, 3]), np.array([10, 10]), 0.05)[0] == 0.0


@pytest.mark.parametrize(("k", "n", "alpha"), [(1, 10, 0.05), (60, 100, ALPHA), (990, 1000, ALPHA), (7, 9, 0.3)])
def test_lower_bound_is_the_beta_quantile_and_solves_the_tail_equation(k, n, alpha):
    bound = clopper_pearson_lower(k, n, alpha)
    assert bound == pytest.approx(beta.ppf(alpha, k, n - k + 1), rel=1e-12)
    # the Clopper–Pearson lower bound L is where seeing k or more successes has probability α: P(X ≥ k | L) = α
    assert binom.sf(k - 1, n, bound) == pytest.approx(alpha, rel=1e-6)
    assert bound < k / n


def test_lower_bound_is_vectorised():
    bounds = clopper_pearson_lower(np.array([5, 10, 0]), np.array([10, 10, 10]), ALPHA)
    assert bounds.shape == (3,)
    assert bounds[1] == pytest.approx(ALPHA ** 0.1) and bounds[2] == 0.0 and 0 < bounds[0] < 0.5


@pytest.mark.parametrize(("k", "n"), [(11, 10), (-1, 10), (0, 0), (0.5, 10)])
def test_lower_bound_refuses_impossible_counts(k, n):
    with pytest.raises(ValueError, match="k"):
        clopper_pearson_lower(k, n, ALPHA)


# ------------------------------------------------------------------------------------------- CERTIFY and PREDICT


def test_certify_counts_radius_is_sigma_times_the_normal_quantile_of_the_lower_bound():
    counts0 = np.array([[5, 90, 5], [50, 50, 0], [100, 0, 0]])
    counts = np.array([[10, 980, 10], [600, 400, 0], [1000, 0, 0]])
    predicted, radius = certify_counts(counts0, counts, sigma=0.25, alpha=ALPHA)
    assert predicted.tolist() == [1, 0, 0]  # a selection tie goes to the first class, as numpy's argmax
    expected = [0.25 * norm.ppf(beta.ppf(ALPHA, 980, 21)), 0.25 * norm.ppf(beta.ppf(ALPHA, 600, 401)),
                0.25 * norm.ppf(ALPHA ** (1 / 1000))]
    assert radius == pytest.approx(expected, rel=1e-9)
    assert radius[2] == pytest.approx(0.25 * 2.4633, rel=1e-4)  # Φ⁻¹(0.001^(1/1000)) ≈ 2.4633
    # Cohen et al.'s ceiling: with N = 100,000 and α = 0.001 no radius exceeds σ·Φ⁻¹(α^(1/N)) ≈ 3.81σ
    assert certify_counts([[1, 0]], [[100_000, 0]], sigma=1.0, alpha=ALPHA)[1][0] == pytest.approx(3.8115, rel=1e-4)


def test_certify_counts_abstains_when_the_lower_bound_is_at_most_one_half():
    counts0 = np.array([[0, 100], [0, 100], [100, 0]])
    # 55 of 100: p_A ≥ 0.38 only; 70 of 100: p_A ≥ 0.54 certifies; class 0 selected but the estimation favours 1
    counts = np.array([[45, 55], [30, 70], [10, 90]])
    assert clopper_pearson_lower(55, 100, ALPHA) < 0.5 < clopper_pearson_lower(70, 100, ALPHA)
    predicted, radius = certify_counts(counts0, counts, sigma=0.5, alpha=ALPHA)
    assert predicted.tolist() == [ABSTAIN, 1, ABSTAIN]
    assert radius[0] == 0.0 and radius[2] == 0.0
    assert radius[1] == pytest.approx(0.5 * norm.ppf(clopper_pearson_lower(70, 100, ALPHA)))


def test_certify_counts_refuses_mismatched_or_fractional_counts():
    with pytest.raises(ValueError, match="same shape"):
        certify_counts(np.ones((2, 3), int), np.ones((2, 4), int), sigma=0.25, alpha=ALPHA)
    with pytest.raises(ValueError, match="counts0 must be"):
        certify_counts(np.ones((2, 3)) / 2, np.ones((2, 3), int), sigma=0.25, alpha=ALPHA)
    with pytest.raises(ValueError, match="counts: every sample"):
        certify_counts(np.ones((2, 3), int), np.zeros((2, 3), int), sigma=0.25, alpha=ALPHA)


def test_predict_counts_two_sided_binomial_test_of_the_top_two():
    # all of n draws in one class: p-value 2·2⁻ⁿ, so 10 draws (0.00195) abstain at α = 0.001 and 11 (0.00098) predict
    counts = np.array([[0, 10, 0], [0, 11, 0], [60, 40, 0], [3, 5, 92], [50, 50, 0]])
    assert predict_counts(counts, alpha=ALPHA).tolist() == [ABSTAIN, 1, ABSTAIN, 2, ABSTAIN]
    assert predict_counts(np.array([[60, 40]]), alpha=0.1).tolist() == [0]  # p ≈ 0.057


# ------------------------------------------------------------------------------------------------------ the curve


def test_certified_accuracy_on_a_hand_case():
    predicted, radii, labels = [0, 1, ABSTAIN, 2], [0.5, 0.3, 0.0, 1.0], [0, 1, 1, 0]
    accuracy, abstain = certified_accuracy(predicted, radii, labels, [0.25, 0.5, 1.0])
    # 0.25: samples 0 and 1; 0.5: sample 0 (a radius equal to r counts); 1.0: none (sample 3 is wrong)
    assert accuracy.tolist() == [0.5, 0.25, 0.0]
    assert abstain == 0.25


def test_certified_accuracy_refuses_a_bad_grid_or_ragged_inputs():
    with pytest.raises(ValueError, match="^radius must be > 0"):
        certified_accuracy([0], [1.0], [0], [0.5, 0.0])
    with pytest.raises(ValueError, match="one length"):
        certified_accuracy([0, 1], [1.0], [0, 1], [0.5])


# --------------------------------------------------------------------------------------------------- the checks


@pytest.mark.parametrize(("setting", "message"), [
    ({"sigma": 0.0}, r"^sigma must be > 0, got 0\.0$"),
    ({"sigma": -0.25}, r"^sigma must be > 0"),
    ({"sigma": float("nan")}, r"^sigma must be > 0"),
    ({"n0": 0}, r"^n0 must be >= 1, got 0$"),
    ({"n": 99}, r"^n must be at least n0 \(N < n0: N=99, n0=100\)$"),
    ({"alpha": 0.0}, r"^alpha must be in \(0, 1\), got 0\.0$"),
    ({"alpha": 1.0}, r"^alpha must be in \(0, 1\)"),
])
def test_bad_settings_are_refused_on_one_line_naming_the_parameter(setting, message):
    with pytest.raises(ValueError, match=message) as caught:
        check_parameters(**{"sigma": 0.25, "n0": 100, "n": 1000, "alpha": ALPHA, **setting})
    assert "\n" not in str(caught.value)


def test_radius_grid_check():
    assert check_radius_grid([0.25, 0.5, 1]) == (0.25, 0.5, 1.0)
    for grid in ([0.25, -0.5], [0.0], [float("inf")]):
        with pytest.raises(ValueError, match="^radius must be > 0"):
            check_radius_grid(grid)


def test_default_n_by_device():
    assert default_n("cuda") == default_n("cuda:1") == 100_000
    assert default_n("cpu") == 10_000


def test_certification_reads_back_from_json():
    record = Certification(sigma=0.25, n0=100, n=1000, alpha=ALPHA, batch=400, seed=3, predicted=(0, ABSTAIN),
                           radius=(0.4, 0.0), seconds=1.5, forward_passes=2200)
    data = json.loads(json.dumps({**dataclasses.asdict(record), "unknown": 1}))
    assert Certification.from_json(data) == record
    assert record.abstain_rate == 0.5
    assert record.curve([0, 1], [0.25, 0.5])[0].tolist() == [0.5, 0.0]


# ------------------------------------------------------------------------------------------------------ sampling


def constant_model(nb_classes: int, chosen: int, features: int = 16) -> torch.nn.Module:
    """Always predicts ``chosen``: zero weights, a one-hot bias."""
    linear = torch.nn.Linear(features, nb_classes)
    with torch.no_grad():
        linear.weight.zero_()
        linear.bias.copy_(torch.nn.functional.one_hot(torch.tensor(chosen), nb_classes).float())
    return torch.nn.Sequential(torch.nn.Flatten(), linear)


def halfspace_model(direction: torch.Tensor) -> torch.nn.Module:
    """Class 0 where ⟨w, x⟩ > 0, else 1, for a unit vector w: its smoothed classifier is itself, and the exact
    certified radius of x is its distance ⟨w, x⟩ to the boundary (Cohen et al. 2019, Appendix: linear classifiers)."""
    linear = torch.nn.Linear(direction.numel(), 2, bias=False)
    with torch.no_grad():
        linear.weight.copy_(torch.stack([direction, -direction]))
    return torch.nn.Sequential(torch.nn.Flatten(), linear)


class BelowZero(torch.nn.Module):
    """Class 1 if any input value is below 0: Gaussian noise around 0 reaches it unless the input is clipped."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        below = (x.flatten(1).min(1).values < 0).float()
        return torch.stack([1 - below, below], dim=1)


def test_a_constant_model_certifies_every_sample_at_the_all_successes_radius():
    x = np.random.default_rng(0).random((3, 1, 4, 4), dtype=np.float32)
    result = certify(constant_model(4, 2), x, sigma=0.5, nb_classes=4, n0=20, n=500, batch_size=64, seed=1)
    assert result.predicted == (2, 2, 2)
    assert result.radius == pytest.approx([0.5 * norm.ppf(ALPHA ** (1 / 500))] * 3, rel=1e-9)
    assert (result.n0, result.n, result.alpha, result.batch, result.seed) == (20, 500, ALPHA, 64, 1)
    assert result.forward_passes == 3 * 520 and result.seconds > 0


def test_counts_under_noise_match_the_gaussian_probability_of_a_halfspace():
    direction = torch.full((16,), 0.25)  # unit norm
    x = (0.25 * direction).reshape(1, 1, 4, 4)  # distance 0.25 from the boundary: p_A = Φ(0.25 / σ) = Φ(1)
    model, n = halfspace_model(direction), 20_000
    counts = sample_counts(model, x, sigma=0.25, num=n, batch_size=4096, nb_classes=2,
                           generator=torch.Generator().manual_seed(0))
    assert counts.sum() == n
    assert counts[0, 0] / n == pytest.approx(norm.cdf(1.0), abs=4 * math.sqrt(norm.cdf(1.0) * norm.sf(1.0) / n))
    result = certify(model, x, sigma=0.25, nb_classes=2, n=n, batch_size=4096)
    assert result.predicted == (0,)
    assert 0.22 < result.radius[0] < 0.25  # a lower bound on the exact radius 0.25, and not far below it


def test_noisy_inputs_are_not_clipped():
    counts = sample_counts(BelowZero(), np.zeros((2, 16), np.float32), sigma=0.1, num=50, batch_size=16,
                           nb_classes=2, generator=torch.Generator().manual_seed(0))
    assert counts[:, 1].tolist() == [50, 50]


def test_sampling_is_deterministic_given_the_generator_and_counts_every_forward_pass():
    direction = torch.full((16,), 0.25)
    model, seen = halfspace_model(direction), []
    model.register_forward_hook(lambda module, inputs, output: seen.append(len(output)))
    x = 0.05 * torch.stack([direction, -direction, 2 * direction]).reshape(3, 1, 4, 4)

    def draw(seed: int) -> np.ndarray:
        return sample_counts(model, x, sigma=0.5, num=10, batch_size=7, nb_classes=2,
                             generator=torch.Generator().manual_seed(seed))

    first = draw(0)
    assert first.dtype.kind == "i" and first.shape == (3, 2) and first.sum(axis=1).tolist() == [10, 10, 10]
    assert np.array_equal(draw(0), first) and not np.array_equal(draw(1), first)
    assert seen[:5] == [7, 7, 7, 7, 2]  # 30 noisy inputs in batches of 7, across sample boundaries
    seen.clear()
    model.train()
    result = certify(model, x, sigma=0.5, nb_classes=2, n0=10, n=40, batch_size=16, seed=5)
    assert sum(seen) == result.forward_passes == 3 * 50
    assert model.training  # the mode is restored
    again = certify(model, x, sigma=0.5, nb_classes=2, n0=10, n=40, batch_size=16, seed=5)
    assert (again.predicted, again.radius) == (result.predicted, result.radius)


def test_selection_and_estimation_draw_from_separate_streams():
    selection, estimation = _generators(0, torch.device("cpu"))
    assert not torch.equal(torch.randn(8, generator=selection), torch.randn(8, generator=estimation))
    replay, _ = _generators(0, torch.device("cpu"))
    assert torch.equal(torch.randn(8, generator=replay), torch.randn(8, generator=_generators(0, "cpu")[0]))


def test_sampling_refuses_bad_arguments():
    generator = torch.Generator().manual_seed(0)
    model, x = constant_model(3, 0), np.zeros((1, 16), np.float32)
    with pytest.raises(ValueError, match="^nb_classes is 4 but the model returns scores shaped"):
        sample_counts(model, x, sigma=0.25, num=5, batch_size=5, nb_classes=4, generator=generator)
    with pytest.raises(ValueError, match="^num must be an integer >= 1"):
        sample_counts(model, x, sigma=0.25, num=0, batch_size=5, nb_classes=3, generator=generator)
    with pytest.raises(ValueError, match="^sigma must be > 0"):
        sample_counts(model, x, sigma=0.0, num=5, batch_size=5, nb_classes=3, generator=generator)
    with pytest.raises(ValueError, match="^n must be at least n0"):
        certify(model, x, sigma=0.25, nb_classes=3, n0=100, n=10)
