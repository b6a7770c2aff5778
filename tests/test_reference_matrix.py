"""The committed reference matrix (leaderboards/digits-matrix.*, made by leaderboards/regenerate-matrix.sh) holds what
issue 14 asks of it on digits, and its files agree with the leaderboard rows they were made from: the matrix is rebuilt
from the JSON's rows and rendered again, byte for byte."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmark.matrix import build_matrix
from benchmark.render.matrix import render_markdown

BOARD = Path(__file__).resolve().parents[1] / "leaderboards" / "digits-matrix"
BACKDOOR = "backdoor(quiet_rounds=1)"


@pytest.fixture(scope="module")
def committed():
    data = json.loads(BOARD.with_suffix(".json").read_text(encoding="utf-8"))
    given = data["matrix"]
    table = build_matrix(data["rows"], dataset=data["matrix"]["setting"]["dataset"], partitions=given["partitions"],
                         aggregations=given["aggregations"], attacks=given["attacks"])
    return data, table


def test_the_files_are_what_the_rows_make(committed):
    data, table = committed
    assert table.to_json() == data["matrix"]
    assert render_markdown(table) == BOARD.with_suffix(".md").read_text(encoding="utf-8")
    assert table.setting["clients"] == [10] and table.setting["attackers"] == [2] and table.setting["rounds"] == [40]
    assert not table.setting["quick"] and table.partitions == ("iid", "dirichlet:0.5")


def test_the_mean_collapses_under_sign_flip_and_a_large_ipm(committed):
    _, table = committed
    for partition in table.partitions:
        honest = table.cells[partition, "mean", "none"].clean
        assert honest >= 0.9
        for attack in ("sign-flip", "ipm(eps=10)"):
            assert table.cells[partition, "mean", attack].clean <= 0.2, (partition, attack)
        assert table.cells[partition, "median", "sign-flip"].clean >= honest - 0.1  # a robust rule holds


def test_the_backdoor_beats_fedavg_within_3_points_and_norm_bounding_cuts_it(committed):
    _, table = committed
    honest = table.cells["iid", "mean", "none"].clean
    planted = table.cells["iid", "mean", BACKDOOR]
    assert planted.backdoor >= 0.9 and planted.clean >= honest - 0.03, (planted, honest)
    assert table.cells["iid", "norm-bounding", BACKDOOR].backdoor <= planted.backdoor / 2
