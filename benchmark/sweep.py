"""The attack sweep: every attack at every ε, attacking only the samples still robust.

Semantics (DESIGN §4): inputs and ε live in [0, 1]; ε = 0 is clean accuracy and never calls an attack; the
perturbation sets are nested, so a sample broken at a smaller ε counts as broken at every larger one. For each attack
the sweep records, per sample, the index of the first ε that broke it (``broken_at``; ``len(eps)`` = never). The
worst-case robust accuracy at ε_k is the share of samples that no attack broke at any ε ≤ ε_k (per-sample worst case,
never an average across attacks).

Which samples an ε-bounded attack is given (``survivors``):

* ``"shared"`` (default, DESIGN §1.5): at each ε, ascending, the attacks run in turn — gradient-based ones first,
  then black-box ones — each on the samples that no attack has broken so far. The worst case is the same as
  attacking everything; the per-attack numbers are cumulative: robust accuracy after each attack of the cascade
  (as AutoAttack reports). Running black-box attacks last makes their breaks exactly the samples every gradient
  attack missed, which is what the gradient-masking flag looks at.
* ``"per-attack"``: each attack on the samples it has left robust itself; per-attack numbers are standalone
  accuracies. Costs more: every attack re-attacks what the others already broke.
* ``"none"``: every attack on every sample at every ε (the naive loop, for tests and benchmarks).

With ``per-attack`` an attack's numbers are exactly those of the naive loop, because attacks draw their randomness
per sample from ``keys``. Minimal-norm attacks run once, on every correctly classified sample, in every mode; a
sample counts as broken at every ε ≥ the distance found, provided the found point really is misclassified.

Every break counted is verified: the perturbed input lies in the ε-ball and in [0, 1] and is misclassified. An attack
whose output fails that check stops there and reports no per-attack numbers (its outcome carries the error); the
breaks it made before still count in the worst case, and with shared survivors they must, since the other attacks
skipped those samples.
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
    outcomes: dict[str, AttackOutcome] = field(default_factory=dict)  # in the order the attacks ran
    survivors: str = "shared"  # which samples each attack was given (see the module docstring)

    @property
    def n(self) -> int:
        return len(self.correct)

    def valid(self) -> dict[str, AttackOutcome]:
        """The outcomes with numbers (attacks that did not fail validation)."""
        return {name: o for name, o in self.outcomes.items() if o.error is None}

    def worst_broken_at(self, names: Sequence[str] | None = None) -> np.ndarray:
        """Per sample, the first ε index at which any attack of ``names`` (default: all) broke it. Every break was
        verified (inside the ball and the input range, misclassified), so an attack that failed validation later
        still counts the breaks it made before."""
        chosen = [o.broken_at for name, o in self.outcomes.items() if names is None or name in names]
        return worst_case(self.correct, chosen, len(self.eps))

    def accuracy(self, attack: str | None = None) -> dict[float, float]:
        """Robust accuracy per ε: the per-sample worst case over all valid attacks, or the share of samples that
        ``attack`` did not break (its standalone accuracy unless the survivors were shared)."""
        broken_at = self.worst_broken_at() if attack is None else self.outcomes[attack].broken_at
        return accuracy_curve(broken_at, self.eps)

    @property
    def per_attack_kind(self) -> str:
        return per_attack_kind(self.survivors)

    def per_attack(self) -> dict[str, dict[float, float]]:
        """Per valid attack, in the order they ran: its standalone robust accuracy per ε, or with shared survivors
        the robust accuracy after it and every attack before it in the cascade (the last equals the worst case)."""
        if self.per_attack_kind == "standalone":
            return {name: self.accuracy(name) for name in self.valid()}
        ran, worst = list(self.outcomes), self.worst_broken_at()
        curves = {}
        for name in self.valid():
            upto = self.worst_broken_at(ran[: ran.index(name) + 1])
            # robust after it at ε_k: no attack broke the sample at a smaller ε (the cascade at ε_k starts from
            # those) and neither it nor any attack before it did at ε_k
            curves[name] = {e: float(np.mean((worst >= k) & (upto > k))) for k, e in enumerate(self.eps)}
        return curves


def worst_case(correct: Sequence[bool], broken_at: Sequence[Sequence[int]], levels: int) -> np.ndarray:
    """Per sample, the first ε index at which any of the attacks (``broken_at``, one array each) broke it: 0 for a
    sample misclassified at ε = 0, ``levels`` for one no attack broke."""
    never = np.where(np.asarray(correct, dtype=bool), levels, 0)
    return np.minimum.reduce([never, *(np.asarray(b) for b in broken_at)])


def accuracy_curve(broken_at: np.ndarray, eps: Sequence[float]) -> dict[float, float]:
    return {e: float(np.mean(broken_at > k)) for k, e in enumerate(eps)}


SURVIVORS = ("shared", "per-attack", "none")


def per_attack_kind(survivors: str) -> str:
    """What per-attack numbers are under a survivor mode: "cumulative" (shared) or "standalone"."""
    return "cumulative" if survivors == "shared" else "standalone"


def execution_order(attacks: Mapping[str, Attack], survivors: str) -> list[str]:
    """The order attacks run in: as given, except that with shared survivors black-box attacks go after the
    gradient-based ones (stable within each group)."""
    names = list(attacks)
    return sorted(names, key=lambda name: bool(attacks[name].black_box)) if survivors == "shared" else names


@dataclass
class _Tally:
    """What one attack has cost so far; the harness's own checking time and predictions are kept apart."""

    seconds: float = 0.0
    grad_evals: int = 0
    queries: int = 0
    attacked: int = 0
    distances: np.ndarray | None = None
    error: str | None = None


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
    survivors: str = "shared",
    on_attack: Callable[[str, float, int, int], None] | None = None,
) -> SweepResult:
    """Run every attack over the ascending ε grid ``eps`` (which must start at 0) under ``norm``, giving each
    ε-bounded attack the samples ``survivors`` says (module docstring). ``on_attack(name, eps, done, total)`` is
    called before each attack run (``total``: runs planned; minimal-norm attacks run once)."""
    eps = tuple(float(e) for e in eps)
    if not eps or eps[0] != 0.0 or list(eps) != sorted(set(eps)):
        raise ValueError(f"eps must be ascending, distinct and start at 0, got {eps}")
    if survivors not in SURVIVORS:
        raise ValueError(f"survivors must be one of {', '.join(SURVIVORS)}, got {survivors!r}")
    correct = predict_labels(estimator, x, batch_size) == y
    names = execution_order(attacks, survivors)
    index = {name: i for i, name in enumerate(attacks)}  # seeds follow the given order, whatever the run order
    broken = {name: np.where(correct, len(eps), 0) for name in names}
    tallies = {name: _Tally(distances=np.zeros(len(x)) if attacks[name].minimal_norm else None) for name in names}
    bounded = [name for name in names if not attacks[name].minimal_norm]
    total = len(names) - len(bounded) + len(bounded) * (len(eps) - 1)
    done = 0

    def attempt(name: str, k: int | None, targets: np.ndarray) -> None:
        """One run of attack ``name`` at ε index ``k`` (None: minimal-norm) on ``targets``; breaks recorded."""
        nonlocal done
        tally = tallies[name]
        if tally.error is not None or targets.size == 0:
            return
        if on_attack is not None:
            on_attack(name, eps[k] if k is not None else float("nan"), done, total)
        done += 1
        try:
            _attack_once(name, attacks[name], estimator, x, y, targets, eps, k, broken[name], tally, norm=norm,
                         keys=keys, batch_size=batch_size, seed=(seed, index[name]))
        except AttackError as error:
            logger.warning("%s", error)
            tally.error = str(error)

    for name in names:
        if attacks[name].minimal_norm and len(eps) > 1:
            attempt(name, None, np.flatnonzero(correct))
    for k in range(1, len(eps)) if survivors == "shared" else ():
        for name in bounded:
            alive = worst_case(correct, list(broken.values()), len(eps)) == len(eps)
            attempt(name, k, np.flatnonzero(alive))
    for name in bounded if survivors != "shared" else ():
        for k in range(1, len(eps)):
            attempt(name, k, np.flatnonzero(broken[name] == len(eps)) if survivors == "per-attack"
                    else np.arange(len(x)))

    outcomes = {}
    for name in names:
        tally = tallies[name]
        outcomes[name] = AttackOutcome(
            broken_at=broken[name], seconds=tally.seconds,
            grad_evals=tally.grad_evals, queries=tally.queries, attacked=tally.attacked,
            black_box=attacks[name].black_box, distances=tally.distances, error=tally.error)
        logger.info("%s: %d sample-runs, %.2fs, accuracy %s", name, tally.attacked, tally.seconds,
                    accuracy_curve(outcomes[name].broken_at, eps))
    return SweepResult(eps=eps, correct=correct, outcomes=outcomes, survivors=survivors)


def _attack_once(name, attack, estimator, x, y, targets, eps, k, broken_at, tally, *, norm, keys, batch_size, seed):
    """Run ``attack`` on ``targets`` at ε index ``k`` (None: a minimal-norm attack, once), check its output, and
    lower ``broken_at`` where it fooled the model. Costs go to ``tally``, the harness's checking excluded."""
    grads, queries, start = estimator.counts["grad"], estimator.counts["predict"], time.perf_counter()
    seed_everything(*seed, *(() if k is None else (k,)))
    if k is None:
        x_adv = attack.find(estimator, x[targets], y[targets], norm=norm, keys=keys[targets], batch_size=batch_size)
    else:
        x_adv = attack.generate(estimator, x[targets], y[targets], eps=eps[k], norm=norm, keys=keys[targets],
                                batch_size=batch_size)
    tally.seconds += time.perf_counter() - start
    tally.grad_evals += estimator.counts["grad"] - grads
    tally.queries += estimator.counts["predict"] - queries
    tally.attacked += targets.size
    check_perturbation(name, x[targets], x_adv, np.inf if k is None else eps[k], norm)
    fooled = predict_labels(estimator, x_adv, batch_size) != y[targets]
    if k is not None:
        hit = targets[fooled]
        broken_at[hit] = np.minimum(broken_at[hit], k)
        return
    found = perturbation_norm((x_adv.astype(np.float64) - x[targets]).reshape(len(targets), -1), norm)
    found[~fooled] = np.inf  # a point that is not misclassified breaks nothing, whatever its distance
    tally.distances = np.zeros(len(x))
    tally.distances[targets] = found
    grid = np.asarray(eps[1:]) * (1.0 + BALL_TOLERANCE) + BALL_TOLERANCE
    broken_at[targets] = np.minimum(np.searchsorted(grid, found, side="left") + 1, len(eps))  # first ε ≥ distance


def seed_everything(*parts: int) -> None:
    """Seed the global generators some ART attacks draw from (numpy, random, torch) from ``parts``."""
    import torch

    state = np.random.SeedSequence([abs(int(p)) for p in parts]).generate_state(2)
    np.random.seed(int(state[0]))
    random.seed(int(state[1]))
    torch.default_generator.manual_seed(int(state[0]))
    if torch.cuda.is_available():  # torch.manual_seed would also queue lazy seeding of absent devices, at a cost
        torch.cuda.manual_seed_all(int(state[0]))


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
