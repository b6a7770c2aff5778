"""ALIE, "A little is enough" (Baruch, Baruch & Goldberg 2019, NeurIPS, arXiv:1902.06156).

Every attacker sends the same update, shifted coordinate-wise by z standard deviations from the benign mean:
``μ_j − z·σ_j``. The shift is small enough that the malicious updates stay inside the spread of the benign ones, so
median, trimmed mean and Krum keep them, yet all attackers push every coordinate the same way.

z from Baruch et al.'s Algorithm 1: with n clients of which f attack, the attackers need s = ⌊n/2 + 1⌋ − f benign
"supporters" on their side of the mean for a majority, and z is the largest value with Φ(z) ≤ (n − s)/n, i.e.
z = Φ⁻¹((n − s)/n) (10 clients, 2 attackers: s = 4, z = Φ⁻¹(0.6) ≈ 0.253). Blades and FLPoison use
Φ⁻¹((n − f − s)/(n − f)) instead (0 for that setting); this module follows the paper.

Threat model: omniscient, as the papers that benchmark it run it (Shejwalkar & Houmansadr 2021's NDSS code, Blades,
FLPoison): μ and σ (sample standard deviation, ddof = 1, as their code computes it) over the round's benign updates.
Baruch et al. themselves estimate them from the attackers' own data. The attackers must be a minority
(s ≥ 1), unless z is given.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from attacks.federated._updates import SharedVectorAttack, coordinate_std
from benchmark import CLIENT_ATTACKS
from benchmark.constraints import Constrained, OptionalInterval

logger = logging.getLogger(__name__)


def supporters(n: int, f: int) -> int:
    """s = ⌊n/2 + 1⌋ − f: the benign clients the f attackers need on their side to form a majority of n."""
    return math.floor(n / 2 + 1) - f


def alie_z(n: int, f: int) -> float:
    """Baruch et al.'s z_max = Φ⁻¹((n − s)/n) for n clients and f attackers; a ``ValueError`` when the attackers are
    a majority (s < 1: no finite z)."""
    from scipy.stats import norm  # imported here: listing the plugins stays cheap

    s = supporters(n, f)
    if n < 1 or s < 1:
        raise ValueError(f"alie: n_attackers = {f} of n = {n} clients leaves s = ⌊n/2 + 1⌋ − f = {s} supporters; "
                         f"its z needs s ≥ 1 (at most {math.floor(n / 2)} attackers), or set z explicitly")
    return float(norm.ppf((n - s) / n))


def alie_update(benign: np.ndarray, z: float) -> np.ndarray:
    """``μ − z·σ`` coordinate-wise over the rows of ``benign`` (σ with ddof = 1)."""
    benign = np.asarray(benign, dtype=np.float64)
    return benign.mean(axis=0) - z * coordinate_std(benign)


@CLIENT_ATTACKS.register("alie")
@dataclass(frozen=True)
class ALIE(SharedVectorAttack, Constrained):
    """A little is enough (Baruch et al. 2019): all attackers send ``μ − z·σ`` of the benign updates. Omniscient.

    Args:
        z: standard deviations of the shift; none (default): Baruch et al.'s z_max = Φ⁻¹((n − s)/n) from the round's
            n clients and f attackers, s = ⌊n/2 + 1⌋ − f.
    """

    z: float | None = None

    parameter_constraints: ClassVar[dict] = {"z": OptionalInterval(float, 0, None)}

    def malicious(self, benign: np.ndarray, *, n_clients: int, n_attackers: int) -> np.ndarray:
        z = alie_z(n_clients, n_attackers) if self.z is None else self.z
        logger.debug("alie: z = %.4f (n = %d, f = %d)", z, n_clients, n_attackers)
        return alie_update(benign, z)
