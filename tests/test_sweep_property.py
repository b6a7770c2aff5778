"""The sweep's defining invariant, end to end through real attacks: a worst case over more attacks is never higher.

For every sample and ε, the result of a suite is "broken" whenever the result of any sub-suite is — whichever
survivor mode each ran in and whichever ε grid each used (compared at the ε both grids hold). This holds sample by
sample for attacks whose outcome on a sample depends only on that sample (their randomness drawn from its key):
every registered attack but Square and AutoAttack (which contains Square), whose random squares ART draws once per
batch. Those two still run in the suites here — they change which samples the others are given — but the
invariant is only asserted for the breaks of the per-sample attacks.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

import benchmark as bench
from benchmark.runner import sample_keys
from benchmark.sweep import SCHEDULES, run_sweep

#: Small budgets, so that each attack runs in well under a second on the synthetic task.
CHEAP = {
    "pgd": {"steps": 5}, "apgd-ce": {"steps": 5}, "apgd-dlr": {"steps": 5},
    "cw-l2": {"steps": 5, "binary_search_steps": 2}, "cw-linf": {"steps": 5, "largest_const": 1.0},
    "deepfool": {"steps": 10}, "hopskipjump": {"steps": 2, "max_eval": 20, "init_eval": 5, "init_size": 5},
    "square": {"queries": 15}, "autoattack": {"steps": 3, "queries": 10},
}
BATCH_RANDOM = {"square", "autoattack"}  # draw their randomness per batch (ART's Square)
GRIDS = {"inf": [(0.0, 0.05, 0.1, 0.2), (0.0, 0.1, 0.2), (0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3)],
         "2": [(0.0, 0.5, 1.0, 2.0), (0.0, 1.0, 2.0), (0.0, 0.25, 0.5, 1.0, 1.5, 2.0)]}
SUB_SUITES = 6


def suite(names):
    return {name: bench.ATTACKS.get(name)(**CHEAP.get(name, {})) for name in names}


def registered(norm):
    return [name for name in bench.ATTACKS.names() if norm in bench.ATTACKS.get(name).norms]


def broken(result, names, eps):
    """Per sample, whether one of the attacks ``names`` (or a clean error) broke it at ``eps``."""
    k = result.eps.index(eps)
    return result.worst_broken_at([n for n in result.outcomes if n in names]) <= k


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["inf", "2"])
def test_per_sample_attacks_do_not_depend_on_the_batch(estimator, synthetic, norm):
    """What the invariant rests on: every attack not in ``BATCH_RANDOM`` gives each sample the same outcome whatever
    batch it is in (other batch size, other neighbours, other order)."""
    x, y, keys = synthetic.x_test[:40], synthetic.y_test[:40], sample_keys(5, 40)
    order = np.random.default_rng(0).permutation(40)
    variants = [(name, suite([name])) for name in registered(norm) if name not in BATCH_RANDOM]
    variants.append(("apgd-ce", {"apgd-ce": bench.ATTACKS.get("apgd-ce")(steps=5, restarts=2)}))
    for name, attack in variants:
        a = run_sweep(estimator, x, y, attack, GRIDS[norm][0], norm=norm, keys=keys, batch_size=16,
                      survivors="none")
        b = run_sweep(estimator, x[order], y[order], attack, GRIDS[norm][0], norm=norm, keys=keys[order],
                      batch_size=7, survivors="none")
        assert np.array_equal(a.outcomes[name].broken_at[order], b.outcomes[name].broken_at), name


@pytest.mark.slow
@pytest.mark.parametrize("norm", ["inf", "2"])
def test_a_suite_breaks_every_sample_any_sub_suite_breaks(estimator, synthetic, norm):
    rng = random.Random(f"sub-suites {norm}")
    x, y = synthetic.x_test[:40], synthetic.y_test[:40]
    keys = sample_keys(3, len(x))
    names = registered(norm)
    assert {"cw-linf" if norm == "inf" else "deepfool", "hopskipjump", "pgd", "apgd-ce"} <= set(names)
    run = lambda chosen, grid, mode: run_sweep(estimator, x, y, suite(chosen), grid, norm=norm,  # noqa: E731
                                               keys=keys, batch_size=16, survivors=mode)
    full = {(g, mode): run(names, grid, mode) for g, grid in enumerate(GRIDS[norm]) for mode in ("shared",
                                                                                                  "per-attack")}
    compared = 0
    for _ in range(SUB_SUITES):
        chosen = rng.sample(names, rng.randint(1, 4))
        grid, mode = rng.choice(GRIDS[norm]), rng.choice(list(SCHEDULES))
        sub = run(chosen, grid, mode)
        keyed = [n for n in chosen if n not in BATCH_RANDOM]
        for (g, full_mode), whole in full.items():
            for eps in (set(grid) & set(GRIDS[norm][g])) - {0.0}:
                missed = broken(sub, keyed, eps) & ~broken(whole, whole.outcomes, eps)
                assert not missed.any(), (chosen, mode, grid, full_mode, GRIDS[norm][g], eps, np.flatnonzero(missed))
                compared += int(broken(sub, keyed, eps).sum())
    assert compared > 0  # the sub-suites did break samples: the check above was not vacuous
