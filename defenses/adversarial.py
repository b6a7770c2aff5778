"""Adversarial training: the model is trained on worst-case inputs found on the fly for every batch."""

from __future__ import annotations

from dataclasses import dataclass

from benchmark import DEFENSES
from benchmark.api import DataBundle, RunContext


@DEFENSES.register("pgd-at", "madry")
@dataclass(frozen=True)
class PGDAT:
    """PGD adversarial training (Madry et al. 2018, arXiv:1706.06083).

    "Towards Deep Learning Models Resistant to Adversarial Attacks".
    Each batch is replaced by L∞ PGD adversarial examples (random start, ``steps`` sign-gradient steps of size
    ``step`` inside the ``eps`` ball) crafted against the current weights; the model minimises cross-entropy on them.

    Args:
        eps: L∞ radius used in training (inputs in [0, 1]).
        step: PGD step size.
        steps: PGD iterations per batch.
        epochs: passes over the training set.
        lr: Adam learning rate.
        batch_size: samples per optimiser step.
    """

    eps: float = 0.1
    step: float = 0.025
    steps: int = 7
    epochs: int = 40
    lr: float = 1e-3
    batch_size: int = 128

    def fit(self, model, data: DataBundle, ctx: RunContext):
        import torch.nn.functional as F

        from defenses._train import perturb, train

        def batch_loss(net, x, y):
            x_adv = perturb(
                net, x, lambda xa: F.cross_entropy(net(xa), y), ctx,
                eps=self.eps, step=self.step, steps=self.steps, random_start=True,
            )
            return F.cross_entropy(net(x_adv), y)

        return train(model, data, ctx, epochs=self.epochs, lr=self.lr, batch_size=self.batch_size,
                     batch_loss=batch_loss)
