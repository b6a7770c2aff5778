"""The harness's PGD evaluation (ART through our wrapper, inside the sweep) vs a hand-written torch PGD loop, on the
same trained model, the same test set, the same batch size, steps and step size."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import benchmark as bench
from benchmark.api import RunContext
from benchmark.estimator import wrap
from benchmark.runner import BATCH_SIZE, sample_keys
from benchmark.sweep import run_sweep
from tests.benchmarks.conftest import compare

EPS, STEPS, FRACTION = 0.1, 10, 0.25
BATCH = BATCH_SIZE["cpu"]


def hand_pgd_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """The floor: plain torch PGD (random start, sign steps, projection), input gradients only."""
    correct = 0
    for start in range(0, len(x), BATCH):
        xb, yb = x[start : start + BATCH], y[start : start + BATCH]
        delta = torch.empty_like(xb).uniform_(-EPS, EPS)
        delta = (xb + delta).clamp(0, 1) - xb
        for _ in range(STEPS):
            delta.requires_grad_(True)
            (grad,) = torch.autograd.grad(F.cross_entropy(model(xb + delta), yb), delta)
            delta = (delta.detach() + FRACTION * EPS * grad.sign()).clamp(-EPS, EPS)
            delta = (xb + delta).clamp(0, 1) - xb
        with torch.no_grad():
            correct += int((model(xb + delta).argmax(1) == yb).sum())
    return correct / len(x)


def art_direct_ratio(model, x: np.ndarray, y: np.ndarray, hand) -> float:
    """ART used directly, as its documentation shows (a fresh PyTorchClassifier, weights not frozen), against the
    hand-written loop: best of three of each, interleaved."""
    import time

    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    plain = copy.deepcopy(model)
    for parameter in plain.parameters():
        parameter.requires_grad_(True)
    classifier = PyTorchClassifier(plain, loss=torch.nn.CrossEntropyLoss(), input_shape=x.shape[1:],
                                   nb_classes=10, clip_values=(0.0, 1.0), device_type="cpu")
    attack = ProjectedGradientDescent(classifier, norm=np.inf, eps=EPS, eps_step=FRACTION * EPS, max_iter=STEPS,
                                      num_random_init=1, batch_size=BATCH, verbose=False)
    times = {"art": [], "hand": []}
    for _ in range(3):
        for name, run in (("art", lambda: attack.generate(x=x, y=y)), ("hand", hand)):
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    ratio = min(times["art"]) / min(times["hand"])
    print(f"ART used directly / hand-written = {ratio:.2f}x")
    return ratio


@pytest.mark.parametrize("model_name", ["cnn-small", "mlp"])
def test_harness_pgd_vs_hand_written(benchmark, digits, model_name):
    torch.manual_seed(0)
    model = bench.MODELS.get(model_name)(digits.input_shape, digits.nb_classes)
    bench.DEFENSES.get("standard")(epochs=10).fit(model, digits, RunContext(seed=0))
    estimator = wrap(model, digits.input_shape, digits.nb_classes, "cpu")
    x_np, y_np = digits.x_test, digits.y_test
    x, y = torch.from_numpy(x_np), torch.from_numpy(y_np)
    attack = {"pgd": bench.ATTACKS.get("pgd")(steps=STEPS, step_fraction=FRACTION)}
    keys = sample_keys(0, len(x_np))
    results = {}

    def harness():
        sweep = run_sweep(estimator, x_np, y_np, attack, (0.0, EPS), norm="inf", keys=keys, batch_size=BATCH,
                          survivors_only=False)
        results["harness"] = sweep.accuracy("pgd")[EPS]

    def hand():
        results["hand"] = hand_pgd_accuracy(model, x, y)

    ratio = compare(benchmark, harness, hand)
    # same attack, same model: the two accuracies agree up to the random starts
    assert abs(results["harness"] - results["hand"]) < 0.05, results
    art_ratio = art_direct_ratio(model, x_np, y_np, hand)
    benchmark.extra_info["art_direct_ratio"] = art_ratio
    assert results["harness"] < 0.9 * float(np.mean(model(x).argmax(1).numpy() == y_np))
    if ratio == ratio:  # measured (benchmarks enabled)
        assert ratio < 5.0, f"harness PGD is {ratio:.2f}x the hand-written loop"
