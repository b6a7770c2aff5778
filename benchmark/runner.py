"""One job, start to finish, in four stages: load the verified data, train (or load the cached checkpoint), evaluate
(wrap once for ART, sweep, probe), make the record.

A job is a pure function of its spec: every executor gives the same numbers for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from benchmark import ATTACKS, DEFENSES
from benchmark.api import DataBundle, RunContext
from benchmark.data import headline_eps
from benchmark.errors import BenchError, UnknownNameError
from benchmark.plan import Job, load_dataset
from benchmark.progress import Progress
from benchmark.provenance import environment, now
from benchmark.record import ModelSource, Record, attack_runs, keyed
from benchmark.store import CheckpointInfo, Store

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from benchmark.sweep import SweepResult
    from benchmark.validity import Probes

logger = logging.getLogger(__name__)

Event = Callable[..., None]

#: Samples per attack batch by device, and by model where one measured better otherwise (digits, 2 CPU cores,
#: ``tests/benchmarks/test_sweep_speed.py``): ART's Python is a fixed cost per step and batch, which a small MLP
#: amortises best over big batches (PGD-10 on 360 samples: 13.0 ms at 128, 9.3 ms at 512); cnn-small on CPU was no
#: faster above 128.
BATCH_SIZE = {"cpu": 128, "cuda": 1024}
MODEL_BATCH_SIZE = {("mlp", "cpu"): 512}


def attack_batch_size(model: str, device: str) -> int:
    """Samples per attack batch for ``model`` on ``device`` ("cpu", "cuda" or "cuda:N"); recorded with each result."""
    kind = device.split(":")[0]
    return MODEL_BATCH_SIZE.get((model, kind), BATCH_SIZE[kind])


def sample_keys(seed: int, n: int) -> np.ndarray:
    """One integer per test sample for the attacks' per-sample randomness; the same for every defense of a seed,
    so rows stay paired sample by sample."""
    return np.arange(n, dtype=np.int64) + np.int64(seed) * (1 << 32)


@dataclass(frozen=True, eq=False)
class Trained:
    """A job's model as the attacks see it: the trained network inside the defense's test-time wrapper."""

    model: Any  # torch.nn.Module, on the job's device
    info: CheckpointInfo  # what training recorded: its cost, the per-sample clean correctness
    cached: bool  # loaded from a checkpoint rather than trained now


@dataclass(frozen=True, eq=False)
class Evaluation:
    """What the attacks and the probes found, and what it cost."""

    sweep: SweepResult
    probes: Probes
    attacks: dict[str, Any]  # label → the attack object, in the configured order
    batch_size: int
    eval_seconds: float
    probe_seconds: float
    backdoor: Any = None  # a planted backdoor's success (``benchmark.backdoor_stage``; None: none planted)
    certificates: Any = None  # ``benchmark.certificates.Certificates``: randomized smoothing's, IBP's


def run_job(job: Job, store: Store, *, on_event: Event | None = None, fresh: bool = False) -> Record | None:
    """Run ``job`` and return its record (the caller stores it). ``on_event("phase", text=, step=, steps=)`` reports
    progress; ``fresh`` retrains even when a checkpoint is stored. A stage of a sharded job (``benchmark.shards``)
    trains, or stores its part, and returns None."""
    progress = Progress(job, on_event)
    if job.stage == "shard":
        from benchmark.shards import run_shard

        run_shard(job, store, progress)
        return None
    data = verified_data(job)
    if job.stage == "train":
        train_or_load(job, data, store, fresh=fresh, progress=progress)
        return None
    trained = train_or_load(job, data, store, fresh=fresh, progress=progress)
    evaluation = evaluate(job, data.subset_test(job.n_test), trained, progress=progress)
    return make_record(job, data, trained, evaluation, privacy_of(job, data, trained, progress))


def privacy_of(job: Job, data: DataBundle, trained: Trained, progress: Progress) -> Any:
    """The job's privacy attacks on the trained model (None without any: ``benchmark.privacy_stage``)."""
    from benchmark.privacy_stage import run_privacy

    return run_privacy(job, data, trained.model, on_attack=progress.privacy)


def verified_data(job: Job) -> DataBundle:
    """The job's dataset, refused if it is not the data the job was planned with."""
    data = load_dataset(job.dataset)
    if data.fingerprint() != job.data_fingerprint:
        raise BenchError(f"dataset {job.dataset!r} holds other data than when this run was planned (fingerprint "
                         f"{data.fingerprint()}, planned with {job.data_fingerprint}): run again with --fresh")
    return data


def train_or_load(job: Job, data: DataBundle, store: Store, *, fresh: bool, progress: Progress) -> Trained:
    """The job's trained model (its stored checkpoint unless ``fresh`` or unusable), wrapped for inference, on the
    job's device. A model trained now is checkpointed with its training costs and per-sample clean correctness."""
    import torch

    torch.manual_seed(job.seed)
    np.random.seed(job.seed % (1 << 32))
    progress.training(loading=is_pretrained(job.model_file))
    if is_pretrained(job.model_file):
        return Trained(model=load_pretrained(job, data), info=CheckpointInfo(train_seconds=None, train_grad_evals=0),
                       cached=False)
    defense = job.defense.build()
    model = build_network(job.model, job.model_file, data.input_shape, data.nb_classes)
    if hasattr(defense, "trained_network"):  # a defense that trains more than the registry's network
        model = defense.trained_network(model, data.input_shape)
    info = None if fresh else store.load_checkpoint(job.train_hash, model)
    cached = info is not None
    if info is None:
        ctx = RunContext(seed=job.seed, device=job.device, quick=job.quick, recipe=job.recipe)
        start = time.perf_counter()
        trained = defense.fit(model, data.subset_train(job.n_train), ctx)
        train_seconds = time.perf_counter() - start
        model = inference_model(defense, trained)
        info = CheckpointInfo(train_seconds=train_seconds, train_grad_evals=ctx.costs["train_grad_evals"],
                              test_correct=tuple(plain_correct(model, data, job.device).astype(int).tolist()),
                              early_stop_epoch=ctx.outcome.get("early_stop_epoch"), dp=ctx.outcome.get("dp"))
        store.save_checkpoint(job.train_hash, trained, info)
    else:
        model = inference_model(defense, model)
    model.to(torch.device(job.device))
    return Trained(model=model, info=info, cached=cached)


def is_pretrained(model_file: Any) -> bool:
    """Whether the job scores a trained model from a file (``benchmark.sources``) rather than training one."""
    return model_file is not None and not model_file.trainable


def build_network(model: str, model_file: Any, input_shape: tuple[int, ...], nb_classes: int) -> torch.nn.Module:
    """A fresh, untrained network: the registry architecture ``model`` (its canonical text, parameters included:
    ``preact-resnet18:norm=group``), or the class ``model_file`` names."""
    if model_file is None:
        from benchmark.inputs import model_builder

        return model_builder(model)(input_shape, nb_classes)
    from benchmark.sources import build_model

    return build_model(model_file, input_shape, nb_classes)


def load_pretrained(job: Job, data: DataBundle) -> Any:
    """The job's trained model from its file, refused if the file changed since the job was planned."""
    from benchmark.sources import file_digest, load_model

    if file_digest(job.model_file) != job.model_digest:
        raise BenchError(f"{job.model_file.spec} changed since this run was planned (SHA-256 "
                         f"{file_digest(job.model_file)[:12]}…, planned with {job.model_digest[:12]}…): run again")
    model = load_model(job.model_file, data.input_shape, data.nb_classes)
    return model.to(job.device) if hasattr(model, "to") else model


def wrap_any(model: Any, input_shape: tuple[int, ...], nb_classes: int, device: str) -> Any:
    """The one ART wrapper of a job's model: ``benchmark.estimator.wrap`` for a torch module, else
    ``benchmark.array_estimator.wrap_arrays`` (an ONNX or scikit-learn model)."""
    from benchmark.array_estimator import ArrayModel, wrap_arrays

    if isinstance(model, ArrayModel):
        return wrap_arrays(model, input_shape, nb_classes)
    from benchmark.estimator import wrap

    return wrap(model, input_shape, nb_classes, device)


def has_gradients(model: Any) -> bool:
    """Whether the attacks can have input gradients of ``model`` (a torch module, or a scikit-learn model that ART
    gives gradients of): the validity probes run PGD on it."""
    from benchmark.array_estimator import ArrayModel

    return not isinstance(model, ArrayModel) or model.art_estimator is not None


@dataclass(frozen=True, eq=False)
class Armed:
    """A job's model wrapped once for ART, with the job's attacks built."""

    estimator: Any
    attacks: dict[str, Any]  # label → the attack object, in the configured order
    batch_size: int


def arm(job: Job, test: DataBundle, trained: Trained) -> Armed:
    """The model wrapped once, and the job's attacks followed by their adaptive runs (``benchmark.adaptive``: BPDA
    through an input preprocessor, EoT on a randomized model)."""
    import torch

    from benchmark.adaptive import EOT_DRAWS, adapted_attacks
    from benchmark.estimator import wrap

    estimator = wrap_any(trained.model, test.input_shape, test.nb_classes, job.device)
    attacks = {spec.label: spec.build() for spec in job.attacks}
    batch_size = attack_batch_size(job.model, job.device)
    if isinstance(trained.model, torch.nn.Module):  # views of the module: another backward pass, EoT
        attacks = adapted_attacks(attacks, trained.model, estimator, test.float_test(), batch_size=batch_size,
                                  wrap_view=lambda module, draws: wrap(module, test.input_shape, test.nb_classes,
                                                                       job.device, counts=estimator.counts,
                                                                       eot_draws=draws),
                                  draws=job.eot_draws or EOT_DRAWS)
    return Armed(estimator=estimator, attacks=attacks, batch_size=batch_size)


def sweep_samples(job: Job, armed: Armed, x: np.ndarray, y: np.ndarray, keys: np.ndarray, progress: Progress
                  ) -> tuple[SweepResult, float]:
    """The ε sweep on ``x``, ``y`` (whose per-sample ``keys`` are their places in the job's test set), and its
    seconds."""
    from benchmark.sweep import run_sweep

    start = time.perf_counter()
    sweep = run_sweep(armed.estimator, x, y, armed.attacks, job.eps, norm=job.norm, keys=keys,
                      batch_size=armed.batch_size, seed=job.seed, survivors=job.survivors, on_attack=progress.attack)
    return sweep, time.perf_counter() - start


def evaluate(job: Job, test: DataBundle, trained: Trained, *, progress: Progress,
             sweep: tuple[SweepResult, float] | None = None) -> Evaluation:
    """Wrap the model once for ART, run the ε sweep on ``test``'s samples (unless ``sweep``, its result and
    seconds, is given: merged shards), then the validity probes."""
    from benchmark.adaptive import strongest_view
    from benchmark.probes import run_probes

    armed = arm(job, test, trained)
    keys = sample_keys(job.seed, len(test.x_test))
    x = test.float_test()  # the evaluated samples, converted once (uint8 data)
    result, eval_seconds = sweep or sweep_samples(job, armed, x, test.y_test, keys, progress)
    progress.probes()
    start = time.perf_counter()
    probes = run_probes(armed.estimator, x, test.y_test, result, norm=job.norm,
                        headline_eps=job_headline(job), keys=keys, batch_size=armed.batch_size, seed=job.seed,
                        pgd=probe_pgd(job, armed.attacks) if has_gradients(trained.model) else None,
                        trained_correct=stored_correct(trained.info, len(test.x_test)) if job.trained == job.defense
                        else None,  # a wrapper's checkpoint holds its base's clean correctness, not its own
                        outputs=getattr(trained.model, "outputs", "logits"), attack_view=strongest_view(armed.attacks))
    from benchmark.backdoor_stage import backdoor_of
    from benchmark.certificates import certificates_of

    return Evaluation(sweep=result, probes=probes, attacks=armed.attacks, batch_size=armed.batch_size,
                      backdoor=backdoor_of(job, x, test.y_test, armed.estimator.predict),
                      eval_seconds=eval_seconds, probe_seconds=time.perf_counter() - start,
                      certificates=certificates_of(job, x, test.y_test, trained.model, nb_classes=test.nb_classes,
                                                   batch_size=armed.batch_size, progress=progress))


def job_headline(job: Job) -> float:
    """The ε the job's leaderboard sorts by."""
    return job.headline_eps if job.headline_eps is not None else headline_eps(job.dataset, job.norm, job.eps)


def probe_pgd(job: Job, attacks: dict[str, Any]) -> Any:
    """The PGD the validity probes run: the suite's own ``pgd`` when the job has one (the probes then test the
    attack whose numbers are on the board, with its steps and step size), else the registered ``pgd``'s defaults."""
    spec = next((spec for spec in job.attacks if spec.name == "pgd"), None)
    return attacks[spec.label] if spec is not None else ATTACKS.get("pgd")()


def make_record(job: Job, data: DataBundle, trained: Trained, evaluation: Evaluation, privacy: Any = None
                ) -> Record:
    from benchmark.adaptive import adaptive_flags
    from benchmark.backdoor_stage import threat_of
    from benchmark.certificates import Certificates
    from benchmark.validity import verdicts

    sweep, certificates = evaluation.sweep, evaluation.certificates or Certificates()
    return Record(
        job_hash=job.job_hash, train_hash=job.train_hash, dataset=job.dataset, model=job.model,
        defense=job.defense.label, defense_name=job.defense.name, defense_params=dict(job.defense.params),
        seed=job.seed, norm=job.norm, eps=tuple(job.eps),
        attacks={spec.label: dict(spec.params) for spec in job.attacks}, quick=job.quick, n_test=sweep.n,
        input_shape=tuple(data.input_shape), nb_classes=data.nb_classes,
        clean_accuracy=float(sweep.correct.mean()), robust_accuracy=keyed(sweep.accuracy()),
        correct=tuple(sweep.correct.astype(int).tolist()), runs=attack_runs(sweep, evaluation.attacks),
        train_seconds=trained.info.train_seconds, train_grad_evals=trained.info.train_grad_evals,
        train_cached=trained.cached, eval_seconds=evaluation.eval_seconds, device=job.device,
        batch_size=evaluation.batch_size, environment=environment(job.device), created_at=now(),
        data_fingerprint=job.data_fingerprint, survivors=job.survivors,
        flags=tuple(verdicts(sweep, evaluation.probes, data_source=job.data_source, certified=certificates.present))
        + adaptive_flags(evaluation.attacks), probes=evaluation.probes,
        probe_seconds=evaluation.probe_seconds, model_source=model_source(job), data_source=job.data_source,
        headline_eps=job_headline(job), recipe=None if job.recipe is None else job.recipe.as_dict(),
        early_stop_epoch=trained.info.early_stop_epoch, n_train=job.n_train, privacy=privacy, dp=trained.info.dp,
        backdoor=evaluation.backdoor, client_threat=threat_of(job), certification=certificates.smoothing,
        ibp=certificates.ibp,
    )


def model_source(job: Job) -> ModelSource | None:
    """Where the job's model came from, for its record (None for a registry architecture)."""
    source = job.model_file
    if source is None:  # a registry architecture, or a module given to benchmark.evaluate (hashed by its weights)
        return ModelSource(spec=job.model, sha256=job.model_digest) if job.model_digest else None
    normalize = None if source.normalize is None else {"mean": list(source.normalize[0]),
                                                       "std": list(source.normalize[1])}
    return ModelSource(spec=source.spec, sha256=job.model_digest, weights=source.weights, args=dict(source.args),
                       normalize=normalize, trust=tuple(source.trust))


def inference_model(defense: Any, network: torch.nn.Module) -> torch.nn.Module:
    """What the attacks see: the trained network, or what the defense wraps it in at test time. A defense may define
    ``inference_model(model)`` (e.g. to add input preprocessing); checkpoints hold the trained network."""
    wrap_for_inference = getattr(defense, "inference_model", None)
    return network if wrap_for_inference is None else wrap_for_inference(network)


def stored_correct(info: CheckpointInfo, n: int) -> np.ndarray | None:
    """The per-sample clean correctness recorded right after training, for the first ``n`` test samples."""
    return None if info.test_correct is None else np.asarray(info.test_correct[:n], dtype=bool)


def plain_correct(model, data, device: str) -> np.ndarray:
    """Per test sample, whether the model (plain torch, no ART) classifies it correctly."""
    import torch

    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(data.float_test()).to(device))
    return logits.argmax(dim=1).cpu().numpy() == data.y_test


def load_model(out: str = "bench-results", *, defense: str | None = None, job: str | None = None,
               raw: bool = False) -> torch.nn.Module:
    """The model of a stored job (``job``: a job hash or its prefix; else the newest job of ``defense``; else the
    newest job), in eval mode on the CPU: what its attacks saw (the defense's ``inference_model`` around the trained
    network), or with ``raw=True`` the trained network alone."""
    with Store(out, create=False) as store:
        records = [r for r in store.records()
                   if (job is None or r.job_hash.startswith(job)) and defense in (None, r.defense)]
        if not records:
            wanted = f"job {job!r}" if job else f"defense {defense!r}" if defense else "any job"
            raise UnknownNameError(f"no stored result for {wanted} in {store.path}")
        record = records[-1]
        model_file = record_model_file(record)
        if is_pretrained(model_file):  # never trained here: the model is its file
            from benchmark.sources import load_model as load_file

            return load_file(model_file, record.input_shape, record.nb_classes)
        network = build_network(record.model, model_file, record.input_shape, record.nb_classes)
        if store.load_checkpoint(record.train_hash, network) is None:
            raise BenchError(f"the checkpoint of job {record.job_hash} is missing or corrupted")
    model = network if raw else inference_model(DEFENSES.get(record.defense_name)(**record.defense_params), network)
    model.eval()
    return model


def record_model_file(record: Record) -> Any:
    """The ``ModelFile`` a record's model came from (None for a registry architecture)."""
    source = record.model_source
    if source is None:
        return None
    if source.spec.startswith("python:"):
        raise BenchError(f"the model of job {record.job_hash} was given to benchmark.evaluate as a Python object "
                         f"({source.spec}, weights SHA-256 {source.sha256[:12]}…); it is not stored")
    from benchmark.sources import parse_model

    normalize = None if source.normalize is None else (tuple(source.normalize["mean"]), tuple(source.normalize["std"]))
    return parse_model(source.spec, weights=source.weights, args=tuple(source.args.items()), normalize=normalize,
                       trust=source.trust)
