"""The Byzantine clients of the federated defenses: which client attack (``benchmark.CLIENT_ATTACKS``) they run, with
which parameters, and where in a round it acts.

Clients ``0 … byzantine−1`` are the attackers. A data attack (label flipping, a backdoor) poisons each attacker's
shard once, before training, from a stream of its own; a backdoor also boosts the attacker's update (model
replacement). An update attack replaces the attackers' updates after the round's training: an omniscient one (ALIE,
IPM, min-max, min-sum) reads every honest update of the round, as the papers assume; the naive ones (sign-flip,
gaussian, scale) only the attackers' own. A round's clients are sorted, so its attackers come first.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from benchmark import CLIENT_ATTACKS
from benchmark.api import DataBundle
from benchmark.constraints import check_params
from benchmark.registry import did_you_mean

#: The federated defense's own fields the naive attacks read when ``byzantine_params`` does not set them.
NAIVE_FIELDS = {"scale": "byzantine_scale", "std": "byzantine_std"}
POISON_SALT = 0xBAD


def parse_params(text: str) -> dict[str, str]:
    """``"eps=10;direction=sign"`` → ``{"eps": "10", "direction": "sign"}`` (``;`` separates: plugin text already
    uses commas); a malformed item is refused naming ``byzantine_params``."""
    params: dict[str, str] = {}
    for item in (part.strip() for part in text.split(";") if part.strip()):
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or key.strip() in params:
            problem = "is given twice" if sep and key.strip() in params else "is not key=value"
            raise ValueError(f"byzantine_params: {item!r} {problem} (write key=value;key=value)")
        params[key.strip()] = value.strip()
    return params


def build_attack(name: str, params_text: str, defense: Any) -> Any:
    """The client attack ``name`` with the parameters of ``params_text`` (checked against its constraint table;
    an unknown one is refused with the closest name), the naive ones reading ``defense``'s scale and std."""
    cls = CLIENT_ATTACKS.get(name)
    params: dict[str, Any] = parse_params(params_text)
    fields = [f.name for f in dataclasses.fields(cls) if f.init]
    for key in params:
        if key not in fields:
            hint = did_you_mean(key, fields, template="; did you mean {}?") or f"; it takes {', '.join(fields)}"
            raise ValueError(f"byzantine_params: {name} has no parameter {key!r}{hint}")
    for key, field in NAIVE_FIELDS.items():
        if key in fields and key not in params:
            params[key] = getattr(defense, field)
    return cls(**check_params(f"byzantine_params: {name}", cls.parameter_constraints, params, parse=True))


def poisoned_shards(attack: Any, data: DataBundle, shards: list[np.ndarray], attackers: int, seed: int
                    ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Each attacker's training data as a data attack leaves it (none for an update attack)."""
    if attack is None or attack.kind != "data":
        return {}
    rng = np.random.default_rng([seed, POISON_SALT])
    return {client: attack.poison(data.x_train[shards[client]], data.y_train[shards[client]], rng,
                                  nb_classes=data.nb_classes) for client in range(attackers)}


def corrupt(updates: np.ndarray, attack: Any, n_attackers: int, rng: np.random.Generator) -> np.ndarray:
    """The round's updates with the first ``n_attackers`` replaced by what an update attack crafts (unchanged for a
    data attack, or a round without attackers)."""
    if attack is None or attack.kind != "update" or n_attackers == 0:
        return updates
    corrupted = updates.copy()
    corrupted[:n_attackers] = attack.craft(updates, n_attackers=n_attackers, rng=rng)
    return corrupted
