"""Named attack suites, used as ``--attack suite:NAME`` (and mixed with plain names: ``suite:quick,deepfool``).

* ``quick``: FGSM and PGD, a smoke test of white-box robustness.
* ``standard``: PGD, APGD-CE, APGD-DLR and the black-box Square Attack (the ensemble AutoAttack's authors argue for:
  two losses, adaptive steps, and a gradient-free attack against masking).
* ``default``: ``standard`` plus FGSM and the random-noise baseline; what ``bench evaluate`` runs when no attack is
  named.
* ``black-box``: Square, HopSkipJump and the noise baseline, which need only the model's outputs (for a model
  without input gradients: ``onnx:``, a random forest; with no attack named, such a model gets the attacks of
  ``default`` it can take).
* ``full``: every registered attack that supports the run's norm.
"""

from __future__ import annotations

SUITES: dict[str, tuple[str, ...]] = {
    "quick": ("fgsm", "pgd"),
    "standard": ("pgd", "apgd-ce", "apgd-dlr", "square"),
    "default": ("fgsm", "pgd", "apgd-ce", "apgd-dlr", "square", "noise"),
    "black-box": ("square", "hopskipjump", "noise"),
}
FULL = "full"


def suite_names() -> list[str]:
    return [*SUITES, FULL]


def expand_suite(name: str, norm: str) -> tuple[str, ...]:
    """The attack names of suite ``name`` for a run under ``norm``; ``KeyError`` if there is no such suite."""
    if name == FULL:
        from benchmark import ATTACKS

        return tuple(a for a in ATTACKS.names() if norm in ATTACKS.get(a).norms)
    return SUITES[name]
