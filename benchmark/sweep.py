"""The attack sweep: every attack at every ε, attacking only the samples still robust.

Semantics (DESIGN §4): inputs and ε live in [0, 1]; ε = 0 is clean accuracy and never calls an attack; the
perturbation sets are nested, so a sample broken at a smaller ε counts as broken at every larger one. For each attack
the sweep records, per sample, the index of the first ε that broke it (``broken_at``; ``len(eps)`` = never). From
these:

* per-attack robust accuracy at ε_k = share of samples with ``broken_at > k`` (each attack on its own);
* worst-case robust accuracy at ε_k = share of samples that every attack left robust (per-sample worst case, never an
  average across attacks).

The survivor shortcut (attack at ε_k only what the same attack left robust at ε_{k-1}) gives exactly the numbers of
the naive loop (every sample, every ε) because attacks draw their randomness per sample (``keys``), not per batch.
"""

from __future__ import annotations

import logging
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


@dataclass(frozen=True, eq=False)
class SweepResult:
    eps: tuple[float, ...]  # ascending, eps[0] == 0
    correct: np.ndarray  # bool, per sample: clean prediction is right
    outcomes: dict[str, AttackOutcome] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.correct)

    def worst_broken_at(self) -> np.ndarray:
        """Per sample, the first ε index at which any attack broke it."""
        never = np.where(self.correct, len(self.eps), 0)
        return np.minimum.reduce([never, *(o.broken_at for o in self.outcomes.values())])

    def accuracy(self, attack: str | None = None) -> dict[float, float]:
        """Robust accuracy per ε: under ``attack`` alone, or the per-sample worst case over all attacks (None)."""
        broken_at = self.worst_broken_at() if attack is None else self.outcomes[attack].broken_at
        return {e: float(np.mean(broken_at > k)) for k, e in enumerate(self.eps)}


def run_sweep(
    estimator,
    x: np.ndarray,
    y: np.ndarray,
    attacks: Mapping[str, Attack],
    eps: Sequence[float],
    *,
    keys: np.ndarray,
    batch_size: int,
    survivors_only: bool = True,
    on_attack: Callable[[str], None] | None = None,
) -> SweepResult:
    """Run every attack over the ascending ε grid ``eps`` (which must start at 0).

    ``survivors_only=False`` is the naive loop (every sample at every ε), kept for tests and benchmarks.
    """
    eps = tuple(float(e) for e in eps)
    if not eps or eps[0] != 0.0 or list(eps) != sorted(set(eps)):
        raise ValueError(f"eps must be ascending, distinct and start at 0, got {eps}")
    correct = predict_labels(estimator, x, batch_size) == y
    never = len(eps)
    outcomes: dict[str, AttackOutcome] = {}
    for name, attack in attacks.items():
        if on_attack is not None:
            on_attack(name)
        broken_at = np.where(correct, never, 0)
        grads0, queries0 = estimator.counts["grad"], estimator.counts["predict"]
        attacked, seconds = 0, 0.0
        for k in range(1, len(eps)):
            targets = np.flatnonzero(broken_at == never) if survivors_only else np.arange(len(x))
            if targets.size == 0:
                break
            start = time.perf_counter()
            x_adv = attack.generate(estimator, x[targets], y[targets], eps[k], keys[targets], batch_size)
            seconds += time.perf_counter() - start
            queries_before_check = estimator.counts["predict"]
            check_perturbation(name, x[targets], x_adv, eps[k], attack.norm)
            fooled = predict_labels(estimator, x_adv, batch_size) != y[targets]
            estimator.counts["predict"] = queries_before_check  # the harness's own check is not the attack's cost
            hit = targets[fooled]
            broken_at[hit] = np.minimum(broken_at[hit], k)
            attacked += targets.size
        outcomes[name] = AttackOutcome(
            broken_at=broken_at,
            seconds=seconds,
            grad_evals=estimator.counts["grad"] - grads0,
            queries=estimator.counts["predict"] - queries0,
            attacked=attacked,
        )
        logger.info("%s: %d sample-runs, %.2fs, accuracy %s", name, attacked, seconds, _fmt(outcomes[name], eps))
    return SweepResult(eps=eps, correct=correct, outcomes=outcomes)


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
    diff = (x_adv.astype(np.float64) - x).reshape(len(x), -1)
    distance = perturbation_norm(diff, norm)
    worst = float(distance.max(initial=0.0))
    if worst > eps * (1.0 + BALL_TOLERANCE) + BALL_TOLERANCE:
        raise AttackError(f"attack {name!r} left the L{norm} ball: perturbation {worst:.6g} > ε = {eps:g}")


def perturbation_norm(diff: np.ndarray, norm: str) -> np.ndarray:
    """Per-row norm of flattened perturbations ``diff`` (``norm`` is "inf" or "2")."""
    if norm == "inf":
        return np.abs(diff).max(axis=1, initial=0.0)
    if norm == "2":
        return np.sqrt((diff**2).sum(axis=1))
    raise ValueError(f"unknown norm {norm!r}; expected 'inf' or '2'")


def _fmt(outcome: AttackOutcome, eps: tuple[float, ...]) -> str:
    return ", ".join(f"{e:g}: {np.mean(outcome.broken_at > k):.3f}" for k, e in enumerate(eps))
