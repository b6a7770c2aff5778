"""A row whose attacks also ran adaptively (benchmark/adaptive.py) on the leaderboard: the naive worst case kept
beside the adaptive one, and the flags its adaptive runs answer no longer leave it unranked."""

from __future__ import annotations

from benchmark.adaptive import unanswered
from benchmark.leaderboard import build_leaderboard, make_row, reliable
from benchmark.record import AttackRun
from tests.test_store import record

NAIVE = AttackRun(seconds=0.1, grad_evals=4, queries=4, broken_at=(2, 2, 2, 0), tags={"needs_grad": True})
BPDA = AttackRun(seconds=0.1, grad_evals=4, queries=4, broken_at=(1, 1, 2, 0),
                 tags={"needs_grad": True, "adaptation": "bpda", "eot_draws": 0})


def squeezed(flags=("bpda", "gradient_masking"), **fields):
    return record("j2", "squeeze", runs={"fgsm": NAIVE, "fgsm+bpda": BPDA}, flags=flags,
                  robust_accuracy={"0": 0.75, "0.1": 0.25}, correct=(1, 1, 1, 0), clean_accuracy=0.75, **fields)


def test_the_row_keeps_the_naive_worst_case_beside_the_adaptive_one():
    row = make_row(squeezed())
    assert row["naive_robust_accuracy"] == {"0": 0.75, "0.1": 0.75}  # the naive run broke nothing within the grid
    assert row["robust_accuracy"]["0.1"] == 0.25
    assert "naive_robust_accuracy" not in make_row(record())  # no adaptive run, no separate naive number


def test_flags_answered_by_the_adaptive_runs_do_not_unrank_the_row():
    assert unanswered(["bpda", "gradient_masking", "randomized"]) == ["bpda", "randomized"]
    assert unanswered(["eot", "randomized", "pgd_not_converged"]) == ["eot", "pgd_not_converged"]
    assert reliable(["bpda", "gradient_masking"]) and not reliable(["gradient_masking"])
    assert not reliable(["bpda", "randomized"])  # BPDA does not answer randomness: EoT does
    board = build_leaderboard([record(), squeezed()])
    ranks = {entry["defense"]: entry["rank"] for entry in board.summary}
    assert ranks == {"standard": 1, "squeeze": 2}
    assert board.summary[1]["naive_robust_accuracy"]["0.1"]["mean"] == 0.75
    unranked = build_leaderboard([record(), squeezed(flags=("gradient_masking",))])
    assert {entry["defense"]: entry["rank"] for entry in unranked.summary}["squeeze"] is None
