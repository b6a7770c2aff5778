"""Auto-PGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of diverse
parameter-free attacks", arXiv:2003.01690), run through ART's ``AutoProjectedGradientDescent``.

Threat model: white-box, untargeted, L∞ or L2. APGD adapts its step size (starting at 2ε) with momentum, so it needs
no step-size tuning; ``apgd-ce`` ascends the cross-entropy, ``apgd-dlr`` the Difference of Logits Ratio, which is
invariant to the scale of the logits and so resists the logit-scaling kind of gradient masking. ART's defaults
(5 restarts, batch 32) are overridden. Cost: about ``steps × restarts`` input gradients per sample.

Example::

    bench evaluate --attack apgd-ce:steps=50,apgd-dlr
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from attacks.pgd import random_start
from benchmark import ATTACKS
from benchmark.api import adopt_estimator, art_norm
from benchmark.constraints import Constrained, Interval
from benchmark.sweep import predict_labels

_SALT = 0x6170

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _APGD(Constrained):
    steps: int = 20
    restarts: int = 1

    parameter_constraints: ClassVar[dict] = {"steps": Interval(int, 1, 10_000), "restarts": Interval(int, 1, 100)}
    loss_type: ClassVar[str]
    norms: ClassVar[tuple[str, ...]] = ("inf", "2")
    needs_grad: ClassVar[bool] = True
    black_box: ClassVar[bool] = False
    torch_only: ClassVar[bool] = True  # ART's PyTorch implementation: refused for ONNX and scikit-learn models
    minimal_norm: ClassVar[bool] = False

    def art_attack(self, estimator, *, eps: float, norm: str, batch_size: int, restarts: int | None = None):
        """ART's APGD with this attack's parameters (``restarts``: ART's random restarts, default ``self.restarts``)."""
        return art_apgd(estimator, eps=eps, norm=norm, steps=self.steps, restarts=restarts or self.restarts,
                        batch_size=batch_size, loss_type=self.loss_type)

    def generate(self, estimator, x: np.ndarray, y: np.ndarray, *, eps: float, norm: str, keys: np.ndarray,
                 batch_size: int) -> np.ndarray:
        """Each restart is one run of ART's APGD on the samples no earlier restart has broken (``attack_survivors``)."""
        attack = self.art_attack(estimator, eps=eps, norm=norm, batch_size=batch_size, restarts=1)
        runs = ((y, _SALT + 16 * restart) for restart in range(self.restarts))
        return attack_survivors(attack, estimator, x, y, runs, keys=keys, norm=norm, batch_size=batch_size)


def art_apgd(estimator, *, eps: float, norm: str, steps: int, restarts: int, batch_size: int, loss_type: str | None,
             loss_estimator=None):
    """ART's untargeted APGD (step size starting at 2ε) ascending ART's loss ``loss_type`` ("cross_entropy",
    "difference_logits_ratio") on ``estimator``'s model, or with ``loss_type`` None the loss of ``loss_estimator``
    (an ART wrapper of the same model); either way run on the harness's fast wrapper with that loss."""
    from art.attacks.evasion import AutoProjectedGradientDescent

    attack = AutoProjectedGradientDescent(
        loss_estimator or estimator, norm=art_norm(norm), eps=eps, eps_step=2 * eps, max_iter=steps, targeted=False,
        nb_random_init=restarts, batch_size=batch_size, loss_type=loss_type, verbose=False,
    )
    return adopt_estimator(attack, estimator)  # ART wrapped the model anew for its loss: keep the fast paths


def attack_survivors(attack, estimator, x: np.ndarray, y: np.ndarray, runs: Iterable[tuple[np.ndarray, int]], *,
                     keys: np.ndarray, norm: str, batch_size: int) -> np.ndarray:
    """``attack`` (ART's APGD, one random start per call) once per ``(labels, salt)`` of ``runs``, each time on the
    samples no earlier run has made misclassified (``labels``: ART's ``y`` for every sample), from a random start
    drawn per sample from its key and the run's ``salt`` (ART draws one for the whole batch from numpy's generator).
    A sample's result then does not depend on the other samples of the batch."""
    x_adv = x.copy()
    alive = predict_labels(estimator, x, batch_size) == y  # ART attacks only these: the keys must match them
    for labels, salt in runs:
        rows = np.flatnonzero(alive)
        if rows.size == 0:
            break
        with keyed_random_init(keys[rows], norm, salt):
            x_adv[rows] = attack.generate(x=x[rows], y=labels[rows])
        alive[rows] = predict_labels(estimator, x_adv[rows], batch_size) == y[rows]
    return x_adv


@contextmanager
def keyed_random_init(keys: np.ndarray, norm: str, salt: int):
    """A block in which ART's APGD draws its random start from the samples' keys and ``salt``: APGD calls
    ``random_sphere`` of its module once per restart for the samples it attacks, which here are exactly ``keys``'
    samples."""
    from art.attacks.evasion import auto_projected_gradient_descent as module

    original = module.random_sphere

    def keyed(nb_points: int, nb_dims: int, radius, norm_p):
        if nb_points != len(keys):  # ART chose other samples than expected: keep its own draw
            logger.warning("APGD attacked %d samples, expected %d: its random start is drawn per batch", nb_points,
                           len(keys))
            return original(nb_points, nb_dims, radius, norm_p)
        return float(radius) * random_start(keys, (nb_dims,), norm, salt)

    module.random_sphere = keyed
    try:
        yield
    finally:
        module.random_sphere = original


@ATTACKS.register("apgd-ce")
@dataclass(frozen=True)
class APGDCE(_APGD):
    """Auto-PGD on the cross-entropy loss (Croce & Hein 2020), ART ``AutoProjectedGradientDescent``.

    Args:
        steps: iterations per restart.
        restarts: random restarts.
    """

    loss_type: ClassVar[str] = "cross_entropy"


@ATTACKS.register("apgd-dlr")
@dataclass(frozen=True)
class APGDDLR(_APGD):
    """Auto-PGD on the Difference of Logits Ratio loss (Croce & Hein 2020), ART ``AutoProjectedGradientDescent``.

    Args:
        steps: iterations per restart.
        restarts: random restarts.
    """

    loss_type: ClassVar[str] = "difference_logits_ratio"
