"""FGSM / FGM: one gradient step of size ε (Goodfellow et al. 2015, "Explaining and Harnessing Adversarial Examples",
arXiv:1412.6572), run through ART's ``FastGradientMethod``.

Threat model: white-box, untargeted; L∞ (the sign of the gradient) or L2 (the normalised gradient). Deterministic.
Cost: one input gradient per sample.

Example::

    bench evaluate --attack fgsm --eps 0,0.1
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from benchmark import ATTACKS
from benchmark.api import art_norm
from benchmark.constraints import Constrained


@ATTACKS.register("fgsm", "fgm")
@dataclass(frozen=True)
class FGSM(Constrained):
    """Fast Gradient (Sign) Method (Goodfellow et al. 2015), ART ``FastGradientMethod``; no parameters."""

    norms: ClassVar[tuple[str, ...]] = ("inf", "2")
    needs_grad: ClassVar[bool] = True
    black_box: ClassVar[bool] = False
    minimal_norm: ClassVar[bool] = False

    def generate(self, estimator, x: np.ndarray, y: np.ndarray, *, eps: float, norm: str, keys: np.ndarray,
                 batch_size: int) -> np.ndarray:
        from art.attacks.evasion import FastGradientMethod

        attack = FastGradientMethod(estimator, norm=art_norm(norm), eps=eps, eps_step=eps, batch_size=batch_size)
        return attack.generate(x=x, y=y)
