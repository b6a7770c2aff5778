"""DP-SGD (Abadi et al. 2016) through Opacus: private training as a wrapper around a loop defense's unchanged
per-batch objective (plain cross-entropy here; PGD-AT's and TRADES's in ``defenses/combined.py``).

The training loop and the accounting are in ``defenses/_private.py`` (torch and Opacus, imported only when a private
defense trains or checks a model); this module stays cheap to import for ``bench list``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from benchmark import DEFENSES
from benchmark.api import DataBundle, RunContext
from benchmark.constraints import Interval, OptionalInterval, Options
from benchmark.privacy import DPGuarantee
from benchmark.recipes import Recipe
from defenses._base import LoopDefense

logger = logging.getLogger(__name__)

ACCOUNTANTS = ("rdp", "prv")


#: δ of a private defense: in (0, 1); none: min(1e-5, 1/n), n the training samples (DP-SGD) or clients (DP-FedAvg).
DELTA = OptionalInterval(float, 0, 1, closed="neither")
NOISE = Interval(float, 0, 1_000, closed="right")
CLIP = Interval(float, 0, 1e6, closed="neither")


def default_delta(n: int) -> float:
    """δ when none is given: 1e-5, or 1/n where that is smaller (δ must stay below 1/n: Dwork & Roth 2014)."""
    return min(1e-5, 1.0 / n)


def check_private_model(model: Any) -> None:
    """Refuse (one-line ``ValueError``) a model Opacus cannot train with per-sample gradients, naming the fix."""
    from defenses._private import model_refusal

    refusal = model_refusal(model)
    if refusal:
        raise ValueError(refusal)


@dataclass(frozen=True, kw_only=True)
class PrivatePlan:
    """What a private training run will be: Poisson ``sample_rate`` q (of samples, or of clients), noisy ``steps``
    (or rounds), noise multiplier σ and the ``delta`` its guarantee is stated at."""

    sample_rate: float
    steps: int
    noise_multiplier: float
    delta: float

    def guarantee(self, epsilon: float, *, level: str, accountant: str, clip: float) -> DPGuarantee:
        return DPGuarantee(epsilon=float(epsilon), delta=self.delta, level=level, accountant=accountant,
                           noise_multiplier=self.noise_multiplier, max_grad_norm=clip, sample_rate=self.sample_rate,
                           steps=self.steps)


@DEFENSES.register("dp-sgd", "dpsgd")
@dataclass(frozen=True)
class DPSGD(LoopDefense):
    """DP-SGD (Abadi et al. 2016, arXiv:1607.00133), "Deep learning with differential privacy", through Opacus.

    Each step trains on a Poisson sample of the training set (each sample joins with probability
    q = batch_size / n), clips every per-sample gradient to ``max_grad_norm`` in L2, adds Gaussian noise of standard
    deviation ``noise_multiplier · max_grad_norm`` to their sum and divides by ``batch_size``; Adam at a constant
    ``lr`` takes the step. Opacus's accountant turns σ, q and the ⌊1/q⌋ steps per epoch into the (ε, δ) guarantee
    per training sample recorded with the result. The dataset's training recipe is not used (the papers' recipes
    are not private ones): the defense's own epochs, lr and batch size are.

    Args:
        noise_multiplier: σ, the noise's standard deviation as a multiple of ``max_grad_norm``.
        max_grad_norm: the L2 norm each per-sample gradient is clipped to.
        target_epsilon: when set, Opacus picks σ so that training spends this ε (within 0.01 below it) and
            ``noise_multiplier`` is not used; none: σ is ``noise_multiplier``.
        delta: the δ of the guarantee; none: min(1e-5, 1/n), n the training samples.
        accountant: Opacus's rdp (Rényi DP, Mironov 2017) or prv (privacy random variables, Gopi et al. 2021:
            tighter).
        epochs: passes over the training set (⌊1/q⌋ noisy steps each).
        lr: Adam's learning rate.
        batch_size: the expected Poisson batch size (q · n).
    """

    noise_multiplier: float = 1.5
    max_grad_norm: float = 1.0
    target_epsilon: float | None = None
    delta: float | None = None
    accountant: str = "rdp"
    epochs: int = 15
    lr: float = 5e-3
    batch_size: int = 64

    parameter_constraints: ClassVar[dict] = {
        "noise_multiplier": NOISE,
        "max_grad_norm": CLIP,
        "target_epsilon": OptionalInterval(float, 0, None, closed="neither"),
        "delta": DELTA,
        "accountant": Options(*ACCOUNTANTS),
        **LoopDefense.parameter_constraints,
    }
    takes_recipe: ClassVar[bool] = False  # a paper's recipe (MNIST's batch 50 at Adam 1e-4) is not a private one
    private: ClassVar[bool] = True  # records a DPGuarantee in ctx.outcome["dp"]; check_model before any work

    def member_defense(self) -> LoopDefense:
        """The defense whose per-batch objective is trained privately (plain cross-entropy here)."""
        from defenses.standard import Standard

        return Standard(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size)

    def batch_loss(self, ctx: RunContext):
        return self.member_defense().batch_loss(ctx)

    def check_model(self, model: Any) -> None:
        """Refuse a model Opacus cannot train (BatchNorm), naming the fix (``norm=group``): before any work."""
        check_private_model(model)

    def check_plan(self, n_train: int, ctx: RunContext) -> None:
        """Before any work: ``private_plan``'s refusals for ``n_train`` samples at ``ctx``'s epoch budget."""
        self.private_plan(n_train, ctx.epochs(self.epochs))

    def private_plan(self, n: int, epochs: int) -> PrivatePlan:
        """The run on ``n`` training samples for ``epochs`` epochs (``ctx.epochs(self.epochs)``): q = batch_size / n,
        ⌊1/q⌋ steps per epoch, σ (Opacus's search when ``target_epsilon`` is set) and δ. Refuses a ``batch_size``
        above ``n`` and a ``target_epsilon`` out of reach (``ValueError`` naming the parameter): call it before any
        work once ``n`` is known."""
        from defenses import _private

        if self.batch_size > n:
            raise ValueError(f"batch_size={self.batch_size} is more than the {n} training samples: the sample rate "
                             "batch_size / n must be at most 1")
        delta = default_delta(n) if self.delta is None else self.delta
        sample_rate = self.batch_size / n
        steps = epochs * _private.poisson_steps(sample_rate)
        sigma = self.noise_multiplier if self.target_epsilon is None else _private.noise_for(
            self.target_epsilon, self.accountant, sample_rate=sample_rate, steps=steps, delta=delta)
        return PrivatePlan(sample_rate=sample_rate, steps=steps, noise_multiplier=sigma, delta=delta)

    def fit(self, model, data: DataBundle, ctx: RunContext):
        """Train privately; ``ctx.outcome["dp"]`` receives the ``benchmark.privacy.DPGuarantee`` (level "sample")."""
        from defenses import _private

        self.check_model(model)
        plan = self.private_plan(len(data.y_train), ctx.epochs(self.epochs))
        accountant = _private.create_accountant(mechanism=self.accountant)
        recipe = Recipe(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size)  # Adam, constant rate
        _private.train_private(model, data, ctx, recipe=recipe, batch_loss=self.batch_loss(ctx),
                               noise_multiplier=plan.noise_multiplier, max_grad_norm=self.max_grad_norm,
                               accountant=accountant)
        ctx.outcome["dp"] = plan.guarantee(_private.spent(accountant, plan.delta), level="sample",
                                           accountant=self.accountant, clip=self.max_grad_norm)
        logger.info("DP-SGD: %s", ctx.outcome["dp"])
        return model
