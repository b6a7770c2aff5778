"""APGD-T (AutoAttack's targeted APGD on the targeted DLR loss) and ``suite:aa-standard``."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import benchmark as bench
from attacks.apgd_targeted import TargetedDLRLoss, likely_wrong_classes, target_codes, targeted_dlr
from attacks.suites import SUITES, expand_suite
from benchmark.config import expand_suites, parse_plugins
from benchmark.errors import AttackError
from benchmark.estimator import wrap
from benchmark.runner import sample_keys
from benchmark.store import Store
from benchmark.sweep import predict_labels

#: Hand-made logits: (z, true class, target, the loss worked out by hand from −(z_y − z_t) / (z_π1 − (z_π3+z_π4)/2)).
CASES = [
    ([3.0, 1.0, 0.5, -1.0, 2.0], 0, 4, -(3.0 - 2.0) / (3.0 - (1.0 + 0.5) / 2)),  # sorted 3, 2, 1, .5, -1
    ([1.0, 0.0, 4.0, 2.0, 3.0], 0, 2, -(1.0 - 4.0) / (4.0 - (2.0 + 1.0) / 2)),  # target already on top: positive
    ([0.0, 2.0, -1.0, 5.0, 1.0], 1, 0, -(2.0 - 0.0) / (5.0 - (1.0 + 0.0) / 2)),  # sorted 5, 2, 1, 0, -1
]


def logits_and_codes():
    logits = torch.tensor([case[0] for case in CASES], dtype=torch.float64)
    y, t = np.array([case[1] for case in CASES]), np.array([case[2] for case in CASES])
    return logits, torch.from_numpy(target_codes(y, t, logits.shape[1])), np.array([case[3] for case in CASES])


def test_targeted_dlr_equals_the_formula_on_hand_made_logits():
    logits, codes, expected = logits_and_codes()
    assert np.allclose(targeted_dlr(logits, codes).numpy(), expected, rtol=1e-9)
    loss = TargetedDLRLoss()
    assert loss(logits, codes).item() == pytest.approx(expected.sum())  # summed: a sample's gradient ignores its batch
    loss.reduction = "none"  # as ART's compute_loss sets it
    assert np.allclose(loss(logits, codes).numpy(), expected)


def test_ascending_the_loss_moves_toward_the_target():
    """ART's untargeted APGD ascends the loss it is given: a small step up the gradient must raise z_t − z_y (the
    sign AutoAttack's APGD-T maximises; ART's own targeted mode would descend its untargeted DLR instead)."""
    logits, codes, _ = logits_and_codes()
    logits.requires_grad_(True)
    (grad,) = torch.autograd.grad(targeted_dlr(logits, codes).sum(), logits)
    stepped = (logits + 1e-3 * grad).detach()
    y, t = codes.argmax(1), codes.argmin(1)
    rows = torch.arange(len(codes))
    before = (logits[rows, t] - logits[rows, y]).detach()
    assert torch.all(stepped[rows, t] - stepped[rows, y] > before)
    assert torch.all(grad[rows, y] < 0)  # and always by lowering the label's logit


def test_targets_are_the_most_likely_wrong_classes_by_the_clean_logits():
    logits = np.array([[0.1, 5.0, 3.0, 4.0], [0.1, 5.0, 3.0, 4.0]])
    assert likely_wrong_classes(logits, np.array([1, 3]), 3).tolist() == [[3, 2, 0], [1, 2, 0]]
    codes = target_codes(np.array([1, 3]), np.array([3, 1]), 4)
    assert codes.argmax(1).tolist() == [1, 3] and codes.argmin(1).tolist() == [3, 1]  # what ART and the loss read


def broken(estimator, attack, x, y, keys, **run):
    adversarial = attack.generate(estimator, x, y, keys=keys, batch_size=32, **run)
    return adversarial, predict_labels(estimator, adversarial, 32) != y


def test_later_targets_only_add_breaks(estimator, synthetic):
    x, y, keys = synthetic.x_test, synthetic.y_test, sample_keys(3, len(synthetic.x_test))
    first = bench.ATTACKS.get("apgd-t")(targets=1, steps=20)
    every = bench.ATTACKS.get("apgd-t")(steps=20)  # 9 asked for: the 3 wrong classes of the synthetic task
    one, broken_one = broken(estimator, first, x, y, keys, eps=0.7, norm="2")
    all_, broken_all = broken(estimator, every, x, y, keys, eps=0.7, norm="2")
    assert broken_one.any() and not broken_one.all()  # the comparison is about real outcomes
    assert np.all(broken_all >= broken_one)  # a superset: a sample counts once any target succeeds
    assert np.array_equal(one[broken_one], all_[broken_one])  # the first target's run is the same run


def test_a_sample_alone_gets_what_it_gets_in_a_batch(estimator, synthetic):
    """Under L∞ (under L2 batched float round-off moves APGD's iterates by up to ~3e-4, for APGD-CE alike)."""
    x, y, keys = synthetic.x_test, synthetic.y_test, sample_keys(3, len(synthetic.x_test))
    every = bench.ATTACKS.get("apgd-t")(steps=20)
    together, broken_all = broken(estimator, every, x, y, keys, eps=0.12, norm="inf")
    _, broken_one = broken(estimator, bench.ATTACKS.get("apgd-t")(targets=1, steps=20), x, y, keys, eps=0.12,
                           norm="inf")
    later = np.flatnonzero(broken_all & ~broken_one)[:2]  # broken by a later target: every run of it in a batch
    for i in [*later, *np.flatnonzero(~broken_all)[:2], *np.flatnonzero(broken_one)[:1]]:
        alone, _ = broken(estimator, every, x[i : i + 1], y[i : i + 1], keys[i : i + 1], eps=0.12, norm="inf")
        assert np.allclose(alone[0], together[i], atol=1e-5), i


def test_gradients_are_counted_per_target(estimator, synthetic):
    x, y = synthetic.x_test[:30], synthetic.y_test[:30]
    correct = int(np.sum(predict_labels(estimator, x, 32) == y))
    before = estimator.counts["grad"]
    adv = bench.ATTACKS.get("apgd-t")(targets=3, steps=7).generate(estimator, x, y, eps=1e-4, norm="inf",
                                                                     keys=sample_keys(0, len(x)), batch_size=16)
    assert np.sum(predict_labels(estimator, adv, 32) == y) == correct  # nothing broke: every target ran on all
    assert estimator.counts["grad"] - before == 7 * 3 * correct


def test_apgd_t_needs_four_classes():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    estimator = wrap(model, (1, 2, 2), 3, "cpu")
    x, y = np.random.default_rng(0).random((4, 1, 2, 2), dtype=np.float32), np.zeros(4, dtype=np.int64)
    with pytest.raises(AttackError, match="needs at least 4 classes"):
        bench.ATTACKS.get("apgd-t")().generate(estimator, x, y, eps=0.1, norm="inf", keys=sample_keys(0, 4),
                                               batch_size=4)


def test_aa_standard_expands_to_its_attacks_with_their_budgets():
    specs = parse_plugins("attack", expand_suites("suite:aa-standard", "inf", "--attack"), "--attack")
    assert [(spec.name, dict(spec.overrides)) for spec in specs] == [
        ("apgd-ce", {"steps": 100}), ("apgd-t", {}), ("square", {"queries": 5000, "p_init": 0.8})]
    assert dict(specs[1].params) == {"steps": 100, "targets": 9}
    twice = parse_plugins("attack", expand_suites("suite:aa-standard,suite:aa-standard", "inf", "x"), "x")
    assert [spec.label for spec in twice] == [spec.label for spec in specs]
    for name in ("quick", "standard", "default", "black-box"):  # the other suites stay plain names
        assert expand_suite(name, "inf") == SUITES[name]


def bench_evaluate(out, attack: str) -> None:
    command = [sys.executable, "-m", "benchmark", "evaluate", "--quick", "--dataset", "digits", "--model",
               "cnn-small", "--defense", "standard,pgd-at", "--attack", attack, "--device", "cpu", "--executor",
               "inline", "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr


@pytest.mark.heavy  # 60 s on 2 cores: two trainings, then both suites at every ε on 100 samples
def test_aa_standard_is_at_least_as_strong_as_the_default_suite_on_digits(tmp_path):
    """On digits (quick training, 100 test samples), for a standard and a PGD-AT model: the worst case of
    ``suite:aa-standard`` is at or below that of ``suite:default`` at every ε (the second run reuses the models)."""
    bench_evaluate(tmp_path, "suite:aa-standard")
    bench_evaluate(tmp_path, "suite:default")
    with Store(tmp_path, create=False, read_only=True) as store:
        records = store.records()
    suites = {(r.defense, "aa" if "apgd-t" in r.runs else "default"): r for r in records}
    assert sorted(suites) == [("pgd-at", "aa"), ("pgd-at", "default"), ("standard", "aa"), ("standard", "default")]
    for defense in ("standard", "pgd-at"):
        aa, default = suites[defense, "aa"], suites[defense, "default"]
        assert default.train_cached and aa.clean_accuracy == default.clean_accuracy  # the same trained model
        assert list(aa.runs) == ["apgd-ce(steps=100)", "apgd-t", "square(queries=5000,p_init=0.8)"]
        assert all(aa.robust_accuracy[e] <= default.robust_accuracy[e] for e in default.robust_accuracy), defense
        assert 0 < aa.robust_accuracy["0.1"] < aa.clean_accuracy  # neither trivially robust nor broken
    # APGD-T broke samples that APGD-CE left robust (APGD-CE's 100 steps alone do not reach the default suite here)
    added = [suites[d, "aa"].runs["apgd-t"].accuracy[e] < suites[d, "aa"].runs["apgd-ce(steps=100)"].accuracy[e]
             for d in ("standard", "pgd-at") for e in suites[d, "aa"].robust_accuracy]
    assert any(added)
