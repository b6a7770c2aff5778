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
               trained_correct: np.ndarray | None = None, outputs: str = "logits", attack_view=None) -> Probes:
    """Probe the model behind ``estimator`` with the PGD attack ``pgd`` (the runner picks it: ``probe_pgd``) and
    with that attack given ``STEP_MULTIPLIER`` times its steps; ``pgd=None`` (a model without input gradients)
    skips the probes that need gradients. ``attack_view``: the adaptive view (BPDA, EoT; ``benchmark.adaptive``) the
    PGD probes attack through, so that they test the attack behind the row's number; predictions, and the gradient
    check (what the naive runs saw), stay ``estimator``'s. ``outputs="probabilities"``: the model returns
    probabilities by design (a scikit-learn model through ART), so the probe for softmax outputs does not apply."""
    first = np.arange(min(PROBE_SAMPLES, len(x)))
    predictions = np.stack([np.asarray(estimator.predict(x[first], batch_size=batch_size)) for _ in range(5)])
    unstable = (predictions.argmax(axis=2) != predictions[0].argmax(axis=1)).any(axis=0)
    common = {"chance": float(np.bincount(y).max() / len(y)), "unstable_share": float(np.mean(unstable)),
              "trained_clean_accuracy": None if trained_correct is None else float(np.mean(trained_correct)),
              "probability_share": None if outputs == "probabilities" else probability_share(predictions[0])}
    if pgd is None:
        return Probes(**common)
    stronger = dataclasses.replace(pgd, steps=pgd.steps * STEP_MULTIPLIER)

    def fooled(attack, idx: np.ndarray, eps: float) -> np.ndarray:
        seed_everything(seed, 0xBAD, idx.size)
        x_adv = attack.generate(attack_view or estimator, x[idx], y[idx], eps=eps, norm=norm, keys=keys[idx],
                                batch_size=batch_size)
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

    return Probes(
        large_eps_accuracy=float(np.mean(~fooled(pgd, first, LARGE_EPS[norm]))),
        bad_gradient_share=float(np.mean(bad)),
        more_steps_drop=more_steps_drop,
        recovered_share=recovered_share,
        **common,
    )


def probability_share(outputs: np.ndarray) -> float:
    """The share of output rows that look like probabilities rather than logits: every entry in [0, 1] and the row
    summing to 1 (AutoAttack's check for softmax outputs)."""
    in_range = ((outputs >= 0) & (outputs <= 1)).all(axis=1)
    return float(np.mean(in_range & np.isclose(outputs.sum(axis=1), 1.0, atol=1e-4)))
