"""Label-only membership inference by distance to the decision boundary (Choquette-Choo et al. 2021, "Label-Only
Membership Inference Attacks", arXiv:2007.14321; Li & Zhang 2021, arXiv:2007.15528): the score of ART's
``LabelOnlyDecisionBoundary``, with the distance found by ART's ``HopSkipJump``.

Threat model: black-box, labels only (it sees the predicted class, never a score). A model that overfits pushes its
decision boundary away from its training samples, so the L2 distance HopSkipJump must travel to change a sample's
label is the membership score; a sample the model already misclassifies scores 0, as in ART. ART's
``LabelOnlyDecisionBoundary`` draws HopSkipJump's starting points from an unseeded generator (two runs give different
distances), so the distances come from the harness's ``hopskipjump`` attack (ART's HopSkipJump with each sample's
starting point and directions drawn from its key), keyed by the seed. ART's calibration on known members and
non-members only sets the threshold of its yes/no decision; AUC, advantage and TPR at low FPR run over every
threshold, so the attack-train halves are not used. ART's HopSkipJump budget (50 iterations of up to 10,000
queries) is cut to one that takes seconds on 8×8 digits. Cost: at the defaults about 130 label queries per evaluation
sample the model classifies correctly (measured on digits: 0.5 s for 60 samples).

Example::

    bench evaluate --privacy mia-label:steps=10,max_eval=200 --n-train 100
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from attacks.hopskipjump import HopSkipJump
from benchmark import PRIVACY
from benchmark.api import MembershipData
from benchmark.constraints import Constrained

_SALT = 0x6C62
BATCH_SIZE = 128


@PRIVACY.register("mia-label")
@dataclass(frozen=True)
class MIALabel(Constrained):
    """Label-only membership inference by decision-boundary distance (Choquette-Choo et al. 2021), ART
    ``LabelOnlyDecisionBoundary``'s score with ART's ``HopSkipJump``.

    Args:
        steps: HopSkipJump iterations (gradient estimate + step + binary search).
        max_eval: most label queries for one gradient estimate.
        init_eval: label queries of the first gradient estimate.
        init_size: random tries to find a misclassified starting point.
    """

    steps: int = 5
    max_eval: int = 100
    init_eval: int = 10
    init_size: int = 50

    parameter_constraints: ClassVar[dict] = HopSkipJump.parameter_constraints
    kind: ClassVar[str] = "membership"
    labels_only: ClassVar[bool] = True
    needs_grad: ClassVar[bool] = False

    def __post_init__(self) -> None:
        super().__post_init__()
        self.boundary_attack()  # HopSkipJump checks its parameters across fields (init_eval ≤ max_eval)

    def boundary_attack(self) -> HopSkipJump:
        return HopSkipJump(steps=self.steps, max_eval=self.max_eval, init_eval=self.init_eval,
                           init_size=self.init_size)

    def scores(self, estimator, data: MembershipData, *, seed: int) -> tuple[np.ndarray, np.ndarray]:
        x = np.concatenate([data.x_eval_in, data.x_eval_out])
        y = np.concatenate([data.y_eval_in, data.y_eval_out])
        keys = (np.random.SeedSequence([seed, _SALT]).generate_state(len(x), dtype=np.uint64) >> np.uint64(1))
        distance = boundary_distance(self.boundary_attack(), estimator, x, y, keys.astype(np.int64))
        return distance[: len(data.x_eval_in)], distance[len(data.x_eval_in) :]


def boundary_distance(attack: HopSkipJump, estimator, x: np.ndarray, y: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """ART's label-only score: the L2 distance from each sample to the point of another label that ``attack`` finds,
    0 where the model already misclassifies the sample (or HopSkipJump finds no starting point)."""
    distance = np.zeros(len(x))
    right = np.argmax(estimator.predict(x, batch_size=BATCH_SIZE), axis=1) == y
    if right.any():
        x_adv = attack.find(estimator, x[right], y[right], norm="2", keys=keys[right], batch_size=BATCH_SIZE)
        distance[right] = np.linalg.norm((x_adv - x[right]).reshape(int(right.sum()), -1), axis=1)
    return distance
