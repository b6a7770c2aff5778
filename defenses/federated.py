"""Federated training, simulated in one process: N clients, rounds of local training, robust aggregation, and
optional Byzantine clients.

Each round a ``fraction`` of the clients (drawn with the seed) starts from the global model, trains
``local_epochs`` on its own shard with the shared training loop, and sends its update (new weights − global
weights); the server adds the aggregate of the updates to the global model. The maths (partition, aggregation,
corruption) are pure functions in ``defenses/partition.py``, ``defenses/aggregation.py`` and below.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from benchmark import CLIENT_ATTACKS, DEFENSES
from benchmark.api import DataBundle, RunContext
from benchmark.constraints import Constrained, Interval, Options, Text
from benchmark.recipes import Recipe
from defenses import aggregation, byzantine, partition
from defenses._base import LoopDefense
from defenses.byzantine import SAMPLINGS

AGGREGATIONS = ("mean", "median", "trimmed-mean", "krum", "multi-krum", "bulyan", "norm-bounding",
                "centered-clipping", "fltrust")
ROOT_SALT = 0x5EED
#: The rules that assume at most ``f`` Byzantine clients per round, and the clients per round each needs: a·f + 3.
F_RULES = {"krum": 2, "multi-krum": 2, "bulyan": 4}
PARTITIONS = ("iid", "dirichlet")
LOCAL_OPTIMISERS = ("adam", "sgd")
def aggregate(rule: str, updates: np.ndarray, weights: np.ndarray, *, trim_ratio: float, f: int) -> np.ndarray:
    """Apply the aggregation ``rule`` (one of ``AGGREGATIONS``) to the stacked client updates."""
    if rule == "mean":
        return aggregation.mean(updates, weights)
    if rule == "median":
        return aggregation.median(updates)
    if rule == "trimmed-mean":
        return aggregation.trimmed_mean(updates, trim_ratio)
    if rule == "krum":
        return aggregation.krum(updates, f)
    if rule == "multi-krum":
        return aggregation.multi_krum(updates, f, weights=weights)
    if rule == "bulyan":
        return aggregation.bulyan(updates, f)
    raise ValueError(f"unknown aggregation {rule!r}")


@dataclass(frozen=True)
class RoundState:
    """What the server carries from round to round: the previous aggregate (centered clipping's center) and this
    round's own update on its root set (FLTrust's reference; None for other rules)."""

    center: np.ndarray
    reference: np.ndarray | None = None


@DEFENSES.register("fedavg", "federated")
@dataclass(frozen=True)
class Federated(Constrained):
    """Federated averaging over simulated clients (McMahan et al. 2017, arXiv:1602.05629), with FedProx (Li et al.
    2020, arXiv:1812.06127) and robust aggregation as options.

    Args:
        clients: number of simulated clients.
        rounds: communication rounds.
        local_epochs: epochs each selected client trains per round.
        fraction: share of the clients selected each round.
        partition: ``iid`` or ``dirichlet`` (label skew, see ``alpha``).
        alpha: Dirichlet concentration; smaller is more skewed.
        aggregation: mean (FedAvg), median, trimmed-mean, krum, multi-krum or bulyan.
        trim_ratio: β of trimmed-mean: the share dropped at each end.
        f: the number of Byzantine clients per round krum, multi-krum and bulyan assume; at least the Byzantine
            clients a round can draw (``min(byzantine, clients per round)``), or the defense is refused.
        mu: FedProx proximal weight (0 = FedAvg).
        byzantine: how many clients attack (see ``byzantine_sampling``).
        byzantine_attack: the client attack the Byzantine clients run (``bench list`` shows them: sign-flip,
            gaussian, scale, alie, ipm, min-max, min-sum, label-flip, backdoor; ``defenses/byzantine.py``).
        byzantine_scale: multiplier of sign-flip and scale updates.
        byzantine_std: standard deviation of gaussian updates.
        byzantine_params: the attack's own parameters, ``key=value;key=value`` (e.g. ``eps=10`` for ipm).
        byzantine_sampling: ``fixed`` (clients 0 … byzantine−1 attack whenever drawn) or ``round`` (each round,
            ``min(byzantine, clients per round)`` of its clients, drawn afresh, attack).
        attack_start: the round from which the Byzantine clients attack (before it they train honestly): a
            backdoor by model replacement is planted in a model near convergence (Bagdasaryan et al. 2020).
        lr: learning rate of the local training.
        batch_size: samples per local optimiser step.
        optimiser: the clients' local optimiser: ``adam`` (default; a fresh state each round) or ``sgd`` (plain SGD,
            no momentum: McMahan et al.'s FedAvg, and the setting of the Byzantine-attack papers).
    """

    clients: int = 10
    rounds: int = 40
    local_epochs: int = 1
    fraction: float = 1.0
    partition: str = "iid"
    alpha: float = 0.5
    aggregation: str = "mean"
    trim_ratio: float = 0.2
    f: int = 2
    mu: float = 0.0
    byzantine: int = 0
    byzantine_attack: str = "sign-flip"
    byzantine_scale: float = 10.0
    byzantine_std: float = 1.0
    byzantine_params: str = ""
    byzantine_sampling: str = "fixed"
    attack_start: int = 0
    norm_bound: float = 1.0
    norm_noise: float = 0.0
    cc_tau: float = 1.0
    cc_iterations: int = 1
    root_samples: int = 100
    lr: float = 1e-3
    batch_size: int = 32
    optimiser: str = "adam"

    parameter_constraints: ClassVar[dict] = {
        "clients": Interval(int, 1, 1_000),
        "rounds": Interval(int, 1, 10_000),
        "local_epochs": Interval(int, 1, 10_000),
        "fraction": Interval(float, 0, 1, closed="right"),
        "partition": Options(*PARTITIONS),
        "alpha": Interval(float, 0, None, closed="neither"),
        "aggregation": Options(*AGGREGATIONS),
        "trim_ratio": Interval(float, 0, 0.5, closed="left"),
        "f": Interval(int, 0, 1_000),
        "mu": Interval(float, 0, None),
        "byzantine": Interval(int, 0, 1_000),
        "byzantine_attack": Options(*CLIENT_ATTACKS.names()),
        "byzantine_scale": Interval(float, 0, None),
        "byzantine_std": Interval(float, 0, None),
        "byzantine_params": Text(),
        "byzantine_sampling": Options(*SAMPLINGS),
        "attack_start": Interval(int, 0, 10_000),
        "norm_bound": Interval(float, 0, None, closed="neither"),
        "norm_noise": Interval(float, 0, None),
        "cc_tau": Interval(float, 0, None, closed="neither"),
        "cc_iterations": Interval(int, 1, 100),
        "root_samples": Interval(int, 0, 100_000),
        "lr": LoopDefense.parameter_constraints["lr"],
        "batch_size": LoopDefense.parameter_constraints["batch_size"],
        "optimiser": Options(*LOCAL_OPTIMISERS),
    }

    #: Fields added after results were stored: hashed only when set, so older train hashes hold (``plan``).
    hashed_when_set: ClassVar[tuple[str, ...]] = ("byzantine_params", "byzantine_sampling", "attack_start",
                                                  "norm_bound", "norm_noise", "cc_tau", "cc_iterations",
                                                  "root_samples", "optimiser")

    def __post_init__(self) -> None:
        super().__post_init__()
        self.client_attack()  # its parameters are checked now, before any work
        if self.aggregation == "fltrust" and self.root_samples == 0:
            raise ValueError("fltrust scores the clients against the server's own update on a root set: set "
                             "root_samples ≥ 1 (Cao et al. use 100)")
        if self.byzantine > self.clients:
            raise ValueError(f"byzantine must be between 0 and clients = {self.clients}, got {self.byzantine}")
        n, f = self.clients_per_round, self.f
        factor = F_RULES.get(self.aggregation)
        if factor and n < factor * f + 3:
            raise ValueError(f"{self.aggregation} needs n ≥ {factor}f + 3 clients per round: n = {n}, f = {f} "
                             f"needs n ≥ {factor * f + 3}")
        self.check_byzantine_tolerance()

    def check_byzantine_tolerance(self) -> None:
        """Refuse a robust rule told to tolerate fewer Byzantine clients than one round can draw: it would average
        the corrupted updates in (krum with f = 0 collapses to chance). The message names the fix."""
        n = self.clients_per_round
        worst = min(self.byzantine, n)  # the Byzantine clients one round can draw
        where = f"up to {worst} of the {n} clients per round are Byzantine (byzantine = {self.byzantine})"
        factor = F_RULES.get(self.aggregation)
        if factor and self.f < worst:
            fix = f"set f={worst}" + (f" and clients per round ≥ {factor * worst + 3}" if n < factor * worst + 3
                                      else "")
            raise ValueError(f"{self.aggregation} assumes at most f = {self.f} Byzantine clients per round, but "
                             f"{where}: {fix}")
        if self.aggregation == "trimmed-mean" and int(self.trim_ratio * n) < worst:
            ratio = next((k / 1000 for k in range(1, 500) if int(k / 1000 * n) >= worst), None)
            fix = f"set trim_ratio={ratio}" if ratio else "use fewer Byzantine clients or more clients per round"
            raise ValueError(f"trimmed-mean drops ⌊trim_ratio·n⌋ = {int(self.trim_ratio * n)} updates at each "
                             f"end, but {where}: {fix}")

    def check_data(self, data: DataBundle) -> None:
        """Before any work: the Byzantine clients' attack fits the data (a backdoor's target among the labels, its
        trigger inside the image), and FLTrust's root set leaves every client data (``ValueError`` naming it)."""
        attack = self.client_attack()
        if self.byzantine and hasattr(attack, "check"):
            attack.check(data.input_shape, data.nb_classes)
        self.split_root(data)

    def client_attack(self):
        """The attack the Byzantine clients run (``defenses/byzantine.py``)."""
        return byzantine.build_attack(self.byzantine_attack, self.byzantine_params, self)

    @property
    def clients_per_round(self) -> int:
        return max(1, round(self.fraction * self.clients))

    def local_defense(self):
        """The defense whose per-batch objective each client trains with (plain cross-entropy here)."""
        from defenses.standard import Standard

        return Standard(lr=self.lr, batch_size=self.batch_size)

    def shards(self, labels: np.ndarray, seed: int) -> list[np.ndarray]:
        if self.partition == "iid":
            return partition.iid_partition(len(labels), self.clients, seed)
        return partition.dirichlet_partition(labels, self.clients, self.alpha, seed)

    def fit(self, model, data: DataBundle, ctx: RunContext):
        import torch
        from torch.nn.utils import parameters_to_vector, vector_to_parameters

        clients_data, root = self.split_root(data)
        shards = self.shards(clients_data.y_train, ctx.seed)
        rng = np.random.default_rng([ctx.seed, 0xFED])
        attack = self.client_attack() if self.byzantine else None
        attackers = byzantine.Attackers(attack, sampling=self.byzantine_sampling, count=self.byzantine,
                                        data=clients_data, shards=shards, seed=ctx.seed)
        model.to(torch.device(ctx.device))
        global_weights = parameters_to_vector(model.parameters()).detach().cpu().double().numpy()
        state = RoundState(center=np.zeros_like(global_weights))
        rounds = ctx.epochs(self.rounds)
        for round_index in range(rounds):
            acting = attack if self.attacks_in(round_index, rounds, attack) else None
            chosen, n_bad = attackers.order(self.choose_clients(rng)) if acting else (self.choose_clients(rng), 0)
            updates, sizes = [], []
            for position, client in enumerate(chosen):
                bad = position < n_bad
                x, y = attackers.data_of(int(client)) if bad else self.client_data(clients_data, shards[client])
                update = self.local_update(model, global_weights, x, y, data, ctx, (round_index, int(client)),
                                           recipe=self.recipe(acting if bad else None))
                if bad and hasattr(acting, "boost_update"):  # model replacement
                    update = acting.boost_update(update, clients_per_round=len(chosen), attackers=n_bad)
                updates.append(update)
                sizes.append(len(shards[client]))
            stacked = np.array(updates).reshape(len(updates), len(global_weights))  # (0, d) when no client came
            stacked = byzantine.corrupt(stacked, acting, n_bad, rng)
            if root is not None:  # FLTrust: the server's own update on its root set, from the same weights
                state = dataclasses.replace(state, reference=self.local_update(
                    model, global_weights, root.x_train, root.y_train, data, ctx, (round_index, ROOT_SALT)))
            aggregate_update = self.server_update(stacked, np.asarray(sizes), rng, state)
            state = dataclasses.replace(state, center=aggregate_update)
            global_weights = global_weights + aggregate_update
        vector_to_parameters(torch.from_numpy(global_weights).float().to(ctx.device), model.parameters())
        model.eval()
        return model

    def attacks_in(self, round_index: int, rounds: int, attack) -> bool:
        """Whether the Byzantine clients attack in ``round_index`` of ``rounds``: from ``attack_start`` on, and,
        for an attack with ``quiet_rounds`` (a backdoor), not in the last ones (honest again there)."""
        quiet = getattr(attack, "quiet_rounds", 0)
        return attack is not None and self.attack_start <= round_index < rounds - quiet

    @staticmethod
    def client_data(data: DataBundle, shard: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return data.x_train[shard], data.y_train[shard]

    def recipe(self, attack=None) -> Recipe:
        """The local training recipe (``optimiser`` at a constant rate): the defense's, or an attacker's own epochs and
        rate where its attack sets them (a backdoor's ``local_epochs`` and ``lr``; 0 keeps the defense's)."""
        epochs = getattr(attack, "local_epochs", 0) or self.local_epochs
        return Recipe(optimiser=self.optimiser, momentum=0.0, epochs=epochs, lr=getattr(attack, "lr", 0.0) or self.lr,
                      batch_size=self.batch_size)

    def local_update(self, model, global_weights: np.ndarray, x: np.ndarray, y: np.ndarray, data: DataBundle,
                     ctx: RunContext, key: tuple[int, int], recipe: Recipe | None = None) -> np.ndarray:
        """One client's update (new weights − ``global_weights``) after training on ``x``, ``y`` with the local
        objective and ``recipe`` (default: the defense's), its randomness drawn from the run's seed and ``key``
        (round, client)."""
        import torch
        from torch.nn.utils import parameters_to_vector, vector_to_parameters

        from defenses._train import train

        vector_to_parameters(torch.from_numpy(global_weights).float().to(ctx.device), model.parameters())
        local = DataBundle(data.name, x, y, data.x_test, data.y_test, data.nb_classes)
        client_ctx = dataclasses.replace(ctx, seed=int(np.random.SeedSequence([ctx.seed, *key]).generate_state(1)[0]))
        local_loss = self.local_defense().batch_loss(ctx)
        loss = local_loss if self.mu == 0 else self.proximal(local_loss, model)
        train(model, local, client_ctx, recipe=recipe or self.recipe(), batch_loss=loss)
        return parameters_to_vector(model.parameters()).detach().cpu().double().numpy() - global_weights

    def split_root(self, data: DataBundle) -> tuple[DataBundle, DataBundle | None]:
        """The clients' data, and the server's root set for FLTrust (the last ``root_samples`` training samples,
        which no client holds; None for every other rule)."""
        if self.aggregation != "fltrust":
            return data, None
        cut = len(data.y_train) - self.root_samples
        if cut < self.clients:
            raise ValueError(f"root_samples={self.root_samples} leaves {cut} training samples for "
                             f"{self.clients} clients")
        clients = DataBundle(data.name, data.x_train[:cut], data.y_train[:cut], data.x_test, data.y_test,
                             data.nb_classes)
        return clients, DataBundle(data.name, data.x_train[cut:], data.y_train[cut:], data.x_test, data.y_test,
                                   data.nb_classes)

    def choose_clients(self, rng: np.random.Generator) -> np.ndarray:
        """This round's clients, in order: ``clients_per_round`` drawn without replacement."""
        return np.sort(rng.choice(self.clients, self.clients_per_round, replace=False))

    def server_update(self, updates: np.ndarray, sizes: np.ndarray, rng: np.random.Generator, state: RoundState
                      ) -> np.ndarray:
        """What the server adds to the global weights: the aggregation rule over the round's stacked updates
        (``state``: the previous aggregate, centered clipping's center; the server's own update, FLTrust's)."""
        if self.aggregation == "norm-bounding":
            return aggregation.norm_bounded_mean(updates, sizes, bound=self.norm_bound, noise_std=self.norm_noise,
                                                 rng=rng)
        if self.aggregation == "centered-clipping":
            return aggregation.centered_clipping(updates, center=state.center, tau=self.cc_tau,
                                                 iterations=self.cc_iterations)
        if self.aggregation == "fltrust":
            return aggregation.fltrust(updates, state.reference)
        return aggregate(self.aggregation, updates, sizes, trim_ratio=self.trim_ratio, f=self.f)

    def released_update(self, update: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """What a client sends the server for its honest ``update`` (new weights − global weights): the update
        itself. A private variant clips and noises it here; gradient inversion attacks what this returns."""
        return update

    def proximal(self, local_loss, model):
        """FedProx: the local objective plus (μ/2)·‖w − w_global‖², w_global frozen at the start of the round."""
        anchor = [p.detach().clone() for p in model.parameters()]

        def loss(net, x, y):
            drift = sum(((p - a) ** 2).sum() for p, a in zip(net.parameters(), anchor, strict=True))
            return local_loss(net, x, y) + 0.5 * self.mu * drift

        return loss
