"""``bench leaderboard`` over a store that holds more than one run: one row per defense, model and seed (the
newest result), and only the rows scored by the newest result's attack suite and settings."""

from __future__ import annotations

from benchmark.cli_reports import load_board
from benchmark.store import Store
from tests.test_store import record


def test_a_rerun_row_replaces_the_older_result_and_other_suites_stay_off_the_board(tmp_path):
    with Store(tmp_path) as store:
        store.put(record("old", "standard", clean_accuracy=0.5))  # e.g. scored by an older sweep: another job hash
        store.put(record("pgd", "pgd-at"))
        store.put(record("other-suite", "noise-aug", attacks={"pgd": {}}))  # scored by another suite
        store.put(record("new", "standard", clean_accuracy=0.75))
    board = load_board(str(tmp_path), None, None)
    rows = {(row["defense"], row["seed"]): row for row in board.rows}
    assert sorted(rows) == [("pgd-at", 0), ("standard", 0)]  # one row each; the pgd-only run is not mixed in
    assert rows["standard", 0]["clean_accuracy"] == 0.75
    assert [entry["seeds"] for entry in board.summary] == [[0], [0]]
