"""The attack sweep: every attack at every ε, attacking only the samples still robust.

Semantics (DESIGN §4): inputs and ε live in [0, 1]; ε = 0 is clean accuracy and never calls an attack; the
perturbation sets are nested, so a sample broken at a smaller ε counts as broken at every larger one. For each attack
the sweep records, per sample, the index of the first ε that broke it (``broken_at``; ``len(eps)`` = never). From
these:

* per-attack robust accuracy at ε_k = share of samples with ``broken_at > k`` (each attack on its own);
* worst-case robust accuracy at ε_k = share of samples that every attack left robust (per-sample worst case, never an
  average across attacks).

ε-bounded attacks run at each ε on the samples they left robust so far (the survivor shortcut: exactly the numbers
of the naive loop, because attacks draw their randomness per sample from ``keys``). Minimal-norm attacks run once;
a sample counts as broken at every ε ≥ the distance found, provided the found point really is misclassified.

An attack whose output leaves the ε-ball or [0, 1] gets no numbers: its outcome carries the error instead.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from benchmark.api import Attack
from benchmark.errors import AttackError

logger = logging.getLogger(__name__)

#: Tolerance for float32 round-off when checking that a perturbation lies in the ε-ball and in [0, 1].
BALL_TOLERANCE = 1e-5


@dataclass(frozen=True, eq=False)
class AttackOutcome:
    """One attack's result over the ε grid."""

    broken_at: np.ndarray  # int, per sample: index of the first ε that broke it; len(eps) if none did
    seconds: float
    grad_evals: int  # per-sample input gradients the attack asked for
    queries: int  # per-sample predictions the attack asked for
    attacked: int  # sample-attack runs performed (the survivor shortcut makes this smaller than n × levels)
    black_box: bool = False
    distances: np.ndarray | None = None  # minimal-norm attacks: distance found per sample (inf: none)
    error: str | None = None  # set when the attack's output was invalid; then it has no numbers

    @property
    def median_distance(self) -> float | None:
        """Median distance found over the attacked samples (inf when most were not broken)."""
        if self.distances is None:
            return None
        attacked = self.distances[self.distances > 0]
        return float(np.median(attacked)) if attacked.size else None


@dataclass(frozen=True, eq=False)
class SweepResult:
    eps: tuple[float, ...]  # ascending, eps[0] == 0
    correct: np.ndarray  # bool, per sample: clean prediction is right
    outcomes: dict[str, AttackOutcome] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.correct)

    def valid(self) -> dict[str, AttackOutcome]:
        """The outcomes with numbers (attacks that did not fail validation)."""
        return {name: o for name, o in self.outcomes.items() if o.error is None}

    def worst_broken_at(self, names: Sequence[str] | None = None) -> np.ndarray:
        """Per sample, the first ε index at which any (valid) attack of ``names`` (default: all) broke it."""
        chosen = [o.broken_at for name, o in self.valid().items() if names is None or name in names]
        return worst_case(self.correct, chosen, len(self.eps))

    def accuracy(self, attack: str | None = None) -> dict[float, float]:
        """Robust accuracy per ε: under ``attack`` alone, or the per-sample worst case over all valid attacks."""
        broken_at = self.worst_broken_at() if attack is None else self.outcomes[attack].broken_at
        return accuracy_curve(broken_at, self.eps)


def worst_case(correct: Sequence[bool], broken_at: Sequence[Sequence[int]], levels: int) -> np.ndarray:
    """Per sample, the first ε index at which any of the attacks (``broken_at``, one array each) broke it: 0 for a
    sample misclassified at ε = 0, ``levels`` for one no attack broke."""
    never = np.where(np.asarray(correct, dtype=bool), levels, 0)
    return np.minimum.reduce([never, *(np.asarray(b) for b in broken_at)])


def accuracy_curve(broken_at: np.ndarray, eps: Sequence[float]) -> dict[float, float]:
    return {e: float(np.mean(broken_at > k)) for k, e in enumerate(eps)}


def run_sweep(
    estimator,
    x: np.ndarray,
    y: np.ndarray,
    attacks: Mapping[str, Attack],
    eps: Sequence[float],
    *,
    norm: str,
    keys: np.ndarray,
    batch_size: int,
    seed: int = 0,
    survivors_only: bool = True,
    on_attack: Callable[[str], None] | None = None,
) -> SweepResult:
    """Run every attack over the ascending ε grid ``eps`` (which must start at 0) under ``norm``.

    ``survivors_only=False`` is the naive loop (every sample at every ε), kept for tests and benchmarks.
    """
    eps = tuple(float(e) for e in eps)
    if not eps or eps[0] != 0.0 or list(eps) != sorted(set(eps)):
        raise ValueError(f"eps must be ascending, distinct and start at 0, got {eps}")
    correct = predict_labels(estimator, x, batch_size) == y
    outcomes: dict[str, AttackOutcome] = {}
    for index, (name, attack) in enumerate(attacks.items()):
        if on_attack is not None:
            on_attack(name)
        run = _run_minimal if attack.minimal_norm else _run_bounded
        grads0, queries0 = estimator.counts["grad"], estimator.counts["predict"]
        start = time.perf_counter()
        try:
            outcome = run(name, attack, estimator, x, y, correct, eps, norm=norm, keys=keys, batch_size=batch_size,
                          seed=(seed, index), survivors_only=survivors_only)
        except AttackError as error:
            logger.warning("%s", error)
            outcome = AttackOutcome(np.where(correct, len(eps), 0), 0.0, 0, 0, 0, error=str(error))
        outcomes[name] = AttackOutcome(
            broken_at=outcome.broken_at,
            seconds=time.perf_counter() - start - outcome.seconds,  # minus the harness's own checking time
            grad_evals=estimator.counts["grad"] - grads0,
            queries=estimator.counts["predict"] - queries0 - outcome.queries,  # minus the harness's predictions
            attacked=outcome.attacked,
            black_box=attack.black_box,
            distances=outcome.distances,
            error=outcome.error,
        )
        logger.info("%s: %d sample-runs, %.2fs, accuracy %s", name, outcome.attacked, outcomes[name].seconds,
                    accuracy_curve(outcome.broken_at, eps))
    return SweepResult(eps=eps, correct=correct, outcomes=outcomes)


def _run_bounded(name, attack, estimator, x, y, correct, eps, *, norm, keys, batch_size, seed, survivors_only):
    """An ε-bounded attack at each ε > 0. Returns an outcome whose seconds and queries are the harness's own."""
    never = len(eps)
    broken_at = np.where(correct, never, 0)
    attacked, own_seconds, own_queries = 0, 0.0, 0
    for k in range(1, len(eps)):
        targets = np.flatnonzero(broken_at == never) if survivors_only else np.arange(len(x))
        if targets.size == 0:
            break
        seed_everything(*seed, k)
        x_adv = attack.generate(estimator, x[targets], y[targets], eps=eps[k], norm=norm, keys=keys[targets],
                                batch_size=batch_size)
        start, queries = time.perf_counter(), estimator.counts["predict"]
        check_perturbation(name, x[targets], x_adv, eps[k], norm)
        hit = targets[predict_labels(estimator, x_adv, batch_size) != y[targets]]
        broken_at[hit] = np.minimum(broken_at[hit], k)
        attacked += targets.size
        own_seconds += time.perf_counter() - start
        own_queries += estimator.counts["predict"] - queries
    return AttackOutcome(broken_at, own_seconds, 0, own_queries, attacked)


def _run_minimal(name, attack, estimator, x, y, correct, eps, *, norm, keys, batch_size, seed, survivors_only):
    """A minimal-norm attack, once, on the correctly classified samples; broken at every ε ≥ its distance."""
    targets = np.flatnonzero(correct)
    distances = np.zeros(len(x))
    broken_at = np.where(correct, len(eps), 0)
    if targets.size == 0 or len(eps) == 1:  # nothing to attack, or no ε > 0 to break it at
        return AttackOutcome(broken_at, 0.0, 0, 0, 0, distances=distances)
    seed_everything(*seed)
    x_adv = attack.find(estimator, x[targets], y[targets], norm=norm, keys=keys[targets], batch_size=batch_size)
    start, queries = time.perf_counter(), estimator.counts["predict"]
    check_perturbation(name, x[targets], x_adv, np.inf, norm)
    found = perturbation_norm((x_adv.astype(np.float64) - x[targets]).reshape(len(targets), -1), norm)
    fooled = predict_labels(estimator, x_adv, batch_size) != y[targets]
    found[~fooled] = np.inf  # a point that is not misclassified breaks nothing, whatever its distance
    distances[targets] = found
    grid = np.asarray(eps[1:]) * (1.0 + BALL_TOLERANCE) + BALL_TOLERANCE
    first = np.searchsorted(grid, found, side="left") + 1  # first k ≥ 1 with eps[k] ≥ distance
    broken_at[targets] = np.minimum(first, len(eps))
    return AttackOutcome(broken_at, time.perf_counter() - start, 0, estimator.counts["predict"] - queries,
                         int(targets.size), distances=distances)


def seed_everything(*parts: int) -> None:
    """Seed the global generators some ART attacks draw from (numpy, random, torch) from ``parts``."""
    import torch

    state = np.random.SeedSequence([abs(int(p)) for p in parts]).generate_state(2)
    np.random.seed(int(state[0]))
    random.seed(int(state[1]))
    torch.manual_seed(int(state[0]))


def predict_labels(estimator, x: np.ndarray, batch_size: int) -> np.ndarray:
    return np.asarray(estimator.predict(x.astype(np.float32, copy=False), batch_size=batch_size)).argmax(axis=1)


def check_perturbation(name: str, x: np.ndarray, x_adv: np.ndarray, eps: float, norm: str) -> None:
    """Raise ``AttackError`` unless ``x_adv`` has ``x``'s shape, lies in [0, 1] and within ε of ``x`` in ``norm``."""
    if x_adv.shape != x.shape:
        raise AttackError(f"attack {name!r} returned shape {x_adv.shape} for inputs of shape {x.shape}")
    if not np.isfinite(x_adv).all():
        raise AttackError(f"attack {name!r} returned non-finite inputs")
    low, high = float(x_adv.min()), float(x_adv.max())
    if low < -BALL_TOLERANCE or high > 1.0 + BALL_TOLERANCE:
        raise AttackError(f"attack {name!r} left the input range [0, 1]: values in [{low:.6g}, {high:.6g}]")
    if np.isinf(eps):
        return
    diff = (x_adv.astype(np.float64) - x).reshape(len(x), -1)
    worst = float(perturbation_norm(diff, norm).max(initial=0.0))
    if worst > eps * (1.0 + BALL_TOLERANCE) + BALL_TOLERANCE:
        raise AttackError(f"attack {name!r} left the L{norm} ball: perturbation {worst:.6g} > ε = {eps:g}")


def perturbation_norm(diff: np.ndarray, norm: str) -> np.ndarray:
    """Per-row norm of flattened perturbations ``diff`` (``norm`` is "inf" or "2")."""
    if norm == "inf":
        return np.abs(diff).max(axis=1, initial=0.0)
    if norm == "2":
        return np.sqrt((diff**2).sum(axis=1))
    raise ValueError(f"unknown norm {norm!r}; expected 'inf' or '2'")
