"""Every validity flag fires on a constructed case and stays silent on a healthy one; a planted masking defense is
caught end to end."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import benchmark as bench
from benchmark.sweep import AttackOutcome, SweepResult
from benchmark.validity import LEGEND, Probes, black_box_gap, verdicts

EPS = (0.0, 0.1, 0.2)
HEALTHY_PROBES = Probes(large_eps_accuracy=0.0, chance=0.1, bad_gradient_share=0.0, more_steps_drop=0.0,
                        unstable_share=0.0, recovered_share=0.0, trained_clean_accuracy=0.9)


def sweep(white=(2, 1), black=(1, 1), error=None) -> SweepResult:
    """Ten samples, nine correct; ``white``/``black``: how many the white-/black-box attack breaks at each ε."""
    correct = np.array([True] * 9 + [False])

    def broken_at(counts):
        at = np.where(correct, len(EPS), 0)
        start = 0
        for k, count in enumerate(counts, start=1):
            at[start : start + count] = k
            start += count
        return at

    return SweepResult(EPS, correct, {
        "pgd": AttackOutcome(broken_at(white), 1.0, 10, 0, 10),
        "square": AttackOutcome(broken_at(black), 1.0, 0, 10, 10, black_box=True, error=error),
    })


def test_healthy_case_fires_nothing():
    assert verdicts(sweep(), HEALTHY_PROBES) == []


@pytest.mark.parametrize(
    ("flag", "probes"),
    [
        ("non_monotone", {"recovered_share": 0.3}),
        ("large_eps_not_chance", {"large_eps_accuracy": 0.25}),
        ("gradient_masking", {"bad_gradient_share": 0.5}),
        ("pgd_not_converged", {"more_steps_drop": 0.05}),
        ("randomized", {"unstable_share": 0.02}),
        ("clean_mismatch", {"trained_clean_accuracy": 0.8}),
        ("near_chance", {"chance": 0.86}),  # clean accuracy 0.9: within 5 points of always guessing the top label
    ],
)
def test_each_probe_flag_fires_alone(flag, probes):
    assert verdicts(sweep(), dataclasses.replace(HEALTHY_PROBES, **probes)) == [flag]


def test_thresholds_are_strict():
    assert verdicts(sweep(), dataclasses.replace(HEALTHY_PROBES, large_eps_accuracy=0.2, more_steps_drop=0.02,
                                                 recovered_share=0.1, bad_gradient_share=0.1, chance=0.84)) == []


def test_black_box_beating_white_box_is_flagged():
    # the black-box attack breaks 2 samples at ε 0.1 that the white-box one leaves robust: 20 % > 1 %
    masked = sweep(white=(0, 0), black=(2, 2))
    assert black_box_gap(masked) == pytest.approx((0.4, 0.4))
    assert verdicts(masked, HEALTHY_PROBES) == ["black_box_beats_white_box"]
    assert black_box_gap(sweep(white=(3, 3), black=(2, 2)))[0] == 0.0


def test_attack_outside_the_ball_is_flagged_and_keeps_only_verified_breaks():
    # the sweep records a break only after checking it (in the ball, in range, misclassified), so the breaks an
    # attack made before it failed validation are real and count in the worst case
    result = sweep(white=(1, 1), black=(5, 2), error="attack 'square' left the Linf ball")
    assert verdicts(result, HEALTHY_PROBES) == ["outside_ball"]
    assert result.accuracy() == {0.0: 0.9, 0.1: 0.4, 0.2: 0.2}
    assert set(result.per_attack()) == {"pgd"}


def test_discarded_attack_gets_no_per_attack_numbers():
    from benchmark.leaderboard import summarise

    result = sweep(white=(1, 1), black=(5, 2), error="attack 'square' left the Linf ball")
    assert set(result.valid()) == {"pgd"}
    rows = [{"defense": "d", "model": "m", "seed": seed, "n_test": 10, "clean_accuracy": 0.9,
             "robust_accuracy": {"0": 0.9, "0.1": 0.8, "0.2": 0.7}, "train_seconds": 1.0, "eval_seconds": 1.0,
             "train_grad_evals": 1, "per_attack": {"pgd": {"0": 0.9, "0.1": 0.8, "0.2": 0.7},
                                                   **({"square": {"0": 0.9, "0.1": 0.5, "0.2": 0.4}} if seed else {})}}
            for seed in (0, 1)]
    (entry,) = summarise(rows, EPS)
    assert entry["per_attack"]["square"]["0.1"] == 0.5  # the mean over the seeds where it ran
    assert entry["per_attack"]["pgd"]["0.1"] == 0.8


def test_every_flag_has_a_legend_entry_and_a_test():
    tested = {"non_monotone", "large_eps_not_chance", "gradient_masking", "pgd_not_converged", "randomized",
              "clean_mismatch", "black_box_beats_white_box", "outside_ball", "near_chance", "probability_outputs",
              "unverified_data", "certificate_violated"}  # the last in tests/test_smoothing.py
    assert set(LEGEND) == tested


def test_a_model_returning_probabilities_is_flagged_and_one_returning_logits_is_not():
    from benchmark.probes import probability_share

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(50, 10))
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert probability_share(logits) == 0.0 and probability_share(softmax) == 1.0
    assert probability_share(np.abs(logits) / 100) == 0.0  # in [0, 1] but not summing to 1
    assert "probability_outputs" in verdicts(sweep(), Probes(chance=0.1, probability_share=1.0))
    assert "probability_outputs" not in verdicts(sweep(), Probes(chance=0.1, probability_share=0.5))
    assert "probability_outputs" not in verdicts(sweep(), Probes(chance=0.1))  # not probed (scikit-learn)


@pytest.fixture(scope="module")
def planted_masking():
    """Standard training, then inputs rounded to 4 grey levels at test time: the rounding has zero gradient, so
    gradient attacks are blind while the model is no more robust (the classic masking of Athalye et al. 2018)."""
    import torch

    from defenses.standard import Standard

    class Round(torch.nn.Module):
        def forward(self, x):
            return torch.round(x * 4) / 4

    @dataclasses.dataclass(frozen=True)
    class PlantedMasking(Standard):
        """Input quantisation planted in the tests: no defense, masked gradients (Athalye et al. 2018)."""

        def inference_model(self, model):
            return torch.nn.Sequential(Round(), model)

    bench.DEFENSES.add("planted-masking", PlantedMasking)
    yield "planted-masking"
    bench.DEFENSES.remove("planted-masking")


@pytest.mark.slow
def test_planted_masking_defense_is_flagged(planted_masking, tmp_path):
    from benchmark.config import build_config
    from benchmark.executors import run_jobs
    from benchmark.leaderboard import build_leaderboard
    from benchmark.plan import plan
    from benchmark.render import render
    from benchmark.store import Store

    config = build_config(None, {"out": str(tmp_path), "device": "cpu", "model": "mlp", "n_test": "150",
                                 "defenses": f"standard:epochs=20,{planted_masking}:epochs=20",
                                 "attacks": "suite:standard,noise"})
    jobs = plan(config)
    run_jobs(jobs, config.out, executor="inline")  # the planted defense is registered in this process only
    with Store(config.out) as store:
        records = {r.defense: r for r in store.records([job.job_hash for job in jobs])}
    masked = records[f"{planted_masking}(epochs=20)"]
    assert {"gradient_masking", "black_box_beats_white_box", "large_eps_not_chance"} <= set(masked.flags)
    assert records["standard(epochs=20)"].flags == ()
    # the worst case with the black-box attack sits far below what the white-box attacks alone report
    white_only = min(masked.runs[a].accuracy["0.2"] for a in ("pgd", "apgd-ce", "apgd-dlr"))
    assert masked.robust_accuracy["0.2"] < white_only - 0.5
    markdown = render(build_leaderboard(list(records.values()), headline_eps=0.1), "md")
    row = next(line for line in markdown.splitlines() if line.startswith("| ") and planted_masking in line)
    assert "gradient_masking" in row and "black_box_beats_white_box" in row
    assert "gradient_masking: many input gradients are zero" in markdown


def test_probability_outputs_fire_only_when_a_gradient_attack_ran():
    probes = Probes(chance=0.1, probability_share=1.0)
    black_only = sweep(white=(2, 1))
    black_only = dataclasses.replace(black_only, outcomes={
        name: dataclasses.replace(outcome, black_box=True) for name, outcome in black_only.outcomes.items()})
    assert "probability_outputs" in verdicts(sweep(), probes)
    assert "probability_outputs" not in verdicts(black_only, probes)  # Square & co. need no gradients


def test_rows_on_files_that_did_not_verify_are_flagged():
    probes = Probes(chance=0.1)
    assert "unverified_data" in verdicts(sweep(), probes, data_source="cifar10 UNVERIFIED: cifar-10-batches-bin/...")
    assert "unverified_data" not in verdicts(sweep(), probes, data_source="cifar10 verified: cifar-10-batches-bin/")
    assert "unverified_data" not in verdicts(sweep(), probes)
