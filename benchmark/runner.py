"""One job, start to finish: load data, train (or load the cached checkpoint), wrap once for ART, sweep, record.

A job is a pure function of its spec: every executor gives the same numbers for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmark import MODELS
from benchmark.api import RunContext
from benchmark.env import environment
from benchmark.plan import Job, load_dataset
from benchmark.store import SCHEMA_VERSION, Store, now

logger = logging.getLogger(__name__)

Event = Callable[..., None]

#: Samples per attack batch by device: measured on digits cnn-small, larger CPU batches made ART's PGD slower.
BATCH_SIZE = {"cpu": 128, "cuda": 1024}


def eps_key(eps: float) -> str:
    """How an ε is written as a JSON key: ``0.1`` → ``"0.1"``."""
    return f"{eps:g}"


def sample_keys(seed: int, n: int) -> np.ndarray:
    """One integer per test sample for the attacks' per-sample randomness; the same for every defense of a seed,
    so rows stay paired sample by sample."""
    return np.arange(n, dtype=np.int64) + np.int64(seed) * (1 << 32)


def run_job(job: Job, store: Store, *, on_event: Event | None = None, fresh: bool = False) -> dict[str, Any]:
    import torch

    from benchmark.estimator import wrap
    from benchmark.sweep import run_sweep

    emit = on_event or (lambda *args, **kwargs: None)
    data = load_dataset(job.dataset)
    test = data.subset_test(job.n_test)
    torch.manual_seed(job.seed)
    np.random.seed(job.seed % (1 << 32))
    model = MODELS.get(job.model)(data.input_shape, data.nb_classes)
    ctx = RunContext(seed=job.seed, device=job.device, quick=job.quick)

    info = None if fresh else store.load_checkpoint(job.train_hash, model)
    cached = info is not None
    steps = 1 + len(job.attacks)  # training, then one step per attack
    emit("phase", text=f"{job.defense.label} (seed {job.seed}): training", step=0, steps=steps)
    if info is None:
        start = time.perf_counter()
        model = job.defense.build().fit(model, data, ctx)
        info = {"train_seconds": time.perf_counter() - start, "train_grad_evals": ctx.costs["train_grad_evals"]}
        store.save_checkpoint(job.train_hash, model, info)
    model.to(torch.device(job.device))

    attacks = {spec.label: spec.build() for spec in job.attacks}
    batch_size = BATCH_SIZE[job.device.split(":")[0]]
    estimator = wrap(model, data.input_shape, data.nb_classes, job.device)
    start = time.perf_counter()
    sweep = run_sweep(
        estimator, test.x_test, test.y_test, attacks, job.eps,
        keys=sample_keys(job.seed, len(test.x_test)), batch_size=batch_size,
        on_attack=lambda name: emit("phase", text=f"{job.defense.label} (seed {job.seed}): attack {name}",
                                    step=1 + list(attacks).index(name), steps=steps),
    )
    eval_seconds = time.perf_counter() - start

    keyed = lambda accuracy: {eps_key(e): a for e, a in accuracy.items()}  # noqa: E731
    return {
        "schema_version": SCHEMA_VERSION,
        "job_hash": job.job_hash,
        "train_hash": job.train_hash,
        "dataset": job.dataset,
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
        "per_attack": {name: keyed(sweep.accuracy(name)) for name in attacks},
        "attack_seconds": {name: o.seconds for name, o in sweep.outcomes.items()},
        "attack_grad_evals": {name: o.grad_evals for name, o in sweep.outcomes.items()},
        "attack_queries": {name: o.queries for name, o in sweep.outcomes.items()},
        "train_seconds": info["train_seconds"],
        "train_grad_evals": info["train_grad_evals"],
        "train_cached": cached,
        "eval_seconds": eval_seconds,
        "device": job.device,
        "batch_size": batch_size,
        "samples": {
            "correct": sweep.correct.astype(int).tolist(),
            "broken_at": {name: o.broken_at.tolist() for name, o in sweep.outcomes.items()},
        },
        "environment": environment(job.device),
        "created_at": now(),
    }
