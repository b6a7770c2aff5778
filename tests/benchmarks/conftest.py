"""Helpers for benchmarks judged by ratio against a baseline measured in the same run (these machines are noisy).

Run them with ``pytest tests/benchmarks --benchmark-enable --benchmark-json=benchmarks.json``; without
``--benchmark-enable`` (the normal test run) each side runs once as a smoke test.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest


def compare(benchmark, candidate: Callable[[], object], baseline: Callable[[], object], *, rounds: int = 5,
            warmup_rounds: int = 1) -> float:
    """Time ``candidate`` with pytest-benchmark and ``baseline`` in the untimed setup of each round (interleaved, so
    both see the same machine state). Returns min(candidate) / min(baseline), also saved in ``extra_info``;
    NaN when benchmarks are disabled."""
    baseline_times: list[float] = []

    def timed_baseline():
        start = time.perf_counter()
        baseline()
        baseline_times.append(time.perf_counter() - start)

    benchmark.pedantic(candidate, setup=timed_baseline, rounds=rounds, iterations=1, warmup_rounds=warmup_rounds)
    if benchmark.disabled or benchmark.stats is None:
        return float("nan")
    ratio = benchmark.stats.stats.min / min(baseline_times)
    benchmark.extra_info.update(baseline_min_s=min(baseline_times), candidate_min_s=benchmark.stats.stats.min,
                                ratio=ratio)
    print(f"\n{benchmark.name}: candidate {benchmark.stats.stats.min:.4f}s / baseline {min(baseline_times):.4f}s "
          f"= {ratio:.2f}x")
    return ratio


@pytest.fixture
def one_thread():
    """One torch thread, as CI runs: a ratio then measures the per-sample work around the kernels, not the thread
    pool (the count is restored afterwards)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def digits():
    from benchmark.plan import load_dataset

    return load_dataset("digits")
