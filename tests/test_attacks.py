"""The contract every registered attack must pass, under every norm it supports."""

import numpy as np
import pytest

import benchmark as bench
from benchmark.runner import sample_keys
from benchmark.sweep import perturbation_norm, predict_labels, run_sweep, seed_everything

EPS = {"inf": 0.15, "2": 1.0}
#: Attacks whose randomness is drawn per sample (or that have none): a sample's result ignores its batch.
PER_SAMPLE = ("fgsm", "pgd", "noise")
CASES = [(name, norm) for name in bench.ATTACKS.names() for norm in bench.ATTACKS.get(name).norms]


def run(attack, estimator, x, y, norm, keys):
    seed_everything(11)
    if attack.minimal_norm:
        return attack.find(estimator, x, y, norm=norm, keys=keys, batch_size=16)
    return attack.generate(estimator, x, y, eps=EPS[norm], norm=norm, keys=keys, batch_size=16)


@pytest.mark.parametrize(("name", "norm"), CASES)
def test_attack_contract(name, norm, estimator, synthetic):
    attack = bench.ATTACKS.get(name)()
    assert set(attack.norms) <= {"inf", "2"}
    for tag in ("needs_grad", "black_box", "minimal_norm"):
        assert isinstance(getattr(attack, tag), bool)
    assert type(attack).__doc__ and type(attack).__module__.startswith("attacks.")
    x, y = synthetic.x_test[:24], synthetic.y_test[:24]
    keys = sample_keys(3, len(x))
    x_adv = run(attack, estimator, x, y, norm, keys)
    assert x_adv.shape == x.shape and x_adv.dtype == np.float32
    assert x_adv.min() >= 0.0 and x_adv.max() <= 1.0
    distance = perturbation_norm((x_adv.astype(np.float64) - x).reshape(len(x), -1), norm)
    if attack.minimal_norm:  # no ε: it must fool the model on the points it moved
        moved = distance > 1e-6
        assert moved.any()
        assert np.mean(predict_labels(estimator, x_adv[moved], 16) != y[moved]) > 0.5
    else:
        assert distance.max() <= EPS[norm] * (1 + 1e-5) + 1e-6  # stays in the ε-ball of its norm
        assert distance.max() > 0.5 * EPS[norm]  # and does perturb
    assert np.array_equal(x_adv, run(attack, estimator, x, y, norm, keys))  # deterministic given the seed


@pytest.mark.parametrize("name", PER_SAMPLE)
def test_per_sample_randomness_ignores_the_batch(name, estimator, synthetic):
    attack = bench.ATTACKS.get(name)()
    x, y = synthetic.x_test[:20], synthetic.y_test[:20]
    keys = sample_keys(3, len(x))
    for norm in attack.norms:
        together = run(attack, estimator, x, y, norm, keys)
        alone = run(attack, estimator, x[5:6], y[5:6], norm, keys[5:6])
        assert np.allclose(alone[0], together[5], atol=1e-5)  # up to float round-off of batched maths


@pytest.mark.parametrize("name", bench.ATTACKS.names())
def test_zero_eps_is_clean_accuracy_without_calling_the_attack(name, estimator, synthetic):
    x, y = synthetic.x_test, synthetic.y_test
    result = run_sweep(estimator, x, y, {name: bench.ATTACKS.get(name)()}, (0.0,),
                       norm=bench.ATTACKS.get(name).norms[0], keys=sample_keys(0, len(x)), batch_size=32)
    outcome = result.outcomes[name]
    assert outcome.grad_evals == 0 and outcome.queries == 0 and outcome.attacked == 0
    assert result.accuracy()[0.0] == pytest.approx(np.mean(predict_labels(estimator, x, 32) == y))


@pytest.mark.parametrize("name", [n for n in bench.ATTACKS.names()
                                  if bench.ATTACKS.get(n).needs_grad and not bench.ATTACKS.get(n).minimal_norm])
def test_gradient_attacks_beat_random_noise(name, estimator, synthetic):
    x, y = synthetic.x_test, synthetic.y_test
    keys = sample_keys(0, len(x))
    noise = bench.ATTACKS.get("noise")().generate(estimator, x, y, eps=0.2, norm="inf", keys=keys, batch_size=32)
    adv = bench.ATTACKS.get(name)().generate(estimator, x, y, eps=0.2, norm="inf", keys=keys, batch_size=32)
    acc_noise = np.mean(predict_labels(estimator, noise, 32) == y)
    acc_adv = np.mean(predict_labels(estimator, adv, 32) == y)
    assert acc_adv < acc_noise - 0.2
