"""The result of one job, typed: ``Record`` is what the runner builds and the store, the leaderboard (and through it
the renderers, ``bench compare`` and ``bench check``) read.

This module is the one place that names a field's default. Fields that records did not always have take a default
here, so an older record reads as if it had been written with the value that was implied then (a record without
``survivors`` ran with per-attack survivors). Stored records carry a ``schema_version``; ``upgrade`` is the one path
from an older stored form to the current one, applied when a record is read.

Version history of the stored form:

* 1 — a flat dict: per-attack numbers in parallel dicts (``per_attack``, ``attack_seconds``, ``attack_grad_evals``,
  ``attack_queries``, ``attack_sample_runs``, ``attack_tags``, ``attack_errors``, ``median_distance``), run order in
  ``attack_order``, per-sample results under ``samples``. Keys added while the version stayed 1: ``attack_sample_runs``,
  ``attack_tags``, ``attack_errors``, ``median_distance``, ``flags``, ``probes``, ``probe_seconds``,
  ``samples.distances``, ``data_fingerprint``, ``survivors``, ``attack_order`` (and ``per_attack_kind``, since dropped).
* 2 — this module's dataclasses as JSON: one ``runs`` entry per attack, in the order the attacks ran.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmark.certify_stage import CertifiedOutcome
from benchmark.ibp_stage import IBPResult
from benchmark.privacy import BackdoorOutcome, ClientThreat, DPGuarantee, PrivacyResult, eps_key, from_fields
from benchmark.validity import Probes

if TYPE_CHECKING:
    from benchmark.sweep import SweepResult

RECORD_VERSION = 2

#: The capability tags of an attack that each record keeps (``benchmark.api.Attack``).
ATTACK_TAGS = ("needs_grad", "black_box", "minimal_norm")
#: Capability tags an attack may declare (default False): ``torch_only`` (ART's implementation needs a PyTorch
#: model), ``images_only`` (inputs (n, C, H, W), not flat features). Checked before any work.
CAPABILITY_TAGS = ("torch_only", "images_only")


@dataclass(frozen=True)
class AttackRun:
    """One attack of the suite as it ran in the job's sweep."""

    seconds: float
    grad_evals: int  # per-sample input gradients it asked for
    queries: int  # per-sample predictions it asked for
    sample_runs: int = 0  # sample-attack runs performed
    tags: dict[str, Any] = field(default_factory=dict)  # ATTACK_TAGS; an adaptive run's adaptation and EoT draws
    error: str | None = None  # why it was stopped (its output failed validation); then ``accuracy`` is None
    accuracy: dict[str, float] | None = None  # per ε key: cumulative (shared survivors) or standalone
    median_distance: float | None = None  # minimal-norm attacks: median distance found
    broken_at: tuple[int, ...] = ()  # per sample: index of the first ε that broke it (len(eps): none)
    distances: tuple[float | None, ...] | None = None  # minimal-norm, per sample (None: not attacked or none found)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AttackRun:
        return from_fields(cls, data, broken_at=tuple, distances=_optional_tuple)


@dataclass(frozen=True)
class Environment:
    """Where a record was produced (``benchmark.provenance.environment``)."""

    python: str | None = None
    platform: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    device: str | None = None
    cpu: str | None = None
    torch_threads: int | None = None
    git_sha: str | None = None
    gpu: str | None = None  # the GPU's name on CUDA

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Environment:
        return from_fields(cls, data)


@dataclass(frozen=True)
class ModelSource:
    """Where a model that the registry did not build came from (``benchmark.sources``): enough to load it again."""

    spec: str  # what --model said: "torchscript:model.pt", "pkg.mod:Class"; "python:Name" for benchmark.evaluate
    sha256: str  # of the model file (kind class: its source file and weights); of the weights for a Python object
    weights: str | None = None  # --weights, for pkg.mod:Class
    args: dict[str, Any] = field(default_factory=dict)  # --model-arg, for pkg.mod:Class
    normalize: dict[str, list[float]] | None = None  # {"mean": [...], "std": [...]} applied in front of the model
    trust: tuple[str, ...] = ()  # skops types trusted with --trust

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelSource:
        return from_fields(cls, data, trust=tuple)


@dataclass(frozen=True)
class Record:
    """One finished job: what ran, what it scored, what it cost, and where."""

    # what ran
    job_hash: str
    train_hash: str
    dataset: str
    model: str
    defense: str  # the row label: the name with the parameters that differ from the defaults
    defense_name: str
    defense_params: dict[str, Any]
    seed: int
    norm: str  # "inf" or "2"
    eps: tuple[float, ...]  # ascending, starts at 0
    attacks: dict[str, dict[str, Any]]  # label → every parameter, in the configured order
    quick: bool
    n_test: int
    input_shape: tuple[int, ...]
    nb_classes: int
    # what it scored
    clean_accuracy: float
    robust_accuracy: dict[str, float]  # per ε key: the per-sample worst case over the attacks
    correct: tuple[int, ...]  # per sample: 1 if classified correctly at ε = 0
    runs: dict[str, AttackRun]  # per attack, in the order they ran (the cumulative numbers follow it)
    # what it cost, and where
    train_seconds: float | None  # None: not trained here (defense "pretrained")
    train_grad_evals: int
    train_cached: bool
    eval_seconds: float
    device: str
    batch_size: int
    environment: Environment
    created_at: str
    # fields older records lack; their defaults say what those records implied
    data_fingerprint: str | None = None
    survivors: str = "per-attack"  # which samples each attack got (``benchmark.sweep``)
    flags: tuple[str, ...] = ()  # validity flags (``benchmark.validity``)
    probes: Probes = field(default_factory=Probes)
    probe_seconds: float = 0.0
    model_source: ModelSource | None = None  # a model from a file or the caller (None: built from the registry)
    data_source: str | None = None  # what the dataset says determines its data, e.g. "sha256:…" of its file
    headline_eps: float | None = None  # the ε leaderboards sort by (None in older records: the dataset's)
    recipe: dict[str, Any] | None = None  # how the model was trained (``benchmark.recipes``; None: no recipe)
    early_stop_epoch: int | None = None  # the epoch whose weights early stopping kept (None: no early stop)
    n_train: int | None = None  # trained on the first n training samples only (--n-train; None: all)
    privacy: PrivacyResult | None = None  # the privacy attacks on the trained model (None: none asked for)
    dp: DPGuarantee | None = None  # a differentially private defense's guarantee (None: not a DP defense)
    backdoor: BackdoorOutcome | None = None  # a planted backdoor's success rate (None: no backdoor attack)
    client_threat: ClientThreat | None = None  # a federated row's Byzantine clients (None: none)
    certification: CertifiedOutcome | None = None  # randomized-smoothing certificates (None: none certified)
    ibp: IBPResult | None = None  # interval-bound-propagation certificates (--ibp; None: not asked for)

    @property
    def board_key(self) -> tuple[str, str, tuple[float, ...], str]:
        """What records on one leaderboard must share: dataset, norm, ε grid and survivor mode."""
        return self.dataset, self.norm, self.eps, self.survivors

    def to_json(self) -> dict[str, Any]:
        return {"schema_version": RECORD_VERSION, **dataclasses.asdict(self)}

    def to_text(self) -> str:
        """Compact JSON (per-sample arrays on one line each, no spaces): what the store keeps."""
        return json.dumps(self.to_json(), separators=(",", ":"))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Record:
        """A stored record of any version (``upgrade``); raises ``ValueError`` for one that cannot be read."""
        data = upgrade(data)
        convert: dict[str, Callable[[Any], Any]] = {
            "eps": lambda values: tuple(float(e) for e in values),
            "input_shape": tuple, "correct": tuple, "flags": tuple,
            "runs": lambda runs: {name: AttackRun.from_json(run) for name, run in runs.items()},
            "environment": Environment.from_json,
            "probes": lambda probes: from_fields(Probes, probes),
            "model_source": lambda source: None if source is None else ModelSource.from_json(source),
            "privacy": lambda result: None if result is None else PrivacyResult.from_json(result),
            "dp": lambda guarantee: None if guarantee is None else DPGuarantee.from_json(guarantee),
            "backdoor": lambda outcome: None if outcome is None else BackdoorOutcome.from_json(outcome),
            "client_threat": lambda threat: None if threat is None else ClientThreat.from_json(threat),
            "certification": lambda found: None if found is None else CertifiedOutcome.from_json(found),
            "ibp": lambda found: None if found is None else IBPResult.from_json(found),
        }
        return from_fields(cls, data, **convert)


def _optional_tuple(values: list[Any] | None) -> tuple[Any, ...] | None:
    return None if values is None else tuple(values)


#: Version 1's per-attack dicts: ``AttackRun`` field → the version-1 key holding ``{attack: value}``.
V1_PER_ATTACK = {"seconds": "attack_seconds", "grad_evals": "attack_grad_evals", "queries": "attack_queries",
                 "sample_runs": "attack_sample_runs", "tags": "attack_tags", "error": "attack_errors",
                 "accuracy": "per_attack", "median_distance": "median_distance"}
V1_SAMPLES = ("broken_at", "distances")  # per attack, under ``samples``


def upgrade(data: dict[str, Any]) -> dict[str, Any]:
    """A stored record in the current form. Version 1 (and records without a version) are regrouped per attack;
    keys a record lacks stay absent, so ``Record``'s defaults apply."""
    if not isinstance(data, dict):
        raise ValueError(f"a stored record is a JSON object, not {type(data).__name__}")
    version = data.get("schema_version", 1)
    if version == RECORD_VERSION:
        return data
    if version != 1:
        raise ValueError(f"record schema version {version!r} is not one this harness reads (1 to {RECORD_VERSION})")
    samples = data.get("samples") or {}
    order = data.get("attack_order") or list(data.get("attack_seconds") or data.get("attacks") or {})
    runs = {}
    for name in order:
        run = {key: data[old][name] for key, old in V1_PER_ATTACK.items() if name in (data.get(old) or {})}
        run.update({key: samples[key][name] for key in V1_SAMPLES if name in (samples.get(key) or {})})
        runs[name] = run
    moved = {"samples", "attack_order", "per_attack_kind", "schema_version", *V1_PER_ATTACK.values()}
    current = {key: value for key, value in data.items() if key not in moved}
    if "correct" in samples:
        current["correct"] = samples["correct"]
    return {**current, "runs": runs, "schema_version": RECORD_VERSION}


def attack_runs(sweep: SweepResult, attacks: dict[str, Any]) -> dict[str, AttackRun]:
    """Per attack, in the order they ran: its costs, tags, per-ε numbers (none for a stopped attack) and per-sample
    results."""
    curves = sweep.per_attack()
    return {
        name: AttackRun(
            seconds=o.seconds, grad_evals=o.grad_evals, queries=o.queries, sample_runs=o.attacked,
            tags={tag: getattr(attacks[name], tag) for tag in ATTACK_TAGS} | getattr(attacks[name], "record_tags", {}),
            error=o.error,
            accuracy=keyed(curves[name]) if name in curves else None, median_distance=o.median_distance,
            broken_at=tuple(o.broken_at.tolist()),
            distances=None if o.distances is None else tuple(float(d) if np.isfinite(d) else None for d in o.distances),
        )
        for name, o in sweep.outcomes.items()
    }


def keyed(accuracy: dict[float, float]) -> dict[str, float]:
    """Accuracies by ε → by ε key, as records and leaderboards write them."""
    return {eps_key(e): a for e, a in accuracy.items()}
