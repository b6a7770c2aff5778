"""FGSM: one signed-gradient step of size ε (Goodfellow et al. 2015, "Explaining and Harnessing Adversarial
Examples", arXiv:1412.6572), run through ART's ``FastGradientMethod``.

Threat model: white-box, L∞, untargeted. Deterministic. Cost: one input gradient per sample.

Example::

    bench evaluate --attack fgsm --eps 0,0.1
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from benchmark import ATTACKS


@ATTACKS.register("fgsm")
@dataclass(frozen=True)
class FGSM:
    """Fast Gradient Sign Method (Goodfellow et al. 2015), L∞, ART ``FastGradientMethod``; no parameters."""

    norm: ClassVar[str] = "inf"
    needs_grad: ClassVar[bool] = True
    black_box: ClassVar[bool] = False
    minimal_norm: ClassVar[bool] = False

    def generate(self, estimator, x: np.ndarray, y: np.ndarray, eps: float, keys: np.ndarray, batch_size: int):
        from art.attacks.evasion import FastGradientMethod

        attack = FastGradientMethod(estimator, norm=np.inf, eps=eps, eps_step=eps, batch_size=batch_size)
        return attack.generate(x=x, y=y)
