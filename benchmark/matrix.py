"""The aggregation × client-attack matrix of the federated defenses (``bench matrix``): which defense specs a matrix
runs, and the table its leaderboard rows make (``benchmark/render/matrix.py`` writes it in every format).

Per client data partition (``iid``, ``dirichlet:ALPHA``), rows are aggregation rules, columns client attacks
(``none``: no Byzantine client), each cell the clean accuracy of the trained global model (mean ± sd over seeds) and,
for a backdoor, its success rate; each row's worst case is its lowest clean accuracy over the attacks, with the
attack that caused it. The specs are ordinary ``fedavg`` specs, so every cell is a stored, cached job like any other,
and the rows are ordinary leaderboard rows (``bench check`` holds them).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from benchmark.compare import backdoor_of
from benchmark.errors import ConfigError
from benchmark.registry import did_you_mean
from benchmark.stats import mean_sd

NO_ATTACK = "none"
IID, DIRICHLET = "iid", "dirichlet"
DIRICHLET_ALPHA = 0.5  # fedavg's default α (defenses/federated.py), what a plain ``dirichlet`` means
#: fedavg parameters that ``--partition`` sets, so ``--fedavg`` may not.
PARTITION_KEYS = ("partition", "alpha")


@dataclass(frozen=True, kw_only=True)
class Partition:
    """How the clients' data is split: ``iid``, or ``dirichlet`` label skew with concentration ``alpha``."""

    name: str
    alpha: float | None = None

    @property
    def key(self) -> str:
        """As ``--partition`` writes it: ``iid``, ``dirichlet:0.5``."""
        return self.name if self.alpha is None else f"{self.name}:{self.alpha:g}"

    @property
    def spec(self) -> str:
        """The fedavg parameters that set it (none for ``iid``, fedavg's default)."""
        return "" if self.alpha is None else f"partition={self.name},alpha={self.alpha:g}"


def parse_partitions(text: str) -> list[Partition]:
    """``"iid,dirichlet:0.1"`` → the partitions, in order (a plain ``dirichlet`` has α = ``DIRICHLET_ALPHA``);
    a ``ConfigError`` naming ``--partition`` for anything else."""
    partitions = []
    for item in (part.strip() for part in text.split(",")):
        name, sep, value = (piece.strip() for piece in item.partition(":"))
        if name == IID and not sep:
            partitions.append(Partition(name=IID))
        elif name == DIRICHLET:
            partitions.append(Partition(name=DIRICHLET, alpha=parse_alpha(value) if sep else DIRICHLET_ALPHA))
        else:
            hint = did_you_mean(name, (IID, DIRICHLET)) if name not in (IID, DIRICHLET) else ""
            raise ConfigError(f"--partition: expected iid, dirichlet or dirichlet:ALPHA, got {item!r}"
                              + (f"; {hint}" if hint else ""))
    if len({partition.key for partition in partitions}) < len(partitions):
        raise ConfigError(f"--partition: a partition is given twice in {text!r}")
    return partitions


def parse_alpha(text: str) -> float:
    try:
        alpha = float(text)
    except ValueError:
        alpha = math.nan
    if not (math.isfinite(alpha) and alpha > 0):
        raise ConfigError(f"--partition: dirichlet's α must be a number > 0, got {text!r}")
    return alpha


def partition_of(params: dict[str, Any]) -> str:
    """The partition key of a fedavg row's ``defense_params``."""
    if params.get("partition", IID) == IID:
        return IID
    return Partition(name=str(params["partition"]), alpha=float(params.get("alpha", DIRICHLET_ALPHA))).key


def partition_title(key: str) -> str:
    """``dirichlet:0.5`` → ``dirichlet α=0.5`` (what a table's heading shows)."""
    name, _, alpha = key.partition(":")
    return f"{name} α={alpha}" if alpha else name


def attack_label(name: str, params: str) -> str:
    """A column's label: ``ipm``, or ``ipm(eps=10)`` with its parameters."""
    return f"{name}({params.replace(';', ',')})" if params else name


def column(text: str) -> str:
    """The column label of an attack as ``--client-attack`` gives it."""
    name, params = parse_attack(text)
    return name if name == NO_ATTACK else attack_label(name, params)


def parse_attack(text: str) -> tuple[str, str]:
    """``"ipm:eps=10;..."`` → ``("ipm", "eps=10;...")``; ``"none"`` → no Byzantine client."""
    name, _, params = text.partition(":")
    return name.strip(), params.strip()


def check_base(base: str) -> None:
    """``--fedavg`` may not set what ``--partition`` sets."""
    for item in base.split(","):
        key = item.partition("=")[0].strip()
        if key in PARTITION_KEYS:
            raise ConfigError(f"--fedavg: {key} is set by --partition (e.g. --partition iid,dirichlet:0.5), not here")


def matrix_specs(aggregations: Sequence[str], attacks: Sequence[str], *, base: str, byzantine: int,
                 partitions: Sequence[Partition] = (Partition(name=IID),)) -> list[str]:
    """One ``fedavg`` spec text per (partition, aggregation, attack): ``base`` (e.g. ``"clients=10,rounds=40"``) plus
    the partition, the rule and, unless the attack is ``none``, ``byzantine`` clients running it (its parameters in
    ``byzantine_params``)."""
    specs = []
    for partition in partitions:
        for rule in aggregations:
            for text in attacks:
                name, params = parse_attack(text)
                parts = [part for part in (base, partition.spec) if part]
                parts.append(f"aggregation={rule}")
                if name != NO_ATTACK:
                    parts += [f"byzantine={byzantine}", f"byzantine_attack={name}"]
                    if params:
                        parts.append(f"byzantine_params={params}")
                specs.append("fedavg:" + ",".join(parts))
    return specs


@dataclass(frozen=True, kw_only=True)
class Cell:
    clean: float  # mean clean accuracy over the seeds
    clean_sd: float  # its sample sd (0 for one seed)
    backdoor: float | None  # mean backdoor success rate (None: not a backdoor column)
    backdoor_sd: float | None
    seeds: int


@dataclass(frozen=True, kw_only=True)
class Matrix:
    partitions: tuple[str, ...]  # partition keys (``Partition.key``)
    aggregations: tuple[str, ...]
    attacks: tuple[str, ...]
    cells: dict[tuple[str, str, str], Cell]  # (partition, aggregation, attack)
    setting: dict[str, Any]  # what the cells share (``setting_of``)

    def rules(self, partition: str) -> list[str]:
        """The aggregation rules with a cell in ``partition``."""
        return [rule for rule in self.aggregations if any((partition, rule, a) in self.cells for a in self.attacks)]

    def worst(self, partition: str, rule: str) -> tuple[str, float]:
        """The row's worst case: the attack that left the lowest clean accuracy, and that accuracy."""
        row = {attack: self.cells[partition, rule, attack].clean for attack in self.attacks
               if (partition, rule, attack) in self.cells}
        attack = min(row, key=row.get)
        return attack, row[attack]

    def order(self, item: tuple[tuple[str, str, str], Cell]) -> tuple[int, int, int]:
        """Where a ``cells`` item sits in the tables: partition, then rule, then attack column."""
        partition, rule, attack = item[0]
        return self.partitions.index(partition), self.aggregations.index(rule), self.attacks.index(attack)

    def to_json(self) -> dict[str, Any]:
        cells = [{"partition": partition, "aggregation": rule, "attack": attack, "clean_accuracy": cell.clean,
                  "clean_sd": cell.clean_sd, "backdoor_success": cell.backdoor, "backdoor_sd": cell.backdoor_sd,
                  "seeds": cell.seeds}
                 for (partition, rule, attack), cell in sorted(self.cells.items(), key=self.order)]
        worst = [{"partition": partition, "aggregation": rule,
                  **dict(zip(("attack", "clean_accuracy"), self.worst(partition, rule), strict=True))}
                 for partition in self.partitions for rule in self.rules(partition)]
        return {"setting": self.setting, "partitions": list(self.partitions), "aggregations": list(self.aggregations),
                "attacks": list(self.attacks), "cells": cells, "worst_case": worst}


def cell_key(row: dict[str, Any]) -> tuple[str, str, str]:
    """(partition, aggregation, attack column) of a federated leaderboard row."""
    params = row["defense_params"]
    attack = NO_ATTACK if not params.get("byzantine") else attack_label(params["byzantine_attack"],
                                                                        params.get("byzantine_params", ""))
    return partition_of(params), params.get("aggregation", "mean"), attack


def make_cell(group: Sequence[dict[str, Any]]) -> Cell:
    """A cell from its rows (one per seed): mean ± sd of the clean accuracy and of the backdoor success rate."""
    clean, clean_sd = mean_sd([row["clean_accuracy"] for row in group])
    rates = [rate for rate in map(backdoor_of, group) if rate is not None]
    backdoor, backdoor_sd = mean_sd(rates) if rates else (None, None)
    return Cell(clean=clean, clean_sd=clean_sd, backdoor=backdoor, backdoor_sd=backdoor_sd, seeds=len(group))


def ordered(seen: Sequence[str], given: Sequence[str]) -> tuple[str, ...]:
    """The distinct ``seen`` items: those in ``given`` in its order, then the others as first seen."""
    return tuple(dict.fromkeys([*(item for item in given if item in seen), *seen]))


def build_matrix(rows: Sequence[dict[str, Any]], *, dataset: str, partitions: Sequence[str] = (),
                 aggregations: Sequence[str] = (), attacks: Sequence[str] = ()) -> Matrix:
    """The matrix of leaderboard ``rows`` (federated ones; others are left out): partitions, rules and attack columns
    in the order given (then any other, first seen first)."""
    grouped: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        if "aggregation" in row["defense_params"]:
            grouped[cell_key(row)].append(row)
    keys = list(grouped)
    return Matrix(partitions=ordered([key[0] for key in keys], partitions),
                  aggregations=ordered([key[1] for key in keys], aggregations),
                  attacks=ordered([key[2] for key in keys], attacks),
                  cells={key: make_cell(group) for key, group in grouped.items()},
                  setting=setting_of([row for group in grouped.values() for row in group], dataset))


def setting_of(rows: Sequence[dict[str, Any]], dataset: str) -> dict[str, Any]:
    """What names the matrix's setting: dataset, model, clients, rounds, attackers per attacked cell and how they
    are chosen (``byzantine_sampling``), seeds, whether it was a quick run, test samples (each a sorted list of the
    rows' values)."""
    attacked = [row for row in rows if row["defense_params"].get("byzantine")]

    def values(get, among: Sequence[dict[str, Any]] = rows) -> list[Any]:
        return sorted({get(row) for row in among} - {None})

    return {"dataset": dataset, "model": values(lambda row: row["model"]),
            "clients": values(lambda row: row["defense_params"].get("clients")),
            "rounds": values(lambda row: row["defense_params"].get("rounds")),
            "attackers": values(lambda row: row["defense_params"]["byzantine"], attacked),
            "attacker_sampling": values(lambda row: row["defense_params"].get("byzantine_sampling"), attacked),
            "seeds": values(lambda row: row["seed"]), "quick": any(row.get("quick") for row in rows),
            "n_test": values(lambda row: row.get("n_test"))}
