"""``EvalConfig`` → a list of ``Job``s, each with content hashes of everything that determines its result.

``train_hash`` covers what determines the trained model (data, model, defense and its parameters, seed, quick, device,
library and harness versions); ``job_hash`` adds what determines the scores (attacks, ε grid, norm, test samples,
survivor mode).
A job whose ``job_hash`` is already in the store is skipped; a model whose ``train_hash`` has a checkpoint is not
trained again.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from benchmark import DATASETS
from benchmark.api import DataBundle
from benchmark.config import EvalConfig, PluginSpec
from benchmark.provenance import content_hash, library_versions
from benchmark.sweep import SWEEP_VERSION

if TYPE_CHECKING:  # pragma: no cover
    from benchmark.store import Store

@cache
def load_dataset(name: str) -> DataBundle:
    """The dataset ``name``, loaded once per process."""
    return DATASETS.get(name)().load()


def data_facts(name: str, store: Store | None = None, *, fresh: bool = False) -> tuple[str, int]:
    """(fingerprint, test size) of dataset ``name``, what planning needs. A dataset that names its ``source()`` (a
    cheap string that changes whenever its data could: digits gives the scikit-learn release that ships it) is
    loaded once per source and store, so a re-run plans without importing scikit-learn; runners check the
    fingerprint against the data they load. ``fresh`` loads anyway."""
    source = getattr(DATASETS.get(name)(), "source", lambda: None)()
    if store is not None and source and not fresh:
        known = store.dataset_facts(name, source)
        if known is not None:
            return known
    data = load_dataset(name)
    facts = (data.fingerprint(), len(data.x_test))
    if store is not None and source:
        store.put_dataset_facts(name, source, *facts)
    return facts


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
            "sweep": SWEEP_VERSION,
        }
        return content_hash({"train": self.train_hash, **scoring})


def plan(config: EvalConfig, facts: tuple[str, int] | None = None) -> list[Job]:
    """One job per (defense, seed), in the order given; ``facts``: the dataset's ``data_facts`` (default: load it)."""
    fingerprint, test_size = facts or data_facts(config.dataset)
    n_test = test_size if config.n_test is None else min(config.n_test, test_size)
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
