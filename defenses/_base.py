"""What the defenses trained by the shared loop have in common (no torch import here: listing stays cheap)."""

from __future__ import annotations

from benchmark.api import DataBundle, RunContext


class LoopDefense:
    """A defense = a per-batch objective (``batch_loss``) run by the one shared training loop.

    Subclasses are frozen dataclasses with at least ``epochs``, ``lr`` and ``batch_size`` fields; ``batch_loss(ctx)``
    returns ``loss(model, x, y) -> tensor``. The federated wrapper runs the same objective on every client.
    """

    epochs: int
    lr: float
    batch_size: int

    #: Fields checked in ``__post_init__``: integers that must be ≥ 1, and fractions that must lie in [0, 1].
    POSITIVE_INTS = ("epochs", "batch_size", "steps")
    UNIT_INTERVAL = ("eps",)

    def __post_init__(self) -> None:
        for name in self.POSITIVE_INTS:
            if getattr(self, name, 1) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in self.UNIT_INTERVAL:
            if not 0.0 <= getattr(self, name, 0.0) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")

    def batch_loss(self, ctx: RunContext):
        from defenses._train import cross_entropy

        return cross_entropy

    def fit(self, model, data: DataBundle, ctx: RunContext):
        from defenses._train import train

        return train(model, data, ctx, epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
                     batch_loss=self.batch_loss(ctx))
