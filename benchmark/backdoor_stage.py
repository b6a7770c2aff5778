"""A job's backdoor score: when a federated defense's Byzantine clients plant a backdoor (``byzantine_attack=
backdoor``), the trained model is run on the evaluated test samples with the trigger stamped on, and the record keeps
the attack success rate (``benchmark.backdoor_metrics``) beside clean and robust accuracy."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmark.backdoor_metrics import attack_success_rate
from benchmark.privacy import BackdoorOutcome


def backdoor_of(job: Any, x: np.ndarray, y: np.ndarray, predict: Any) -> BackdoorOutcome | None:
    """The backdoor's success on ``x`` (float32 inputs), ``y``, with ``predict`` (inputs → scores); None unless the
    job's defense has Byzantine clients running an attack with a trigger."""
    defense = job.defense.build()
    if not getattr(defense, "byzantine", 0) or not hasattr(defense, "client_attack"):
        return None
    attack = defense.client_attack()
    if not hasattr(attack, "triggered"):
        return None
    predicted = np.asarray(predict(attack.triggered(x))).argmax(axis=1)
    rate, count = attack_success_rate(predicted, y, attack.target)
    return BackdoorOutcome(target=int(attack.target), success_rate=rate, n=count)
