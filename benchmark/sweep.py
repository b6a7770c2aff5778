"""The attack sweep: every attack at every ε, attacking only the samples still robust.

Semantics (DESIGN §4): inputs and ε live in [0, 1]; ε = 0 is clean accuracy and never calls an attack; the
perturbation sets are nested, so a sample broken at a smaller ε counts as broken at every larger one. For each attack
the sweep records, per sample, the index of the first ε that broke it (``broken_at``; ``len(eps)`` = never). The
worst-case robust accuracy at ε_k is the share of samples that no attack broke at any ε ≤ ε_k (per-sample worst case,
never an average across attacks).

Which samples each attack run is given (``survivors``) is a *schedule*, one small generator per mode:

* ``"shared"`` (default, DESIGN §1.5): white-box minimal-norm attacks run first, once, on every correct sample; then
  at each ε, ascending, the ε-bounded attacks run in turn — gradient-based ones first, then black-box ones — each on
  the samples no attack has broken at that ε or a smaller one; black-box minimal-norm attacks run last, once, on the
  samples that survived the smallest ε. The per-attack numbers are cumulative along that order (as AutoAttack
  reports). Running black-box attacks after the gradient ones makes their breaks exactly the samples every gradient
  attack missed, which is what the gradient-masking flag looks at.
* ``"per-attack"``: each attack on the samples it has left robust itself (minimal-norm ones once, on every correct
  sample); per-attack numbers are standalone accuracies.
* ``"none"``: every ε-bounded attack on every sample at every ε (the naive loop, for tests and benchmarks).

Invariant (``tests/test_sweep_property.py``): a suite breaks every sample that any of its sub-suites breaks, in any
mode and on any grid, for attacks whose outcome on a sample depends only on that sample — all but Square, which ART
draws per batch. Attacks draw per-sample randomness from ``keys`` and are seeded by their own name. A minimal-norm
attack's sample counts as broken at every ε ≥ the distance found, provided the found point really is misclassified;
its median distance is over the samples it attacked.

Every break counted is verified: the perturbed input lies in the ε-ball and in [0, 1] and is misclassified. An attack
whose output fails that check stops there and reports no per-attack numbers (its outcome carries the error); the
breaks it made before still count in the worst case, and with shared survivors they must, since the other attacks
skipped those samples.
"""

from __future__ import annotations

import logging
import random
import time
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmark.api import Attack
from benchmark.errors import AttackError

logger = logging.getLogger(__name__)

#: Version of the sweep's semantics, part of every job's scoring hash: results stored under another version are
#: recomputed, never reused (2: minimal-norm attacks no longer hide samples from the ε-bounded ones).
SWEEP_VERSION = 2

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
    distances: np.ndarray | None = None  # minimal-norm attacks, per sample: distance found (inf: none; NaN: not run)
    error: str | None = None  # set when the attack's output was invalid; then it has no numbers

    @property
    def median_distance(self) -> float | None:
        """Median distance found over the attacked samples (inf when most were not broken)."""
        if self.distances is None:
            return None
        attacked = self.distances[~np.isnan(self.distances)]
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
        ran = list(self.outcomes)
        bounded = [name for name, o in self.outcomes.items() if o.distances is None]
        curves = {}
        for name in self.valid():
            upto = self.worst_broken_at(ran[: ran.index(name) + 1])
            # the ε-bounded attacks' breaks at smaller ε came before this attack's turn at ε_k, unless it is a
            # white-box minimal-norm attack (those run first, before any ε-bounded one)
            first = self.outcomes[name].distances is not None and not self.outcomes[name].black_box
            lower = self.worst_broken_at([] if first else bounded)
            curves[name] = {e: float(np.mean((upto > k) & (lower >= k))) for k, e in enumerate(self.eps)}
        return curves


def worst_case(correct: Sequence[bool], broken_at: Sequence[Sequence[int]], levels: int) -> np.ndarray:
    """Per sample, the first ε index at which any of the attacks (``broken_at``, one array each) broke it: 0 for a
    sample misclassified at ε = 0, ``levels`` for one no attack broke."""
    never = np.where(np.asarray(correct, dtype=bool), levels, 0)
    return np.minimum.reduce([never, *(np.asarray(b) for b in broken_at)])


def accuracy_curve(broken_at: np.ndarray, eps: Sequence[float]) -> dict[float, float]:
    return {e: float(np.mean(broken_at > k)) for k, e in enumerate(eps)}


@dataclass(frozen=True, eq=False)
class SweepInputs:
    """What every attack run of one sweep shares: the wrapped model, the test samples, the grid and the run settings."""

    estimator: Any
    x: np.ndarray
    y: np.ndarray
    eps: tuple[float, ...]
    norm: str
    keys: np.ndarray
    batch_size: int
    seed: int


@dataclass
class _Tally:
    """One attack's state during a sweep: its break levels so far and what it has cost (the harness's own checking
    time and predictions are kept apart)."""

    attack: Attack
    broken_at: np.ndarray
    seconds: float = 0.0
    grad_evals: int = 0
    queries: int = 0
    attacked: int = 0
    distances: np.ndarray | None = None
    error: str | None = None

    def outcome(self) -> AttackOutcome:
        return AttackOutcome(broken_at=self.broken_at, seconds=self.seconds, grad_evals=self.grad_evals,
                             queries=self.queries, attacked=self.attacked, black_box=self.attack.black_box,
                             distances=self.distances, error=self.error)


#: One attack run: (attack name, ε index or None for a minimal-norm attack's single run, sample indices).
Step = tuple[str, "int | None", np.ndarray]


def attack_groups(attacks: Mapping[str, Attack]) -> dict[str, list[str]]:
    """The attacks by how the shared cascade schedules them (each list keeps the given order)."""
    groups: dict[str, list[str]] = {"white_minimal": [], "bounded": [], "black_minimal": []}
    for name, attack in attacks.items():
        kind = "bounded" if not attack.minimal_norm else "black_minimal" if attack.black_box else "white_minimal"
        groups[kind].append(name)
    groups["bounded"].sort(key=lambda name: bool(attacks[name].black_box))  # stable: gradient attacks first
    return groups


def execution_order(attacks: Mapping[str, Attack], survivors: str) -> list[str]:
    """The order the attacks run in: as given, except that with shared survivors white-box minimal-norm attacks come
    first, then the ε-bounded gradient attacks, the ε-bounded black-box attacks, and the black-box minimal-norm
    attacks last (stable within each group)."""
    if survivors != "shared":
        return list(attacks)
    return [name for group in attack_groups(attacks).values() for name in group]


def _alive(tallies: Mapping[str, _Tally], k: int) -> np.ndarray:
    """The samples no attack has broken at any ε index ≤ ``k`` so far (misclassified ones start broken at 0)."""
    return np.flatnonzero(np.minimum.reduce([t.broken_at for t in tallies.values()]) > k)


def _shared_steps(attacks, levels, correct, tallies) -> Iterator[Step]:
    """The cascade: white-box minimal-norm attacks once on every correct sample; then at each ε, ascending, every
    ε-bounded attack (gradient ones first) on what no attack has broken at that ε or below; then black-box
    minimal-norm attacks once on what survived the smallest ε. Targets are computed when the step is taken."""
    groups = attack_groups(attacks)
    for name in groups["white_minimal"]:
        yield name, None, np.flatnonzero(correct)
    for k in range(1, levels):
        for name in groups["bounded"]:
            yield name, k, _alive(tallies, k)
    for name in groups["black_minimal"]:
        yield name, None, _alive(tallies, 1)


def _own_steps(attacks, levels, correct, targets) -> Iterator[Step]:
    """Each attack on its own: minimal-norm ones once on every correct sample, ε-bounded ones at each ε on
    ``targets(name, k)``."""
    for name, attack in attacks.items():
        if attack.minimal_norm:
            yield name, None, np.flatnonzero(correct)
            continue
        for k in range(1, levels):
            yield name, k, targets(name, k)


def _per_attack_steps(attacks, levels, correct, tallies) -> Iterator[Step]:
    """ε-bounded attacks at each ε on the samples they have not broken themselves at that ε or below."""
    return _own_steps(attacks, levels, correct, lambda name, k: np.flatnonzero(tallies[name].broken_at > k))


def _naive_steps(attacks, levels, correct, tallies) -> Iterator[Step]:
    """Every ε-bounded attack on every sample at every ε."""
    return _own_steps(attacks, levels, correct, lambda name, k: np.arange(len(correct)))


SCHEDULES = {"shared": _shared_steps, "per-attack": _per_attack_steps, "none": _naive_steps}
#: The survivor modes a user picks (``"none"``, the naive loop, exists for tests and benchmarks).
SURVIVORS = ("shared", "per-attack")


def per_attack_kind(survivors: str) -> str:
    """What per-attack numbers are under a survivor mode: "cumulative" (shared) or "standalone"."""
    return "cumulative" if survivors == "shared" else "standalone"


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
    """Run every attack over the ascending ε grid ``eps`` (which must start at 0) under ``norm``, giving each attack
    the samples ``survivors`` says (module docstring). ``on_attack(name, eps, done, total)`` is called before each
    attack run (``eps`` NaN for a minimal-norm attack's single run; ``total``: runs planned)."""
    eps = tuple(float(e) for e in eps)
    if not eps or eps[0] != 0.0 or list(eps) != sorted(set(eps)):
        raise ValueError(f"eps must be ascending, distinct and start at 0, got {eps}")
    if survivors not in SCHEDULES:
        raise ValueError(f"survivors must be one of {', '.join(SCHEDULES)}, got {survivors!r}")
    inputs = SweepInputs(estimator, x, y, eps, norm, keys, batch_size, seed)
    correct = predict_labels(estimator, x, batch_size) == y
    ordered = {name: attacks[name] for name in execution_order(attacks, survivors)}
    tallies = {name: _Tally(attack=a, broken_at=np.where(correct, len(eps), 0),
                            distances=np.full(len(x), np.nan) if a.minimal_norm else None)
               for name, a in ordered.items()}
    total = sum(1 if a.minimal_norm else len(eps) - 1 for a in ordered.values()) if len(eps) > 1 else 0
    steps = SCHEDULES[survivors](ordered, len(eps), correct, tallies) if len(eps) > 1 else ()
    for done, (name, level, targets) in enumerate(steps):
        if on_attack is not None:
            on_attack(name, eps[level] if level is not None else float("nan"), done, total)
        _attempt(inputs, name, level, targets, tallies[name])
    outcomes = {name: tally.outcome() for name, tally in tallies.items()}
    for name, outcome in outcomes.items():
        logger.info("%s: %d sample-runs, %.2fs, accuracy %s", name, outcome.attacked, outcome.seconds,
                    accuracy_curve(outcome.broken_at, eps))
    return SweepResult(eps=eps, correct=correct, outcomes=outcomes, survivors=survivors)


def _attempt(inputs: SweepInputs, name: str, level: int | None, targets: np.ndarray, tally: _Tally) -> None:
    """One run of an attack at ε index ``level`` (None: a minimal-norm attack's single run) on ``targets``; its
    verified breaks lower ``tally.broken_at``. An attack whose output fails the check is stopped for good."""
    if tally.error is not None or targets.size == 0:
        return
    try:
        x_adv = _generate(inputs, name, level, targets, tally)
        check_perturbation(name, inputs.x[targets], x_adv, np.inf if level is None else inputs.eps[level], inputs.norm)
    except AttackError as error:
        logger.warning("%s", error)
        tally.error = str(error)
        return
    fooled = predict_labels(inputs.estimator, x_adv, inputs.batch_size) != inputs.y[targets]
    if level is not None:
        hit = targets[fooled]
        tally.broken_at[hit] = np.minimum(tally.broken_at[hit], level)
        return
    found = perturbation_norm((x_adv.astype(np.float64) - inputs.x[targets]).reshape(len(targets), -1), inputs.norm)
    found[~fooled] = np.inf  # a point that is not misclassified breaks nothing, whatever its distance
    tally.distances[targets] = found
    tally.broken_at[targets] = np.minimum(tally.broken_at[targets], break_level(found, inputs.eps))


def break_level(distances: np.ndarray, eps: Sequence[float]) -> np.ndarray:
    """Per distance, the index of the first ε of the grid at least that large (within float32 round-off);
    ``len(eps)`` where none is."""
    grid = np.asarray(eps[1:]) * (1.0 + BALL_TOLERANCE) + BALL_TOLERANCE
    return np.minimum(np.searchsorted(grid, distances, side="left") + 1, len(eps))


def _generate(inputs: SweepInputs, name: str, level: int | None, targets: np.ndarray, tally: _Tally) -> np.ndarray:
    """The attack's adversarial inputs for ``targets``; its seconds, gradients and queries go to ``tally``."""
    counts, attack = inputs.estimator.counts, tally.attack
    grads, queries, start = counts["grad"], counts["predict"], time.perf_counter()
    seed_everything(inputs.seed, attack_salt(name), *(() if level is None else (level,)))
    x, y, keys = inputs.x[targets], inputs.y[targets], inputs.keys[targets]
    if level is None:
        x_adv = attack.find(inputs.estimator, x, y, norm=inputs.norm, keys=keys, batch_size=inputs.batch_size)
    else:
        x_adv = attack.generate(inputs.estimator, x, y, eps=inputs.eps[level], norm=inputs.norm, keys=keys,
                                batch_size=inputs.batch_size)
    tally.seconds += time.perf_counter() - start
    tally.grad_evals += counts["grad"] - grads
    tally.queries += counts["predict"] - queries
    tally.attacked += targets.size
    return x_adv


def attack_salt(name: str) -> int:
    """A seed component from the attack's label, so that an attack draws the same global random numbers whichever
    other attacks share the suite."""
    return zlib.crc32(name.encode())


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
