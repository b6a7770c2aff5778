"""IPM, inner-product manipulation (Xie, Koyejo & Gupta 2020, "Fall of empires: breaking Byzantine-tolerant SGD by
inner product manipulation", UAI, arXiv:1903.03936).

Every attacker sends ``−ε·ū``, ū the mean of the benign updates, so that the aggregate's inner product with the true
update turns small or negative. Small ε keeps the malicious updates close to the benign ones (the regime in which
Xie et al. break Krum); large ε outweighs the benign clients: against the plain mean, f of n attackers flip the
aggregate's sign once ε > (n − f)/f (4 for 10 clients, 2 attackers), and Xie et al. take ε large against
coordinate-wise median and trimmed mean.

Threat model: omniscient (the attackers know the benign updates of the round), as in the paper.

Default ε = 0.1: the small ε of the paper's Krum experiments, also the default of FLPoison's and of Karimireddy et
al. 2021's implementations (Blades uses 0.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from attacks.federated._updates import SharedVectorAttack
from benchmark import CLIENT_ATTACKS
from benchmark.constraints import Constrained, Interval


def ipm_update(benign: np.ndarray, eps: float) -> np.ndarray:
    """``−ε`` times the mean of the rows of ``benign``."""
    return -eps * np.asarray(benign, dtype=np.float64).mean(axis=0)


@CLIENT_ATTACKS.register("ipm")
@dataclass(frozen=True)
class IPM(SharedVectorAttack, Constrained):
    """Inner-product manipulation (Xie et al. 2020): all attackers send ``−ε`` times the benign mean. Omniscient.

    Args:
        eps: ε, the scale of the reversed mean (default 0.1, as in Xie et al.'s Krum experiments).
    """

    eps: float = 0.1

    parameter_constraints: ClassVar[dict] = {"eps": Interval(float, 0, None, closed="neither")}

    def malicious(self, benign: np.ndarray, *, n_clients: int, n_attackers: int) -> np.ndarray:
        return ipm_update(benign, self.eps)
