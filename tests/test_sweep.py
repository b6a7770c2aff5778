import numpy as np
import pytest

import benchmark as bench
from benchmark.errors import AttackError
from benchmark.runner import sample_keys
from benchmark.sweep import AttackOutcome, SweepResult, check_perturbation, run_sweep

EPS = (0.0, 0.05, 0.1, 0.2, 0.3)


def attacks():
    return {name: bench.ATTACKS.get(name)() for name in ("fgsm", "pgd", "noise")}


def sweep(estimator, data, survivors, chosen=None, batch_size=32):
    x, y = data.x_test, data.y_test
    return run_sweep(estimator, x, y, chosen or attacks(), EPS, norm="inf", keys=sample_keys(7, len(x)),
                     batch_size=batch_size, survivors=survivors)


def test_per_attack_survivors_equal_the_naive_loop(estimator, synthetic):
    fast, naive = sweep(estimator, synthetic, "per-attack"), sweep(estimator, synthetic, "none")
    assert np.array_equal(fast.correct, naive.correct)
    for name in fast.outcomes:
        assert np.array_equal(fast.outcomes[name].broken_at, naive.outcomes[name].broken_at), name
        assert fast.accuracy(name) == naive.accuracy(name)
        assert fast.outcomes[name].attacked <= naive.outcomes[name].attacked
    assert fast.outcomes["pgd"].attacked < naive.outcomes["pgd"].attacked  # the shortcut skipped work
    assert fast.accuracy() == naive.accuracy()
    assert fast.per_attack_kind == "standalone" and fast.per_attack()["pgd"] == fast.accuracy("pgd")
    # the model is not trivially robust or broken: the equality above is about real attack outcomes
    assert 0.3 < fast.accuracy()[0.1] < fast.accuracy()[0.0]
    assert fast.accuracy()[0.3] < 0.2


def test_shared_survivors_give_the_same_worst_case_for_less_work(estimator, synthetic):
    shared, alone = sweep(estimator, synthetic, "shared"), sweep(estimator, synthetic, "per-attack")
    assert shared.accuracy() == alone.accuracy()  # keyed attacks: exactly the same per-sample worst case
    assert np.array_equal(shared.worst_broken_at(), alone.worst_broken_at())
    work = {mode: sum(o.attacked for o in result.outcomes.values()) for mode, result in
            (("shared", shared), ("per-attack", alone))}
    assert work["shared"] < 0.8 * work["per-attack"], work
    # each later attack only saw what the earlier ones left robust, so it was given fewer samples than alone
    assert shared.outcomes["pgd"].attacked < alone.outcomes["pgd"].attacked
    # per-attack numbers are cumulative, in the order the attacks ran: non-increasing, the last is the worst case
    assert shared.per_attack_kind == "cumulative"
    curves = list(shared.per_attack().values())
    for before, after in zip(curves, curves[1:], strict=False):
        assert all(after[e] <= before[e] for e in EPS)
    assert curves[-1] == shared.accuracy()
    assert curves[0][EPS[1]] == alone.accuracy("fgsm")[EPS[1]]  # at the first ε it saw every sample


def test_shared_survivors_run_black_box_attacks_after_gradient_ones(estimator, synthetic):
    chosen = {name: bench.ATTACKS.get(name)() for name in ("noise", "fgsm", "pgd")}  # noise (black box) first
    shared = sweep(estimator, synthetic, "shared", chosen)
    assert list(shared.outcomes) == ["fgsm", "pgd", "noise"]
    assert list(sweep(estimator, synthetic, "per-attack", chosen).outcomes) == ["noise", "fgsm", "pgd"]


def test_shared_survivors_schedule_minimal_norm_attacks_around_the_cascade(estimator, synthetic):
    """White-box minimal-norm attacks run first (every correct sample), black-box ones last (what survived the
    smallest ε); a sample one of them broke at a large ε is still attacked at the smaller ones."""
    chosen = {name: bench.ATTACKS.get(name)(**params) for name, params in
              (("hopskipjump", {"steps": 2, "max_eval": 20}), ("noise", {}), ("pgd", {}),
               ("cw-linf", {"steps": 5}))}
    result = sweep(estimator, synthetic, "shared", chosen)
    assert list(result.outcomes) == ["cw-linf", "pgd", "noise", "hopskipjump"]
    alone = sweep(estimator, synthetic, "shared", {"pgd": chosen["pgd"]})
    pgd, cw = alone.outcomes["pgd"].broken_at, result.outcomes["cw-linf"].broken_at
    assert np.all(result.worst_broken_at() <= pgd)  # more attacks never leave a sample more robust
    late = cw > pgd  # C&W broke these only at a larger ε than PGD does: PGD still got them at the smaller one
    assert np.array_equal(result.outcomes["pgd"].broken_at[late], pgd[late])
    assert result.outcomes["hopskipjump"].attacked == np.sum(result.worst_broken_at(["cw-linf", "pgd", "noise"]) > 1)
    assert late.any() and result.outcomes["cw-linf"].attacked == result.correct.sum()
    hsj = result.outcomes["hopskipjump"]  # its distances and their median are over the samples it attacked
    assert np.sum(~np.isnan(hsj.distances)) == hsj.attacked
    curves = list(result.per_attack().values())
    assert curves[-1] == result.accuracy()
    assert all(after[e] <= before[e] for before, after in zip(curves, curves[1:], strict=False) for e in EPS)


def test_unknown_survivor_mode_is_refused(estimator, synthetic):
    with pytest.raises(ValueError, match="survivors must be one of shared, per-attack, none, got 'all'"):
        sweep(estimator, synthetic, "all")


class _EscapesAtLargeEps:
    """A planted attack: a real PGD up to ε = 0.1, a perturbation outside the ball after that."""

    norms, needs_grad, black_box, minimal_norm = ("inf",), True, False, False

    def generate(self, estimator, x, y, *, eps, norm, keys, batch_size):
        if eps > EPS[2]:
            return np.clip(x + 2 * eps, 0.0, 1.0).astype(x.dtype)
        return bench.ATTACKS.get("pgd")().generate(estimator, x, y, eps=eps, norm=norm, keys=keys,
                                                    batch_size=batch_size)


@pytest.mark.parametrize("survivors", ["shared", "per-attack"])
def test_an_attack_failing_validation_keeps_its_verified_breaks(estimator, synthetic, survivors):
    chosen = {"bad": _EscapesAtLargeEps(), "fgsm": bench.ATTACKS.get("fgsm")()}
    result = sweep(estimator, synthetic, survivors, chosen)
    bad = result.outcomes["bad"]
    assert bad.error and "left the Linf ball" in bad.error
    assert set(result.valid()) == {"fgsm"} and set(result.per_attack()) == {"fgsm"}
    assert np.all(bad.broken_at[result.correct] >= 1)
    assert np.any(bad.broken_at <= 2)  # its PGD broke samples up to ε = 0.1: those breaks were verified
    assert not np.any(np.isin(bad.broken_at, (3, 4)))  # the run that escaped the ball broke nothing
    assert np.array_equal(result.worst_broken_at(), np.minimum(bad.broken_at, result.outcomes["fgsm"].broken_at))


def test_results_do_not_depend_on_batch_size(estimator, synthetic):
    x, y = synthetic.x_test, synthetic.y_test
    keys = sample_keys(0, len(x))
    a = run_sweep(estimator, x, y, attacks(), EPS, norm="inf", keys=keys, batch_size=7, survivors="per-attack")
    b = run_sweep(estimator, x, y, attacks(), EPS, norm="inf", keys=keys, batch_size=64, survivors="per-attack")
    for name in a.outcomes:
        assert np.array_equal(a.outcomes[name].broken_at, b.outcomes[name].broken_at), name


def test_eps_zero_is_clean_accuracy_and_gradients_are_counted(estimator, synthetic):
    x, y = synthetic.x_test, synthetic.y_test
    result = run_sweep(estimator, x, y, attacks(), EPS, norm="inf", keys=sample_keys(0, len(x)), batch_size=32,
                       survivors="per-attack")
    worst = result.accuracy()
    assert worst[0.0] == pytest.approx(result.correct.mean())
    pgd, fgsm, noise = (result.outcomes[name] for name in ("pgd", "fgsm", "noise"))
    assert pgd.grad_evals == 10 * pgd.attacked > 0  # one input gradient per sample and step
    assert fgsm.grad_evals == fgsm.attacked and noise.grad_evals == 0


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


def test_results_of_another_sweep_version_are_recomputed_but_models_reused(tmp_path, monkeypatch):
    """Stored scores of an older sweep (one whose numbers were wrong) are never reused: the sweep's version is part
    of every job's scoring hash, not of its training hash."""
    from benchmark import plan as planning
    from benchmark.config import build_config

    config = build_config({"dataset": "synthetic", "defenses": "standard", "attacks": "pgd"},
                          {"out": str(tmp_path / "out")}, create_out=False)
    job = planning.plan(config, planning.DataFacts("fingerprint", 80))[0]
    now = job.job_hash, job.train_hash
    monkeypatch.setattr(planning, "SWEEP_VERSION", planning.SWEEP_VERSION - 1)
    assert job.job_hash != now[0] and job.train_hash == now[1]
