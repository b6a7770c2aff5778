"""A job's privacy stage (``--privacy``): the run's privacy attacks on the trained model → ``PrivacyResult``.

Membership attacks share one split (``benchmark.membership.membership_split``: members are the samples the model
trained on, non-members a holdout never trained on, else the test split) and the job's ART wrapper, which counts
their predictions; each is scored on the split's evaluation half (``membership_outcome``). Gradient inversion runs on
federated defenses only: it attacks the trained global model's clients' updates as the defense releases them
(``released_update``). Each attack draws its global randomness from the job's seed and its own label, so its
result does not depend on which other attacks ran. An attack whose output fails its checks is recorded with its error,
and the job's other results are kept.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from benchmark.api import DataBundle
from benchmark.privacy import InversionOutcome, PrivacyResult
from benchmark.sources import first_line

logger = logging.getLogger(__name__)


def run_privacy(job: Any, data: DataBundle, model: Any, *, on_attack: Any = None) -> PrivacyResult | None:
    """The job's privacy attacks on ``model`` (the trained model as the attacks see it), None without any;
    ``on_attack(label)`` is called as each starts (progress)."""
    if not job.privacy:
        return None
    start = time.perf_counter()
    attacks = {spec.label: spec.build() for spec in job.privacy}
    membership = {label: attack for label, attack in attacks.items() if attack.kind == "membership"}
    inversion = {label: attack for label, attack in attacks.items() if attack.kind == "inversion"}
    outcomes, split = {}, None
    if membership:
        from benchmark.membership import membership_split, run_membership
        from benchmark.runner import wrap_any
        from benchmark.sweep import attack_salt, seed_everything

        members, split = membership_split(data, n_train=job.n_train, samples=job.mia_samples, seed=job.seed)
        estimator = wrap_any(model, data.input_shape, data.nb_classes, job.device)
        for label, attack in membership.items():
            if on_attack:
                on_attack(label)
            seed_everything(job.seed, attack_salt(label))
            outcomes[label] = run_membership(label, attack, estimator, members, seed=job.seed)
    inverted = None
    defense = job.defense.build()
    for label, attack in inversion.items():  # parse_privacy allows one at most
        if not hasattr(defense, "released_update"):
            logger.info("%s: not federated, so %s has no client update to attack", job.defense.label, label)
            continue
        if on_attack:
            on_attack(label)
        inverted = invert(label, attack, model, data.subset_train(job.n_train), defense, job)
    return PrivacyResult(membership=outcomes, split=split, inversion=inverted, seconds=time.perf_counter() - start,
                         attacks={spec.label: dict(spec.params) for spec in job.privacy}, mia_samples=job.mia_samples)


def invert(label: str, attack: Any, model: Any, train: DataBundle, defense: Any, job: Any) -> InversionOutcome:
    """Gradient inversion of the defense's released client updates (its error recorded if it fails)."""
    from benchmark.sweep import attack_salt, seed_everything

    seed_everything(job.seed, attack_salt(label))
    start = time.perf_counter()
    try:
        outcome = attack.run(model, train, defense.released_update, seed=job.seed, device=job.device)
    except Exception as exc:  # recorded with the row: the job's other results are kept
        logger.warning("gradient inversion %s failed: %s", label, first_line(exc))
        return InversionOutcome(attack=label, settings=(), psnr_threshold=float(getattr(attack, "psnr_threshold", 0)),
                                seconds=time.perf_counter() - start, error=first_line(exc))
    return dataclasses.replace(outcome, attack=label, seconds=time.perf_counter() - start)
