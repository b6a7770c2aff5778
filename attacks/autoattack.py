"""ART's AutoAttack ensemble (after Croce & Hein 2020, arXiv:2003.01690), run through ART's ``AutoAttack``.

Not RobustBench's "standard" AutoAttack: ART's implementation, with the members and budgets given here (APGD-CE,
APGD-DLR and Square, each with the parameters below, untargeted), so its numbers are **not comparable** to the
RobustBench leaderboard. Each member attacks only the samples the previous ones left robust, and a sample counts as
broken only within ε.

Threat model: white-box plus black-box, untargeted, L∞ or L2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from attacks.apgd import APGDCE, APGDDLR
from attacks.square import Square
from benchmark import ATTACKS
from benchmark.api import art_norm, memoized
from benchmark.constraints import Constrained


@ATTACKS.register("autoattack", "aa")
@dataclass(frozen=True)
class AutoAttack(Constrained):
    """ART's AutoAttack ensemble of APGD-CE, APGD-DLR and Square (not RobustBench's standard AutoAttack).

    Args:
        steps: APGD iterations per restart.
        restarts: APGD random restarts.
        queries: Square's query budget per restart.
        square_restarts: Square's restarts.
    """

    steps: int = 20
    restarts: int = 1
    queries: int = 300
    square_restarts: int = 1

    parameter_constraints: ClassVar[dict] = {  # the members' own
        "steps": APGDCE.parameter_constraints["steps"],
        "restarts": APGDCE.parameter_constraints["restarts"],
        "queries": Square.parameter_constraints["queries"],
        "square_restarts": Square.parameter_constraints["restarts"],
    }
    norms: ClassVar[tuple[str, ...]] = ("inf", "2")
    needs_grad: ClassVar[bool] = True
    black_box: ClassVar[bool] = False
    torch_only: ClassVar[bool] = True  # its APGD members need a PyTorch model in ART
    images_only: ClassVar[bool] = True  # its Square member needs inputs (n, C, H, W) in ART
    minimal_norm: ClassVar[bool] = False

    def members(self):
        return (APGDCE(steps=self.steps, restarts=self.restarts), APGDDLR(steps=self.steps, restarts=self.restarts),
                Square(queries=self.queries, restarts=self.square_restarts))

    def generate(self, estimator, x: np.ndarray, y: np.ndarray, *, eps: float, norm: str, keys: np.ndarray,
                 batch_size: int) -> np.ndarray:
        from art.attacks.evasion import AutoAttack as ARTAutoAttack

        attacks = [member.art_attack(estimator, eps=eps, norm=norm, batch_size=batch_size)
                   for member in self.members()]
        ensemble = ARTAutoAttack(estimator, norm=art_norm(norm), eps=eps, eps_step=2 * eps, attacks=attacks,
                                 batch_size=batch_size)
        with memoized(estimator):  # Square, run on the harness's wrapper, predicts each input again
            return ensemble.generate(x=x, y=y)
