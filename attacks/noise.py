"""Random sign noise: every pixel moves by +ε or −ε at random. A baseline, not an attack.

It shows what robustness to *random* perturbations of the same size measures (what "perturbation training"
without an adversary buys): a model can be immune to it and still fall to a single gradient step.

Threat model: none (no model access), L∞. Randomness is drawn per sample from its key, so the result does not depend
on the batch, and the same direction is scaled across ε (the perturbation sets are nested).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from benchmark import ATTACKS
from benchmark.api import sample_rng

_SALT = 0x6E6F  # "no": keeps this stream apart from other attacks' streams of the same sample


@ATTACKS.register("noise", "random-noise")
@dataclass(frozen=True)
class SignNoise:
    """Uniform random ±ε sign noise per pixel (a baseline, not an attack); no model queries."""

    norm: ClassVar[str] = "inf"
    needs_grad: ClassVar[bool] = False
    black_box: ClassVar[bool] = True
    minimal_norm: ClassVar[bool] = False

    def generate(self, estimator, x: np.ndarray, y: np.ndarray, eps: float, keys: np.ndarray, batch_size: int):
        signs = np.stack([sample_rng(key, _SALT).choice((-1.0, 1.0), size=x.shape[1:]) for key in keys])
        return np.clip(x + eps * signs, 0.0, 1.0).astype(x.dtype)
