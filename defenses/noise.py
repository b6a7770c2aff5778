"""Gaussian noise augmentation: "perturbation training" without an adversary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from benchmark import DEFENSES
from benchmark.api import RunContext
from benchmark.constraints import Interval
from defenses._base import LoopDefense


@DEFENSES.register("noise-aug", "gaussian-augmentation")
@dataclass(frozen=True)
class NoiseAugmentation(LoopDefense):
    """Training on Gaussian-noised inputs (Zantedeschi et al. 2017, arXiv:1707.06728; the training side of
    randomized smoothing, Cohen et al. 2019).

    Each batch is replaced by x + N(0, σ²I), clipped to [0, 1]. On the leaderboard it shows how robustness to random
    perturbations differs from robustness to adversarial ones: it typically holds up against the ``noise`` baseline
    and falls to PGD.

    Args:
        sigma: standard deviation of the noise (inputs in [0, 1]).
        epochs: passes over the training set.
        lr: learning rate (of the recipe's optimiser: Adam unless the dataset's recipe says otherwise).
        batch_size: samples per optimiser step.
    """

    sigma: float = 0.3
    epochs: int = 40
    lr: float = 1e-3
    batch_size: int = 128

    parameter_constraints: ClassVar[dict] = {"sigma": Interval(float, 0, None), **LoopDefense.parameter_constraints}

    def batch_loss(self, ctx: RunContext):
        import torch
        import torch.nn.functional as F

        def loss(net, x, y):
            return F.cross_entropy(net((x + self.sigma * torch.randn_like(x)).clamp(0.0, 1.0)), y)

        return loss
