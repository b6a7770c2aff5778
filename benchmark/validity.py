"""Validity verdicts: when should a robust-accuracy number not be trusted?

Pure functions over a sweep's results and a few cheap probes of the model (``benchmark/probes.py``). Each verdict is
a named flag on the leaderboard row, explained by ``LEGEND``. Anchors: Carlini et al. 2019, "On Evaluating
Adversarial Robustness" (arXiv:1902.06705); Croce & Hein 2020 (AutoAttack's sanity checks); Pintor et al. 2022,
"Indicators of Attack Failure" (arXiv:2106.09947).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.sweep import SweepResult

#: Thresholds, in accuracy points (fractions) or shares of samples.
LARGE_EPS_MARGIN = 0.10  # accuracy at a huge ε must fall to within 10 points of chance
BLACK_BOX_SHARE = 0.01  # black-box attacks may not break > 1 % of samples every white-box attack missed
BLACK_BOX_MARGIN = 0.02  # … nor beat the best white-box attack by > 2 points
GRADIENT_SHARE = 0.10  # at most 10 % of samples with zero or non-finite input gradients
CONVERGENCE_MARGIN = 0.02  # 5× more PGD steps may not lower accuracy by > 2 points
MONOTONE_SHARE = 0.10  # at most 10 % of samples broken at a smaller ε may survive the same attack at a larger ε
CHANCE_MARGIN = 0.05  # clean accuracy within 5 points of chance: the model learned (next to) nothing
PROBABILITY_SHARE = 0.99  # (almost) every output row a probability vector: the model ends in a softmax

LEGEND: dict[str, str] = {
    "non_monotone": "an attack broke samples at a small ε but not at a larger one (> 10 % of those probed): it is "
                    "not finding the worst case (Carlini et al. 2019 §5.2)",
    "large_eps_not_chance": "at a huge ε (L∞ 0.5, L2 4) accuracy stays > 10 points above chance: the attack cannot "
                            "even succeed where success is guaranteed",
    "black_box_beats_white_box": "a black-box attack broke samples every white-box attack left robust (> 1 %), or "
                                 "beat them by > 2 points: gradients are masked",
    "gradient_masking": "many input gradients are zero, NaN or infinite (> 10 % of samples): gradient-based attacks "
                        "are blind here",
    "pgd_not_converged": "PGD with 5× the steps lowered accuracy by > 2 points: the attacks did not converge",
    "randomized": "predictions differ across repeated forward passes of the same input: a randomised defense, whose "
                  "evaluation needs Expectation over Transformation",
    "outside_ball": "an attack returned a perturbation outside the ε-ball or the input range: it was stopped "
                    "there and has no per-attack numbers (the breaks it made before, each verified, still count)",
    "near_chance": "clean accuracy is within 5 points of chance (always predicting the most common label): the "
                   "model learned next to nothing, so its robust numbers say nothing about the defense (a collapsed "
                   "training run, e.g. Byzantine clients the aggregation rule did not stop)",
    "probability_outputs": "the model returns probabilities (every output row in [0, 1] and summing to 1), not "
                           "logits: gradient attacks on a softmax output see vanishing gradients, so the robust "
                           "accuracy is likely an overestimate (AutoAttack's check); remove the final softmax",
    "unverified_data": "the dataset's files did not match their published checksums, or none is published for them "
                       "(used with --unverified-data): the numbers hold for these files, which may not be the "
                       "canonical dataset",
    "clean_mismatch": "clean accuracy at ε = 0 differs from the model's accuracy measured right after training: the "
                      "evaluated model is not the trained one",
    "certificate_violated": "the certified accuracy at an L2 radius r exceeds the empirical robust accuracy at ε = r "
                            "on the same samples (the per-sample worst case over every attack run, naive and "
                            "adaptive): impossible for a correct certificate, so the certificate or the evaluation "
                            "is wrong",
}


@dataclass(frozen=True)
class Probes:
    """Numbers from cheap probes of the model (see ``benchmark/probes.py``); None where a probe did not apply."""

    large_eps_accuracy: float | None = None  # PGD at a huge ε, on up to 100 samples
    chance: float = 0.1  # accuracy of always predicting the most common test label
    bad_gradient_share: float | None = None  # share of samples whose input gradient is all zero or non-finite
    more_steps_drop: float | None = None  # accuracy drop at the headline ε when PGD gets 5× the steps
    unstable_share: float | None = None  # share of samples whose prediction changes across 5 forward passes
    recovered_share: float | None = None  # share of samples broken at a small ε that survive a larger one
    trained_clean_accuracy: float | None = None  # accuracy right after training, on the evaluated samples
    probability_share: float | None = None  # share of clean output rows that are probabilities (sum 1, in [0, 1])


def black_box_gap(sweep: SweepResult) -> tuple[float, float] | None:
    """(largest share of samples broken only by black-box attacks, largest accuracy lead of black-box over
    white-box) over ε > 0; None unless the suite has both kinds of valid attack."""
    valid = sweep.valid()
    black = [name for name, o in valid.items() if o.black_box]
    white = [name for name, o in valid.items() if not o.black_box]
    if not black or not white:
        return None
    black_at, white_at = sweep.worst_broken_at(black), sweep.worst_broken_at(white)
    only_black, lead = 0.0, 0.0
    for k in range(1, len(sweep.eps)):
        only_black = max(only_black, float(np.mean((black_at <= k) & (white_at > k))))
        lead = max(lead, float(np.mean(white_at > k) - np.mean(black_at > k)))
    return only_black, lead


def certificate_violated(sweep: SweepResult, certified: Any) -> bool:
    """Whether, at some ε > 0 of the sweep, ``certified`` (``benchmark.certify_stage.CertifiedOutcome``, on the
    sweep's first ``certified.samples`` samples) certifies a higher accuracy at L2 radius ε than the attacks left on
    those samples (their per-sample worst case)."""
    broken_at = sweep.worst_broken_at()[: certified.samples]
    return any(certified.accuracy_at(eps) > float(np.mean(broken_at > k))
               for k, eps in enumerate(sweep.eps) if eps > 0)


def verdicts(sweep: SweepResult, probes: Probes, *, data_source: str | None = None, certified: Any = ()
             ) -> list[str]:
    """The names of the flags that fire, in ``LEGEND`` order (``data_source``: the dataset's ``source()``, which
    says UNVERIFIED when its files did not verify; ``certified``: the row's certificates, if any)."""
    fired = set()
    if probes.recovered_share is not None and probes.recovered_share > MONOTONE_SHARE:
        fired.add("non_monotone")
    if probes.large_eps_accuracy is not None and probes.large_eps_accuracy > probes.chance + LARGE_EPS_MARGIN:
        fired.add("large_eps_not_chance")
    gap = black_box_gap(sweep)
    if gap is not None and (gap[0] > BLACK_BOX_SHARE or gap[1] > BLACK_BOX_MARGIN):
        fired.add("black_box_beats_white_box")
    if probes.bad_gradient_share is not None and probes.bad_gradient_share > GRADIENT_SHARE:
        fired.add("gradient_masking")
    if probes.more_steps_drop is not None and probes.more_steps_drop > CONVERGENCE_MARGIN:
        fired.add("pgd_not_converged")
    if probes.unstable_share is not None and probes.unstable_share > 0:
        fired.add("randomized")
    if any(outcome.error for outcome in sweep.outcomes.values()):
        fired.add("outside_ball")
    if sweep.correct.mean() <= probes.chance + CHANCE_MARGIN:
        fired.add("near_chance")
    gradient_attacks = any(not outcome.black_box for outcome in sweep.outcomes.values())
    if gradient_attacks and probes.probability_share is not None and probes.probability_share >= PROBABILITY_SHARE:
        fired.add("probability_outputs")  # only gradient attacks suffer from a softmax output
    if data_source is not None and "UNVERIFIED" in data_source:
        fired.add("unverified_data")
    if probes.trained_clean_accuracy is not None and abs(probes.trained_clean_accuracy - sweep.correct.mean()) > 0:
        fired.add("clean_mismatch")
    if any(certificate_violated(sweep, certificate) for certificate in certified):
        fired.add("certificate_violated")
    return [name for name in LEGEND if name in fired]


def legend(flags: Mapping[str, object] | list[str]) -> list[str]:
    """``name: explanation`` lines for the flags given."""
    return [f"{name}: {LEGEND[name]}" for name in LEGEND if name in flags]
