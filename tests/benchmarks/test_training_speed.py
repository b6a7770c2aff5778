"""One ``pgd-at`` training epoch through the harness vs a hand-written PGD-AT epoch: same model, data, batch size,
PGD steps and step size, same optimiser."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

import benchmark as bench
from benchmark.api import RunContext
from tests.benchmarks.conftest import compare
from tests.hand_loops import hand_pgd


def hand_pgd_at_epoch(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, step: float,
                      steps: int, lr: float, batch_size: int) -> None:
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    order = torch.randperm(len(x))
    for start in range(0, len(x), batch_size):
        xb, yb = x[order[start : start + batch_size]], y[order[start : start + batch_size]]
        loss = F.cross_entropy(model(hand_pgd(model, xb, yb, eps=eps, step=step, steps=steps)), yb)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()


@pytest.mark.parametrize("model_name", ["cnn-small", "mlp"])
def test_pgd_at_epoch_vs_hand_written(benchmark, digits, model_name):
    defense = bench.DEFENSES.get("pgd-at")(epochs=1)
    torch.manual_seed(0)
    initial = bench.MODELS.get(model_name)(digits.input_shape, digits.nb_classes)
    x, y = torch.from_numpy(digits.x_train), torch.from_numpy(digits.y_train)

    def harness():
        defense.fit(copy.deepcopy(initial), digits, RunContext(seed=0))

    def hand():
        hand_pgd_at_epoch(copy.deepcopy(initial), x, y, eps=defense.eps, step=defense.step, steps=defense.steps,
                          lr=defense.lr, batch_size=defense.batch_size)

    ratio = compare(benchmark, harness, hand)
    if ratio == ratio:
        assert ratio < 2.0, f"a pgd-at epoch costs {ratio:.2f}x the hand-written one"
