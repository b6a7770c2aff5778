"""Square Attack (Andriushchenko et al. 2020, "Square Attack: a query-efficient black-box adversarial attack via
random search", arXiv:1912.00049), run through ART's ``SquareAttack``.

Threat model: black-box, score-based (it sees the model's outputs, never its gradients), untargeted, L∞ or L2.
Random square-shaped updates are kept when they lower the margin loss. Because it needs no gradient it is the
ensemble's check against gradient masking. ART's default budget (5,000 iterations × 5 restarts) took 164 s on 100
digits samples here; the budget is explicit and recorded. ART makes about three predictions per iteration and keeps
iterating while any sample of the batch survives, so the cost is up to ``3 × queries × restarts`` predictions per
sample.

Example::

    bench evaluate --attack square:queries=2000,restarts=2
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from benchmark import ATTACKS
from benchmark.api import art_norm, memoized
from benchmark.constraints import Constrained, Interval


@ATTACKS.register("square")
@dataclass(frozen=True)
class Square(Constrained):
    """Square Attack (Andriushchenko et al. 2020), black-box score-based, ART ``SquareAttack``.

    Args:
        queries: iterations (one candidate per sample each) per restart: the query budget.
        restarts: independent restarts.
        p_init: initial share of pixels a square covers.
    """

    queries: int = 300
    restarts: int = 1
    p_init: float = 0.3

    parameter_constraints: ClassVar[dict] = {
        "queries": Interval(int, 1, 1_000_000),
        "restarts": Interval(int, 1, 100),
        "p_init": Interval(float, 0, 1, closed="neither"),  # ART refuses 1
    }
    norms: ClassVar[tuple[str, ...]] = ("inf", "2")
    needs_grad: ClassVar[bool] = False
    black_box: ClassVar[bool] = True
    images_only: ClassVar[bool] = True  # ART's Square samples square patches: inputs (n, C, H, W), not flat features
    minimal_norm: ClassVar[bool] = False

    def art_attack(self, estimator, *, eps: float, norm: str, batch_size: int):
        from art.attacks.evasion import SquareAttack

        return SquareAttack(estimator, norm=art_norm(norm), max_iter=self.queries, eps=eps, p_init=self.p_init,
                            nb_restarts=self.restarts, batch_size=batch_size, verbose=False)

    def generate(self, estimator, x: np.ndarray, y: np.ndarray, *, eps: float, norm: str, keys: np.ndarray,
                 batch_size: int) -> np.ndarray:
        attack = self.art_attack(estimator, eps=eps, norm=norm, batch_size=batch_size)
        with memoized(estimator):  # ART predicts every input of an iteration again in the next one
            return attack.generate(x=x, y=y)
