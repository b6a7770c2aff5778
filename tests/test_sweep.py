import numpy as np
import pytest

import benchmark as bench
from benchmark.errors import AttackError
from benchmark.runner import sample_keys
from benchmark.sweep import AttackOutcome, SweepResult, check_perturbation, run_sweep

EPS = (0.0, 0.05, 0.1, 0.2, 0.3)


def attacks():
    return {name: bench.ATTACKS.get(name)() for name in ("fgsm", "pgd", "noise")}


def test_survivor_shortcut_equals_naive_loop(estimator, synthetic):
    x, y = synthetic.x_test, synthetic.y_test
    keys = sample_keys(7, len(x))
    fast = run_sweep(estimator, x, y, attacks(), EPS, norm="inf", keys=keys, batch_size=32)
    naive = run_sweep(estimator, x, y, attacks(), EPS, norm="inf", keys=keys, batch_size=32, survivors_only=False)
    assert np.array_equal(fast.correct, naive.correct)
    for name in fast.outcomes:
        assert np.array_equal(fast.outcomes[name].broken_at, naive.outcomes[name].broken_at), name
        assert fast.accuracy(name) == naive.accuracy(name)
        assert fast.outcomes[name].attacked <= naive.outcomes[name].attacked
    assert fast.outcomes["pgd"].attacked < naive.outcomes["pgd"].attacked  # the shortcut skipped work
    assert fast.accuracy() == naive.accuracy()
    # the model is not trivially robust or broken: the equality above is about real attack outcomes
    assert 0.3 < fast.accuracy()[0.1] < fast.accuracy()[0.0]
    assert fast.accuracy()[0.3] < 0.2


def test_results_do_not_depend_on_batch_size(estimator, synthetic):
    x, y = synthetic.x_test, synthetic.y_test
    keys = sample_keys(0, len(x))
    a = run_sweep(estimator, x, y, attacks(), EPS, norm="inf", keys=keys, batch_size=7)
    b = run_sweep(estimator, x, y, attacks(), EPS, norm="inf", keys=keys, batch_size=64)
    for name in a.outcomes:
        assert np.array_equal(a.outcomes[name].broken_at, b.outcomes[name].broken_at), name


def test_worst_case_is_per_sample_and_monotone(estimator, synthetic):
    x, y = synthetic.x_test, synthetic.y_test
    result = run_sweep(estimator, x, y, attacks(), EPS, norm="inf", keys=sample_keys(0, len(x)), batch_size=32)
    worst = result.accuracy()
    for k, eps in enumerate(EPS):
        assert worst[eps] <= min(result.accuracy(name)[eps] for name in result.outcomes)
        if k:
            assert worst[eps] <= worst[EPS[k - 1]]
    assert worst[0.0] == pytest.approx(result.correct.mean())
    assert result.outcomes["pgd"].grad_evals > 0 and result.outcomes["noise"].grad_evals == 0


def test_accuracy_semantics_on_hand_made_outcomes():
    correct = np.array([True, True, True, False])
    outcomes = {
        "a": AttackOutcome(np.array([1, 3, 3, 0]), 0.0, 0, 0, 0),
        "b": AttackOutcome(np.array([3, 2, 3, 0]), 0.0, 0, 0, 0),
    }
    result = SweepResult(eps=(0.0, 0.1, 0.2), correct=correct, outcomes=outcomes)
    assert result.accuracy("a") == {0.0: 0.75, 0.1: 0.5, 0.2: 0.5}
    assert result.accuracy("b") == {0.0: 0.75, 0.1: 0.75, 0.2: 0.5}
    assert result.accuracy() == {0.0: 0.75, 0.1: 0.5, 0.2: 0.25}


def test_eps_grid_must_start_at_zero(estimator, synthetic):
    with pytest.raises(ValueError, match="start at 0"):
        run_sweep(estimator, synthetic.x_test, synthetic.y_test, attacks(), (0.1, 0.2), norm="inf",
                  keys=np.arange(80), batch_size=8)


def test_check_perturbation_catches_escapes():
    x = np.full((2, 1, 2, 2), 0.5, dtype=np.float32)
    check_perturbation("ok", x, x + 0.1, 0.1, "inf")
    with pytest.raises(AttackError, match=r"attack 'bad' left the Linf ball: perturbation 0.2 > ε = 0.1"):
        check_perturbation("bad", x, x + 0.2, 0.1, "inf")
    with pytest.raises(AttackError, match=r"left the input range \[0, 1\]"):
        check_perturbation("bad", x, x + 0.6, 1.0, "inf")
    with pytest.raises(AttackError, match="returned shape"):
        check_perturbation("bad", x, x[:1], 0.1, "inf")
    with pytest.raises(AttackError, match="non-finite"):
        check_perturbation("bad", x, x * np.nan, 0.1, "inf")
