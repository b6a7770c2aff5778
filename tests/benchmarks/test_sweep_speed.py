"""The harness's PGD evaluation (ART through our wrapper, inside the sweep) vs a hand-written torch PGD loop vs ART
used directly, on the same trained model, the same test set, the same batch size (the one the harness picks for the
model), steps and step size. Each side reports clean and robust accuracy."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import benchmark as bench
from benchmark.api import RunContext
from benchmark.estimator import wrap
from benchmark.runner import attack_batch_size, sample_keys
from benchmark.sweep import run_sweep
from tests.benchmarks.conftest import compare

EPS, STEPS, FRACTION = 0.1, 10, 0.25


def hand_pgd_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int) -> tuple[float, float]:
    """The floor: plain torch PGD (random start, sign steps, projection), input gradients only. Returns what a PGD
    evaluation reports, as the harness does: (clean accuracy, robust accuracy)."""
    clean = robust = 0
    for start in range(0, len(x), batch):
        xb, yb = x[start : start + batch], y[start : start + batch]
        with torch.no_grad():
            clean += int((model(xb).argmax(1) == yb).sum())
        delta = torch.empty_like(xb).uniform_(-EPS, EPS)
        delta = (xb + delta).clamp(0, 1) - xb
        for _ in range(STEPS):
            delta.requires_grad_(True)
            (grad,) = torch.autograd.grad(F.cross_entropy(model(xb + delta), yb), delta)
            delta = (delta.detach() + FRACTION * EPS * grad.sign()).clamp(-EPS, EPS)
            delta = (xb + delta).clamp(0, 1) - xb
        with torch.no_grad():
            robust += int((model(xb + delta).argmax(1) == yb).sum())
    return clean / len(x), robust / len(x)


def art_direct_ratio(model, x: np.ndarray, y: np.ndarray, hand, batch: int) -> float:
    """ART used directly, as its documentation shows (a fresh PyTorchClassifier, weights not frozen; clean
    predictions, the attack, adversarial predictions), against the hand-written loop: best of three, interleaved."""
    import time

    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    plain = copy.deepcopy(model)
    for parameter in plain.parameters():
        parameter.requires_grad_(True)
    classifier = PyTorchClassifier(plain, loss=torch.nn.CrossEntropyLoss(), input_shape=x.shape[1:],
                                   nb_classes=10, clip_values=(0.0, 1.0), device_type="cpu")
    attack = ProjectedGradientDescent(classifier, norm=np.inf, eps=EPS, eps_step=FRACTION * EPS, max_iter=STEPS,
                                      num_random_init=1, batch_size=batch, verbose=False)

    def art():
        classifier.predict(x, batch_size=batch)
        classifier.predict(attack.generate(x=x, y=y), batch_size=batch)

    times = {"art": [], "hand": []}
    for _ in range(3):
        for name, run in (("art", art), ("hand", hand)):
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
    batch = attack_batch_size(model_name, "cpu")
    results = {}

    def harness():
        sweep = run_sweep(estimator, x_np, y_np, attack, (0.0, EPS), norm="inf", keys=keys, batch_size=batch,
                          survivors="none")
        results["harness"] = sweep.accuracy()[0.0], sweep.accuracy()[EPS]

    def hand():
        results["hand"] = hand_pgd_accuracy(model, x, y, batch)

    ratio = compare(benchmark, harness, hand)
    # same model: the same clean accuracy; same attack: robust accuracies agree up to the random starts
    assert results["harness"][0] == pytest.approx(results["hand"][0]), results
    assert abs(results["harness"][1] - results["hand"][1]) < 0.05, results
    art_ratio = art_direct_ratio(model, x_np, y_np, hand, batch)
    benchmark.extra_info.update(art_direct_ratio=art_ratio, batch_size=batch)
    assert results["harness"][1] < 0.9 * results["harness"][0]
    if ratio == ratio:  # measured (benchmarks enabled)
        assert ratio < 5.0, f"harness PGD is {ratio:.2f}x the hand-written loop"
