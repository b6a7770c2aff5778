"""Label flipping: the attacker trains honestly, but on its own samples relabelled (data poisoning on the client).

Threat model: not omniscient. Each attacker changes only its own training labels before it trains; it reads no
other client's data or update, and its inputs stay as they are.

Modes:

* ``reverse``: ``y → C − 1 − y``, every sample to the "opposite" class. The label flipping attack of Fang et al. 2020
  ("Local model poisoning attacks to Byzantine-robust federated learning", USENIX Security, arXiv:1911.11815), which
  FLTrust (Cao et al. 2021) reuses; Blades' ``LabelFlipAdversary`` and FLPoison's ``all2all`` run the same map.
* ``shift``: ``y → (y + 1) mod C``, a cyclic all-to-all flip; like ``reverse`` it changes every label, but it has no
  fixed point when C is odd (``reverse`` keeps the middle class then).
* ``target``: ``source → target``, the other classes untouched: the targeted attack of Tolpegin et al. 2020 ("Data
  poisoning attacks against federated learning systems", ESORICS, arXiv:2007.08432) and of Fung et al. 2020
  (FoolsGold, "The limitations of federated learning in Sybil settings", RAID, arXiv:1808.04866), whose MNIST case,
  1 → 7, gives the defaults.

Default mode ``reverse``: the untargeted flip that the Byzantine-robustness papers and both reference suites run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from benchmark import CLIENT_ATTACKS
from benchmark.constraints import Constrained, Interval, Options

MODES = ("reverse", "shift", "target")
CLASS = Interval(int, 0, 100_000)


def check_class(plugin: object, name: str, value: int, nb_classes: int) -> None:
    """Refuse a class parameter ``name`` of ``plugin`` outside the labels ``0 … nb_classes − 1``, naming it."""
    if not 0 <= value < nb_classes:
        raise ValueError(f"{type(plugin).__name__}: {name} must be a class in [0, {nb_classes - 1}] "
                         f"(the data has {nb_classes} classes), got {value}")


def reversed_labels(y: np.ndarray, nb_classes: int) -> np.ndarray:
    """``C − 1 − y`` (Fang et al. 2020's flip)."""
    return nb_classes - 1 - np.asarray(y)


def shifted_labels(y: np.ndarray, nb_classes: int) -> np.ndarray:
    """``(y + 1) mod C``."""
    return (np.asarray(y) + 1) % nb_classes


def targeted_labels(y: np.ndarray, source: int, target: int) -> np.ndarray:
    """``y`` with every ``source`` label replaced by ``target`` (Tolpegin et al. 2020)."""
    labels = np.asarray(y)
    return np.where(labels == source, target, labels).astype(labels.dtype)


@CLIENT_ATTACKS.register("label-flip")
@dataclass(frozen=True)
class LabelFlip(Constrained):
    """Label flipping (Fang et al. 2020; targeted: Tolpegin et al. 2020): each attacker relabels its own training
    samples before it trains. Not omniscient; deterministic (``rng`` is not drawn from).

    Args:
        mode: ``reverse`` (y → C − 1 − y, the default), ``shift`` (y → (y + 1) mod C) or ``target`` (source → target).
        source: the class relabelled in ``target`` mode (default 1, FoolsGold's MNIST 1 → 7).
        target: the class it becomes in ``target`` mode (default 7).
    """

    mode: str = "reverse"
    source: int = 1
    target: int = 7

    kind: ClassVar[str] = "data"
    omniscient: ClassVar[bool] = False
    parameter_constraints: ClassVar[dict] = {"mode": Options(*MODES), "source": CLASS, "target": CLASS}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mode == "target" and self.source == self.target:
            raise ValueError(f"{type(self).__name__}: target must differ from source = {self.source} in target mode")

    def check(self, input_shape: tuple[int, ...], nb_classes: int) -> None:
        """Refuse, before any work, a ``source`` or ``target`` outside the labels (``target`` mode only)."""
        if self.mode == "target":
            check_class(self, "source", self.source, nb_classes)
            check_class(self, "target", self.target, nb_classes)

    def poison(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator, *,
               nb_classes: int) -> tuple[np.ndarray, np.ndarray]:
        """``(x, flipped y)``: the inputs unchanged (the same array), the labels a new array of ``y``'s dtype."""
        self.check(tuple(np.shape(x)[1:]), nb_classes)
        if self.mode == "reverse":
            return x, reversed_labels(y, nb_classes)
        if self.mode == "shift":
            return x, shifted_labels(y, nb_classes)
        return x, targeted_labels(y, self.source, self.target)
