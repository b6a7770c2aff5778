"""Random noise of size ε: a baseline, not an attack.

Under L∞ every pixel moves by +ε or −ε at random; under L2 the perturbation is a random direction scaled to length
ε. It shows what robustness to *random* perturbations of the same size measures (what "perturbation training"
without an adversary buys): a model can be immune to it and still fall to a single gradient step.

Threat model: none (no model access). Randomness is drawn per sample from its key, so the result does not depend on
the batch, and the same direction is scaled across ε (the perturbation sets are nested).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from benchmark import ATTACKS
from benchmark.api import keyed_direction
from benchmark.constraints import Constrained

_SALT = 0x6E6F  # keeps this stream apart from other attacks' streams of the same sample


@ATTACKS.register("noise", "random-noise")
@dataclass(frozen=True)
class RandomNoise(Constrained):
    """Random ±ε sign noise (L∞) or a random direction of length ε (L2): a baseline, not an attack."""

    norms: ClassVar[tuple[str, ...]] = ("inf", "2")
    needs_grad: ClassVar[bool] = False
    black_box: ClassVar[bool] = True
    minimal_norm: ClassVar[bool] = False

    def generate(self, estimator, x: np.ndarray, y: np.ndarray, *, eps: float, norm: str, keys: np.ndarray,
                 batch_size: int) -> np.ndarray:
        noise = keyed_direction(keys, x.shape[1:], norm, _SALT)
        return np.clip(x + eps * noise, 0.0, 1.0).astype(x.dtype)
