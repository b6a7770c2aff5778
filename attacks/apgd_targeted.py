"""Targeted Auto-PGD on the targeted DLR loss, AutoAttack's APGD-T (Croce & Hein 2020, "Reliable evaluation of
adversarial robustness with an ensemble of diverse parameter-free attacks", arXiv:2003.01690, and the reference
implementation ``autoattack/autopgd_base.py``), run through ART's ``AutoProjectedGradientDescent``.

Threat model: white-box, L∞ or L2; untargeted in effect: a sample counts as broken as soon as it is misclassified,
whichever class it lands in. For each of the ``targets`` classes other than the label with the largest clean logits
(the most likely wrong classes first), APGD ascends the targeted DLR loss −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2),
where π sorts the logits in decreasing order: pushing the target's logit over the label's, scaled by the logits'
spread so that it ignores their scale (the DLR's protection against logit-scaling gradient masking). Each target runs
on the samples the earlier ones left robust. ART's own targeted mode would descend its *untargeted* DLR instead, so
ART's APGD is given this loss as the loss of a wrapper of the model. Cost: about ``steps`` input gradients per
sample and target it is run on.

Example::

    bench evaluate --attack apgd-t:targets=3,steps=50
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from attacks.apgd import APGDCE, art_apgd, attack_survivors
from benchmark import ATTACKS
from benchmark.constraints import Constrained, Interval
from benchmark.errors import AttackError

_SALT = 0x6174  # each target draws its random start from its own stream: _SALT + 16 * target

logger = logging.getLogger(__name__)


@ATTACKS.register("apgd-t")
@dataclass(frozen=True)
class APGDT(Constrained):
    """Targeted Auto-PGD on AutoAttack's targeted DLR loss over the most likely wrong classes (Croce & Hein 2020),
    ART ``AutoProjectedGradientDescent``.

    Args:
        steps: iterations per target.
        targets: target classes, the most likely wrong ones by the clean logits (at most the classes but one).
    """

    steps: int = 100
    targets: int = 9

    parameter_constraints: ClassVar[dict] = {"steps": APGDCE.parameter_constraints["steps"],
                                             "targets": Interval(int, 1, 999)}
    norms: ClassVar[tuple[str, ...]] = ("inf", "2")
    needs_grad: ClassVar[bool] = True
    black_box: ClassVar[bool] = False
    torch_only: ClassVar[bool] = True  # ART's PyTorch implementation: refused for ONNX and scikit-learn models
    minimal_norm: ClassVar[bool] = False

    def generate(self, estimator, x: np.ndarray, y: np.ndarray, *, eps: float, norm: str, keys: np.ndarray,
                 batch_size: int) -> np.ndarray:
        """One run of ART's APGD per target, each on the samples no earlier target has broken
        (``attacks.apgd.attack_survivors``); ART gets, as labels, ``target_codes``."""
        classes = estimator.nb_classes
        if classes < 4:
            raise AttackError(f"attack 'apgd-t' needs at least 4 classes (its loss reads the 4th largest logit), "
                              f"the model has {classes}")
        count = min(self.targets, classes - 1)
        if count < self.targets:
            logger.info("apgd-t: %d targets asked for, %d classes: using the %d others", self.targets, classes, count)
        targets = likely_wrong_classes(estimator.predict(x, batch_size=batch_size), y, count)
        attack = art_apgd(estimator, eps=eps, norm=norm, steps=self.steps, restarts=1, batch_size=batch_size,
                          loss_type=None, loss_estimator=targeted_dlr_wrapper(estimator))
        runs = ((target_codes(y, targets[:, k], classes), _SALT + 16 * k) for k in range(count))
        return attack_survivors(attack, estimator, x, y, runs, keys=keys, norm=norm, batch_size=batch_size)


def likely_wrong_classes(logits: np.ndarray, y: np.ndarray, count: int) -> np.ndarray:
    """Per sample, the ``count`` classes other than its label ``y`` with the largest ``logits``, most likely first:
    AutoAttack's targets (for a correctly classified sample, the classes of the 2nd … (count+1)-th largest logit)."""
    others = np.asarray(logits, dtype=np.float64).copy()
    others[np.arange(len(y)), y] = -np.inf
    return np.argsort(-others, axis=1, kind="stable")[:, :count]


def target_codes(y: np.ndarray, target: np.ndarray, classes: int) -> np.ndarray:
    """What ART's APGD gets as labels: one-hot of the label minus one-hot of the target, shape (n, classes). ART
    reads its argmax as the true class (a sample is robust while predicted as it); the loss reads both."""
    identity = np.eye(classes, dtype=np.float32)
    return identity[y] - identity[target]


def targeted_dlr(logits, codes):
    """AutoAttack's targeted DLR loss per sample (torch tensors): −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2 + 1e-12)
    for logits z, the true class y = ``codes``' argmax and the target t = its argmin (``target_codes``), π sorting
    the logits in decreasing order. APGD ascends it: it rises as z_t gains on z_y, and is positive once z_t > z_y."""
    true, target = codes.argmax(dim=1, keepdim=True), codes.argmin(dim=1, keepdim=True)
    ordered = logits.sort(dim=1, descending=True).values
    spread = ordered[:, 0] - 0.5 * (ordered[:, 2] + ordered[:, 3]) + 1e-12
    return -(logits.gather(1, true) - logits.gather(1, target))[:, 0] / spread


class TargetedDLRLoss:
    """``targeted_dlr`` as an ART PyTorch loss: ART's ``compute_loss`` sets ``reduction`` ("none" for the
    per-sample values APGD compares). Summed otherwise, so that a sample's gradient does not depend on how many
    samples share its batch."""

    def __init__(self) -> None:
        self.reduction = "sum"

    def __call__(self, logits, codes):
        values = targeted_dlr(logits, codes)
        if self.reduction == "none":
            return values
        return values.mean() if self.reduction == "mean" else values.sum()


def targeted_dlr_wrapper(estimator):
    """An ART ``PyTorchClassifier`` of ``estimator``'s model with ``TargetedDLRLoss``, built as ART's APGD builds the
    wrapper for its own DLR loss; the labels (``target_codes``) reach the loss as they are."""
    from art.estimators.classification import PyTorchClassifier

    wrapper = PyTorchClassifier(
        model=estimator.model, loss=TargetedDLRLoss(), input_shape=estimator.input_shape,
        nb_classes=estimator.nb_classes, optimizer=None, channels_first=estimator.channels_first,
        clip_values=estimator.clip_values, preprocessing_defences=estimator.preprocessing_defences,
        postprocessing_defences=estimator.postprocessing_defences, preprocessing=estimator.preprocessing,
        device_type="gpu" if estimator.device.type == "cuda" else "cpu",
    )
    wrapper._reduce_labels = wrapper._int_labels = wrapper._probability_labels = False
    return wrapper
