"""What the defenses trained by the shared loop have in common (no torch import here: listing stays cheap)."""

from __future__ import annotations

from typing import ClassVar

from benchmark.api import DataBundle, RunContext
from benchmark.constraints import Constrained, Interval


class LoopDefense(Constrained):
    """A defense = a per-batch objective (``batch_loss``) run by the one shared training loop.

    Subclasses are frozen dataclasses with at least ``epochs``, ``lr`` and ``batch_size`` fields, whose constraint
    table extends ``LoopDefense.parameter_constraints``; ``batch_loss(ctx)`` returns ``loss(model, x, y) -> tensor``.
    The federated wrapper runs the same objective on every client.
    """

    epochs: int
    lr: float
    batch_size: int

    parameter_constraints: ClassVar[dict] = {
        "epochs": Interval(int, 1, 10_000),
        "lr": Interval(float, 0, 10, closed="right"),
        "batch_size": Interval(int, 1, 100_000),
    }

    def batch_loss(self, ctx: RunContext):
        from defenses._train import cross_entropy

        return cross_entropy

    def fit(self, model, data: DataBundle, ctx: RunContext):
        from defenses._train import train

        return train(model, data, ctx, epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
                     batch_loss=self.batch_loss(ctx))
