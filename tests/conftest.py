"""Shared fixtures and the suite's order. Tests use ``import benchmark as bench`` (pytest-benchmark's fixture is
called ``benchmark``)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)  # two cores, and pytest may share them: never oversubscribe

pytest_plugins = ["pytester"]

BENCHMARKS = Path(__file__).parent / "benchmarks"
HEAVY_REASON = ("heavy: minutes on 2 CPU cores, so plain pytest (what CI runs) skips it to keep the suite under 10 "
                "minutes; run it with pytest --heavy")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--heavy", action="store_true", help="also run the tests marked heavy (minutes each on a CPU)")


@pytest.hookimpl(tryfirst=True)  # before pytest's own hook applies ``-m``, so ``-m "not slow"`` sees the marks added
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Fast tests run (and report) first, then those marked ``slow``, then the benchmarks, each group in collection
    order. Every benchmark counts as ``slow``: ``pytest -m "not slow"`` is the quick check. A ``heavy`` test is slow
    too, and skipped (saying why) unless ``--heavy`` is given; a heavy benchmark also runs with
    ``--benchmark-enable`` (measuring, not the one smoke pass plain ``pytest`` makes)."""
    for item in items:
        if BENCHMARKS in item.path.parents or item.get_closest_marker("heavy"):
            item.add_marker(pytest.mark.slow)
        measured = BENCHMARKS in item.path.parents and config.getoption("--benchmark-enable")
        if item.get_closest_marker("heavy") and not (config.getoption("--heavy") or measured):
            item.add_marker(pytest.mark.skip(reason=HEAVY_REASON))
    items.sort(key=lambda item: (BENCHMARKS in item.path.parents, item.get_closest_marker("slow") is not None))


@pytest.fixture(scope="session")
def synthetic():
    from benchmark.plan import load_dataset

    return load_dataset("synthetic")


@pytest.fixture(scope="session")
def trained_mlp(synthetic):
    """A small MLP trained normally on the synthetic task (weights frozen afterwards by nobody: tests copy it)."""
    import benchmark as bench
    from benchmark.api import RunContext

    torch.manual_seed(0)
    model = bench.MODELS.get("mlp")(synthetic.input_shape, synthetic.nb_classes)
    return bench.DEFENSES.get("standard")(epochs=15).fit(model, synthetic, RunContext(seed=0))


@pytest.fixture()
def estimator(trained_mlp, synthetic):
    import copy

    from benchmark.estimator import wrap

    return wrap(copy.deepcopy(trained_mlp), synthetic.input_shape, synthetic.nb_classes, "cpu")
