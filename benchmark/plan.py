"""``EvalConfig`` → a list of ``Job``s, each with content hashes of everything that determines its result.

``train_hash`` covers what determines the trained model (data, model, defense and its parameters, seed, quick, device,
library and harness versions); ``job_hash`` adds what determines the scores (attacks, ε grid, norm, test samples,
survivor mode).
A job whose ``job_hash`` is already in the store is skipped; a model whose ``train_hash`` has a checkpoint is not
trained again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from benchmark import DATASETS
from benchmark.api import DataBundle
from benchmark.config import EvalConfig, PluginSpec

#: Packages whose versions enter every job hash: a new version of any of them recomputes results.
VERSIONED = ("defense-bench", "torch", "adversarial-robustness-toolbox", "scikit-learn", "numpy")


@cache
def library_versions() -> tuple[tuple[str, str], ...]:
    found = []
    for package in VERSIONED:
        try:
            found.append((package, version(package)))
        except PackageNotFoundError:
            found.append((package, "not installed"))
    return tuple(found)


@cache
def load_dataset(name: str) -> DataBundle:
    """The dataset ``name``, loaded once per process."""
    return DATASETS.get(name)().load()


def content_hash(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Job:
    dataset: str
    model: str
    defense: PluginSpec
    seed: int
    attacks: tuple[PluginSpec, ...]
    eps: tuple[float, ...]
    norm: str
    device: str
    quick: bool
    n_test: int  # test samples evaluated (the first n of the fixed split)
    data_fingerprint: str
    versions: tuple[tuple[str, str], ...]
    survivors: str = "shared"  # which samples each attack gets (benchmark/sweep.py)

    def train_payload(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "data": self.data_fingerprint,
            "model": self.model,
            "defense": [self.defense.name, dict(self.defense.params)],
            "seed": self.seed,
            "quick": self.quick,
            "device": self.device.split(":")[0],
            "versions": dict(self.versions),
        }

    @property
    def train_hash(self) -> str:
        return content_hash(self.train_payload())

    @property
    def job_hash(self) -> str:
        scoring = {
            "attacks": [[spec.name, dict(spec.params)] for spec in self.attacks],
            "eps": list(self.eps),
            "norm": self.norm,
            "n_test": self.n_test,
            "survivors": self.survivors,
        }
        return content_hash({"train": self.train_hash, **scoring})


def plan(config: EvalConfig) -> list[Job]:
    """One job per (defense, seed), in the order given."""
    data = load_dataset(config.dataset)
    fingerprint = data.fingerprint()
    n_test = len(data.x_test) if config.n_test is None else min(config.n_test, len(data.x_test))
    return [
        Job(
            dataset=config.dataset,
            model=config.model,
            defense=defense,
            seed=seed,
            attacks=config.attacks,
            eps=config.eps,
            norm=config.norm,
            device=config.device,
            quick=config.quick,
            n_test=n_test,
            data_fingerprint=fingerprint,
            versions=library_versions(),
            survivors=config.survivors,
        )
        for defense in config.defenses
        for seed in config.seeds
    ]
