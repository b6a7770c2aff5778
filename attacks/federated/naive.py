"""The naive Byzantine clients: sign-flip, Gaussian noise and scaling (the attacks ``defenses/federated.py`` ran as
``byzantine_attack``; the same maths, here as plugins of ``benchmark.CLIENT_ATTACKS``).

Threat model: not omniscient. Each attacker trains honestly on its own shard, then sends a corruption of its own
update (sign-flip, scale) or noise that ignores it (gaussian); it reads no other client's update.

* ``sign-flip``: ``−scale·u`` (the gradient-reversal attack of the Byzantine literature, e.g. Li et al. 2019, RSA,
  arXiv:1811.03761; Blades' and FLPoison's ``signflipping``).
* ``gaussian``: ``N(0, std²)`` per coordinate (Blanchard et al. 2017's Gaussian Byzantine worker).
* ``scale``: ``scale·u`` (a boosted honest update, as in model replacement, Bagdasaryan et al. 2020).

Defaults (scale 10, std 1) are the federated defense's ``byzantine_scale`` and ``byzantine_std``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from attacks.federated._updates import checked_round
from benchmark import CLIENT_ATTACKS
from benchmark.constraints import Constrained, Interval

SCALE = Interval(float, 0, None)
STD = Interval(float, 0, None)


def sign_flip(own: np.ndarray, scale: float) -> np.ndarray:
    """``−scale·u`` for each own update ``u`` (rows)."""
    return -scale * np.asarray(own, dtype=np.float64)


def gaussian_noise(shape: tuple[int, ...], std: float, rng: np.random.Generator) -> np.ndarray:
    """``N(0, std²)`` noise of ``shape``, drawn from ``rng`` row after row (one attacker's update after another)."""
    return rng.normal(0.0, std, size=shape)


def scaled(own: np.ndarray, scale: float) -> np.ndarray:
    """``scale·u`` for each own update ``u`` (rows)."""
    return scale * np.asarray(own, dtype=np.float64)


class _OwnUpdateAttack:
    """The naive attacks' common tags: an update attack that reads only the attackers' own honest updates."""

    kind: ClassVar[str] = "update"
    omniscient: ClassVar[bool] = False


@dataclass(frozen=True)
class _ScaledOwnUpdate(_OwnUpdateAttack, Constrained):
    """Sign-flip and scale: each attacker sends ``transform(u, scale)`` of its own honest update ``u``."""

    scale: float = 10.0

    parameter_constraints: ClassVar[dict] = {"scale": SCALE}
    transform: ClassVar[Callable[[np.ndarray, float], np.ndarray]]

    def craft(self, honest: np.ndarray, *, n_attackers: int, rng: np.random.Generator) -> np.ndarray:
        return type(self).transform(checked_round(honest, n_attackers)[:n_attackers], self.scale)


@CLIENT_ATTACKS.register("sign-flip")
@dataclass(frozen=True)
class SignFlip(_ScaledOwnUpdate):
    """Sign-flip: each attacker sends its own honest update reversed and scaled, ``−scale·u``. Not omniscient.

    Args:
        scale: the multiplier (default 10, the federated defense's ``byzantine_scale``).
    """

    transform: ClassVar[Callable[[np.ndarray, float], np.ndarray]] = sign_flip


@CLIENT_ATTACKS.register("scale")
@dataclass(frozen=True)
class Scale(_ScaledOwnUpdate):
    """Scale: each attacker sends its own honest update multiplied, ``scale·u``. Not omniscient.

    Args:
        scale: the multiplier (default 10, the federated defense's ``byzantine_scale``).
    """

    transform: ClassVar[Callable[[np.ndarray, float], np.ndarray]] = scaled


@CLIENT_ATTACKS.register("gaussian")
@dataclass(frozen=True)
class Gaussian(_OwnUpdateAttack, Constrained):
    """Gaussian: each attacker sends ``N(0, std²)`` noise in place of its update. Not omniscient; draws from ``rng``.

    Args:
        std: the noise's standard deviation per coordinate (default 1, the federated defense's ``byzantine_std``).
    """

    std: float = 1.0

    parameter_constraints: ClassVar[dict] = {"std": STD}

    def craft(self, honest: np.ndarray, *, n_attackers: int, rng: np.random.Generator) -> np.ndarray:
        updates = checked_round(honest, n_attackers)
        return gaussian_noise((n_attackers, updates.shape[1]), self.std, rng)
