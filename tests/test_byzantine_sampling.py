"""Who attacks in a federated round (``defenses/byzantine.py``'s ``Attackers``): a fixed set of clients, or clients
drawn afresh each round; an attacker's poisoned data and its own local recipe."""

from __future__ import annotations

import numpy as np
import pytest

import benchmark as bench
from benchmark.api import DataBundle
from benchmark.config import parse_plugins
from benchmark.errors import ConfigError
from defenses.byzantine import Attackers, build_attack


def bundle(n: int = 40) -> DataBundle:
    x = np.random.default_rng(0).random((n, 1, 8, 8)).astype(np.float32)
    y = np.arange(n) % 4
    return DataBundle("toy", x, y, x[:4], y[:4], 4)


def attackers(sampling: str, count: int = 2, attack=None) -> Attackers:
    data = bundle()
    shards = np.array_split(np.arange(len(data.y_train)), 10)
    return Attackers(attack, sampling=sampling, count=count, data=data, shards=shards, seed=0)


def test_fixed_attackers_are_the_first_clients_whenever_drawn():
    fixed = attackers("fixed")
    order, bad = fixed.order(np.array([7, 1, 4, 0]))
    assert list(order) == [0, 1, 4, 7] and bad == 2
    order, bad = fixed.order(np.array([5, 1, 9]))
    assert list(order) == [1, 5, 9] and bad == 1
    assert fixed.order(np.array([3, 8]))[1] == 0


def test_sampled_attackers_are_drawn_afresh_each_round_and_come_first():
    sampled = attackers("round")
    rounds = [sampled.order(np.arange(10)) for _ in range(30)]
    assert all(bad == 2 and sorted(order) == list(range(10)) for order, bad in rounds)
    drawn = {tuple(order[:2]) for order, _ in rounds}
    assert len(drawn) > 5  # not the same two clients every round
    assert all(a < b for a, b in drawn)  # each group sorted
    assert set(np.concatenate([list(pair) for pair in drawn])) - {0, 1}  # clients other than 0 and 1 attack
    assert attackers("round", count=5).order(np.array([2, 6, 9]))[1] == 3  # never more than the round's clients
    again = attackers("round")
    assert all(np.array_equal(again.order(np.arange(10))[0], order) for order, _ in rounds)  # from the seed


def test_an_attacker_poisons_its_own_shard_once_the_same_way_under_either_sampling():
    backdoor = build_attack("backdoor", "poison_fraction=0.5", None)
    fixed, sampled = attackers("fixed", attack=backdoor), attackers("round", attack=backdoor)
    x, y = fixed.data_of(3)
    assert (y == 0).sum() >= 2 and not np.array_equal(x, fixed.data.x_train[fixed.shards[3]])
    assert fixed.data_of(3)[0] is x  # made once
    assert all(np.array_equal(a, b) for a, b in zip(sampled.data_of(3), (x, y), strict=True))
    ipm = attackers("fixed", attack=build_attack("ipm", "", None))
    assert np.array_equal(ipm.data_of(3)[1], ipm.data.y_train[ipm.shards[3]])  # an update attack's data is clean


def test_a_backdoor_attacker_trains_with_its_own_recipe_the_others_with_the_defense_s():
    fedavg = bench.DEFENSES.get("fedavg")(local_epochs=1, lr=1e-3, byzantine=2, byzantine_attack="backdoor",
                                          byzantine_params="lr=0.0002;local_epochs=3")
    own = fedavg.recipe(fedavg.client_attack())
    assert (own.epochs, own.lr) == (3, 2e-4)
    assert (fedavg.recipe().epochs, fedavg.recipe().lr) == (1, 1e-3)
    default = fedavg.recipe(build_attack("backdoor", "", None))
    assert (default.epochs, default.lr, default.optimiser) == (1, 1e-3, "adam")
    sgd = bench.DEFENSES.get("fedavg")(optimiser="sgd", lr=0.1).recipe()
    assert (sgd.optimiser, sgd.momentum, sgd.lr) == ("sgd", 0.0, 0.1)  # plain SGD, McMahan et al.'s FedAvg


def test_sampling_is_checked_before_any_work():
    with pytest.raises(ConfigError, match="byzantine_sampling must be one of"):
        parse_plugins("defense", "fedavg:byzantine=2,byzantine_sampling=each", "--defense")
