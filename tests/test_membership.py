"""Membership inference's maths and split (``benchmark.membership``): AUC, advantage and TPR at low FPR against hand-
computed cases and scikit-learn's ROC, and the fixed member/non-member split (who is a member, halves, seed, sizes)."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, roc_curve

from benchmark.api import DataBundle, MembershipData
from benchmark.errors import AttackError
from benchmark.membership import (
    DEFAULT_SAMPLES,
    advantage,
    membership_outcome,
    membership_split,
    roc_auc,
    run_membership,
    seeded_globals,
    split_size,
    tpr_at_fpr,
)
from benchmark.privacy import LOW_FPRS, fpr_key

# ---------------------------------------------------------------------------------------------------------- maths


def test_hand_computed_scores_with_a_tie():
    members, nonmembers = [0.9, 0.8, 0.3], [0.7, 0.3, 0.1]
    # pairs a member wins: 0.9 → 3, 0.8 → 3, 0.3 → 1 (over 0.1) + ½ (tie with 0.3): 7.5 of 9
    assert roc_auc(members, nonmembers) == pytest.approx(7.5 / 9)
    # thresholds 0.9, 0.8, 0.7, 0.3, 0.1 give (TPR, FPR) (⅓, 0), (⅔, 0), (⅔, ⅓), (1, ⅔), (1, 1)
    assert advantage(members, nonmembers) == pytest.approx(2 / 3)
    assert tpr_at_fpr(members, nonmembers, 0.01) == pytest.approx(2 / 3)
    assert tpr_at_fpr(members, nonmembers, 0.5) == pytest.approx(2 / 3)
    assert tpr_at_fpr(members, nonmembers, 0.7) == pytest.approx(1.0)


def test_binary_scores():
    members, nonmembers = np.array([1, 1, 1, 0]), np.array([1, 0, 0, 0])
    # one threshold: TPR ¾ at FPR ¼
    assert roc_auc(members, nonmembers) == pytest.approx(0.5 + (0.75 - 0.25) / 2)
    assert advantage(members, nonmembers) == pytest.approx(0.5)
    assert tpr_at_fpr(members, nonmembers, 0.01) == 0.0  # no threshold but "no one" keeps FPR under 1 %
    assert tpr_at_fpr(members, nonmembers, 0.25) == pytest.approx(0.75)


def test_all_ties_and_a_reversed_attack():
    assert roc_auc([0.5] * 3, [0.5] * 4) == pytest.approx(0.5)
    assert advantage([0.5] * 3, [0.5] * 4) == 0.0
    assert roc_auc([0.1, 0.2], [0.8, 0.9]) == 0.0
    assert advantage([0.1, 0.2], [0.8, 0.9]) == 0.0  # never negative: predicting no one a member gives 0


@pytest.mark.parametrize("kind", ["continuous", "rounded", "binary"])
def test_matches_sklearn_on_random_scores(kind):
    rng = np.random.default_rng(7)
    members, nonmembers = rng.normal(0.4, 1.0, 300), rng.normal(0.0, 1.0, 250)
    if kind == "rounded":
        members, nonmembers = np.round(members, 1), np.round(nonmembers, 1)
    elif kind == "binary":
        members, nonmembers = (members > 0).astype(int), (nonmembers > 0).astype(int)
    labels, scores = np.r_[np.ones(300), np.zeros(250)], np.r_[members, nonmembers]
    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    assert roc_auc(members, nonmembers) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert advantage(members, nonmembers) == pytest.approx(np.max(tpr - fpr), abs=1e-12)
    for limit in (0.0, 0.01, 0.1, 0.5):
        assert tpr_at_fpr(members, nonmembers, limit) == pytest.approx(np.max(tpr[fpr <= limit]), abs=1e-12)


def test_outcome_holds_every_number_and_count():
    rng = np.random.default_rng(1)
    members, nonmembers = rng.normal(1.0, 1.0, 40), rng.normal(0.0, 1.0, 30)
    outcome = membership_outcome(members, nonmembers, seconds=1.5, queries=70)
    assert outcome.auc == pytest.approx(roc_auc(members, nonmembers))
    assert outcome.advantage == pytest.approx(advantage(members, nonmembers))
    assert set(outcome.tpr_at_fpr) == {fpr_key(fpr) for fpr in LOW_FPRS} == {"0.01", "0.001"}
    assert outcome.tpr_at_fpr["0.01"] == pytest.approx(tpr_at_fpr(members, nonmembers, 0.01))
    assert (outcome.n_members, outcome.n_nonmembers, outcome.seconds, outcome.queries) == (40, 30, 1.5, 70)
    assert outcome.error is None


@pytest.mark.parametrize(("members", "nonmembers", "message"), [
    ([], [0.1], "member_scores is empty"),
    ([0.1], [], "nonmember_scores is empty"),
    ([0.1, np.nan], [0.2], "member_scores holds 1 non-finite"),
])
def test_bad_scores_are_refused_by_name(members, nonmembers, message):
    with pytest.raises(ValueError, match=message):
        roc_auc(members, nonmembers)


def test_fpr_out_of_range_is_refused():
    with pytest.raises(ValueError, match="fpr must be in"):
        tpr_at_fpr([1.0], [0.0], 1.5)


# ---------------------------------------------------------------------------------------------------------- split

N_TRAIN_ALL, N_TEST = 1000, 300


def indexed_bundle() -> DataBundle:
    """Samples whose single feature encodes where they come from: train sample i holds i / 2000, test sample j holds
    (1000 + j) / 2000; labels are the position mod 3."""
    position = np.arange(N_TRAIN_ALL + N_TEST)
    x = (position / 2000).astype(np.float32).reshape(-1, 1, 1)
    return DataBundle("indexed", x[:N_TRAIN_ALL], position[:N_TRAIN_ALL] % 3, x[N_TRAIN_ALL:],
                      position[N_TRAIN_ALL:] % 3, 3)


def positions(x: np.ndarray) -> np.ndarray:
    return np.rint(x.reshape(-1).astype(np.float64) * 2000).astype(int)


def test_members_are_trained_on_and_nonmembers_are_the_holdout():
    split, info = membership_split(indexed_bundle(), n_train=200, samples=100, seed=3)
    members = np.r_[positions(split.x_train_in), positions(split.x_eval_in)]
    nonmembers = np.r_[positions(split.x_train_out), positions(split.x_eval_out)]
    assert members.min() >= 0 and members.max() < 200  # the first n_train: what the model was trained on
    assert nonmembers.min() >= 200 and nonmembers.max() < N_TRAIN_ALL  # training samples never trained on
    assert len(set(members)) == len(set(nonmembers)) == 100  # without replacement
    assert len(split.x_train_in) == len(split.x_eval_in) == len(split.x_train_out) == len(split.x_eval_out) == 50
    assert np.array_equal(split.y_eval_in, positions(split.x_eval_in) % 3)
    assert np.array_equal(split.y_train_out, positions(split.x_train_out) % 3)
    assert split.x_eval_in.dtype == np.float32 and split.y_eval_in.dtype == np.int64
    assert (info.members, info.nonmembers, info.eval_members, info.eval_nonmembers) == (100, 100, 50, 50)
    assert (info.nonmember_source, info.seed) == ("holdout", 3)


@pytest.mark.parametrize("n_train", [None, N_TRAIN_ALL])
def test_without_a_holdout_the_nonmembers_are_the_test_split(n_train):
    split, info = membership_split(indexed_bundle(), n_train=n_train, samples=40, seed=0)
    nonmembers = np.r_[positions(split.x_train_out), positions(split.x_eval_out)]
    assert nonmembers.min() >= N_TRAIN_ALL and info.nonmember_source == "test"
    assert np.array_equal(split.y_eval_out, positions(split.x_eval_out) % 3)


def test_the_seed_fixes_the_split_and_its_hash():
    data = indexed_bundle()
    first, info = membership_split(data, n_train=200, samples=100, seed=3)
    again, same = membership_split(data, n_train=200, samples=100, seed=3)
    other, changed = membership_split(data, n_train=200, samples=100, seed=4)
    assert np.array_equal(first.x_eval_in, again.x_eval_in) and info == same
    assert not np.array_equal(first.x_eval_in, other.x_eval_in)
    assert info.indices_sha256 != changed.indices_sha256 and len(info.indices_sha256) == 64


def test_uint8_pixels_come_out_as_float32():
    rng = np.random.default_rng(0)
    x_train = rng.integers(0, 256, (30, 1, 2, 2), dtype=np.uint8)
    x_test = rng.integers(0, 256, (10, 1, 2, 2), dtype=np.uint8)
    data = DataBundle("pixels", x_train, np.zeros(30, dtype=np.int64), x_test, np.zeros(10, dtype=np.int64), 2)
    split, _ = membership_split(data, n_train=20, samples=10, seed=0)
    assert split.x_eval_in.dtype == np.float32 and 0.0 <= split.x_eval_in.min() <= split.x_eval_in.max() <= 1.0
    pixels = {tuple(row) for row in x_train.reshape(30, -1)}
    assert all(tuple(np.rint(row * 255).astype(np.uint8)) in pixels for row in split.x_eval_in.reshape(5, -1))


def test_split_sizes():
    assert split_size(None, 10_000, 10_000) == DEFAULT_SAMPLES
    assert split_size(None, 101, 5_000) == 100  # the smaller side, rounded down to even
    assert split_size(7, 100, 100) == 6
    with pytest.raises(ValueError, match=r"^--mia-samples: 300 per side .* 200 members .* 100 non-members$"):
        split_size(300, 200, 100)
    with pytest.raises(ValueError, match="--mia-samples: a member/non-member split needs at least 2"):
        split_size(None, 50, 1)
    with pytest.raises(ValueError, match="--mia-samples"):
        membership_split(indexed_bundle(), n_train=200, samples=801, seed=0)  # 800 in the holdout


# ---------------------------------------------------------------------------------------------------------- running


def tiny_split() -> MembershipData:
    zeros, labels = np.zeros((3, 2), dtype=np.float32), np.zeros(3, dtype=np.int64)
    return MembershipData(zeros, labels, zeros, labels, zeros, labels, zeros[:2], labels[:2])


class FixedScores:
    kind, labels_only, needs_grad = "membership", True, False

    def __init__(self, members, nonmembers):
        self.returned = (np.asarray(members), np.asarray(nonmembers))

    def scores(self, estimator, data, *, seed):
        estimator.counts["predict"] += 5
        return self.returned


class CountingEstimator:
    def __init__(self):
        self.counts = Counter(predict=100)


def test_run_membership_scores_and_counts_queries():
    outcome = run_membership("fixed", FixedScores([0.9, 0.8, 0.1], [0.2, 0.3]), CountingEstimator(), tiny_split(),
                             seed=0)
    assert outcome.auc == pytest.approx(roc_auc([0.9, 0.8, 0.1], [0.2, 0.3]))
    assert outcome.queries == 5 and outcome.seconds >= 0.0 and outcome.error is None


@pytest.mark.parametrize(("members", "nonmembers", "message"), [
    ([0.9, 0.8], [0.2, 0.3], r"shape \(2,\) for 3 members"),
    ([0.9, 0.8, np.inf], [0.2, 0.3], "non-finite scores for members"),
])
def test_run_membership_turns_bad_scores_into_an_error(members, nonmembers, message):
    outcome = run_membership("fixed", FixedScores(members, nonmembers), CountingEstimator(), tiny_split(), seed=0)
    assert outcome.auc is None and outcome.advantage is None
    assert "privacy attack 'fixed'" in outcome.error and re.search(message, outcome.error)


def test_run_membership_keeps_an_attack_error():
    class Refusing(FixedScores):
        def scores(self, estimator, data, *, seed):
            raise AttackError("no loss here")

    outcome = run_membership("refusing", Refusing([], []), CountingEstimator(), tiny_split(), seed=0)
    assert outcome.error == "no loss here" and (outcome.n_members, outcome.n_nonmembers) == (3, 2)


def test_seeded_globals_restores_the_global_generators():
    import torch

    np.random.seed(11)
    torch.manual_seed(11)
    expected = (np.random.random(), torch.rand(1).item())
    np.random.seed(11)
    torch.manual_seed(11)
    with seeded_globals(5):
        inside = (np.random.random(), torch.rand(1).item())
    with seeded_globals(5):
        assert (np.random.random(), torch.rand(1).item()) == inside
    assert (np.random.random(), torch.rand(1).item()) == expected


def test_non_members_are_matched_to_the_members_labels():
    """Each non-member has its member's label while the pool holds one; then any left, never one twice."""
    from benchmark.membership import label_matched

    rng = np.random.default_rng(0)
    pool = np.array([0, 0, 1, 1, 1, 2, 3, 3])
    chosen = label_matched(np.array([1, 0, 1, 1, 3]), pool, rng)
    assert list(pool[chosen]) == [1, 0, 1, 1, 3] and len(set(chosen.tolist())) == 5
    short = label_matched(np.array([2, 2, 2]), pool, np.random.default_rng(1))  # one 2 in the pool, then others
    assert pool[short[0]] == 2 and len(set(short.tolist())) == 3


def test_the_digits_split_has_the_same_labels_on_both_sides():
    from benchmark.plan import load_dataset

    split, _ = membership_split(load_dataset("digits"), n_train=200, samples=None, seed=3)
    assert (split.y_eval_in == split.y_eval_out).all() and (split.y_train_in == split.y_train_out).all()
