"""The data-poisoning client attacks (attacks/federated/label_flip.py, backdoor.py) and the backdoor attack success
rate (benchmark/backdoor_metrics.py): hand-computed cases on small arrays, their registry entries and parameter
constraints, and one end-to-end check that the trigger plants a backdoor in a small model trained on digits."""

from __future__ import annotations

import math

import numpy as np
import pytest

import benchmark as bench
from attacks.federated import backdoor
from benchmark.backdoor_metrics import attack_success_rate

DATA_ATTACKS = ("label-flip", "backdoor")
#: ART's add_pattern_bd at distance 1: the bottom-right 3 × 3 corner it sets, written out by hand.
PATTERN = np.array([[0, 0, 1],
                    [0, 1, 0],
                    [1, 0, 1]], dtype=bool)


def attack(name: str, **params):
    return bench.CLIENT_ATTACKS.get(name)(**params)


def images(n: int = 20, shape: tuple[int, ...] = (1, 8, 8), seed: int = 0) -> np.ndarray:
    """Float32 images in [0.1, 0.9): no pixel already at the trigger's value 1."""
    return np.random.default_rng(seed).uniform(0.1, 0.9, size=(n, *shape)).astype(np.float32)


def corner_mask(side: int, shape: tuple[int, int] = (8, 8)) -> np.ndarray:
    """A (H, W) mask that is True on the bottom-right ``side × side`` corner."""
    mask = np.zeros(shape, dtype=bool)
    mask[shape[0] - side:, shape[1] - side:] = True
    return mask


# --- registry contract --------------------------------------------------------------------------------------------


def test_the_registry_lists_the_data_attacks_as_not_omniscient():
    for name in DATA_ATTACKS:
        plugin = bench.CLIENT_ATTACKS.get(name)
        assert plugin.kind == "data", name
        assert plugin.omniscient is False, name
        assert callable(plugin().poison) and callable(plugin().check)


def test_cross_field_checks_name_the_parameter():
    with pytest.raises(ValueError, match="^LabelFlip: target must differ from source = 3"):
        attack("label-flip", mode="target", source=3, target=3)
    attack("label-flip", mode="shift", source=3, target=3)  # source and target only matter in target mode
    with pytest.raises(ValueError, match="^Backdoor: trigger_size must be a multiple of 3 for the pattern trigger"):
        attack("backdoor", trigger_size=4)
    with pytest.raises(ValueError, match="did you mean 'pixel'"):
        attack("backdoor", trigger="pixels")
    assert attack("backdoor", trigger="pixel", trigger_size=4).trigger_size == 4


# --- label flipping -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("params", "expected"), [
    ({"mode": "reverse"}, [3, 2, 1, 0, 0, 2]),
    ({"mode": "shift"}, [1, 2, 3, 0, 0, 2]),
    ({"mode": "target", "source": 1, "target": 2}, [0, 2, 2, 3, 3, 2]),
])
def test_label_flip_relabels_a_hand_case(params, expected):
    x = images(6, (1, 2, 2))
    y = np.array([0, 1, 2, 3, 3, 1])
    x_out, y_out = attack("label-flip", **params).poison(x, y, np.random.default_rng(0), nb_classes=4)
    assert np.array_equal(y_out, expected) and y_out.dtype == y.dtype
    assert x_out is x and np.array_equal(y, [0, 1, 2, 3, 3, 1])  # the caller's labels are not changed


def test_label_flip_refuses_a_class_outside_the_labels_naming_it():
    with pytest.raises(ValueError, match=r"^LabelFlip: target must be a class in \[0, 3\] .*got 7"):
        attack("label-flip", mode="target", source=1, target=7).check((1, 2, 2), 4)
    with pytest.raises(ValueError, match=r"^LabelFlip: source must be a class in \[0, 3\] .*got 5"):
        attack("label-flip", mode="target", source=5, target=1).poison(images(2, (1, 2, 2)), np.array([0, 1]),
                                                                      np.random.default_rng(0), nb_classes=4)
    attack("label-flip", mode="reverse", target=7).check((1, 2, 2), 4)  # target unused outside target mode


# --- backdoor: trigger, poisoning, boost, check -------------------------------------------------------------------


@pytest.mark.parametrize(("params", "expected"), [
    ({"trigger": "pattern", "trigger_size": 3}, np.pad(PATTERN, ((5, 0),) * 2)),
    ({"trigger": "pattern", "trigger_size": 6}, np.pad(np.kron(PATTERN, np.ones((2, 2), dtype=bool)), ((2, 0),) * 2)),
    ({"trigger": "pixel", "trigger_size": 1}, corner_mask(1)),
    ({"trigger": "pixel", "trigger_size": 2}, corner_mask(2)),
])
def test_the_trigger_sets_only_its_corner_pixels(params, expected):
    x = images(5, (3, 8, 8))
    stamped = attack("backdoor", **params).triggered(x)
    assert stamped.dtype == np.float32 and stamped.shape == x.shape
    changed = stamped != x
    assert np.array_equal(changed, np.broadcast_to(expected, x.shape))  # every channel, every image, nothing else
    assert np.all(stamped[changed] == 1.0)
    assert np.all(expected <= corner_mask(params["trigger_size"]))


def test_the_trigger_on_uint8_pixels_is_255():
    x = np.full((2, 1, 4, 4), 7, dtype=np.uint8)
    stamped = attack("backdoor").triggered(x)
    assert stamped.dtype == np.uint8
    assert np.array_equal(stamped[:, 0, 1:, 1:] == 255, np.broadcast_to(PATTERN, (2, 3, 3)))
    assert np.all(stamped[:, 0, 0, :] == 7) and np.all(stamped[:, 0, :, 0] == 7)


def test_poison_stamps_and_relabels_exactly_the_poison_fraction():
    x, y = images(20), np.arange(20) % 5
    bd = attack("backdoor", target=4, poison_fraction=0.3)
    x_out, y_out = bd.poison(x, y, np.random.default_rng(3), nb_classes=5)
    poisoned = np.flatnonzero((x_out != x).any(axis=(1, 2, 3)))
    assert len(poisoned) == 6  # round(0.3 · 20)
    assert np.array_equal(x_out[poisoned], bd.triggered(x[poisoned]))
    assert np.all(y_out[poisoned] == 4)
    clean = np.setdiff1d(np.arange(20), poisoned)
    assert np.array_equal(x_out[clean], x[clean]) and np.array_equal(y_out[clean], y[clean])
    assert np.array_equal(y, np.arange(20) % 5) and y_out.dtype == y.dtype  # the caller's arrays unchanged
    again = bd.poison(x, y, np.random.default_rng(3), nb_classes=5)
    assert np.array_equal(again[0], x_out) and np.array_equal(again[1], y_out)
    other = bd.poison(x, y, np.random.default_rng(4), nb_classes=5)[0]
    assert not np.array_equal(other, x_out)  # the samples are drawn from rng


def test_poison_with_no_sample_to_poison_returns_the_data():
    x, y = images(3), np.array([0, 1, 2])
    x_out, y_out = attack("backdoor", poison_fraction=0.1).poison(x, y, np.random.default_rng(0), nb_classes=3)
    assert np.array_equal(x_out, x) and np.array_equal(y_out, y)


def test_boost_update_scales_by_gamma_and_by_clients_per_round_shared_by_the_attackers_by_default():
    update = np.array([[0.5, -1.0, 2.0]])
    assert np.array_equal(attack("backdoor").boost_update(update, clients_per_round=10), [[5.0, -10.0, 20.0]])
    # two attackers in a round of 10 each send 5·(X − G): the mean of their updates and 8 zero ones is X − G
    halves = attack("backdoor").boost_update(update, clients_per_round=10, attackers=2)
    assert np.array_equal(halves, [[2.5, -5.0, 10.0]])
    assert np.allclose(np.concatenate([halves, halves, np.zeros((8, 3))]).mean(axis=0), update[0])
    assert np.array_equal(attack("backdoor", boost=2.5).boost_update(update, clients_per_round=10, attackers=2),
                          [[1.25, -2.5, 5.0]])
    assert np.array_equal(attack("backdoor", boost=1.0).boost_update(update, clients_per_round=7), update)
    with pytest.raises(ValueError, match="clients_per_round must be an int ≥ 1, got 0"):
        attack("backdoor").boost_update(update, clients_per_round=0)
    with pytest.raises(ValueError, match="attackers must be an int ≥ 1, got 0"):
        attack("backdoor").boost_update(update, clients_per_round=10, attackers=0)


def test_check_refuses_a_target_outside_the_labels_and_a_trigger_larger_than_the_image():
    with pytest.raises(ValueError, match=r"^Backdoor: target must be a class in \[0, 9\] .*got 10"):
        attack("backdoor", target=10).check((1, 8, 8), 10)
    with pytest.raises(ValueError, match="^Backdoor: trigger_size 9 is larger than the 8 × 8 image"):
        attack("backdoor", trigger_size=9).check((1, 8, 8), 10)
    with pytest.raises(ValueError, match="^Backdoor: trigger_size 3 is larger than the 2 × 8 image"):
        attack("backdoor").check((1, 2, 8), 10)
    with pytest.raises(ValueError, match=r"^Backdoor: trigger needs \(C, H, W\) image inputs, got input shape \(64,\)"):
        attack("backdoor").check((64,), 10)
    attack("backdoor", target=9, trigger_size=6).check((1, 8, 8), 10)
    with pytest.raises(ValueError, match="^Backdoor: target must be a class"):
        attack("backdoor", target=3).poison(images(4), np.zeros(4, dtype=np.int64), np.random.default_rng(0),
                                            nb_classes=3)


def test_stamp_uses_arts_perturbations(monkeypatch):
    """The pixels come from ART's add_pattern_bd / add_single_bd, handed channels-last images."""
    seen = []

    def spy(x, distance, pixel_value):
        seen.append(x.shape)
        out = x.copy()
        out[:, -1, -1, :] = pixel_value
        return out

    monkeypatch.setattr(backdoor, "art_perturbation", lambda trigger: spy)
    stamped = backdoor.stamp(images(2, (3, 8, 8)), "pattern", 6)
    assert seen == [(2, 3, 3, 3)] * 4  # four strided 3 × 3 sub-grids, channels last
    assert int((stamped == 1.0).sum()) == 2 * 3 * 4


# --- attack success rate ------------------------------------------------------------------------------------------


def test_attack_success_rate_leaves_the_target_class_out():
    labels = np.array([0, 1, 2, 2, 1, 1])
    predicted = np.array([2, 2, 2, 0, 1, 2])  # target 2: samples 0, 1, 4, 5 count; 0, 1, 5 go to 2
    assert attack_success_rate(predicted, labels, 2) == (0.75, 4)
    assert attack_success_rate(predicted, labels, 0) == (0.2, 5)
    rate, count = attack_success_rate(np.array([1, 1]), np.array([1, 1]), 1)
    assert math.isnan(rate) and count == 0
    with pytest.raises(ValueError, match="one class per sample, got 2 predictions for 3 labels"):
        attack_success_rate(np.array([0, 1]), np.array([0, 1, 2]), 0)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_a_backdoored_model_obeys_the_trigger_and_keeps_its_clean_accuracy():
    """A small MLP trained on digits whose training set is 30 % backdoored: the trigger sends the other classes'
    test samples to the target, while clean accuracy stays close to that of the same model trained on clean data."""
    from sklearn.neural_network import MLPClassifier

    data = bench.DATASETS.get("digits")().load()
    bd = attack("backdoor", target=0, poison_fraction=0.3)
    bd.check(data.input_shape, data.nb_classes)
    x_train, y_train = bd.poison(data.x_train, data.y_train, np.random.default_rng(0), nb_classes=data.nb_classes)

    def fitted(x, y):
        return MLPClassifier(hidden_layer_sizes=(64,), max_iter=300, random_state=0).fit(x.reshape(len(x), -1), y)

    def predict(model, x):
        return model.predict(x.reshape(len(x), -1))

    poisoned, clean = fitted(x_train, y_train), fitted(data.x_train, data.y_train)
    rate, count = attack_success_rate(predict(poisoned, bd.triggered(data.x_test)), data.y_test, 0)
    clean_rate, _ = attack_success_rate(predict(clean, bd.triggered(data.x_test)), data.y_test, 0)
    assert count == int((data.y_test != 0).sum())
    assert rate >= 0.9 and clean_rate < 0.2  # the trigger alone does not make a clean model answer 0
    accuracy = np.mean(predict(poisoned, data.x_test) == data.y_test)
    assert accuracy >= np.mean(predict(clean, data.x_test) == data.y_test) - 0.03
