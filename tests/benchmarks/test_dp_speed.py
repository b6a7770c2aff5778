"""What privacy costs per epoch: one ``dp-sgd`` epoch (Opacus: Poisson batches, per-sample gradients, clipping, noise)
against one ``standard`` epoch of the same model (cnn-small), data (digits), batch size and optimiser, both timed in
the same run (``tests/benchmarks/conftest.py``'s ``compare``). The ratio is reported in ``extra_info``, not asserted.

With benchmarks disabled (the normal test run) each side runs once, a smoke test of a few seconds.
"""

from __future__ import annotations

import pytest
import torch

import benchmark as bench
from benchmark.api import RunContext
from tests.benchmarks.conftest import compare

LR, BATCH = 5e-3, 64


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/benchmarks/conftest.py


def one_epoch(name: str, data, **params) -> RunContext:
    torch.manual_seed(0)
    model = bench.MODELS.get("cnn-small")(data.input_shape, data.nb_classes)
    ctx = RunContext(seed=0)
    bench.DEFENSES.get(name)(epochs=1, lr=LR, batch_size=BATCH, **params).fit(model, data, ctx)
    return ctx


def test_dp_sgd_epoch_vs_plain_epoch(benchmark, digits):
    contexts = {}

    def private():
        contexts["dp-sgd"] = one_epoch("dp-sgd", digits)

    def plain():
        contexts["standard"] = one_epoch("standard", digits)

    ratio = compare(benchmark, private, plain, rounds=3)
    assert contexts["dp-sgd"].outcome["dp"].steps == len(digits.y_train) // BATCH
    # the same work in gradient evaluations (Poisson batches: the same samples in expectation), at a higher price
    assert contexts["dp-sgd"].costs["train_grad_evals"] == pytest.approx(len(digits.y_train), rel=0.1)
    assert contexts["standard"].costs["train_grad_evals"] == len(digits.y_train)
    assert benchmark.disabled or ratio > 0
