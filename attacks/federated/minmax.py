"""Min-max and min-sum, the aggregation-agnostic attacks of Shejwalkar & Houmansadr 2021 ("Manipulating the
Byzantine: optimizing model poisoning attacks and defenses for federated learning", NDSS).

Every attacker sends ``∇m = ū + γ·∇p``: ū the mean of the benign updates, ∇p a perturbation direction, γ as large as
a stealth constraint allows:

* min-max: ``max_i ‖∇m − ∇i‖ ≤ max_{i,j} ‖∇i − ∇j‖``: the malicious update is no farther from any benign update
  than the two farthest benign updates are from each other;
* min-sum: ``Σ_i ‖∇m − ∇i‖² ≤ max_i Σ_j ‖∇i − ∇j‖²``: its sum of squared distances to the benign updates is no
  larger than the largest such sum of a benign update (the paper's bound; the authors' released code compares with
  the smallest sum, a tighter bound).

Directions ∇p (the paper's): ``unit`` −ū/‖ū‖ (inverse unit vector), ``sign`` −sign(ū) (inverse sign), ``std`` −σ
(inverse coordinate-wise standard deviation, ddof = 1 as their code's ``torch.std``). Their code writes the same
update as ``ū − γ·deviation`` with deviation ū/‖ū‖, sign(ū) or σ.

γ by their search (``search_gamma``): test γ_init; after a success step up, after a failure step down, by a step
that starts at γ_init/2 and halves each time, until the last success and the next candidate are within τ. This is a
bisection of [0, 2·γ_init]: the γ found is the largest feasible one within 2τ when that is below 2·γ_init (the
constraint holds on an interval [0, γ*], since both sides are convex in γ and γ = 0, the mean, satisfies it).

Threat model: omniscient (the attackers know the round's benign updates), the paper's main setting. Defaults
γ_init = 10 and τ = 1e-5 as in their code (also FLPoison's); direction ``std``, the one of their released CIFAR-10
experiments (their functions' default is ``unit_vec``; their FEMNIST runs use ``sign``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from attacks.federated._updates import SharedVectorAttack, coordinate_std
from benchmark import CLIENT_ATTACKS
from benchmark.constraints import Constrained, Interval, Options

logger = logging.getLogger(__name__)

DIRECTIONS = ("unit", "sign", "std")

Score = Callable[[np.ndarray, np.ndarray], float]


def perturbation(benign: np.ndarray, direction: str) -> np.ndarray:
    """The paper's ∇p over the rows of ``benign``: −ū/‖ū‖ (``unit``; 0 when ū = 0), −sign(ū) (``sign``) or −σ
    (``std``)."""
    benign = np.asarray(benign, dtype=np.float64)
    mean = benign.mean(axis=0)
    if direction == "unit":
        length = np.linalg.norm(mean)
        return -mean / length if length > 0 else np.zeros_like(mean)
    if direction == "sign":
        return -np.sign(mean)
    if direction == "std":
        return -coordinate_std(benign)
    raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, got {direction!r}")


def squared_distances(point: np.ndarray, updates: np.ndarray) -> np.ndarray:
    """‖point − u_i‖² for each row u_i of ``updates``."""
    return ((np.asarray(updates, dtype=np.float64) - point) ** 2).sum(axis=1)


def max_squared_distance(point: np.ndarray, updates: np.ndarray) -> float:
    """Min-max's score: the largest squared distance from ``point`` to an update."""
    return float(squared_distances(point, updates).max())


def sum_squared_distance(point: np.ndarray, updates: np.ndarray) -> float:
    """Min-sum's score: the sum of squared distances from ``point`` to the updates."""
    return float(squared_distances(point, updates).sum())


def benign_bound(updates: np.ndarray, score: Score) -> float:
    """The largest ``score`` of a benign update against all of them: max_{i,j} ‖∇i − ∇j‖² for min-max, max_i Σ_j
    ‖∇i − ∇j‖² for min-sum."""
    return max(score(update, updates) for update in np.asarray(updates, dtype=np.float64))


def search_gamma(feasible: Callable[[float], bool], *, gamma_init: float, tau: float) -> float:
    """Shejwalkar & Houmansadr's search for the largest feasible γ (0 when none is found): start at ``gamma_init``,
    step ±step (step = gamma_init/2, halved after each test) after a success / failure, stop once the last success and
    the next candidate are within ``tau`` (or the step no longer moves γ in floating point)."""
    gamma, step, succeeded = gamma_init, gamma_init / 2, 0.0
    while abs(succeeded - gamma) > tau and gamma + step != gamma:
        if feasible(gamma):
            succeeded = gamma
            gamma += step
        else:
            gamma -= step
        step /= 2
    return succeeded


def tailored_gamma(benign: np.ndarray, direction: np.ndarray, score: Score, *, gamma_init: float,
                   tau: float) -> float:
    """The γ of ``search_gamma`` for ``ū + γ·direction`` under ``score(∇m, benign) ≤ benign_bound(benign, score)``."""
    benign = np.asarray(benign, dtype=np.float64)
    mean, bound = benign.mean(axis=0), benign_bound(benign, score)
    return search_gamma(lambda gamma: score(mean + gamma * direction, benign) <= bound,
                        gamma_init=gamma_init, tau=tau)


def tailored_update(benign: np.ndarray, score: Score, *, direction: str, gamma_init: float,
                    tau: float) -> np.ndarray:
    """The malicious update ``ū + γ·∇p`` of min-max (``score=max_squared_distance``) or min-sum
    (``score=sum_squared_distance``)."""
    benign = np.asarray(benign, dtype=np.float64)
    p = perturbation(benign, direction)
    gamma = tailored_gamma(benign, p, score, gamma_init=gamma_init, tau=tau)
    logger.debug("%s: γ = %.6g (direction %s)", score.__name__, gamma, direction)
    return benign.mean(axis=0) + gamma * p


@dataclass(frozen=True)
class _Tailored(SharedVectorAttack, Constrained):
    """Min-max / min-sum's parameters and update; a subclass names its score."""

    direction: str = "std"
    gamma_init: float = 10.0
    tau: float = 1e-5

    parameter_constraints: ClassVar[dict] = {
        "direction": Options(*DIRECTIONS),
        "gamma_init": Interval(float, 0, 1e6, closed="right"),
        "tau": Interval(float, 0, 1, closed="right"),
    }
    score: ClassVar[Score]

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tau >= self.gamma_init:
            raise ValueError(f"tau must be smaller than gamma_init = {self.gamma_init:g}, got {self.tau:g}")

    def malicious(self, benign: np.ndarray, *, n_clients: int, n_attackers: int) -> np.ndarray:
        return tailored_update(benign, type(self).score, direction=self.direction, gamma_init=self.gamma_init,
                               tau=self.tau)


@CLIENT_ATTACKS.register("min-max")
@dataclass(frozen=True)
class MinMax(_Tailored):
    """Min-max (Shejwalkar & Houmansadr 2021): all attackers send ``ū + γ·∇p``, γ maximal with the malicious update
    no farther from any benign update than the two farthest benign ones are apart. Omniscient.

    Args:
        direction: ∇p: unit (−ū/‖ū‖), sign (−sign(ū)) or std (−σ); default std, as in their CIFAR-10 runs.
        gamma_init: the search's first γ (default 10, their code's); the γ found stays below 2·gamma_init.
        tau: the search stops when its step is within tau (default 1e-5, their code's threshold_diff).
    """

    score: ClassVar[Score] = max_squared_distance


@CLIENT_ATTACKS.register("min-sum")
@dataclass(frozen=True)
class MinSum(_Tailored):
    """Min-sum (Shejwalkar & Houmansadr 2021): all attackers send ``ū + γ·∇p``, γ maximal with the malicious update's
    sum of squared distances to the benign updates at most the largest such sum of a benign update. Omniscient.

    Args:
        direction: ∇p: unit (−ū/‖ū‖), sign (−sign(ū)) or std (−σ); default std, as in their CIFAR-10 runs.
        gamma_init: the search's first γ (default 10, their code's); the γ found stays below 2·gamma_init.
        tau: the search stops when its step is within tau (default 1e-5, their code's threshold_diff).
    """

    score: ClassVar[Score] = sum_squared_distance
