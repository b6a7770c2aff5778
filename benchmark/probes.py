"""Cheap probes of a trained model for the validity verdicts (``benchmark/validity.py``).

Each probe looks at no more than ``PROBE_SAMPLES`` test samples, so together they cost a fraction of the sweep.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from benchmark.sweep import SweepResult, predict_labels, seed_everything
from benchmark.validity import Probes

PROBE_SAMPLES = 100
#: ε at which any classifier on [0, 1] inputs can be broken (L∞ 0.5 reaches the mid-grey image; L2 4 on 64 pixels).
LARGE_EPS = {"inf": 0.5, "2": 4.0}
STEP_MULTIPLIER = 5


def run_probes(estimator, x: np.ndarray, y: np.ndarray, sweep: SweepResult, *, norm: str, headline_eps: float,
               keys: np.ndarray, batch_size: int, seed: int, pgd,
               trained_correct: np.ndarray | None = None) -> Probes:
    """Probe the model behind ``estimator`` with the PGD attack ``pgd`` (the runner picks it: ``probe_pgd``) and
    with that attack given ``STEP_MULTIPLIER`` times its steps."""
    stronger = dataclasses.replace(pgd, steps=pgd.steps * STEP_MULTIPLIER)
    first = np.arange(min(PROBE_SAMPLES, len(x)))

    def fooled(attack, idx: np.ndarray, eps: float) -> np.ndarray:
        seed_everything(seed, 0xBAD, idx.size)
        x_adv = attack.generate(estimator, x[idx], y[idx], eps=eps, norm=norm, keys=keys[idx], batch_size=batch_size)
        return predict_labels(estimator, x_adv, batch_size) != y[idx]

    worst = sweep.worst_broken_at()
    headline = sweep.eps.index(headline_eps)
    survivors = np.flatnonzero(worst > headline)[:PROBE_SAMPLES]
    more_steps_drop = None
    if survivors.size:
        share_probed = survivors.size / max(1, np.sum(worst > headline))
        more_steps_drop = float(fooled(stronger, survivors, headline_eps).sum() / share_probed / len(x))

    recovered_share = None
    early = [k for k in range(1, len(sweep.eps) - 1) if np.any(worst == k)]
    if early:
        broken_early = np.flatnonzero(worst == early[0])[:PROBE_SAMPLES]
        recovered_share = float(np.mean(~fooled(pgd, broken_early, sweep.eps[-1])))

    one_hot = np.eye(estimator.nb_classes, dtype=np.float32)[y[first]]
    gradients = estimator.loss_gradient(x[first], one_hot).reshape(len(first), -1)
    bad = ~np.isfinite(gradients).all(axis=1) | (np.abs(gradients).max(axis=1) == 0)

    predictions = np.stack([predict_labels(estimator, x[first], batch_size) for _ in range(5)])
    unstable = (predictions != predictions[0]).any(axis=0)

    return Probes(
        large_eps_accuracy=float(np.mean(~fooled(pgd, first, LARGE_EPS[norm]))),
        chance=float(np.bincount(y).max() / len(y)),
        bad_gradient_share=float(np.mean(bad)),
        more_steps_drop=more_steps_drop,
        unstable_share=float(np.mean(unstable)),
        recovered_share=recovered_share,
        trained_clean_accuracy=None if trained_correct is None else float(np.mean(trained_correct)),
    )
