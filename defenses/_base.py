"""What the defenses trained by the shared loop have in common (no torch import here: listing stays cheap)."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from benchmark.api import DataBundle, RunContext
from benchmark.constraints import Constrained
from benchmark.recipes import DEFENSE_NUMBERS, Recipe


class LoopDefense(Constrained):
    """A defense = a per-batch objective (``batch_loss``) run by the one shared training loop, as a recipe says.

    Subclasses are frozen dataclasses with at least ``epochs``, ``lr`` and ``batch_size`` fields, whose constraint
    table extends ``LoopDefense.parameter_constraints``; ``batch_loss(ctx)`` returns ``loss(model, x, y) -> tensor``.
    The recipe (``benchmark.recipes``: optimiser, schedule, augmentation, early stopping, mixed precision) comes
    from the run (``ctx.recipe``, resolved per dataset by the config); its epochs, lr and batch size are the
    defense's own fields. The federated wrapper runs the same objective on every client.
    """

    epochs: int
    lr: float
    batch_size: int

    parameter_constraints: ClassVar[dict] = {key: Recipe.parameter_constraints[key] for key in DEFENSE_NUMBERS}
    takes_recipe: ClassVar[bool] = True  # the config gives it its dataset's recipe (``benchmark.recipes``)

    def batch_loss(self, ctx: RunContext):
        from defenses._train import cross_entropy

        return cross_entropy

    def recipe(self, ctx: RunContext) -> Recipe:
        """The recipe this defense trains with: the run's (``ctx.recipe``; with none, the loop's defaults: Adam at a
        constant rate) with this defense's ``epochs``, ``lr`` and ``batch_size``."""
        return dataclasses.replace(ctx.recipe or Recipe(), epochs=self.epochs, lr=self.lr, batch_size=self.batch_size)

    @property
    def validation_eps(self) -> float:
        """The L∞ ε of early stopping's validation attack: the defense's own training ε (none: clean accuracy)."""
        return float(getattr(self, "eps", 0.0))

    def fit(self, model, data: DataBundle, ctx: RunContext):
        from defenses._train import train

        return train(model, data, ctx, recipe=self.recipe(ctx), batch_loss=self.batch_loss(ctx),
                     eps=self.validation_eps)
