"""The contract every registered attack must pass."""

import numpy as np
import pytest

import benchmark as bench
from benchmark.runner import sample_keys
from benchmark.sweep import perturbation_norm, predict_labels


@pytest.mark.parametrize("name", bench.ATTACKS.names())
def test_attack_contract(name, estimator, synthetic):
    attack = bench.ATTACKS.get(name)()
    assert attack.norm in ("inf", "2")
    for tag in ("needs_grad", "black_box", "minimal_norm"):
        assert isinstance(getattr(attack, tag), bool)
    x, y = synthetic.x_test[:40], synthetic.y_test[:40]
    keys = sample_keys(3, len(x))
    eps = 0.1
    x_adv = attack.generate(estimator, x, y, eps, keys, 16)
    assert x_adv.shape == x.shape
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    distance = perturbation_norm((x_adv - x).reshape(len(x), -1), attack.norm)
    assert distance.max() <= eps + 1e-6
    assert distance.max() > 0.5 * eps  # it does perturb
    again = attack.generate(estimator, x, y, eps, keys, 16)
    assert np.array_equal(x_adv, again)  # deterministic given the keys
    alone = attack.generate(estimator, x[5:6], y[5:6], eps, keys[5:6], 16)
    assert np.array_equal(alone[0], x_adv[5])  # a sample's result does not depend on its batch


@pytest.mark.parametrize("name", [n for n in bench.ATTACKS.names() if bench.ATTACKS.get(n).needs_grad])
def test_gradient_attacks_beat_random_noise(name, estimator, synthetic):
    x, y = synthetic.x_test, synthetic.y_test
    keys = sample_keys(0, len(x))
    noise = bench.ATTACKS.get("noise")().generate(estimator, x, y, 0.2, keys, 32)
    adv = bench.ATTACKS.get(name)().generate(estimator, x, y, 0.2, keys, 32)
    acc_noise = np.mean(predict_labels(estimator, noise, 32) == y)
    acc_adv = np.mean(predict_labels(estimator, adv, 32) == y)
    assert acc_adv < acc_noise - 0.2
