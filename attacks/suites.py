"""Named attack suites, used as ``--attack suite:NAME`` (and mixed with plain names: ``suite:quick,deepfool``).

* ``quick``: FGSM and PGD, a smoke test of white-box robustness.
* ``standard``: PGD, APGD-CE, APGD-DLR and the black-box Square Attack (the ensemble AutoAttack's authors argue for:
  two losses, adaptive steps, and a gradient-free attack against masking).
* ``default``: ``standard`` plus FGSM and the random-noise baseline; what ``bench evaluate`` runs when no attack is
  named.
* ``aa-standard``: AutoAttack's "standard" version (Croce & Hein 2020, arXiv:2003.01690; what RobustBench runs)
  built from ART's classes, **without FAB-T**: APGD-CE (100 iterations), APGD-T (the targeted DLR loss, 100
  iterations for each of the 9 most likely wrong classes) and Square (5,000 queries, initial square share 0.8, as
  AutoAttack sets it), in that order as a cascade on the shared survivors. FAB-T is not in ART. It rarely changes
  the number: it searches for the smallest perturbation toward each target rather than the strongest point within
  ε, and in AutoAttack's cascade it only sees what APGD-CE and APGD-T left robust. In nine published AutoAttack
  standard logs (Wu et al. 2020, AWP: github.com/csdongxian/AWP, ``auto_attacks/logs``; CIFAR-10/100, L∞ and L2)
  FAB-T lowered the robust accuracy once, by 0.02 points, and never otherwise. What still differs from AutoAttack's
  code: ART's APGD keeps the last iterate (AutoAttack any misclassified one), and ART fits Square's schedule of
  square sizes to the 5,000 queries (AutoAttack runs the schedule of 10,000 and stops at 5,000).
* ``black-box``: Square, HopSkipJump and the noise baseline, which need only the model's outputs (for a model
  without input gradients: ``onnx:``, a random forest; with no attack named, such a model gets the attacks of
  ``default`` it can take).
* ``full``: every registered attack that supports the run's norm.

A suite's entries are written as ``--attack`` takes them (``name`` or ``name:key=value,key=value``).
"""

from __future__ import annotations

from typing import Any

SUITES: dict[str, tuple[str, ...]] = {
    "quick": ("fgsm", "pgd"),
    "standard": ("pgd", "apgd-ce", "apgd-dlr", "square"),
    "default": ("fgsm", "pgd", "apgd-ce", "apgd-dlr", "square", "noise"),
    "aa-standard": ("apgd-ce:steps=100", "apgd-t:steps=100,targets=9", "square:queries=5000,p_init=0.8"),
    "black-box": ("square", "hopskipjump", "noise"),
}
FULL = "full"


def suite_names() -> list[str]:
    return [*SUITES, FULL]


def expand_suite(name: str, norm: str) -> tuple[Any, ...]:
    """The attacks of suite ``name`` for a run under ``norm``, each an item ``parse_plugins`` takes as one attack:
    its name, or a table of its name and parameters (``{"name": "square", "queries": "5000"}``) where the suite
    sets some; ``KeyError`` if there is no such suite."""
    if name == FULL:
        from benchmark import ATTACKS

        return tuple(a for a in ATTACKS.names() if norm in ATTACKS.get(a).norms)
    return tuple(suite_item(entry) for entry in SUITES[name])


def suite_item(entry: str) -> Any:
    """``"name"`` as it is; ``"name:key=value,key=value"`` as the table ``{"name": name, key: value, …}``."""
    name, _, rest = entry.partition(":")
    if not rest:
        return name
    return {"name": name, **dict(pair.split("=", 1) for pair in rest.split(","))}
