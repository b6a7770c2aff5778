"""The update-crafting client attacks (attacks/federated/): each against a hand-computed case on small arrays, their
registry entries, parameter constraints, output shape and determinism."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy.stats import norm

import benchmark as bench
from attacks.federated import alie, ipm, minmax, naive
from benchmark.constraints import Interval, Options, missing_constraints

EXPECTED = {  # name: omniscient
    "sign-flip": False, "gaussian": False, "scale": False,
    "alie": True, "ipm": True, "min-max": True, "min-sum": True,
}
#: Three benign updates whose min-max and min-sum γ have closed forms (unit direction −(1, 1)/√2, mean (2/3, 2/3)).
TRIANGLE = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0]])
#: Two attackers' own honest updates, far from the benign ones: an omniscient attack must not take them in.
OWN = np.array([[50.0, -40.0], [60.0, 30.0]])


def round_of(benign: np.ndarray, own: np.ndarray = OWN) -> np.ndarray:
    """A round's honest updates as the caller passes them: the attackers' own first."""
    return np.vstack([own, benign])


def attack(name: str, **params):
    return bench.CLIENT_ATTACKS.get(name)(**params)


def test_the_registry_lists_the_seven_attacks_with_kind_and_omniscient():
    assert set(EXPECTED) <= set(bench.CLIENT_ATTACKS.names())
    for name, omniscient in EXPECTED.items():
        plugin = bench.CLIENT_ATTACKS.get(name)
        assert plugin.kind == "update", name
        assert plugin.omniscient is omniscient, name
        assert callable(plugin().craft)


#: Every built-in client attack, update and data ones alike: the constraint contract below holds for each.
ALL = sorted(bench.CLIENT_ATTACKS.names())


@pytest.mark.parametrize("name", ALL)
def test_every_field_declares_a_constraint(name):
    plugin = bench.CLIENT_ATTACKS.get(name)
    assert missing_constraints(plugin) == []
    assert set(plugin.parameter_constraints) == {f.name for f in dataclasses.fields(plugin) if f.init}


def bad_values(constraint) -> list:
    """Values ``constraint`` must refuse: a wrong type, and one past each finite bound."""
    if isinstance(constraint, Options):
        return ["bogus"]
    assert isinstance(constraint, Interval)
    return ["abc"] + [bound + sign for bound, sign in ((constraint.low, -1), (constraint.high, 1)) if bound is not None]


@pytest.mark.parametrize(("name", "param"), [(name, f.name) for name in ALL
                                             for f in dataclasses.fields(bench.CLIENT_ATTACKS.get(name))])
def test_a_bad_parameter_is_refused_naming_it(name, param):
    plugin = bench.CLIENT_ATTACKS.get(name)
    constraint = plugin.parameter_constraints[param]
    for value in bad_values(constraint):
        with pytest.raises(ValueError, match=rf"^{plugin.__name__}: {param} must be ") as raised:
            plugin(**{param: value})
        assert constraint.describe() in str(raised.value)


def test_min_attacks_refuse_a_tau_not_below_gamma_init():
    for name in ("min-max", "min-sum"):
        with pytest.raises(ValueError, match="tau must be smaller than gamma_init = 0.5"):
            attack(name, gamma_init=0.5, tau=0.5)
    with pytest.raises(ValueError, match="did you mean 'unit'"):
        attack("min-max", direction="unit_vec")


def test_a_bad_round_is_refused_naming_n_attackers():
    honest = np.ones((3, 4))
    for name in EXPECTED:
        with pytest.raises(ValueError, match="n_attackers must be an int between 0 and the 3 updates"):
            attack(name).craft(honest, n_attackers=4, rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"honest must be an \(m, d\) array"):
        attack("ipm").craft(np.ones(4), n_attackers=1, rng=np.random.default_rng(0))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_output_shape_and_determinism_given_rng(name):
    honest = np.random.default_rng(1).normal(size=(6, 5))
    crafted = attack(name).craft(honest, n_attackers=2, rng=np.random.default_rng(9))
    assert crafted.shape == (2, 5) and np.isfinite(crafted).all()
    assert np.array_equal(crafted, attack(name).craft(honest, n_attackers=2, rng=np.random.default_rng(9)))
    assert attack(name).craft(honest, n_attackers=0, rng=np.random.default_rng(9)).shape == (0, 5)
    if EXPECTED[name]:  # every attacker sends the same vector
        assert np.array_equal(crafted[0], crafted[1])


def test_sign_flip_and_scale_corrupt_the_attackers_own_updates():
    honest = np.array([[1.0, -2.0], [0.5, 4.0], [100.0, 100.0]])
    rng = np.random.default_rng(0)
    assert np.array_equal(attack("sign-flip", scale=3.0).craft(honest, n_attackers=2, rng=rng),
                          [[-3.0, 6.0], [-1.5, -12.0]])
    assert np.array_equal(attack("scale", scale=3.0).craft(honest, n_attackers=2, rng=rng),
                          [[3.0, -6.0], [1.5, 12.0]])
    assert np.array_equal(naive.sign_flip(honest[:1], 10.0), [[-10.0, 20.0]])


def test_gaussian_is_noise_of_the_given_std_drawn_from_rng():
    honest = np.zeros((3, 20_000))
    noise = attack("gaussian", std=2.5).craft(honest, n_attackers=2, rng=np.random.default_rng(4))
    assert abs(noise.std() - 2.5) < 0.05 and abs(noise.mean()) < 0.05
    other = attack("gaussian", std=2.5).craft(honest, n_attackers=2, rng=np.random.default_rng(5))
    assert not np.array_equal(noise, other)


@pytest.mark.parametrize("name", ["sign-flip", "gaussian", "scale"])
def test_naive_attacks_give_the_numbers_of_the_federated_defense(name):
    """The maths the federated defense ran before the registry (its removed ``byzantine_update``: −scale·u, scale·u,
    or N(0, std²) drawn per attacker in turn): with the same generator, the same updates."""
    honest = np.random.default_rng(2).normal(size=(4, 6))
    params = {"std": 0.7} if name == "gaussian" else {"scale": 4.0}
    crafted = attack(name, **params).craft(honest, n_attackers=3, rng=np.random.default_rng(11))
    rng = np.random.default_rng(11)
    formulas = {"sign-flip": lambda u: -4.0 * u, "scale": lambda u: 4.0 * u,
                "gaussian": lambda u: rng.normal(0.0, 0.7, size=u.shape)}
    before = [formulas[name](u) for u in honest[:3]]
    assert np.array_equal(crafted, before)


def test_alie_z_follows_baruch_et_al():
    assert alie.supporters(10, 2) == 4  # ⌊10/2 + 1⌋ − 2
    z = alie.alie_z(10, 2)
    assert z == pytest.approx(0.2533, abs=1e-4)  # z-table: Φ(0.2533) = 0.6 = (n − s)/n
    assert norm.cdf(z) == pytest.approx(0.6)
    assert alie.alie_z(50, 10) == pytest.approx(norm.ppf(34 / 50))  # s = 16
    assert alie.alie_z(10, 1) == pytest.approx(0.0)  # s = 5: half the clients
    with pytest.raises(ValueError, match=r"n_attackers = 6 of n = 10 clients leaves s = .* = 0 supporters"):
        alie.alie_z(10, 6)


def test_alie_sends_mu_minus_z_sigma_of_the_benign_updates():
    benign = np.array([[1.0, 5.0]] * 4 + [[3.0, 5.0]] * 4)  # mean (2, 5), sample std (√(8/7), 0)
    crafted = attack("alie").craft(round_of(benign), n_attackers=2, rng=np.random.default_rng(0))
    z = norm.ppf(0.6)  # n = 10 clients, f = 2
    assert np.allclose(crafted, [[2.0 - z * math.sqrt(8 / 7), 5.0]] * 2)
    explicit = attack("alie", z=1.5).craft(round_of(benign), n_attackers=2, rng=np.random.default_rng(0))
    assert np.allclose(explicit[0], [2.0 - 1.5 * math.sqrt(8 / 7), 5.0])
    with pytest.raises(ValueError, match="n_attackers = 6 of n = 10"):
        attack("alie").craft(np.ones((10, 2)), n_attackers=6, rng=np.random.default_rng(0))
    assert attack("alie", z=1.0).craft(np.ones((10, 2)), n_attackers=6, rng=np.random.default_rng(0)).shape == (6, 2)


def test_ipm_sends_minus_eps_times_the_benign_mean():
    benign = np.array([[1.0, 2.0], [3.0, 4.0]])
    crafted = attack("ipm", eps=0.5).craft(round_of(benign), n_attackers=2, rng=np.random.default_rng(0))
    assert np.allclose(crafted, [[-1.0, -1.5], [-1.0, -1.5]])
    assert attack("ipm").eps == 0.1
    # against the plain mean, f of n attackers flip the aggregate's sign once ε > (n − f)/f (here 2/2 = 1)
    for eps, sign in ((0.9, 1.0), (1.1, -1.0)):
        sent = np.vstack([ipm.ipm_update(benign, eps)] * 2 + [benign])
        assert np.all(np.sign(sent.mean(axis=0)) == sign)


def test_perturbation_directions_follow_the_paper():
    benign = np.array([[3.0, -1.0], [1.0, -3.0]])  # mean (2, −2), sample std (√2, √2)
    assert np.allclose(minmax.perturbation(benign, "unit"), [-1 / math.sqrt(2), 1 / math.sqrt(2)])
    assert np.allclose(minmax.perturbation(benign, "sign"), [-1.0, 1.0])
    assert np.allclose(minmax.perturbation(benign, "std"), [-math.sqrt(2), -math.sqrt(2)])
    assert np.array_equal(minmax.perturbation(np.array([[1.0], [-1.0]]), "unit"), [0.0])  # ū = 0: no direction


def test_search_gamma_finds_the_largest_feasible_gamma_within_two_tau():
    tau = 1e-5
    for boundary in (3.7, 12.25, 0.01):
        found = minmax.search_gamma(lambda g, b=boundary: g <= b, gamma_init=10.0, tau=tau)
        assert boundary - 2 * tau <= found <= boundary
    assert minmax.search_gamma(lambda g: False, gamma_init=10.0, tau=tau) == 0.0
    assert 20.0 - 2 * tau <= minmax.search_gamma(lambda g: True, gamma_init=10.0, tau=tau) < 20.0  # below 2·γ_init
    assert minmax.search_gamma(lambda g: g <= 1.0, gamma_init=1e6, tau=1e-300) == pytest.approx(1.0)  # terminates


@pytest.mark.parametrize(("name", "score", "gamma_star"), [
    # min-max: max(2t², 2t² − 4t + 4) = 8 = ‖(2,0) − (0,2)‖², t = 2/3 − γ/√2  →  t = 1 − √3
    ("min-max", minmax.max_squared_distance, math.sqrt(2) * (math.sqrt(3) - 1 / 3)),
    # min-sum: 6t² − 8t + 8 = 12 = max benign sum (the smallest, 8, would give γ = (2/3)·√2)  →  t = (2 − √10)/3
    ("min-sum", minmax.sum_squared_distance, math.sqrt(20) / 3),
])
def test_min_max_and_min_sum_gamma_meets_its_bound(name, score, gamma_star):
    tau = 1e-5
    unit = minmax.perturbation(TRIANGLE, "unit")
    gamma = minmax.tailored_gamma(TRIANGLE, unit, score, gamma_init=10.0, tau=tau)
    assert gamma_star - 2 * tau <= gamma <= gamma_star
    crafted = attack(name, direction="unit", tau=tau).craft(round_of(TRIANGLE), n_attackers=2,
                                                            rng=np.random.default_rng(0))
    mean = TRIANGLE.mean(axis=0)
    assert np.allclose(crafted, [mean + gamma * unit] * 2)
    bound = minmax.benign_bound(TRIANGLE, score)
    assert bound == (8.0 if name == "min-max" else 12.0)
    assert score(crafted[0], TRIANGLE) <= bound  # the constraint holds ...
    assert score(mean + (gamma + 2 * tau) * unit, TRIANGLE) > bound  # ... and is tight within 2τ
    if name == "min-max":  # the largest distance to a benign update equals the benign diameter within 2τ (‖∇p‖ = 1)
        assert 0 <= math.sqrt(bound) - math.sqrt(score(crafted[0], TRIANGLE)) <= 2 * tau


@pytest.mark.parametrize("direction", minmax.DIRECTIONS)
def test_min_max_keeps_its_bound_in_every_direction(direction):
    benign = np.random.default_rng(6).normal(1.0, 0.3, size=(8, 12))
    crafted = attack("min-max", direction=direction).craft(round_of(benign, own=np.zeros((2, 12))), n_attackers=2,
                                                           rng=np.random.default_rng(0))[0]
    p = minmax.perturbation(benign, direction)
    gamma = np.linalg.norm(crafted - benign.mean(axis=0)) / np.linalg.norm(p)
    assert gamma > 0 and np.allclose(crafted, benign.mean(axis=0) + gamma * p)
    bound = minmax.benign_bound(benign, minmax.max_squared_distance)
    assert minmax.max_squared_distance(crafted, benign) <= bound
    assert minmax.max_squared_distance(crafted + 2e-5 * p, benign) > bound
