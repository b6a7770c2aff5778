"""``bench matrix`` (benchmark/matrix.py, benchmark/cli_matrix.py): the specs a matrix runs, the table its records
make, and a small matrix through the real command."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from benchmark.cli import main
from benchmark.matrix import build_matrix, column, markdown, matrix_specs


def test_each_cell_is_an_ordinary_fedavg_spec():
    specs = matrix_specs(["mean", "median"], ["none", "ipm:eps=10"], base="clients=10", byzantine=2)
    assert specs == ["fedavg:clients=10,aggregation=mean",
                     "fedavg:clients=10,aggregation=mean,byzantine=2,byzantine_attack=ipm,byzantine_params=eps=10",
                     "fedavg:clients=10,aggregation=median",
                     "fedavg:clients=10,aggregation=median,byzantine=2,byzantine_attack=ipm,byzantine_params=eps=10"]
    assert [column(text) for text in ("none", "ipm:eps=10;x=1", "alie")] == ["none", "ipm(eps=10,x=1)", "alie"]


def record(rule, attack=None, clean=0.9, backdoor=None, params=""):
    defense = {"aggregation": rule, "byzantine": 2 if attack else 0, "byzantine_attack": attack or "sign-flip",
               "byzantine_params": params}
    return SimpleNamespace(defense_params=defense, clean_accuracy=clean,
                           backdoor=None if backdoor is None else SimpleNamespace(success_rate=backdoor))


def test_the_matrix_averages_seeds_and_names_each_rows_worst_case():
    records = [record("mean", clean=0.9), record("mean", "sign-flip", clean=0.1), record("mean", "sign-flip", 0.2),
               record("median"), record("median", "sign-flip", clean=0.8),
               record("mean", "backdoor", clean=0.88, backdoor=0.95), SimpleNamespace(defense_params={})]
    table = build_matrix(records, order=["none", "backdoor", "sign-flip"])
    assert table.aggregations == ("mean", "median") and table.attacks == ("none", "backdoor", "sign-flip")
    assert table.cells["mean", "sign-flip"].clean == pytest.approx(0.15) and table.cells["mean", "sign-flip"].seeds == 2
    assert table.worst("mean") == ("sign-flip", pytest.approx(0.15)) and table.worst("median")[0] == "sign-flip"
    text = markdown(table)
    assert "| mean | 90.0 | 88.0 / ASR 95.0 | 15.0 | 15.0 (sign-flip) |" in text
    assert "| median | 90.0 | – | 80.0 | 80.0 (sign-flip) |" in text


@pytest.mark.slow
def test_a_small_matrix_through_the_command(tmp_path):
    result = CliRunner().invoke(main, ["matrix", "--aggregation", "mean,median", "--client-attack",
                                       "none,sign-flip", "--fedavg", "clients=10,rounds=8", "--device", "cpu",
                                       "--executor", "inline", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "matrix.json").read_text(encoding="utf-8"))
    clean = {(cell["aggregation"], cell["attack"]): cell["clean_accuracy"] for cell in saved["cells"]}
    assert clean["mean", "sign-flip"] < 0.3 < 0.7 < clean["median", "sign-flip"]  # the mean collapses
    assert saved["worst_case"]["mean"]["attack"] == "sign-flip"
    assert "| aggregation | none | sign-flip | worst case |" in (tmp_path / "matrix.md").read_text(encoding="utf-8")
