"""The Byzantine clients of the federated defenses: which client attack (``benchmark.CLIENT_ATTACKS``) they run, with
which parameters, and where in a round it acts.

The attackers are clients ``0 … byzantine−1`` (``fixed``) or drawn afresh each round (``round``). A data attack
(label flipping, a backdoor) poisons an attacker's shard once, from a stream of its own, and the attacker trains on
it (with its own epochs and rate, if the attack sets them); a backdoor also boosts the attacker's update (model
replacement). An update attack replaces the attackers' updates after the round's training: an omniscient one (ALIE,
IPM, min-max, min-sum) reads every honest update of the round, as the papers assume; the naive ones (sign-flip,
gaussian, scale) only the attackers' own. A round's attackers come first among its clients.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmark import CLIENT_ATTACKS
from benchmark.api import DataBundle
from benchmark.constraints import check_params
from benchmark.registry import did_you_mean

#: The federated defense's own fields the naive attacks read when ``byzantine_params`` does not set them.
NAIVE_FIELDS = {"scale": "byzantine_scale", "std": "byzantine_std"}
POISON_SALT = 0xBAD
SAMPLING_SALT = 0xB12
SAMPLINGS = ("fixed", "round")


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
    for key, own_field in NAIVE_FIELDS.items():
        if key in fields and key not in params:
            params[key] = getattr(defense, own_field)
    return cls(**check_params(f"byzantine_params: {name}", cls.parameter_constraints, params, parse=True))


@dataclass
class Attackers:
    """Who attacks in a round, and on what data. ``fixed``: clients ``0 … count−1`` whenever drawn; ``round``: each
    round ``min(count, drawn)`` of the round's clients, drawn afresh from a stream of their own. A data attack's
    poisoned shard is made the first time its client attacks, from a stream keyed by (seed, client), so a client
    poisons the same way whichever round or sampling makes it an attacker."""

    attack: Any
    sampling: str
    count: int
    data: DataBundle
    shards: list[np.ndarray]
    seed: int
    poisoned: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = np.random.default_rng([self.seed, SAMPLING_SALT])

    def order(self, chosen: np.ndarray) -> tuple[np.ndarray, int]:
        """The round's clients with its attackers first (each group sorted), and how many attack."""
        chosen = np.sort(np.asarray(chosen))
        if self.sampling == "fixed":
            bad = chosen[chosen < self.count]
        else:
            bad = np.sort(self.rng.choice(chosen, size=min(self.count, len(chosen)), replace=False))
        return np.concatenate([bad, np.setdiff1d(chosen, bad)]).astype(chosen.dtype), len(bad)

    def data_of(self, client: int) -> tuple[np.ndarray, np.ndarray]:
        """An attacking client's training data: its shard as a data attack leaves it (as it is for an update
        attack)."""
        shard = self.shards[client]
        x, y = self.data.x_train[shard], self.data.y_train[shard]
        if self.attack is None or self.attack.kind != "data":
            return x, y
        if client not in self.poisoned:
            rng = np.random.default_rng([self.seed, POISON_SALT, client])
            self.poisoned[client] = self.attack.poison(x, y, rng, nb_classes=self.data.nb_classes)
        return self.poisoned[client]


def corrupt(updates: np.ndarray, attack: Any, n_attackers: int, rng: np.random.Generator) -> np.ndarray:
    """The round's updates with the first ``n_attackers`` replaced by what an update attack crafts (unchanged for a
    data attack, or a round without attackers)."""
    if attack is None or attack.kind != "update" or n_attackers == 0:
        return updates
    corrupted = updates.copy()
    corrupted[:n_attackers] = attack.craft(updates, n_attackers=n_attackers, rng=rng)
    return corrupted
