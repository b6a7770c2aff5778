"""Standard (empirical risk minimisation) training: the undefended reference every leaderboard needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from benchmark import DEFENSES
from defenses._base import LoopDefense


@DEFENSES.register("standard", "erm")
@dataclass(frozen=True)
class Standard(LoopDefense):
    """Plain cross-entropy training with the dataset's recipe (Adam at a constant rate by default), no defense.

    Args:
        epochs: passes over the training set.
        lr: learning rate (of the recipe's optimiser: Adam unless the dataset's recipe says otherwise).
        batch_size: samples per optimiser step.
    """

    epochs: int = 40
    lr: float = 1e-3
    batch_size: int = 128

    parameter_constraints: ClassVar[dict] = LoopDefense.parameter_constraints
