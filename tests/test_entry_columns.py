"""The naive and IBP columns of the main tables (benchmark/entry_columns.py): shown only where some entry has the
number, in every format that shows the privacy columns, with a legend line each."""

from __future__ import annotations

import pytest

from benchmark.ibp_stage import IBPResult
from benchmark.leaderboard import build_leaderboard
from benchmark.render import render
from tests.test_adaptive_board import squeezed
from tests.test_store import record

CERTIFIED = IBPResult(verified={"0": 0.75, "0.1": 0.25}, verified_below=(2, 1, 1, 0), seconds=0.01, forward_passes=16)


@pytest.mark.parametrize("fmt", ["md", "html", "tex"])
def test_naive_and_ibp_columns_show_where_some_row_has_them(fmt):
    board = build_leaderboard([record(ibp=CERTIFIED), squeezed()])
    text = render(board, fmt)
    assert "naive" in text.lower() and "IBP" in text
    plain = render(build_leaderboard([record()]), fmt)
    assert "naive" not in plain.lower() and "IBP" not in plain


def test_the_markdown_cells_and_legend():
    text = render(build_leaderboard([record(ibp=CERTIFIED), squeezed()]), "md")
    header = next(line for line in text.splitlines() if line.startswith("| # |"))
    assert "naive ε=0.1 %" in header and "IBP ε=0.1 %" in header
    squeeze = next(line for line in text.splitlines() if "| squeeze |" in line)
    standard = next(line for line in text.splitlines() if "| standard |" in line)
    assert "| 75.0 |" in squeeze and "| 25.0 |" in standard  # squeeze's naive number; standard's IBP number
    assert "naive ε=… %: the worst case over the naive runs only" in text
    assert "IBP ε=… %: the share of the evaluated samples interval bound propagation verifies" in text
