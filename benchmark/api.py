"""What plugins see: the data they train on, the context they run in, and the protocols they implement.

Plugins import only this module and ``benchmark.registry`` (via ``from benchmark import DEFENSES``). Nothing here
imports torch or ART at module level, so listing plugins stays cheap.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    import torch


@dataclass(frozen=True, eq=False)
class DataBundle:
    """A dataset split: inputs in [0, 1] as float32 ``(n, C, H, W)``, integer labels ``0 … nb_classes-1``."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    nb_classes: int

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
            if x.dtype != np.float32 or x.ndim != 4:
                raise ValueError(f"x_{split} must be float32 of shape (n, C, H, W), got {x.dtype} {x.shape}")
            if len(x) != len(y):
                raise ValueError(f"x_{split} has {len(x)} rows but y_{split} has {len(y)}")
            if x.size and (x.min() < 0.0 or x.max() > 1.0):
                raise ValueError(f"x_{split} must lie in [0, 1]")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def fingerprint(self) -> str:
        """A content hash of all four arrays: two bundles with the same fingerprint hold the same data."""
        digest = hashlib.sha256()
        for array in (self.x_train, self.y_train, self.x_test, self.y_test):
            digest.update(str(array.shape).encode())
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()[:16]

    def subset_test(self, n: int | None) -> DataBundle:
        """The same bundle with only the first ``n`` test samples (all when ``n`` is None)."""
        if n is None or n >= len(self.x_test):
            return self
        return DataBundle(self.name, self.x_train, self.y_train, self.x_test[:n], self.y_test[:n], self.nb_classes)


@dataclass(frozen=True)
class RunContext:
    """Where and how a job runs. ``costs`` is the one mutable part: defenses add their gradient evaluations to it."""

    seed: int
    device: str = "cpu"
    quick: bool = False
    costs: Counter = field(default_factory=Counter, compare=False)

    #: In a ``--quick`` run every defense trains for ``epochs // QUICK_EPOCH_DIVISOR`` epochs (at least one).
    QUICK_EPOCH_DIVISOR: ClassVar[int] = 8

    def epochs(self, epochs: int) -> int:
        """The number of epochs to actually run for a defense configured with ``epochs``."""
        return max(1, epochs // self.QUICK_EPOCH_DIVISOR) if self.quick else epochs

    def count(self, key: str, n: int) -> None:
        self.costs[key] += int(n)


class Defense(Protocol):
    """A training procedure: ``fit`` returns the trained model. Parameters are dataclass fields."""

    def fit(self, model: torch.nn.Module, data: DataBundle, ctx: RunContext) -> torch.nn.Module: ...


class Attack(Protocol):
    """An evasion attack run through ART.

    Tags (class attributes): ``norms`` (the threat models it supports: "inf", "2"), ``needs_grad``, ``black_box``,
    ``minimal_norm``. An ε-bounded attack implements ``generate``: adversarial inputs for ``x`` (labels ``y``) within
    ``eps`` in ``norm``. A minimal-norm attack implements ``find``: the closest adversarial point it can find, with no
    ε (the sweep reads its distance). ``keys`` holds one integer per sample: randomness drawn from it does not depend
    on which other samples share the batch.
    """

    norms: ClassVar[tuple[str, ...]]
    needs_grad: ClassVar[bool]
    black_box: ClassVar[bool]
    minimal_norm: ClassVar[bool]

    def generate(self, estimator: Any, x: np.ndarray, y: np.ndarray, *, eps: float, norm: str, keys: np.ndarray,
                 batch_size: int) -> np.ndarray: ...

    def find(self, estimator: Any, x: np.ndarray, y: np.ndarray, *, norm: str, keys: np.ndarray,
             batch_size: int) -> np.ndarray: ...


def art_norm(norm: str) -> float:
    """The run's norm name ("inf", "2") as ART expects it."""
    return {"inf": np.inf, "2": 2}[norm]


def sample_rng(key: int | np.integer, *salt: int) -> np.random.Generator:
    """A random generator owned by one sample (``key``) and one use (``salt``)."""
    return np.random.default_rng([int(key), *salt])


def random_direction(key: int | np.integer, shape: tuple[int, ...], norm: str, salt: int) -> np.ndarray:
    """A per-sample random perturbation of norm 1: a random sign pattern (L∞) or a uniform direction (L2)."""
    rng = sample_rng(key, salt)
    if norm == "inf":
        return rng.choice((-1.0, 1.0), size=shape)
    direction = rng.standard_normal(size=shape)
    return direction / np.linalg.norm(direction)
