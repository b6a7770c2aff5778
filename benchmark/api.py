"""What plugins see: the data they train on, the context they run in, and the protocols they implement.

Plugins import only this module and ``benchmark.registry`` (via ``from benchmark import DEFENSES``). Nothing here
imports torch or ART at module level, so listing plugins stays cheap.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from benchmark.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from benchmark.recipes import Recipe


@dataclass(frozen=True, eq=False)
class DataBundle:
    """A dataset split: inputs as ``(n, C, H, W)`` images or ``(n, d)`` feature vectors (any rank ≥ 2), either
    float32 in [0, 1] or uint8 pixels 0–255 meaning value/255 (a quarter of the memory: CIFAR-10 is 176 MiB, not
    703 MiB); integer labels ``0 … nb_classes-1``. Consumers read inputs as float32 through ``batch`` (per batch) or
    ``float_test`` (the test split, once). The train split may be empty (0 samples shaped like the test samples):
    data to score a model that was trained elsewhere."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    nb_classes: int

    def __post_init__(self) -> None:
        if not isinstance(self.nb_classes, int | np.integer) or self.nb_classes < 2:
            raise DataError(f"nb_classes must be an integer ≥ 2, got {self.nb_classes!r}")
        for split in ("train", "test"):
            check_split(getattr(self, f"x_{split}"), getattr(self, f"y_{split}"), f"x_{split}", f"y_{split}")
            check_labels(getattr(self, f"y_{split}"), self.nb_classes, f"y_{split}")
        if self.x_train.shape[1:] != self.x_test.shape[1:]:
            raise DataError(f"x_train holds samples of shape {self.x_train.shape[1:]} but x_test of shape "
                            f"{self.x_test.shape[1:]}")

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_test.shape[1:])

    @property
    def has_train(self) -> bool:
        """Whether the train split holds samples (a defense that trains needs them)."""
        return len(self.x_train) > 0

    def fingerprint(self) -> str:
        """A content hash of all four arrays as stored: two bundles with the same fingerprint hold the same data (uint8
        images hash apart from their float32 equivalent; see ``arrays_sha256``)."""
        return arrays_sha256(self.x_train, self.y_train, self.x_test, self.y_test)[:16]

    def batch(self, split: str, index: slice | np.ndarray) -> np.ndarray:
        """The inputs ``index`` (a slice or an integer array) selects from ``split`` ("train" or "test"), as float32
        in [0, 1]: only these samples are converted."""
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        return unit_float(getattr(self, f"x_{split}")[index])

    def float_test(self) -> np.ndarray:
        """The whole test split's inputs as float32 in [0, 1] (the array itself when it is stored as float32)."""
        return unit_float(self.x_test)

    def subset_test(self, n: int | None) -> DataBundle:
        """The same bundle with only the first ``n`` test samples (all when ``n`` is None)."""
        if n is None or n >= len(self.x_test):
            return self
        return DataBundle(self.name, self.x_train, self.y_train, self.x_test[:n], self.y_test[:n], self.nb_classes)

    def subset_train(self, n: int | None) -> DataBundle:
        """The same bundle with only the first ``n`` training samples (all when ``n`` is None): ``--n-train``."""
        if n is None or n >= len(self.x_train):
            return self
        return DataBundle(self.name, self.x_train[:n], self.y_train[:n], self.x_test, self.y_test, self.nb_classes)


def arrays_sha256(*arrays: np.ndarray) -> str:
    """SHA-256 (hex) over the arrays' shapes and bytes, in order. An array that is neither float32 nor int64 (the
    dtypes every array had before uint8 images were kept as they are) adds its dtype, so the same values in another
    dtype hash apart while float32/int64 hashes stay as they were."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(str(array.shape).encode())
        if array.dtype not in (np.float32, np.int64):
            digest.update(array.dtype.str.encode())
        digest.update(np.ascontiguousarray(array).data)  # the buffer itself: no copy of the bytes
    return digest.hexdigest()


def unit_float(x: np.ndarray) -> np.ndarray:
    """Inputs as float32 in [0, 1]: uint8 pixels divided by 255, floats cast; any other dtype unchanged (for
    ``check_split`` to refuse by name)."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) / np.float32(255)
    if np.issubdtype(x.dtype, np.floating):
        return x.astype(np.float32, copy=False)
    return x


def check_split(x: Any, y: Any, x_name: str, y_name: str) -> None:
    """Raise ``DataError`` (naming the argument) unless ``x`` is an array of rank ≥ 2 (``(n, C, H, W)`` or ``(n, d)``),
    uint8 (any values: pixels 0–255) or float32 of finite values in [0, 1], and ``y`` a 1-D integer array of ``n``
    labels ≥ 0: the data contract of every ``DataBundle`` split and of the pytest plugin's arrays. ``check_labels``
    adds the upper bound once the class count is known."""
    if not isinstance(x, np.ndarray) or x.dtype not in (np.float32, np.uint8) or x.ndim < 2:
        also = "; uint8 pixels 0–255 are accepted too" if isinstance(x, np.ndarray) and x.ndim >= 2 else ""
        raise DataError(f"{x_name} must be a float32 array of shape (n, C, H, W) or (n, d), got {_describe(x)}{also}")
    if not isinstance(y, np.ndarray) or y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        hint = " (one-hot? pass y.argmax(1))" if isinstance(y, np.ndarray) and y.ndim == 2 else ""
        raise DataError(f"{y_name} must be a 1-D integer array of class labels, got {_describe(y)}{hint}")
    if len(x) != len(y):
        raise DataError(f"{x_name} has {len(x)} samples but {y_name} has {len(y)}")
    if x.dtype == np.float32 and x.size and not (x.min() >= 0.0 and x.max() <= 1.0):  # NaN fails both comparisons
        found = "NaN" if np.isnan(x).any() else f"values in [{x.min():g}, {x.max():g}]"
        raise DataError(f"{x_name} must hold finite values in [0, 1], got {found}")
    if y.size and y.min() < 0:
        raise DataError(f"{y_name} must hold class labels ≥ 0, got {y.min()}")


def check_labels(y: np.ndarray, nb_classes: int, y_name: str, *, source: str = "nb_classes") -> None:
    """Raise ``DataError`` unless every label in ``y`` (checked by ``check_split``) is below ``nb_classes``, which
    ``source`` names in the message."""
    if y.size and y.max() >= nb_classes:
        raise DataError(f"{y_name} holds label {y.max()}, but {source} is {nb_classes} (labels 0 … {nb_classes - 1})")


def _describe(array: Any) -> str:
    if isinstance(array, np.ndarray):
        return f"{array.dtype} of shape {array.shape}"
    return type(array).__name__


@dataclass(frozen=True)
class RunContext:
    """Where and how a job runs. ``costs`` and ``outcome`` are the mutable parts: defenses add their gradient
    evaluations to ``costs`` and what training chose (``early_stop_epoch``) to ``outcome``."""

    seed: int
    device: str = "cpu"
    quick: bool = False
    costs: Counter = field(default_factory=Counter, compare=False)
    recipe: Recipe | None = None  # how the shared loop trains (``benchmark.recipes``; None: each defense's defaults)
    outcome: dict[str, Any] = field(default_factory=dict, compare=False)

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


@dataclass(frozen=True)
class MembershipData:
    """The samples a membership attack sees, float32 in [0, 1] with int64 labels: members (trained on) and
    non-members (never trained on), each halved into an attack-train half (``train_in``/``train_out``: for attacks
    that fit an attack model or calibrate a threshold) and the evaluation half every attack is scored on
    (``eval_in``/``eval_out``). Built by ``benchmark.membership.membership_split``."""

    x_train_in: np.ndarray
    y_train_in: np.ndarray
    x_train_out: np.ndarray
    y_train_out: np.ndarray
    x_eval_in: np.ndarray
    y_eval_in: np.ndarray
    x_eval_out: np.ndarray
    y_eval_out: np.ndarray


class MembershipAttack(Protocol):
    """A membership-inference attack (registry ``benchmark.PRIVACY``, ``kind = "membership"``).

    ``scores`` returns one membership score per evaluation sample, members first array, non-members second (higher:
    more likely a member); the harness turns them into AUC, advantage and TPR at low FPR. Tags: ``labels_only``
    (needs only predicted labels, so any model takes it), ``needs_grad``.
    """

    kind: ClassVar[str]
    labels_only: ClassVar[bool]
    needs_grad: ClassVar[bool]

    def scores(self, estimator: Any, data: MembershipData, *, seed: int) -> tuple[np.ndarray, np.ndarray]: ...


class InversionAttack(Protocol):
    """A reconstruction attack on federated client updates (registry ``benchmark.PRIVACY``, ``kind = "inversion"``):
    an honest-but-curious server that knows the global model and the clients' protocol reconstructs a client's
    training images from the update the client sends. ``release(update, rng)`` is the defense's
    ``released_update``: what actually leaves the client (FedAvg: the update itself; DP-FedAvg: clipped and noised).
    Returns a ``benchmark.privacy.InversionOutcome``."""

    kind: ClassVar[str]

    def run(self, model: torch.nn.Module, data: DataBundle, release: Any, *, seed: int, device: str) -> Any: ...


class ClientAttack(Protocol):
    """What a malicious federated client does (registry ``benchmark.CLIENT_ATTACKS``, group ``bench.client_attacks``).

    ``kind = "update"``: ``craft(honest, *, n_attackers, rng) -> (n_attackers, d)`` malicious updates, given the
    round's honest updates ``honest`` (m × d). An ``omniscient`` attack reads every honest update of the round, as
    ALIE, IPM and min-max/min-sum assume; one that is not reads only the attackers' own honest updates (the first
    ``n_attackers`` rows, which the caller puts first). ``kind = "data"``: ``poison(x, y, rng, *, nb_classes) ->
    (x, y)``, the attacker's training data, changed before it trains (label flipping, a backdoor trigger), and
    ``check(input_shape, nb_classes)``, which refuses (``ValueError`` naming the parameter) a setting the data cannot
    take, before any work. The backdoor also has ``triggered(x)`` (the success rate's inputs) and
    ``boost_update(update, *, clients_per_round)`` (model replacement).
    """

    kind: ClassVar[str]
    omniscient: ClassVar[bool]


def memoized(estimator: Any) -> AbstractContextManager:
    """A block in which the harness's estimator answers repeated predictions of the same input from memory (see
    ``benchmark.estimator.Classifier.memoized``); a no-op for any other estimator."""
    memo = getattr(estimator, "memoized", None)
    return memo() if memo is not None else nullcontext()


def adopt_estimator(attack: Any, estimator: Any) -> Any:
    """Hand ``attack`` (an ART attack that wrapped the harness's model anew, with a loss of its own, as APGD does)
    the harness's fast wrapper with that loss (``benchmark.estimator.Classifier.adopt``); returns the attack."""
    adopt = getattr(estimator, "adopt", None)
    if adopt is not None:
        attack._estimator = adopt(attack.estimator)
    return attack


def art_norm(norm: str) -> float:
    """The run's norm name ("inf", "2") as ART expects it."""
    return {"inf": np.inf, "2": 2}[norm]


_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # 2^64 / golden ratio: SplitMix64's counter increment


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser (Steele, Lea & Flood 2014): a bijection of uint64 arrays that scrambles every bit.
    Array arithmetic wraps modulo 2^64, which is what the generator wants."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def keyed_uniform(keys: np.ndarray, shape: tuple[int, ...], *salt: int) -> np.ndarray:
    """Uniform draws in [0, 1), shaped ``(len(keys), *shape)``, where row i depends only on ``keys[i]`` and
    ``salt``: a counter-based generator (SplitMix64 over key, salt and position), vectorised over the batch. A
    sample (its key) therefore draws the same numbers in any batch, in any order, alone or with others; a different
    ``salt`` gives an independent stream for another use."""
    stream = np.asarray(keys, dtype=np.int64).reshape(-1).astype(np.uint64)
    for part in salt:
        stream = _mix(stream * _GOLDEN + np.uint64(int(part)))
    stream = _mix(stream ^ np.uint64(0x5851F42D4C957F2D))
    counters = np.arange(1, int(np.prod(shape, dtype=np.int64)) + 1, dtype=np.uint64) * _GOLDEN
    bits = _mix(stream[:, None] + counters[None, :])
    return ((bits >> np.uint64(11)).astype(np.float64) * 2.0**-53).reshape(len(stream), *shape)


def keyed_direction(keys: np.ndarray, shape: tuple[int, ...], norm: str, *salt: int) -> np.ndarray:
    """Per-sample random perturbations of norm 1 (rows as in ``keyed_uniform``): a random sign pattern (L∞) or a
    direction uniform on the sphere (L2, normalised Gaussian draws by Box–Muller)."""
    if norm == "inf":
        return np.where(keyed_uniform(keys, shape, *salt) < 0.5, -1.0, 1.0)
    radius = np.sqrt(-2.0 * np.log1p(-keyed_uniform(keys, shape, *salt, 1)))
    gaussian = radius * np.cos(2.0 * np.pi * keyed_uniform(keys, shape, *salt, 2))
    lengths = np.linalg.norm(gaussian.reshape(len(gaussian), -1), axis=1)
    return gaussian / np.maximum(lengths, np.finfo(np.float64).tiny).reshape(-1, *([1] * len(shape)))
