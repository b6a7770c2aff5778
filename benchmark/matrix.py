"""The aggregator × client-attack matrix of the federated defenses (``bench matrix``): which defense specs a matrix
runs, and the table its records make.

Rows are aggregation rules, columns client attacks (``none``: no Byzantine client), each cell the clean accuracy of
the trained global model (mean over seeds) and, for a backdoor, its success rate; each row's worst case is its lowest
clean accuracy over the attacks (for a backdoor column, the cell counts as broken when the backdoor succeeds on most
samples). The specs are ordinary ``fedavg`` specs, so every cell is a stored, cached job like any other.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

NO_ATTACK = "none"


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


def matrix_specs(aggregations: Sequence[str], attacks: Sequence[str], *, base: str, byzantine: int) -> list[str]:
    """One ``fedavg`` spec text per (aggregation, attack): ``base`` (e.g. ``"clients=10,rounds=40"``) plus the rule
    and, unless the attack is ``none``, ``byzantine`` clients running it (its parameters in ``byzantine_params``)."""
    specs = []
    for rule in aggregations:
        for text in attacks:
            name, params = parse_attack(text)
            parts = [base] if base else []
            parts.append(f"aggregation={rule}")
            if name != NO_ATTACK:
                parts += [f"byzantine={byzantine}", f"byzantine_attack={name}"]
                if params:
                    parts.append(f"byzantine_params={params}")
            specs.append("fedavg:" + ",".join(parts))
    return specs


@dataclass(frozen=True)
class Cell:
    clean: float  # mean clean accuracy over the seeds
    backdoor: float | None  # mean backdoor success rate (None: not a backdoor column)
    seeds: int


@dataclass(frozen=True)
class Matrix:
    aggregations: tuple[str, ...]
    attacks: tuple[str, ...]
    cells: dict[tuple[str, str], Cell]

    def worst(self, rule: str) -> tuple[str, float]:
        """The row's worst case: the attack that left the lowest clean accuracy, and that accuracy."""
        row = {attack: self.cells[rule, attack].clean for attack in self.attacks if (rule, attack) in self.cells}
        attack = min(row, key=row.get)
        return attack, row[attack]


def cell_key(record: Any) -> tuple[str, str]:
    """(aggregation, attack column) of a federated record."""
    params = record.defense_params
    attack = NO_ATTACK if not params.get("byzantine") else attack_label(params["byzantine_attack"],
                                                                        params.get("byzantine_params", ""))
    return params.get("aggregation", "mean"), attack


def build_matrix(records: Sequence[Any], *, order: Sequence[str] = ()) -> Matrix:
    """The matrix of ``records`` (federated ones; others are left out), rows in first-seen order, columns in
    ``order`` (attack column labels; then any other, first seen first)."""
    grouped: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for record in records:
        if "aggregation" in record.defense_params:
            grouped[cell_key(record)].append(record)
    cells = {}
    for key, group in grouped.items():
        rates = [r.backdoor.success_rate for r in group if getattr(r, "backdoor", None) is not None]
        cells[key] = Cell(clean=sum(r.clean_accuracy for r in group) / len(group),
                          backdoor=sum(rates) / len(rates) if rates else None, seeds=len(group))
    aggregations = tuple(dict.fromkeys(rule for rule, _ in grouped))
    seen = [attack for _, attack in grouped]
    attacks = tuple(dict.fromkeys([*(a for a in order if a in seen), *seen]))
    return Matrix(aggregations=aggregations, attacks=attacks, cells=cells)


def markdown(matrix: Matrix) -> str:
    """The matrix as a Markdown table: clean accuracy % per cell (backdoor success % after a slash), and each row's
    worst case."""
    head = "| aggregation | " + " | ".join(matrix.attacks) + " | worst case |"
    lines = [head, "|---|" + "---:|" * (len(matrix.attacks) + 1)]
    for rule in matrix.aggregations:
        cells = []
        for attack in matrix.attacks:
            cell = matrix.cells.get((rule, attack))
            if cell is None:
                cells.append("–")
            else:
                cells.append(f"{100 * cell.clean:.1f}" + ("" if cell.backdoor is None
                                                          else f" / ASR {100 * cell.backdoor:.1f}"))
        attack, clean = matrix.worst(rule)
        lines.append(f"| {rule} | " + " | ".join(cells) + f" | {100 * clean:.1f} ({attack}) |")
    legend = ("Clean accuracy (%) of the global model after federated training, mean over seeds; ASR: the "
              "backdoor's success rate (%) on the test samples not of its target class; worst case: the lowest "
              "clean accuracy of the row and the attack that caused it.")
    return "\n".join(lines) + "\n\n" + legend + "\n"
