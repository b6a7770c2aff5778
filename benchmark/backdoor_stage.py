"""What a federated job's record says of its Byzantine clients: who they were (``ClientThreat``: the attack, its
parameters, whether it was omniscient), and, when they plant a backdoor (``byzantine_attack=backdoor``), the
backdoor's success: the trained model is run on the evaluated test samples with the trigger stamped on, and the
record keeps the attack success rate (``benchmark.backdoor_metrics``) beside clean and robust accuracy."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from benchmark.backdoor_metrics import attack_success_rate
from benchmark.privacy import BackdoorOutcome, ClientThreat


def client_attack_of(job: Any) -> tuple[Any, Any] | None:
    """The job's defense and the client attack its Byzantine clients run; None for a defense without any."""
    defense = job.defense.build()
    if not getattr(defense, "byzantine", 0) or not hasattr(defense, "client_attack"):
        return None
    return defense, defense.client_attack()


def threat_of(job: Any) -> ClientThreat | None:
    """The job's Byzantine clients as the record keeps them; None for a defense without any."""
    found = client_attack_of(job)
    if found is None:
        return None
    defense, attack = found
    return ClientThreat(attack=defense.byzantine_attack, params=dataclasses.asdict(attack), kind=attack.kind,
                        omniscient=bool(attack.omniscient), attackers=defense.byzantine,
                        sampling=defense.byzantine_sampling, attack_start=defense.attack_start)


def backdoor_of(job: Any, x: np.ndarray, y: np.ndarray, predict: Any) -> BackdoorOutcome | None:
    """The backdoor's success on ``x`` (float32 inputs), ``y``, with ``predict`` (inputs → scores); None unless the
    job's defense has Byzantine clients running an attack with a trigger."""
    found = client_attack_of(job)
    if found is None:
        return None
    attack = found[1]
    if not hasattr(attack, "triggered"):
        return None
    predicted = np.asarray(predict(attack.triggered(x))).argmax(axis=1)
    rate, count = attack_success_rate(predicted, y, attack.target)
    return BackdoorOutcome(target=int(attack.target), success_rate=rate, n=count)
