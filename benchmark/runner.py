"""One job, start to finish: load data, train (or load the cached checkpoint), wrap once for ART, sweep, record.

A job is a pure function of its spec: every executor gives the same numbers for it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmark import MODELS
from benchmark.api import RunContext
from benchmark.data import headline_eps
from benchmark.env import environment
from benchmark.errors import BenchError
from benchmark.leaderboard import eps_key
from benchmark.plan import Job, load_dataset
from benchmark.store import SCHEMA_VERSION, Store, now

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


def run_job(job: Job, store: Store, *, on_event: Event | None = None, fresh: bool = False) -> dict[str, Any]:
    import torch

    from benchmark.estimator import wrap
    from benchmark.probes import run_probes
    from benchmark.sweep import run_sweep
    from benchmark.validity import verdicts

    emit = on_event or (lambda *args, **kwargs: None)
    data = load_dataset(job.dataset)
    if data.fingerprint() != job.data_fingerprint:
        raise BenchError(f"dataset {job.dataset!r} holds other data than when this run was planned (fingerprint "
                         f"{data.fingerprint()}, planned with {job.data_fingerprint}): run again with --fresh")
    test = data.subset_test(job.n_test)
    torch.manual_seed(job.seed)
    np.random.seed(job.seed % (1 << 32))
    model = MODELS.get(job.model)(data.input_shape, data.nb_classes)
    ctx = RunContext(seed=job.seed, device=job.device, quick=job.quick)

    info = None if fresh else store.load_checkpoint(job.train_hash, model)
    cached = info is not None
    emit("phase", text=f"{job.defense.label} (seed {job.seed}): training", step=0, steps=2)
    defense = job.defense.build()
    if info is None:
        start = time.perf_counter()
        trained = defense.fit(model, data, ctx)
        info = {"train_seconds": time.perf_counter() - start, "train_grad_evals": ctx.costs["train_grad_evals"]}
        model = inference_model(defense, trained)
        info["test_correct"] = plain_correct(model, data, job.device).astype(int).tolist()
        store.save_checkpoint(job.train_hash, trained, info)
    else:
        model = inference_model(defense, model)
    model.to(torch.device(job.device))

    attacks = {spec.label: spec.build() for spec in job.attacks}
    batch_size = attack_batch_size(job.model, job.device)
    estimator = wrap(model, data.input_shape, data.nb_classes, job.device)
    keys = sample_keys(job.seed, len(test.x_test))
    steps = [2]  # training, the attack runs (known once the sweep starts), the validity probes

    def on_attack(name: str, eps: float, done: int, total: int) -> None:
        steps[0] = total + 2
        at = "" if eps != eps else f" at ε={eps:g}"  # NaN: a minimal-norm attack, run once
        emit("phase", text=f"{job.defense.label} (seed {job.seed}): {name}{at}", step=1 + done, steps=steps[0])

    start = time.perf_counter()
    sweep = run_sweep(estimator, test.x_test, test.y_test, attacks, job.eps, norm=job.norm, keys=keys,
                      batch_size=batch_size, seed=job.seed, survivors=job.survivors, on_attack=on_attack)
    eval_seconds = time.perf_counter() - start
    emit("phase", text=f"{job.defense.label} (seed {job.seed}): validity probes", step=steps[0] - 1,
         steps=steps[0])
    start = time.perf_counter()
    pgd = next((a for spec, a in zip(job.attacks, attacks.values(), strict=True) if spec.name == "pgd"), None)
    probes = run_probes(estimator, test.x_test, test.y_test, sweep, norm=job.norm,
                        headline_eps=headline_eps(job.dataset, job.norm, job.eps), keys=keys, batch_size=batch_size,
                        seed=job.seed, pgd=pgd, trained_correct=stored_correct(info, len(test.x_test)))
    probe_seconds = time.perf_counter() - start

    keyed = lambda accuracy: {eps_key(e): a for e, a in accuracy.items()}  # noqa: E731
    return {
        "schema_version": SCHEMA_VERSION,
        "job_hash": job.job_hash,
        "train_hash": job.train_hash,
        "dataset": job.dataset,
        "data_fingerprint": job.data_fingerprint,
        "model": job.model,
        "defense": job.defense.label,
        "defense_name": job.defense.name,
        "defense_params": dict(job.defense.params),
        "seed": job.seed,
        "norm": job.norm,
        "eps": list(job.eps),
        "attacks": {spec.label: dict(spec.params) for spec in job.attacks},
        "quick": job.quick,
        "n_test": len(test.x_test),
        "input_shape": list(data.input_shape),
        "nb_classes": data.nb_classes,
        "clean_accuracy": float(sweep.correct.mean()),
        "robust_accuracy": keyed(sweep.accuracy()),
        "survivors": job.survivors,
        "attack_order": list(sweep.outcomes),  # the order they ran in (the cumulative numbers follow it)
        "per_attack": {name: keyed(curve) for name, curve in sweep.per_attack().items()},  # a stopped attack: none
        "attack_seconds": {name: o.seconds for name, o in sweep.outcomes.items()},
        "attack_grad_evals": {name: o.grad_evals for name, o in sweep.outcomes.items()},
        "attack_queries": {name: o.queries for name, o in sweep.outcomes.items()},
        "attack_sample_runs": {name: o.attacked for name, o in sweep.outcomes.items()},
        "attack_tags": {name: {tag: getattr(a, tag) for tag in ("needs_grad", "black_box", "minimal_norm")}
                        for name, a in attacks.items()},
        "attack_errors": {name: o.error for name, o in sweep.outcomes.items() if o.error},
        "median_distance": {name: o.median_distance for name, o in sweep.outcomes.items()
                            if o.distances is not None},
        "flags": verdicts(sweep, probes),
        "probes": dataclasses.asdict(probes),
        "probe_seconds": probe_seconds,
        "train_seconds": info["train_seconds"],
        "train_grad_evals": info["train_grad_evals"],
        "train_cached": cached,
        "eval_seconds": eval_seconds,
        "device": job.device,
        "batch_size": batch_size,
        "samples": {
            "correct": sweep.correct.astype(int).tolist(),
            "broken_at": {name: o.broken_at.tolist() for name, o in sweep.outcomes.items()},
            "distances": {name: [None if np.isinf(d) else float(d) for d in o.distances]
                          for name, o in sweep.outcomes.items() if o.distances is not None},
        },
        "environment": environment(job.device),
        "created_at": now(),
    }


def inference_model(defense, model):
    """The module to evaluate: the trained model, or what the defense wraps it in at test time (a defense may
    define ``inference_model(model)``, e.g. to add input preprocessing; checkpoints hold the trained model)."""
    wrap_for_inference = getattr(defense, "inference_model", None)
    return model if wrap_for_inference is None else wrap_for_inference(model)


def stored_correct(info: dict[str, Any], n: int) -> np.ndarray | None:
    """The per-sample clean correctness recorded right after training, for the first ``n`` test samples."""
    correct = info.get("test_correct")
    return None if correct is None else np.asarray(correct[:n], dtype=bool)


def plain_correct(model, data, device: str) -> np.ndarray:
    """Per test sample, whether the model (plain torch, no ART) classifies it correctly."""
    import torch

    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(data.x_test).to(device))
    return logits.argmax(dim=1).cpu().numpy() == data.y_test
