"""Scale: the sweep (shared survivors, the default) against the naive loop, a warm cache against a cold run, and a
job grid on one worker against two."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import torch

import benchmark as bench
from benchmark.api import RunContext
from benchmark.config import build_config
from benchmark.estimator import wrap
from benchmark.pipeline import run_config
from benchmark.runner import attack_batch_size, sample_keys
from benchmark.sweep import run_sweep
from tests.benchmarks.conftest import compare

N_TEST = 100


def test_survivor_sweep_vs_naive_loop(benchmark, digits):
    """(b) The default suite over the default ε grid: the harness's sweep (shared survivors) vs every attack on every
    sample at every ε; per-attack survivors measured beside them for reference."""
    from attacks.suites import SUITES

    torch.manual_seed(0)
    model = bench.MODELS.get("cnn-small")(digits.input_shape, digits.nb_classes)
    bench.DEFENSES.get("standard")(epochs=10).fit(model, digits, RunContext(seed=0))
    estimator = wrap(model, digits.input_shape, digits.nb_classes, "cpu")
    attacks = {name: bench.ATTACKS.get(name)() for name in SUITES["default"]}
    x, y = digits.x_test[:N_TEST], digits.y_test[:N_TEST]
    eps = bench.DATASETS.get("digits").default_eps["inf"]
    keys = sample_keys(0, N_TEST)

    def sweep(survivors):
        return run_sweep(estimator, x, y, attacks, eps, norm="inf", keys=keys,
                         batch_size=attack_batch_size("cnn-small", "cpu"), survivors=survivors)

    results = {}
    ratio = compare(benchmark, lambda: results.setdefault("shared", sweep("shared")),
                    lambda: results.setdefault("naive", sweep("none")), rounds=3, warmup_rounds=1)
    start = time.perf_counter()
    results["per-attack"] = sweep("per-attack")
    per_attack_seconds = time.perf_counter() - start
    # APGD and Square draw their randomness per batch, so only nearly equal (PGD, FGSM, noise: exactly, see
    # tests/test_sweep.py)
    for mode in ("shared", "per-attack"):
        for e, accuracy in results[mode].accuracy().items():
            assert abs(accuracy - results["naive"].accuracy()[e]) <= 0.05, (mode, e)
    runs = {mode: sum(o.attacked for o in result.outcomes.values()) for mode, result in results.items()}
    assert runs["shared"] < runs["per-attack"] < runs["naive"], runs
    if ratio == ratio:
        naive_seconds = benchmark.extra_info["baseline_min_s"]
        benchmark.extra_info.update(per_attack_ratio=per_attack_seconds / naive_seconds, sample_runs=runs)
        print(f"per-attack survivors / naive = {per_attack_seconds / naive_seconds:.2f}; sample-runs {runs}")
        assert ratio < 1.0


def run_cli(*args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "benchmark", *args], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr


@pytest.mark.heavy  # 19 s as a smoke pass; the cache is tested in tests/e2e (resume, stored jobs skipped)
def test_warm_cache_vs_cold(benchmark, tmp_path):
    """(d) `bench evaluate --quick` when everything is stored vs from scratch (--fresh)."""
    out = str(tmp_path)
    run_cli("evaluate", "--quick", "--out", out)
    ratio = compare(benchmark, lambda: run_cli("evaluate", "--quick", "--out", out),
                    lambda: run_cli("evaluate", "--quick", "--out", out, "--fresh"), rounds=2, warmup_rounds=0)
    if ratio == ratio:
        assert ratio < 0.5


@pytest.mark.heavy  # 17 s as a smoke pass; the process pool is tested in tests/e2e/test_executors.py
@pytest.mark.parametrize("workers", [2])
def test_job_grid_two_workers_vs_one(benchmark, tmp_path, workers):
    """(e) Four equal jobs on a pool of one worker vs a pool of two (one torch thread each, start-up included).

    Each worker pays about 3 s of start-up once (importing torch, ART, scikit-learn, and torch._dynamo, which
    torch.optim imports on first use), in parallel with the other worker; jobs of 16 PGD-AT epochs (~10 s; the
    default pgd-at trains 40) keep that from dominating. Smoke runs (benchmarks disabled) use 2 epochs."""
    epochs = 2 if benchmark.disabled else 16
    grid = {"device": "cpu", "model": "cnn-small", "defenses": f"pgd-at:epochs={epochs}", "seeds": "0,1,2,3",
            "attacks": "pgd", "n_test": str(N_TEST)}
    counter = iter(range(1000))

    def fresh_config():
        return build_config(None, {**grid, "out": str(tmp_path / f"run{next(counter)}")})

    def one_worker():
        run_config(fresh_config(), executor="process", workers=1)

    def two_workers():
        run_config(fresh_config(), executor="process", workers=workers)

    ratio = compare(benchmark, two_workers, one_worker, rounds=2, warmup_rounds=0)
    if ratio == ratio:
        benchmark.extra_info["speedup"] = 1 / ratio
        print(f"speed-up with {workers} workers: {1 / ratio:.2f}x")
        assert ratio < 1.0
