"""Membership inference: the fixed member/non-member split every membership attack shares, and the numbers its
scores become (pure numpy, no torch or ART at import).

* ``membership_split``: members are the training samples the model was trained on (the first ``--n-train``);
  non-members are training samples after ``--n-train`` (a holdout, never trained on) when there are any, else the
  test split. Each side is drawn without replacement from the seed and halved into an attack-train half (for attacks
  that fit or calibrate) and the evaluation half every attack is scored on.
* ``roc_auc``, ``advantage``, ``tpr_at_fpr``: the ROC of scores (higher: more likely a member; members are the
  positives) with a threshold between every two distinct scores, so ties count one half (the Mann–Whitney
  statistic) and binary scores work. Carlini et al. 2022 ("Membership inference attacks from first principles"):
  report the TPR at low FPR, not only the AUC.
* ``run_membership``: one attack's scores on the split, turned into a ``MembershipOutcome`` with its seconds and the
  predictions it asked of the model.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from benchmark.api import DataBundle, MembershipData
from benchmark.errors import AttackError
from benchmark.privacy import LOW_FPRS, MembershipOutcome, MembershipSplitInfo, fpr_key

logger = logging.getLogger(__name__)

#: Samples per side (members, non-members) when ``--mia-samples`` is not given, at most.
DEFAULT_SAMPLES = 500
#: Salt of the split's generator: the split is a stream of its own, apart from anything else drawn from the seed.
SPLIT_SALT = 0x4D1A


def _scores(member_scores: Any, nonmember_scores: Any) -> tuple[np.ndarray, np.ndarray]:
    members = np.asarray(member_scores, dtype=np.float64).reshape(-1)
    nonmembers = np.asarray(nonmember_scores, dtype=np.float64).reshape(-1)
    for name, values in (("member_scores", members), ("nonmember_scores", nonmembers)):
        if values.size == 0:
            raise ValueError(f"{name} is empty: membership needs at least one score per side")
        if not np.isfinite(values).all():
            raise ValueError(f"{name} holds {int((~np.isfinite(values)).sum())} non-finite scores")
    return members, nonmembers


def roc_points(member_scores: Any, nonmember_scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """The ROC curve, ``(fpr, tpr)``, from (0, 0) through one point per distinct score (predicting "member" at that
    score or above), in increasing order; what ``sklearn.metrics.roc_curve`` gives without dropping points."""
    members, nonmembers = _scores(member_scores, nonmember_scores)
    scores = np.concatenate([members, nonmembers])
    order = np.argsort(-scores, kind="stable")
    ranked, is_member = scores[order], order < len(members)
    last_of_score = np.flatnonzero(np.diff(ranked) != 0)  # the last sample before each change of score
    ends = np.append(last_of_score, len(ranked) - 1)
    true_positives = np.cumsum(is_member)[ends]
    false_positives = ends + 1 - true_positives
    tpr = np.concatenate([[0.0], true_positives / len(members)])
    fpr = np.concatenate([[0.0], false_positives / len(nonmembers)])
    return fpr, tpr


def roc_auc(member_scores: Any, nonmember_scores: Any) -> float:
    """Area under the ROC curve (members positive): the chance a random member outscores a random non-member, ties
    counting one half."""
    return _auc(*roc_points(member_scores, nonmember_scores))


def advantage(member_scores: Any, nonmember_scores: Any) -> float:
    """The membership advantage: the largest TPR − FPR over thresholds (≥ 0: predicting no one a member)."""
    return _advantage(*roc_points(member_scores, nonmember_scores))


def tpr_at_fpr(member_scores: Any, nonmember_scores: Any, fpr: float) -> float:
    """The highest TPR over thresholds whose FPR is at most ``fpr`` (0.0 where only predicting no one reaches it)."""
    return _tpr_at(*roc_points(member_scores, nonmember_scores), fpr)


def _auc(fpr: np.ndarray, tpr: np.ndarray) -> float:
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def _advantage(fpr: np.ndarray, tpr: np.ndarray) -> float:
    return float(np.max(tpr - fpr))


def _tpr_at(fpr: np.ndarray, tpr: np.ndarray, limit: float) -> float:
    if not 0.0 <= limit <= 1.0:
        raise ValueError(f"fpr must be in [0, 1], got {limit!r}")
    return float(np.max(tpr[fpr <= limit]))


def membership_outcome(member_scores: Any, nonmember_scores: Any, *, seconds: float, queries: int
                       ) -> MembershipOutcome:
    """An attack's scores on the evaluation half as a ``MembershipOutcome``: AUC, advantage, TPR at ``LOW_FPRS``
    (one ROC curve, one sort)."""
    members, nonmembers = _scores(member_scores, nonmember_scores)
    fpr, tpr = roc_points(members, nonmembers)
    return MembershipOutcome(
        auc=_auc(fpr, tpr),
        advantage=_advantage(fpr, tpr),
        tpr_at_fpr={fpr_key(limit): _tpr_at(fpr, tpr, limit) for limit in LOW_FPRS},
        n_members=len(members),
        n_nonmembers=len(nonmembers),
        seconds=seconds,
        queries=queries,
    )


def run_membership(label: str, attack: Any, estimator: Any, data: MembershipData, *, seed: int
                   ) -> MembershipOutcome:
    """Run membership attack ``attack`` (its label ``label``) on ``data`` and score it; an ``AttackError`` (or
    scores that are not one finite number per evaluation sample) gives an outcome with ``error`` and no numbers.
    Queries are the per-sample predictions counted by the harness's estimator (``estimator.counts``), 0 without."""
    counts = getattr(estimator, "counts", None)
    before = counts["predict"] if counts is not None else 0
    start = time.perf_counter()
    try:
        members, nonmembers = attack.scores(estimator, data, seed=seed)
        check_scores(label, members, nonmembers, data)
    except AttackError as error:
        logger.warning("%s", error)
        return MembershipOutcome(auc=None, advantage=None, n_members=len(data.y_eval_in),
                                 n_nonmembers=len(data.y_eval_out), seconds=time.perf_counter() - start,
                                 error=str(error))
    seconds = time.perf_counter() - start
    queries = counts["predict"] - before if counts is not None else 0
    return membership_outcome(members, nonmembers, seconds=seconds, queries=queries)


def check_scores(label: str, members: Any, nonmembers: Any, data: MembershipData) -> None:
    """Raise ``AttackError`` unless the scores are one finite number per evaluation sample, members first."""
    for side, scores, expected in (("members", members, len(data.y_eval_in)),
                                   ("non-members", nonmembers, len(data.y_eval_out))):
        values = np.asarray(scores)
        if values.shape != (expected,) or not np.issubdtype(values.dtype, np.number):
            raise AttackError(f"privacy attack {label!r} returned scores of shape {values.shape} for {expected} "
                              f"{side}")
        if not np.isfinite(values).all():
            raise AttackError(f"privacy attack {label!r} returned non-finite scores for {side}")


def split_sides(n_train_all: int, n_train: int | None, n_test: int) -> tuple[int, int, str]:
    """(members, non-members available, where the non-members come from) for a model trained on the first
    ``n_train`` of ``n_train_all`` training samples (all when None): the training samples after them ("holdout"),
    else the ``n_test`` test samples ("test")."""
    members = n_train_all if n_train is None else n_train
    if members < n_train_all:
        return members, n_train_all - members, "holdout"
    return members, n_test, "test"


def split_size(samples: int | None, members_available: int, nonmembers_available: int) -> int:
    """Samples per side of the split (both halves together, an even number): ``samples`` rounded down to even, or by
    default the largest even number up to ``DEFAULT_SAMPLES`` that both sides have. ``ValueError`` naming
    ``--mia-samples`` when ``samples`` is more than either side has, or when a side has fewer than 2."""
    if samples is not None and samples > min(members_available, nonmembers_available):
        raise ValueError(f"--mia-samples: {samples} per side is more than there are: {members_available} members "
                         f"(training samples trained on) and {nonmembers_available} non-members")
    size = min(DEFAULT_SAMPLES, members_available, nonmembers_available) if samples is None else samples
    size -= size % 2
    if size < 2:
        raise ValueError(f"--mia-samples: a member/non-member split needs at least 2 samples per side (one per half), "
                         f"but there are {members_available} members and {nonmembers_available} non-members")
    return size


def membership_split(data: DataBundle, *, n_train: int | None, samples: int | None, seed: int
                     ) -> tuple[MembershipData, MembershipSplitInfo]:
    """The member/non-member split of ``data`` for a model trained on its first ``n_train`` training samples (all
    when None): ``split_size`` samples per side, drawn without replacement from ``seed``, each side's first half the
    attack-train half and its second half the evaluation half. Non-members are matched to the members' labels
    (``label_matched``): on a few hundred samples, a chance surplus of one class among the members would otherwise
    pass for membership (a model that favours that class is right more often on them)."""
    n_all = len(data.x_train)
    if n_train is not None and not 1 <= n_train <= n_all:
        raise ValueError(f"--n-train: {n_train} is not between 1 and the {n_all} training samples")
    members, nonmembers, source = split_sides(n_all, n_train, len(data.x_test))
    size = split_size(samples, members, nonmembers)
    rng = np.random.default_rng([seed, SPLIT_SALT])
    member_index = rng.choice(members, size, replace=False)
    nonmember_split = "train" if source == "holdout" else "test"
    offset = members if source == "holdout" else 0
    pool = getattr(data, f"y_{nonmember_split}")[offset:offset + nonmembers]
    nonmember_index = label_matched(data.y_train[member_index], pool, rng) + offset
    half = size // 2
    x_in, y_in = data.batch("train", member_index), data.y_train[member_index].astype(np.int64)
    x_out = data.batch(nonmember_split, nonmember_index)
    y_out = getattr(data, f"y_{nonmember_split}")[nonmember_index].astype(np.int64)
    split = MembershipData(x_train_in=x_in[:half], y_train_in=y_in[:half], x_train_out=x_out[:half],
                           y_train_out=y_out[:half], x_eval_in=x_in[half:], y_eval_in=y_in[half:],
                           x_eval_out=x_out[half:], y_eval_out=y_out[half:])
    digest = hashlib.sha256(np.concatenate([member_index, nonmember_index]).astype(np.int64).tobytes()).hexdigest()
    info = MembershipSplitInfo(members=size, nonmembers=size, nonmember_source=source, eval_members=size - half,
                               eval_nonmembers=size - half, seed=seed, indices_sha256=digest)
    return split, info


def label_matched(wanted: np.ndarray, pool: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index into ``pool`` (the candidates' labels) per entry of ``wanted`` (labels), without replacement: a
    candidate of the same label while any remains, else any candidate left; which one is drawn from ``rng``."""
    order = rng.permutation(len(pool))
    stacks = {label: list(order[pool[order] == label]) for label in np.unique(pool)}
    used = np.zeros(len(pool), dtype=bool)
    chosen = []
    for label in wanted:
        stack = stacks.get(label, [])
        while stack and used[stack[-1]]:  # taken earlier as another label's fallback
            stack.pop()
        index = stack.pop() if stack else next(j for j in order if not used[j])
        used[index] = True
        chosen.append(index)
    return np.asarray(chosen, dtype=np.int64)


def one_hot(labels: np.ndarray, nb_classes: int) -> np.ndarray:
    """Integer labels as one-hot float32 rows: what ART's membership attacks are given, so none of them guesses the
    number of classes from the labels present (ART's rule-based attack counts the distinct labels)."""
    return np.eye(nb_classes, dtype=np.float32)[np.asarray(labels, dtype=np.int64)]


@contextmanager
def seeded_globals(seed: int) -> Iterator[None]:
    """A block in which numpy's and torch's global generators (which ART's attacks draw from) start from ``seed``;
    both are restored afterwards, so nothing else's randomness changes."""
    import torch

    state = np.random.get_state()
    np.random.seed(np.random.SeedSequence([seed, SPLIT_SALT + 1]).generate_state(1))
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        np.random.set_state(state)
