"""The matrix in every format (benchmark/render/matrix.py), and what ``bench check`` holds of it: the backdoor
success rate a leaderboard row now carries (benchmark/leaderboard.py) and its rise as a regression
(benchmark/compare.py). Hand-made rows and records only."""

from __future__ import annotations

import csv
import io
import json

import pytest

from benchmark.compare import check_rows, diff
from benchmark.leaderboard import build_leaderboard
from benchmark.matrix import build_matrix
from benchmark.privacy import BackdoorOutcome
from benchmark.render.matrix import (
    render_csv,
    render_html,
    render_json,
    render_markdown,
    render_tex,
    setting_line,
    write_matrix,
)
from tests.test_matrix import row, sample_rows
from tests.test_store import record


@pytest.fixture
def table():
    return build_matrix(sample_rows(), dataset="digits", attacks=["none", "backdoor", "sign-flip"])


def test_the_setting_line_names_the_setting(table):
    assert setting_line(table) == ("digits · cnn-small · 10 clients, 2 attacking (fixed clients) · 40 rounds · "
                                   "seeds 0, 1 · 360 test samples")


def test_markdown_has_a_table_per_partition_with_sd_over_seeds(table):
    text = render_markdown(table)
    assert "digits · cnn-small · 10 clients" in text.split("## partition: iid")[0]
    iid, dirichlet = text.split("## partition: iid")[1].split("## partition: dirichlet α=0.1")
    assert "| aggregation | none | backdoor | sign-flip | ipm(eps=10) | worst case |" in iid
    assert "| mean | 90.0 | 88.0 / ASR 95.0 | 15.0 ± 7.1 | 50.0 | 15.0 (sign-flip) |" in iid
    assert "| median | 90.0 | – | 80.0 | – | 80.0 (sign-flip) |" in iid
    assert "| mean | 70.0 | – | – | – | 70.0 (none) |" in dirichlet and "median" not in dirichlet.split("\n\n")[1]
    assert "mean ± sd over seeds" in text


def test_the_legend_names_the_omniscient_columns_only(table):
    text = render_markdown(table)
    assert text.rstrip().endswith("Omniscient attackers (they read the round's honest updates): ipm.")
    honest_only = build_matrix([r for r in sample_rows() if "ipm" not in str(r["defense_params"])], dataset="digits")
    assert "Omniscient" not in render_markdown(honest_only)


def test_csv_has_a_line_per_cell(table):
    lines = list(csv.DictReader(io.StringIO(render_csv(table))))
    assert len(lines) == len(table.cells) == 7
    sign_flip = next(line for line in lines if line["aggregation"] == "mean" and line["attack"] == "sign-flip")
    assert (sign_flip["partition"], sign_flip["seeds"]) == ("iid", "2")
    assert float(sign_flip["clean_accuracy"]) == pytest.approx(0.15)
    assert sign_flip["worst_case"] == "True" and sign_flip["backdoor_success"] == ""
    backdoor = next(line for line in lines if line["attack"] == "backdoor")
    assert float(backdoor["backdoor_success"]) == 0.95 and backdoor["worst_case"] == "False"


def test_latex_escapes_and_heads_each_partition(table):
    text = render_tex(table)
    assert r"\multicolumn{6}{l}{partition: dirichlet $\alpha$=0.1} \\" in text
    assert r"mean & 90.0 & 88.0 / ASR 95.0 & 15.0 $\pm$ 7.1 & 50.0 & 15.0 (sign-flip) \\" in text
    assert r"40 rounds $\cdot$ seeds 0, 1" in text and r"(\%)" in text and "±" not in text and "α" not in text


def test_html_escapes_every_string():
    rows = [row("mean", "<script>", clean=0.5), row("mean", clean=0.9)]
    text = render_html(build_matrix(rows, dataset="a&b"))
    assert "<script>" not in text and "&lt;script&gt;" in text and "a&amp;b" in text
    assert "<h2>partition: iid</h2>" in text and "<td>50.0 (&lt;script&gt;)</td>" in text


def test_the_json_is_a_leaderboard_plus_the_matrix(tmp_path):
    records = [record(job_hash="a", defense="fedavg", defense_name="fedavg",
                      defense_params=row("mean")["defense_params"]),
               record(job_hash="b", defense="fedavg(byzantine=2,byzantine_attack=backdoor)", defense_name="fedavg",
                      defense_params=row("mean", "backdoor")["defense_params"], clean_accuracy=0.75,
                      backdoor=BackdoorOutcome(target=0, success_rate=0.5, n=3))]
    board = build_leaderboard(records)
    table = build_matrix(board.rows, dataset=board.dataset)
    saved = json.loads(render_json(table, board))
    assert {"schema_version", "config", "eps", "rows", "provenance"} <= set(saved)  # what bench check reads
    assert saved["rows"][1]["backdoor"] == {"target": 0, "success_rate": 0.5, "n": 3}
    assert "backdoor" not in saved["rows"][0]  # a row without a backdoor is as it was
    assert saved["matrix"]["cells"][1] == {"partition": "iid", "aggregation": "mean", "attack": "backdoor",
                                           "clean_accuracy": 0.75, "clean_sd": 0.0, "backdoor_success": 0.5,
                                           "backdoor_sd": 0.0, "seeds": 1}
    written = write_matrix(table, board, tmp_path)
    assert [path.name for path in written] == ["matrix.md", "matrix.csv", "matrix.json", "matrix.tex", "matrix.html"]


def leaderboard_row(defense="fedavg", clean=0.9, backdoor=None):
    base = {"defense": defense, "model": "mlp", "seed": 0, "clean_accuracy": clean, "robust_accuracy": {}}
    return base if backdoor is None else {**base, "backdoor": {"target": 0, "success_rate": backdoor, "n": 9}}


def test_bench_check_holds_the_backdoor_success_rate():
    baseline = [leaderboard_row("a", backdoor=0.1), leaderboard_row("b")]
    lines = check_rows(baseline, [leaderboard_row("a", backdoor=0.15), leaderboard_row("b", clean=0.89)], [0.0], 0.02)
    assert [(line.label.split(" ")[0], line.metric, line.status) for line in lines] == [
        ("a", "clean", "ok"), ("a", "backdoor ASR", "regression"), ("b", "clean", "ok")]
    assert lines[1].loss == pytest.approx(0.05)
    within = check_rows(baseline[:1], [leaderboard_row("a", backdoor=0.11)], [0.0], 0.02)
    assert within[1].status == "ok"
    lower = check_rows(baseline[:1], [leaderboard_row("a", backdoor=0.0)], [0.0], 0.02)
    assert lower[1].status == "ok"  # the backdoor got weaker: no regression
    with pytest.raises(KeyError, match="no backdoor success rate"):
        check_rows(baseline[:1], [leaderboard_row("a")], [0.0], 0.02)


def test_compare_shows_the_backdoor_rate_only_where_both_sides_have_one():
    pairs = [(leaderboard_row(backdoor=0.2), leaderboard_row(backdoor=0.6))]
    assert [line.metric for line in diff(pairs, [0.0], "x")] == ["clean", "backdoor ASR"]
    assert diff(pairs, [0.0], "x")[1].after == 0.6
    nan = {"backdoor": {"target": 0, "success_rate": float("nan"), "n": 0}}
    assert [line.metric for line in diff([(leaderboard_row(), {**leaderboard_row(), **nan})], [0.0], "x")] == ["clean"]


def test_a_baseline_backdoor_rate_outside_0_1_is_malformed():
    from benchmark.cli_reports import number_problem

    assert number_problem(("rows", 0, "backdoor", "success_rate"), 1.5, 2) == "a fraction in [0, 1]"
    assert number_problem(("rows", 0, "backdoor", "success_rate"), float("nan"), 2) == "a finite number"
