"""Federated adversarial training: the federated wrapper with an adversarial-training member as the local step.

Built by composition: ``federated_variant(Federated, PGDAT)`` makes a frozen dataclass whose fields are the
federated fields plus the member's own (its ``epochs``, ``lr`` and ``batch_size`` are the federated ones), and whose
``local_defense()`` builds the member from them; each client then trains on the member's per-batch objective.
"""

from __future__ import annotations

import dataclasses

from benchmark import DEFENSES
from defenses.adversarial import FGSMAT, PGDAT, TRADES
from defenses.federated import Federated

#: Member fields that the federated wrapper owns (local epochs, learning rate, batch size).
WRAPPER_OWNED = ("epochs", "lr", "batch_size")

FAT_PAPER = 'Zizzo et al. 2020, "FAT: Federated Adversarial Training", arXiv:2012.01791'


def federated_variant(name: str, member: type, *, rounds: int, doc: str) -> type:
    """A ``Federated`` subclass whose clients train with ``member``'s objective; ``rounds`` is its default."""
    member_fields = [f for f in dataclasses.fields(member) if f.name not in WRAPPER_OWNED]

    def local_defense(self):
        return member(**{f.name: getattr(self, f.name) for f in member_fields}, lr=self.lr,
                      batch_size=self.batch_size)

    cls = dataclasses.make_dataclass(
        name,
        [("rounds", int, dataclasses.field(default=rounds))]
        + [(f.name, f.type, dataclasses.field(default=f.default)) for f in member_fields],
        bases=(Federated,),
        frozen=True,
        namespace={"local_defense": local_defense, "__doc__": doc, "__module__": __name__,
                   "parameter_constraints": {**Federated.parameter_constraints,
                                             **{f.name: member.parameter_constraints[f.name] for f in member_fields}}},
    )
    return cls


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
