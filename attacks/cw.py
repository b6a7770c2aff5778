"""Carlini & Wagner attacks (Carlini & Wagner 2017, "Towards Evaluating the Robustness of Neural Networks",
arXiv:1608.04644), run through ART's ``CarliniL2Method`` and ``CarliniLInfMethod``.

Threat model: white-box, untargeted, minimal-norm: each finds the smallest perturbation it can (L2, or L∞) that
changes the prediction, with no ε. The sweep runs it once and counts a sample as broken at every ε at least as large
as its found distance (after checking that the found point really is misclassified). ART's defaults (batch 1) are
overridden.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from benchmark import ATTACKS
from benchmark.constraints import Constrained, Interval

STEPS = Interval(int, 1, 10_000)
LEARNING_RATE = Interval(float, 0, None, closed="neither")
CONFIDENCE = Interval(float, 0, None)


@ATTACKS.register("cw-l2", "cw")
@dataclass(frozen=True)
class CWL2(Constrained):
    """Carlini & Wagner L2 (2017), minimal-norm, ART ``CarliniL2Method``.

    Args:
        steps: optimisation steps per binary-search step.
        binary_search_steps: binary-search steps over the trade-off constant c.
        learning_rate: Adam learning rate of the optimisation.
        initial_const: first value of c.
        confidence: required logit margin κ.
    """

    steps: int = 20
    binary_search_steps: int = 5
    learning_rate: float = 0.05
    initial_const: float = 0.1
    confidence: float = 0.0

    parameter_constraints: ClassVar[dict] = {
        "steps": STEPS,
        "binary_search_steps": Interval(int, 1, 100),
        "learning_rate": LEARNING_RATE,
        "initial_const": Interval(float, 0, None, closed="neither"),
        "confidence": CONFIDENCE,
    }
    norms: ClassVar[tuple[str, ...]] = ("2",)
    needs_grad: ClassVar[bool] = True
    black_box: ClassVar[bool] = False
    minimal_norm: ClassVar[bool] = True

    def find(self, estimator, x: np.ndarray, y: np.ndarray, *, norm: str, keys: np.ndarray,
             batch_size: int) -> np.ndarray:
        from art.attacks.evasion import CarliniL2Method

        attack = CarliniL2Method(estimator, confidence=self.confidence, learning_rate=self.learning_rate,
                                 binary_search_steps=self.binary_search_steps, max_iter=self.steps,
                                 initial_const=self.initial_const, batch_size=batch_size, verbose=False)
        return attack.generate(x=x, y=y)


@ATTACKS.register("cw-linf")
@dataclass(frozen=True)
class CWLinf(Constrained):
    """Carlini & Wagner L∞ (2017), minimal-norm, ART ``CarliniLInfMethod``.

    ART runs it one sample at a time, for every bound τ (shrinking by ``decrease_factor`` from the best distance
    found) and every constant c (``initial_const`` × ``const_factor``^k below ``largest_const``): ART's defaults
    (0.9, 1e-5 × 2^k up to 20) cost about 0.6 s per digits sample here, so the defaults are coarser.

    Args:
        steps: optimisation steps per (τ, c).
        learning_rate: Adam learning rate of the optimisation.
        decrease_factor: how fast τ shrinks.
        initial_const: first value of c.
        largest_const: c stops below this.
        const_factor: growth of c.
        confidence: required logit margin κ.
    """

    steps: int = 20
    learning_rate: float = 0.05
    decrease_factor: float = 0.8
    initial_const: float = 0.1
    largest_const: float = 10.0
    const_factor: float = 4.0
    confidence: float = 0.0

    parameter_constraints: ClassVar[dict] = {  # bounds that keep ART's loops over (τ, c) finite
        "steps": STEPS,
        "learning_rate": LEARNING_RATE,
        "decrease_factor": Interval(float, 0, 0.99, closed="right"),
        "initial_const": Interval(float, 1e-10, 1e6),
        "largest_const": Interval(float, 1e-10, 1e6),
        "const_factor": Interval(float, 1.1, 100),
        "confidence": CONFIDENCE,
    }
    norms: ClassVar[tuple[str, ...]] = ("inf",)
    needs_grad: ClassVar[bool] = True
    black_box: ClassVar[bool] = False
    minimal_norm: ClassVar[bool] = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.initial_const >= self.largest_const:  # ART would then try no constant at all: an attack that is a no-op
            raise ValueError(f"initial_const must be below largest_const = {self.largest_const:g}, "
                             f"got {self.initial_const:g}")

    def find(self, estimator, x: np.ndarray, y: np.ndarray, *, norm: str, keys: np.ndarray,
             batch_size: int) -> np.ndarray:
        from art.attacks.evasion import CarliniLInfMethod

        attack = CarliniLInfMethod(estimator, confidence=self.confidence, learning_rate=self.learning_rate,
                                   max_iter=self.steps, decrease_factor=self.decrease_factor,
                                   initial_const=self.initial_const, largest_const=self.largest_const,
                                   const_factor=self.const_factor, batch_size=batch_size, verbose=False)
        return attack.generate(x=x, y=y)
