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

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from benchmark import ATTACKS
from benchmark.api import adopt_estimator, art_norm


@dataclass(frozen=True)
class _APGD:
    steps: int = 20
    restarts: int = 1

    loss_type: ClassVar[str]
    norms: ClassVar[tuple[str, ...]] = ("inf", "2")
    needs_grad: ClassVar[bool] = True
    black_box: ClassVar[bool] = False
    minimal_norm: ClassVar[bool] = False

    def __post_init__(self) -> None:
        for name in ("steps", "restarts"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    def art_attack(self, estimator, *, eps: float, norm: str, batch_size: int):
        from art.attacks.evasion import AutoProjectedGradientDescent

        attack = AutoProjectedGradientDescent(
            estimator, norm=art_norm(norm), eps=eps, eps_step=2 * eps, max_iter=self.steps, targeted=False,
            nb_random_init=self.restarts, batch_size=batch_size, loss_type=self.loss_type, verbose=False,
        )
        return adopt_estimator(attack, estimator)  # ART wrapped the model anew for its loss: keep the fast paths

    def generate(self, estimator, x: np.ndarray, y: np.ndarray, *, eps: float, norm: str, keys: np.ndarray,
                 batch_size: int) -> np.ndarray:
        return self.art_attack(estimator, eps=eps, norm=norm, batch_size=batch_size).generate(x=x, y=y)


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
