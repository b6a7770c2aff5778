"""DeepFool (Moosavi-Dezfooli et al. 2016, "DeepFool: a simple and accurate method to fool deep neural networks",
arXiv:1511.04599), run through ART's ``DeepFool``.

Threat model: white-box, untargeted, minimal-norm L2: it steps to the nearest linearised decision boundary until the
prediction changes, then overshoots by ``overshoot``. Run once; the sweep reads each sample's distance. Cost: up to
``steps × candidates`` class gradients per sample. ART's default batch of 1 is overridden.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from benchmark import ATTACKS
from benchmark.constraints import Constrained, Interval


@ATTACKS.register("deepfool")
@dataclass(frozen=True)
class DeepFool(Constrained):
    """DeepFool (Moosavi-Dezfooli et al. 2016), minimal-norm L2, ART ``DeepFool``.

    Args:
        steps: maximum iterations.
        overshoot: relative overshoot past the boundary.
        candidates: classes considered (the top ones by score).
    """

    steps: int = 50
    overshoot: float = 0.02
    candidates: int = 10

    parameter_constraints: ClassVar[dict] = {
        "steps": Interval(int, 1, 10_000),
        "overshoot": Interval(float, 0, None),
        "candidates": Interval(int, 1, 1_000),
    }
    norms: ClassVar[tuple[str, ...]] = ("2",)
    needs_grad: ClassVar[bool] = True
    black_box: ClassVar[bool] = False
    minimal_norm: ClassVar[bool] = True

    def find(self, estimator, x: np.ndarray, y: np.ndarray, *, norm: str, keys: np.ndarray,
             batch_size: int) -> np.ndarray:
        from art.attacks.evasion import DeepFool as ARTDeepFool

        attack = ARTDeepFool(estimator, max_iter=self.steps, epsilon=self.overshoot,
                             nb_grads=min(self.candidates, estimator.nb_classes), batch_size=batch_size,
                             verbose=False)
        return np.clip(attack.generate(x=x, y=y), 0.0, 1.0)
