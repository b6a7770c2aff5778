"""``bench matrix`` (benchmark/matrix.py, benchmark/cli_matrix.py): the specs a matrix runs (× partitions), the
table its leaderboard rows make, its bad input, and a small matrix through the real command, then ``bench check`` on
its matrix.json."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from benchmark.cli import main
from benchmark.errors import ConfigError
from benchmark.matrix import (
    DIRICHLET_ALPHA,
    build_matrix,
    check_base,
    column,
    matrix_specs,
    parse_partitions,
    partition_title,
)


def test_each_cell_is_an_ordinary_fedavg_spec():
    specs = matrix_specs(["mean", "median"], ["none", "ipm:eps=10"], base="clients=10", byzantine=2)
    assert specs == ["fedavg:clients=10,aggregation=mean",
                     "fedavg:clients=10,aggregation=mean,byzantine=2,byzantine_attack=ipm,byzantine_params=eps=10",
                     "fedavg:clients=10,aggregation=median",
                     "fedavg:clients=10,aggregation=median,byzantine=2,byzantine_attack=ipm,byzantine_params=eps=10"]
    assert [column(text) for text in ("none", "ipm:eps=10;x=1", "alie")] == ["none", "ipm(eps=10,x=1)", "alie"]


def test_each_partition_adds_its_own_specs():
    partitions = parse_partitions("iid, dirichlet:0.1")
    assert [p.key for p in partitions] == ["iid", "dirichlet:0.1"]
    specs = matrix_specs(["median"], ["none"], base="clients=10", byzantine=2, partitions=partitions)
    assert specs == ["fedavg:clients=10,aggregation=median",
                     "fedavg:clients=10,partition=dirichlet,alpha=0.1,aggregation=median"]
    assert partition_title("dirichlet:0.1") == "dirichlet α=0.1"


def test_a_plain_dirichlet_is_fedavgs_default_alpha():
    from defenses.federated import Federated

    assert parse_partitions("dirichlet")[0].alpha == DIRICHLET_ALPHA == Federated().alpha


@pytest.mark.parametrize(("text", "message"), [
    ("dirichlet:0", "dirichlet's α must be a number > 0, got '0'"),
    ("dirichlet:x", "got 'x'"),
    ("dirichlet:nan", "got 'nan'"),
    ("iid:0.3", "expected iid, dirichlet or dirichlet:ALPHA, got 'iid:0.3'"),
    ("dirichelt:0.5", "did you mean 'dirichlet'?"),
    ("iid,iid", "given twice"),
    ("", "got ''"),
])
def test_bad_partitions_name_the_option(text, message):
    with pytest.raises(ConfigError, match="^--partition: ") as error:
        parse_partitions(text)
    assert message in str(error.value)


def test_the_partition_is_not_set_twice():
    check_base("clients=10,rounds=8")
    with pytest.raises(ConfigError, match="^--fedavg: alpha is set by --partition"):
        check_base("clients=10,alpha=0.1")


@pytest.mark.parametrize(("options", "message"), [
    (["--partition", "dirichlet:-1"], "bench: error: --partition: dirichlet's α must be a number > 0, got '-1'"),
    (["--fedavg", "clients=10,partition=dirichlet"], "bench: error: --fedavg: partition is set by --partition"),
])
def test_bad_input_is_one_line_before_any_work(tmp_path, options, message):
    result = CliRunner().invoke(main, ["matrix", *options, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [result.output.strip()] and message in result.output
    assert not (tmp_path / "out").exists()


def row(rule, attack=None, clean=0.9, backdoor=None, seed=0, partition="iid", alpha=0.5, **params):
    defense = {"aggregation": rule, "byzantine": 2 if attack else 0, "byzantine_attack": attack or "sign-flip",
               "byzantine_params": "", "partition": partition, "alpha": alpha, "clients": 10, "rounds": 40,
               "byzantine_sampling": "fixed", **params}
    return {"defense_params": defense, "clean_accuracy": clean, "seed": seed, "model": "cnn-small", "quick": False,
            "n_test": 360, **({} if backdoor is None else {"backdoor": {"target": 0, "success_rate": backdoor}})}


def sample_rows() -> list[dict]:
    return [row("mean", clean=0.9), row("mean", "sign-flip", clean=0.1), row("mean", "sign-flip", 0.2, seed=1),
            row("median"), row("median", "sign-flip", clean=0.8),
            row("mean", "backdoor", clean=0.88, backdoor=0.95),
            row("mean", "ipm", clean=0.5, byzantine_params="eps=10"),
            row("mean", clean=0.7, partition="dirichlet", alpha=0.1), {"defense_params": {}}]


def test_the_matrix_averages_seeds_and_names_each_rows_worst_case():
    table = build_matrix(sample_rows(), dataset="digits", aggregations=["median", "mean"],
                         attacks=["none", "backdoor", "sign-flip"])
    assert table.partitions == ("iid", "dirichlet:0.1")
    assert table.aggregations == ("median", "mean")
    assert table.attacks == ("none", "backdoor", "sign-flip", "ipm(eps=10)")  # as given, then as first seen
    cell = table.cells["iid", "mean", "sign-flip"]
    assert (cell.clean, cell.seeds) == (pytest.approx(0.15), 2) and cell.clean_sd == pytest.approx(0.0707, abs=1e-4)
    assert table.cells["iid", "mean", "backdoor"].backdoor == 0.95
    assert table.cells["iid", "mean", "none"].backdoor is None
    assert table.worst("iid", "mean") == ("sign-flip", pytest.approx(0.15))
    assert table.worst("iid", "median")[0] == "sign-flip"
    assert table.rules("dirichlet:0.1") == ["mean"] and table.worst("dirichlet:0.1", "mean") == ("none", 0.7)
    assert table.setting == {"dataset": "digits", "model": ["cnn-small"], "clients": [10], "rounds": [40],
                             "attackers": [2], "attacker_sampling": ["fixed"], "seeds": [0, 1], "quick": False,
                             "n_test": [360]}
    saved = json.loads(json.dumps(table.to_json()))
    assert [(c["partition"], c["aggregation"], c["attack"]) for c in saved["cells"]][:3] == [
        ("iid", "median", "none"), ("iid", "median", "sign-flip"), ("iid", "mean", "none")]
    assert {"partition": "dirichlet:0.1", "aggregation": "mean", "attack": "none", "clean_accuracy": 0.7} \
        in saved["worst_case"]


def test_a_small_matrix_then_bench_check_on_it(tmp_path):
    """The real command on a tiny setting (digits, mlp, one round: a backdoor column with its success rate), then
    ``bench check --baseline matrix.json`` passing on it, and failing once a cell's clean accuracy in the baseline is
    raised, or its backdoor success lowered, beyond the tolerance."""
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["matrix", "--dataset", "digits", "--model", "mlp", "--quick", "--aggregation",
                                       "mean", "--client-attack", "none,backdoor", "--fedavg", "clients=5,rounds=8",
                                       "--byzantine", "1", "--attack", "fgsm", "--eps", "0,0.1", "--device", "cpu",
                                       "--executor", "inline", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert {path.name for path in out.glob("matrix.*")} == {f"matrix.{fmt}" for fmt in ("md", "csv", "json", "tex",
                                                                                     "html")}
    saved = json.loads((out / "matrix.json").read_text(encoding="utf-8"))
    cells = {cell["attack"]: cell for cell in saved["matrix"]["cells"]}
    assert cells["backdoor"]["backdoor_success"] is not None and cells["none"]["backdoor_success"] is None
    assert "partition: iid" in result.output and "ASR" in (out / "matrix.md").read_text(encoding="utf-8")

    def check(edit) -> object:
        baseline = json.loads((out / "matrix.json").read_text(encoding="utf-8"))
        for base_row in baseline["rows"]:
            edit(base_row)
        path = tmp_path / "baseline.json"
        path.write_text(json.dumps(baseline), encoding="utf-8")
        return CliRunner().invoke(main, ["check", "--baseline", str(path), "--out", str(out)])

    passed = check(lambda base_row: None)
    assert passed.exit_code == 0 and "OK: no regression" in passed.output and "backdoor ASR" in passed.output
    raised = check(lambda base_row: base_row.update(clean_accuracy=min(1.0, base_row["clean_accuracy"] + 0.1)))
    assert raised.exit_code == 1 and "FAIL" in raised.output and "clean" in raised.output.split("worst:")[1]
    lowered = check(lambda base_row: "backdoor" in base_row and base_row["backdoor"].update(success_rate=0.0))
    assert lowered.exit_code == 1 and "backdoor ASR" in lowered.output.split("worst:")[1]


@pytest.mark.heavy
def test_the_mean_collapses_under_sign_flip_on_digits(tmp_path):
    result = CliRunner().invoke(main, ["matrix", "--aggregation", "mean,median", "--client-attack",
                                       "none,sign-flip", "--fedavg", "clients=10,rounds=8", "--device", "cpu",
                                       "--executor", "inline", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    saved = json.loads((tmp_path / "matrix.json").read_text(encoding="utf-8"))["matrix"]
    clean = {(cell["aggregation"], cell["attack"]): cell["clean_accuracy"] for cell in saved["cells"]}
    assert clean["mean", "sign-flip"] < 0.3 < 0.7 < clean["median", "sign-flip"]  # the mean collapses
    assert {"partition": "iid", "aggregation": "mean", "attack": "sign-flip"}.items() <= saved["worst_case"][0].items()
    assert "| aggregation | none | sign-flip | worst case |" in (tmp_path / "matrix.md").read_text(encoding="utf-8")
