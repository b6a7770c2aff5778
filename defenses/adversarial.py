"""The adversarial-training family: the model is trained on worst-case inputs found on the fly for every batch.

Every member is a frozen dataclass whose ``batch_loss(ctx)`` is the per-batch objective; ``fit`` runs it in the
shared loop, and the federated wrapper (``defenses/combined.py``) runs the same objective on each client. Inner
maximisation gradients are counted in ``ctx.costs["train_grad_evals"]`` next to the weight updates'.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from benchmark import DEFENSES
from benchmark.api import RunContext
from benchmark.constraints import Interval
from defenses._base import LoopDefense

EPS = Interval(float, 0, 1)
#: The inner maximisation of PGD-AT and TRADES.
INNER = {"eps": EPS, "step": Interval(float, 0, 1, closed="right"), "steps": Interval(int, 1, 10_000)}


def cross_entropy_on_perturbed(ctx: RunContext, *, eps: float, step: float, steps: int):
    """Cross-entropy on inputs perturbed by sign-gradient ascent on the cross-entropy from a uniform random start:
    PGD-AT with ``steps`` > 1, fast FGSM-AT with ``steps`` = 1."""
    import torch.nn.functional as F

    from defenses._train import perturb

    def loss(net, x, y):
        x_adv = perturb(net, x, lambda xa: F.cross_entropy(net(xa), y), ctx, eps=eps, step=step, steps=steps,
                        start="uniform")
        return F.cross_entropy(net(x_adv), y)

    return loss


@DEFENSES.register("pgd-at", "madry")
@dataclass(frozen=True)
class PGDAT(LoopDefense):
    """PGD adversarial training (Madry et al. 2018, arXiv:1706.06083).

    "Towards Deep Learning Models Resistant to Adversarial Attacks". Each batch is replaced by L∞ PGD adversarial
    examples (uniform random start, ``steps`` sign-gradient steps of size ``step`` inside the ``eps`` ball) crafted
    against the current weights; the model minimises cross-entropy on them. The defaults are for digits; on CIFAR
    and MNIST the dataset's paper setting (``benchmark.recipes``) makes them the papers' (PGD-10 of 2/255 at 8/255;
    PGD-40 of 0.01 at 0.3).

    Args:
        eps: L∞ radius used in training (inputs in [0, 1]).
        step: PGD step size.
        steps: PGD iterations per batch.
        epochs: passes over the training set.
        lr: learning rate (of the recipe's optimiser: Adam unless the dataset's recipe says otherwise).
        batch_size: samples per optimiser step.
    """

    eps: float = 0.1
    step: float = 0.025
    steps: int = 7
    epochs: int = 40
    lr: float = 1e-3
    batch_size: int = 128

    parameter_constraints: ClassVar[dict] = {**INNER, **LoopDefense.parameter_constraints}

    def batch_loss(self, ctx: RunContext):
        return cross_entropy_on_perturbed(ctx, eps=self.eps, step=self.step, steps=self.steps)


@DEFENSES.register("fgsm-at", "fast-at")
@dataclass(frozen=True)
class FGSMAT(LoopDefense):
    """Fast adversarial training: FGSM from a random start (Wong et al. 2020, arXiv:2001.03994).

    "Fast is better than free: Revisiting adversarial training". Each batch is perturbed by one signed-gradient
    step of size ``step_ratio · eps`` (1.25 ε in the paper) from a uniform random point of the ε-ball, then
    projected back; one extra gradient per sample instead of PGD's ``steps``. On CIFAR its default recipe is the
    paper's (SGD with the cyclic learning rate, 15 epochs; ``benchmark.recipes``) and ``--recipe amp=fp16`` adds its
    mixed precision on CUDA; elsewhere Adam at a fixed rate, like the rest of the family, so budgets compare.

    Args:
        eps: L∞ radius used in training.
        step_ratio: FGSM step size as a multiple of eps.
        epochs: passes over the training set.
        lr: learning rate (of the recipe's optimiser: Adam unless the dataset's recipe says otherwise).
        batch_size: samples per optimiser step.
    """

    eps: float = 0.1
    step_ratio: float = 1.25
    epochs: int = 40
    lr: float = 1e-3
    batch_size: int = 128

    parameter_constraints: ClassVar[dict] = {"eps": EPS, "step_ratio": Interval(float, 0, 10, closed="right"),
                                             **LoopDefense.parameter_constraints}

    def batch_loss(self, ctx: RunContext):
        return cross_entropy_on_perturbed(ctx, eps=self.eps, step=self.step_ratio * self.eps, steps=1)


@DEFENSES.register("trades")
@dataclass(frozen=True)
class TRADES(LoopDefense):
    """TRADES (Zhang et al. 2019, arXiv:1901.08573).

    "Theoretically Principled Trade-off between Robustness and Accuracy". Minimises
    CE(f(x), y) + β · KL(f(x) ‖ f(x')), where x' maximises the same KL inside the L∞ ``eps`` ball (``steps``
    sign-gradient steps of size ``step`` from x + 0.001·N(0, I)). β trades clean accuracy for robustness.

    Args:
        beta: weight of the robustness (KL) term; 6 in the paper.
        eps: L∞ radius used in training.
        step: inner-maximisation step size.
        steps: inner-maximisation iterations per batch.
        epochs: passes over the training set.
        lr: learning rate (of the recipe's optimiser: Adam unless the dataset's recipe says otherwise).
        batch_size: samples per optimiser step.
    """

    beta: float = 6.0
    eps: float = 0.1
    step: float = 0.025
    steps: int = 7
    epochs: int = 40
    lr: float = 1e-3
    batch_size: int = 128

    parameter_constraints: ClassVar[dict] = {"beta": Interval(float, 0, None), **INNER,
                                             **LoopDefense.parameter_constraints}

    def batch_loss(self, ctx: RunContext):
        import torch
        import torch.nn.functional as F

        from defenses._train import perturb

        def kl(logits_adv: torch.Tensor, probs_clean: torch.Tensor) -> torch.Tensor:
            return F.kl_div(F.log_softmax(logits_adv, dim=1), probs_clean, reduction="batchmean")

        def loss(net, x, y):
            with torch.no_grad():
                probs_clean = F.softmax(net(x), dim=1)
            x_adv = perturb(net, x, lambda xa: kl(net(xa), probs_clean), ctx,
                            eps=self.eps, step=self.step, steps=self.steps, start="normal")
            logits_clean = net(x)
            ctx.count("train_grad_evals", len(x))  # the loss back-propagates through two forward passes
            return F.cross_entropy(logits_clean, y) + self.beta * kl(net(x_adv), F.softmax(logits_clean, dim=1))

        return loss
