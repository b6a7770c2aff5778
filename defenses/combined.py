"""Composed defenses: a wrapper defense (federated training, DP-SGD, DP-FedAvg) whose inner step is an
adversarial-training member's per-batch objective.

Built by composition: ``composed(name, base, member, ...)`` makes a frozen dataclass whose fields are the base's
fields plus the member's own (its ``epochs``, ``lr`` and ``batch_size`` are the base's), and whose hook method
(``local_defense`` for the federated ones, ``member_defense`` for DP-SGD) builds the member from them; the base then
trains on the member's per-batch objective: on each client (``federated_variant``, ``Federated`` or ``DPFedAvg``),
or as DP-SGD's private step (``private_variant``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from benchmark import DEFENSES
from defenses.adversarial import FGSMAT, PGDAT, TRADES
from defenses.dp_fedavg import DPFedAvg
from defenses.dp_sgd import DPSGD
from defenses.federated import Federated

#: Member fields that the wrapper owns (local epochs, learning rate, batch size).
WRAPPER_OWNED = ("epochs", "lr", "batch_size")

FAT_PAPER = 'Zizzo et al. 2020, "FAT: Federated Adversarial Training", arXiv:2012.01791'
DP_PAPER = 'Abadi et al. 2016, "Deep learning with differential privacy", arXiv:1607.00133'


def composed(name: str, base: type, member: type, *, hook: str, defaults: Mapping[str, Any], doc: str) -> type:
    """A ``base`` subclass with ``defaults`` (new defaults of base fields) and ``member``'s own fields, whose method
    ``hook`` builds the member from them with the base's ``lr`` and ``batch_size``."""
    member_fields = [f for f in dataclasses.fields(member) if f.name not in WRAPPER_OWNED]

    def build_member(self):
        return member(**{f.name: getattr(self, f.name) for f in member_fields}, lr=self.lr,
                      batch_size=self.batch_size)

    cls = dataclasses.make_dataclass(
        name,
        [(key, type(value), dataclasses.field(default=value)) for key, value in defaults.items()]
        + [(f.name, f.type, dataclasses.field(default=f.default)) for f in member_fields],
        bases=(base,),
        frozen=True,
        namespace={hook: build_member, "__doc__": doc, "__module__": __name__,
                   "parameter_constraints": {**base.parameter_constraints,
                                             **{f.name: member.parameter_constraints[f.name] for f in member_fields}}},
    )
    return cls


def federated_variant(name: str, member: type, *, rounds: int, doc: str, base: type = Federated) -> type:
    """A ``base`` (``Federated`` or a subclass) whose clients train with ``member``'s objective; ``rounds`` is its
    default."""
    return composed(name, base, member, hook="local_defense", defaults={"rounds": rounds}, doc=doc)


def private_variant(name: str, member: type, *, doc: str) -> type:
    """DP-SGD whose private step is on ``member``'s per-batch loss (its inner maximisation runs with Opacus's
    per-sample hooks off: ``defenses._private.AttackHooksOff``)."""
    return composed(name, DPSGD, member, hook="member_defense", defaults={}, doc=doc)


FedAT = DEFENSES.register("fed-at", "fat")(federated_variant(
    "FedAT", PGDAT, rounds=80,
    doc=f"Federated adversarial training: FedAvg whose clients run PGD-AT locally ({FAT_PAPER}).\n\n"
        "Parameters: the federated ones (clients, rounds, aggregation, …) and PGD-AT's (eps, step, steps)."))

FedFGSMAT = DEFENSES.register("fed-fgsm-at")(federated_variant(
    "FedFGSMAT", FGSMAT, rounds=80,
    doc=f"Federated adversarial training with fast FGSM-AT as the local step ({FAT_PAPER}; Wong et al. 2020)."))

FedTRADES = DEFENSES.register("fed-trades")(federated_variant(
    "FedTRADES", TRADES, rounds=80,
    doc=f"Federated adversarial training with TRADES as the local step ({FAT_PAPER}; Zhang et al. 2019)."))

DPPGDAT = DEFENSES.register("dp-pgd-at")(private_variant(
    "DPPGDAT", PGDAT,
    doc=f"DP-SGD on PGD-AT's batch loss ({DP_PAPER}; Madry et al. 2018): each Poisson batch is replaced by PGD "
        "examples crafted with Opacus's per-sample hooks off, then the private step (clipped per-sample gradients "
        "plus noise) is taken on them. The guarantee is DP-SGD's: the attack reads only the sample it perturbs.\n\n"
        "Parameters: DP-SGD's (noise_multiplier, max_grad_norm, target_epsilon, delta, accountant, epochs, lr, "
        "batch_size) and PGD-AT's (eps, step, steps)."))

DPTRADES = DEFENSES.register("dp-trades")(private_variant(
    "DPTRADES", TRADES,
    doc=f"DP-SGD on TRADES's batch loss ({DP_PAPER}; Zhang et al. 2019): the KL inner maximisation runs with "
        "Opacus's per-sample hooks off; each sample's CE + β·KL gradient is clipped and noised.\n\n"
        "Parameters: DP-SGD's and TRADES's (beta, eps, step, steps)."))

DPFedAT = DEFENSES.register("dp-fed-at")(federated_variant(
    "DPFedAT", PGDAT, rounds=DPFedAvg.rounds, base=DPFedAvg,
    doc="DP-FedAvg whose clients run PGD-AT locally (McMahan et al. 2018; " + FAT_PAPER + "): client-level "
        "differential privacy of federated adversarial training.\n\n"
        "Parameters: DP-FedAvg's (clip, noise_multiplier, delta, accountant, clients, rounds, fraction, …) and "
        "PGD-AT's (eps, step, steps)."))
