"""DP-FedAvg (McMahan et al. 2018): federated averaging with client-level differential privacy.

The federated loop (``defenses/federated.py``) with two of its steps replaced: clients come by Poisson sampling
(``choose_clients``), and the server's step is the Gaussian mechanism on the sum of the clipped updates
(``server_update``, the maths in ``defenses/aggregation.py``). Opacus's accountant turns the client sample rate, σ
and the rounds into the (ε, δ) guarantee for a client's whole data.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from benchmark import DEFENSES
from benchmark.api import DataBundle, RunContext
from benchmark.constraints import Options
from defenses import aggregation
from defenses.dp_sgd import ACCOUNTANTS, CLIP, DELTA, NOISE, PrivatePlan, check_private_model, default_delta
from defenses.federated import Federated

logger = logging.getLogger(__name__)


@DEFENSES.register("dp-fedavg", "dp-federated")
@dataclass(frozen=True)
class DPFedAvg(Federated):
    """DP-FedAvg (McMahan et al. 2018, arXiv:1710.06963), "Learning differentially private recurrent language
    models": federated averaging with client-level differential privacy.

    Each round every client takes part independently with probability q = ``fraction`` (Poisson sampling) and
    trains locally as in ``fedavg``; the server clips each update (new weights − global weights) to L2 norm
    ``clip``, sums them, adds N(0, σ²·clip²) per coordinate and divides by the expected client count q·N. Opacus's
    accountant gives the (ε, δ) guarantee for any one client's data over ``rounds`` rounds. The aggregation is this
    noised mean (``aggregation`` must stay ``mean``); Byzantine clients' updates are clipped like the others.

    Args:
        clip: the L2 norm each client's update is clipped to (S).
        noise_multiplier: σ, the noise's standard deviation as a multiple of ``clip``.
        delta: the δ of the guarantee; none: min(1e-5, 1/clients).
        accountant: Opacus's rdp or prv.
        clients, rounds, local_epochs, fraction (q), partition, alpha, mu, byzantine…, lr, batch_size: as fedavg.
    """

    clients: int = 100
    rounds: int = 20
    local_epochs: int = 5
    fraction: float = 0.5
    clip: float = 0.5
    noise_multiplier: float = 2.0
    delta: float | None = None
    accountant: str = "rdp"

    parameter_constraints: ClassVar[dict] = {**Federated.parameter_constraints, "clip": CLIP,
                                             "noise_multiplier": NOISE, "delta": DELTA,
                                             "accountant": Options(*ACCOUNTANTS)}
    private: ClassVar[bool] = True  # records a DPGuarantee in ctx.outcome["dp"]; check_model before any work

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.aggregation != "mean":
            raise ValueError(f"aggregation must be mean: the server adds the noised sum of the clipped updates, got "
                             f"{self.aggregation}")

    def check_model(self, model: Any) -> None:
        """Refuse a model whose training the guarantee would not cover, naming the fix (``norm=group``): the update a
        client sends is its parameters' change, but BatchNorm's running statistics are buffers, outside the clipped
        and noised update, that the simulation's shared network keeps from the last client trained."""
        check_private_model(model)

    def check_plan(self, n_train: int, ctx: RunContext) -> None:
        """Before any work: ``private_plan``'s refusals at ``ctx``'s round budget."""
        self.private_plan(ctx.epochs(self.rounds))

    def private_plan(self, rounds: int) -> PrivatePlan:
        """q = ``fraction``, ``rounds`` noisy rounds, σ and δ (default min(1e-5, 1/clients))."""
        delta = default_delta(self.clients) if self.delta is None else self.delta
        return PrivatePlan(sample_rate=self.fraction, steps=rounds, noise_multiplier=self.noise_multiplier,
                           delta=delta)

    def choose_clients(self, rng: np.random.Generator) -> np.ndarray:
        """Poisson sampling: each client independently with probability q = ``fraction`` (possibly none)."""
        return np.flatnonzero(rng.random(self.clients) < self.fraction)

    def server_update(self, updates: np.ndarray, sizes: np.ndarray, rng: np.random.Generator, state: Any = None
                      ) -> np.ndarray:
        """(Σ clip(u) + N(0, σ²·clip²)) / (q·N), whatever the number of clients that came (``sizes`` unused)."""
        return aggregation.private_mean(updates, clip=self.clip, noise_multiplier=self.noise_multiplier,
                                        expected_clients=self.fraction * self.clients, rng=rng)

    def released_update(self, update: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """What the round publishes about a client's ``update``: clip(update) + N(0, σ²·clip²). In McMahan et al.'s
        central model the noise is added to the round's sum, not to each update, so this is the published noised sum
        in the worst case for the victim: it is alone in its round (every other client's term is zero), and the
        division by q·N, a public constant, is undone by the attacker."""
        return aggregation.noised_sum(update[None, :], clip=self.clip, noise_multiplier=self.noise_multiplier,
                                      rng=rng)

    def fit(self, model, data: DataBundle, ctx: RunContext):
        """Train as ``fedavg`` with the private server step; ``ctx.outcome["dp"]`` receives the
        ``benchmark.privacy.DPGuarantee`` (level "client")."""
        from defenses import _private

        self.check_model(model)
        trained = super().fit(model, data, ctx)
        plan = self.private_plan(ctx.epochs(self.rounds))
        spent = _private.epsilon(self.accountant, noise_multiplier=plan.noise_multiplier,
                                 sample_rate=plan.sample_rate, steps=plan.steps, delta=plan.delta)
        ctx.outcome["dp"] = plan.guarantee(spent, level="client", accountant=self.accountant, clip=self.clip)
        logger.info("DP-FedAvg: %s", ctx.outcome["dp"])
        return trained
