"""The harness's ART wrapper and PGD take faster paths than ART's own code; each must give exactly ART's numbers."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

import benchmark as bench
from benchmark.api import keyed_direction, keyed_uniform
from benchmark.sweep import seed_everything


def art_classifier(model, data):
    """ART's own wrapper around a copy of ``model``, as ART documents it."""
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(copy.deepcopy(model), loss=torch.nn.CrossEntropyLoss(), input_shape=data.input_shape,
                             nb_classes=data.nb_classes, clip_values=(0.0, 1.0), device_type="cpu")


@pytest.mark.parametrize("as_tensor", [False, True])
def test_loss_gradient_equals_arts(estimator, trained_mlp, synthetic, as_tensor):
    x, y = synthetic.x_test[:40], synthetic.y_test[:40]
    labels = np.eye(synthetic.nb_classes, dtype=np.float32)[y]  # one-hot, as ART's attacks pass them
    if as_tensor:
        x, labels = torch.from_numpy(x), torch.from_numpy(labels)
    ours = estimator.loss_gradient(x, labels)
    theirs = art_classifier(trained_mlp, synthetic).loss_gradient(x, labels)
    assert type(ours) is type(theirs)
    assert np.array_equal(np.asarray(ours), np.asarray(theirs))
    assert np.abs(np.asarray(ours)).sum() > 0
    # the same label tensor again (iterative attacks pass one): still right after the shortcut
    assert np.array_equal(np.asarray(estimator.loss_gradient(x, labels)), np.asarray(theirs))


@pytest.mark.parametrize("norm", ["inf", "2"])
def test_keyed_pgd_without_random_start_is_arts_pgd(estimator, trained_mlp, synthetic, norm):
    """Projection, step and direction are computed by our overrides for L∞: the iterates must be ART's exactly."""
    from art.attacks.evasion.projected_gradient_descent.projected_gradient_descent_pytorch import (
        ProjectedGradientDescentPyTorch,
    )

    x, y = synthetic.x_test[:50], synthetic.y_test[:50]
    eps = 0.1 if norm == "inf" else 0.8
    ours = bench.ATTACKS.get("pgd")(steps=7, random_start=False).generate(
        estimator, x, y, eps=eps, norm=norm, keys=np.arange(50), batch_size=16)
    reference = ProjectedGradientDescentPyTorch(
        art_classifier(trained_mlp, synthetic), norm=np.inf if norm == "inf" else 2, eps=eps, eps_step=0.25 * eps,
        max_iter=7, num_random_init=0, batch_size=16, verbose=False)
    theirs = reference.generate(x=x, y=np.eye(synthetic.nb_classes, dtype=np.float32)[y])
    assert np.array_equal(ours, theirs)
    assert np.abs(ours - x).max() > 0.5 * eps if norm == "inf" else np.linalg.norm((ours - x)[0]) > 0


def test_apgd_runs_on_the_fast_wrapper_with_arts_numbers(estimator, trained_mlp, synthetic):
    from art.attacks.evasion import AutoProjectedGradientDescent

    from benchmark.estimator import Classifier

    x, y = synthetic.x_test[:30], synthetic.y_test[:30]
    apgd = bench.ATTACKS.get("apgd-dlr")(steps=8)
    attack = apgd.art_attack(estimator, eps=0.1, norm="inf", batch_size=16)
    assert isinstance(attack.estimator, Classifier) and attack.estimator.model is estimator.model
    seed_everything(5)
    ours = attack.generate(x=x, y=y)
    reference = AutoProjectedGradientDescent(art_classifier(trained_mlp, synthetic), norm=np.inf, eps=0.1,
                                             eps_step=0.2, max_iter=8, targeted=False, nb_random_init=1,
                                             batch_size=16, loss_type="difference_logits_ratio", verbose=False)
    seed_everything(5)
    theirs = reference.generate(x=x, y=y)
    assert np.array_equal(ours, theirs)
    grads_before = estimator.counts["grad"]
    apgd.generate(estimator, x, y, eps=0.1, norm="inf", keys=np.arange(30), batch_size=16)
    assert estimator.counts["grad"] > grads_before  # still counted: the counter sits on the shared model


def test_memoized_predictions_are_the_models_and_are_not_counted_twice(estimator, synthetic):
    x = synthetic.x_test[:30]
    plain = estimator.predict(x)
    before = estimator.counts["predict"]
    with estimator.memoized():
        first = estimator.predict(x)
        with estimator.memoized():  # nested: the same memory, kept when the inner block ends
            again = estimator.predict(x[::-1].copy())
        moved = x.copy()
        moved[:5] += 0.01
        mixed = estimator.predict(moved)
    assert np.array_equal(first, plain) and np.array_equal(again, plain[::-1])
    assert np.array_equal(mixed[5:], plain[5:]) and not np.array_equal(mixed[:5], plain[:5])
    assert np.allclose(mixed[:5], estimator.predict(moved[:5]), atol=1e-6)
    assert estimator.counts["predict"] - before == 30 + 5 + 5  # 30, then nothing, then the 5 new inputs; and after
    assert estimator._memo is None  # outside the block predictions are computed again


def test_keyed_generator_is_per_sample_and_uniform():
    keys = np.arange(2000, dtype=np.int64) + (7 << 32)
    draws = keyed_uniform(keys, (4, 8), 3)
    assert draws.shape == (2000, 4, 8) and draws.min() >= 0.0 and draws.max() < 1.0
    assert np.array_equal(keyed_uniform(keys[[17, 3]], (4, 8), 3), draws[[17, 3]])  # any batch, any order
    assert abs(draws.mean() - 0.5) < 0.01 and abs(draws.var() - 1 / 12) < 0.005
    assert not np.array_equal(keyed_uniform(keys, (4, 8), 4), draws)  # another salt, another stream
    assert np.corrcoef(draws[:, 0, 0], draws[:, 0, 1])[0, 1] < 0.1  # positions are not correlated
    signs = keyed_direction(keys, (8,), "inf", 1)
    assert set(np.unique(signs)) == {-1.0, 1.0} and abs(signs.mean()) < 0.05
    directions = keyed_direction(keys, (2, 5), "2", 1)
    assert np.allclose(np.linalg.norm(directions.reshape(2000, -1), axis=1), 1.0)
    assert np.abs(directions.reshape(2000, -1).mean(axis=0)).max() < 0.05  # no preferred direction
