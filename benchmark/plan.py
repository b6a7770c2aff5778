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

from benchmark.api import DataBundle
from benchmark.config import EvalConfig, PluginSpec, test_count
from benchmark.provenance import content_hash, library_versions
from benchmark.sweep import SWEEP_VERSION

if TYPE_CHECKING:  # pragma: no cover
    from benchmark.recipes import Recipe
    from benchmark.sources import ModelFile
    from benchmark.store import Store


@cache
def load_dataset(name: str) -> DataBundle:
    """The dataset ``name``, loaded once per process."""
    from benchmark.data import dataset_instance

    return dataset_instance(name).load()


@dataclass(frozen=True)
class DataFacts:
    """What planning needs to know of a dataset."""

    fingerprint: str  # content hash of its arrays (``DataBundle.fingerprint``)
    n_test: int  # test samples
    source: str | None = None  # what the dataset says determines its data (``source()``), recorded with results


def data_facts(name: str, store: Store | None = None, *, fresh: bool = False) -> DataFacts:
    """What planning needs of dataset ``name``. A dataset that names its ``source()`` (a
    cheap string that changes whenever its data could: digits gives the scikit-learn release that ships it) is
    loaded once per source and store, so a re-run plans without importing scikit-learn; runners check the
    fingerprint against the data they load. ``fresh`` loads anyway."""
    from benchmark.data import dataset_instance

    source = getattr(dataset_instance(name), "source", lambda: None)()
    if store is not None and source and not fresh:
        known = store.dataset_facts(name, source)
        if known is not None:
            return DataFacts(*known, source=source)
    data = load_dataset(name)
    facts = DataFacts(data.fingerprint(), len(data.x_test), source)
    if store is not None and source:
        store.put_dataset_facts(name, source, facts.fingerprint, facts.n_test)
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
    model_file: ModelFile | None = None  # the model as a file or class (None: a registry architecture)
    model_digest: str = ""  # the SHA-256 of what ``model_file`` loads (``benchmark.sources.file_digest``)
    headline_eps: float | None = None  # the ε leaderboards sort by
    data_source: str | None = None  # the dataset's ``source()``, recorded with the result
    recipe: Recipe | None = None  # how the defense trains (``benchmark.recipes``; None: it takes no recipe)
    n_train: int | None = None  # trains on the first n training samples only (None: all)
    privacy: tuple[PluginSpec, ...] = ()  # privacy attacks run on the trained model (benchmark.PRIVACY)
    mia_samples: int | None = None  # members and non-members per side of the membership split (None: default)
    ibp: bool = False  # an IBP certificate beside the sweep (benchmark/ibp_stage.py)
    eot_draws: int | None = None  # EoT's draws per gradient (None: benchmark.adaptive.EOT_DRAWS)
    # how the job runs, not what it computes (never hashed): everything at once, or one stage of a sharded job
    stage: str = "all"  # "all", "train", "shard" (``benchmark.shards``)
    shard: int = 0
    shards: int = 1

    def train_payload(self) -> dict[str, Any]:
        payload = {
            "dataset": self.dataset,
            "data": self.data_fingerprint,
            "model": self.model,
            "defense": [self.trained.name, hashed_params(self.trained)],
            "seed": self.seed,
            "quick": self.quick,
            "device": self.device.split(":")[0],
            "versions": dict(self.versions),
        }
        source = self.model_file
        if source is not None or self.model_digest:  # absent for registry models, whose hashes stay what they were
            payload["model_source"] = {"sha256": self.model_digest,
                                       "args": {} if source is None else dict(source.args),
                                       "normalize": None if source is None else source.normalize,
                                       "trust": [] if source is None else list(source.trust)}
        if self.recipe is not None and not self.recipe.legacy:  # the loop as it was stays out: its hashes hold
            payload["recipe"] = self.recipe.as_dict()
        if self.n_train is not None:  # absent when training on everything, so those hashes stay what they were
            payload["n_train"] = self.n_train
        return payload

    @property
    def trained(self) -> PluginSpec:
        """The defense that trains the network: the job's own, or the base of one that only wraps a trained network
        for inference (a preprocessing defense's ``trained_spec``), whose checkpoint it then shares."""
        return trained_spec(self.defense)

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
            **({"label": self.defense.alias} if self.defense.alias else {}),  # --name: the row it makes
        }
        if self.ibp:  # absent without a certificate, so those hashes stay what they were
            scoring["ibp"] = True
        if self.eot_draws is not None:  # absent unless given (the default's results keep their hashes)
            scoring["eot_draws"] = self.eot_draws
        if self.trained != self.defense:  # a wrapper of a trained network (preprocessing): what the attacks see
            scoring["inference"] = [self.defense.name, dict(self.defense.params)]
        if self.privacy:  # absent without privacy attacks, so those hashes stay what they were
            scoring["privacy"] = {"attacks": [[spec.name, dict(spec.params)] for spec in self.privacy],
                                  "mia_samples": self.mia_samples}
        return content_hash({"train": self.train_hash, **scoring})


def trained_spec(spec: PluginSpec) -> PluginSpec:
    """``spec``, or for a defense whose ``trained_spec()`` names what trains its network (a preprocessing wrapper's
    base), that spec; a ``trained_spec()`` of None means the defense trains its own."""
    from benchmark.plugin_specs import REGISTRIES

    found = spec.build().trained_spec() if hasattr(REGISTRIES[spec.kind].get(spec.name), "trained_spec") else None
    return spec if found is None else found


def hashed_params(spec: PluginSpec) -> dict[str, Any]:
    """``spec``'s parameters as the train hash takes them: every one, except a parameter its plugin lists in
    ``hashed_when_set`` (one added after results were stored) while it has its default, so that adding it left every
    stored hash as it was."""
    import dataclasses

    from benchmark.plugin_specs import REGISTRIES

    later = getattr(REGISTRIES[spec.kind].get(spec.name), "hashed_when_set", ())
    if not later:
        return dict(spec.params)
    defaults = {f.name: f.default for f in dataclasses.fields(REGISTRIES[spec.kind].get(spec.name))}
    return {key: value for key, value in spec.params if key not in later or value != defaults[key]}


def plan(config: EvalConfig, facts: DataFacts | None = None) -> list[Job]:
    """One job per (defense, seed), in the order given; ``facts``: the dataset's ``data_facts`` (default: load it)."""
    facts = facts or data_facts(config.dataset)
    n_test = test_count(config, facts.n_test)
    digest = ""
    if config.model_file is not None:
        from benchmark.sources import file_digest

        digest = file_digest(config.model_file)
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
            data_fingerprint=facts.fingerprint,
            versions=library_versions(),
            survivors=config.survivors,
            model_file=config.model_file,
            model_digest=digest,
            headline_eps=config.headline_eps,
            data_source=facts.source,
            recipe=config.recipes[index] if config.recipes else None,
            n_train=config.n_train,
            privacy=config.privacy,
            mia_samples=config.mia_samples, ibp=config.ibp, eot_draws=config.eot_draws,
        )
        for index, defense in enumerate(config.defenses)
        for seed in config.seeds
    ]
