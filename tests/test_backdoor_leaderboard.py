"""A planted backdoor's success rate on the ordinary leaderboard: per row (``"backdoor"``) joined to the row's privacy
summary, over seeds in the summary entry's (mean ± sd, pooled Wilson interval, the target), shown as a "backdoor ASR
%" column with a legend line in every format only when some row has one; a board without one renders as before, and
``bench check`` reads baselines with and without the new summary key."""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from benchmark.leaderboard import Leaderboard, build_leaderboard
from benchmark.leaderboard_privacy import PrivacySummary, privacy_of
from benchmark.privacy import BackdoorOutcome
from benchmark.render import render
from benchmark.stats import wilson
from tests.test_privacy_leaderboard import check_runner, membership
from tests.test_store import record

ATTACKED = "fedavg:byzantine=2,byzantine_attack=backdoor"
ROOT = Path(__file__).resolve().parents[1]


def planted(rate: float, n: int = 300, target: int = 0) -> BackdoorOutcome:
    return BackdoorOutcome(target=target, success_rate=rate, n=n)


def records() -> list:
    """fedavg under a backdoor (2 seeds), plain fedavg (2 seeds, none), standard with membership results (1 seed)."""
    return [
        record("b0", ATTACKED, seed=0, backdoor=planted(0.96)),
        record("b1", ATTACKED, seed=1, backdoor=planted(0.99)),
        record("n0", "fedavg", seed=0),
        record("n1", "fedavg", seed=1),
        record("s0", "standard", seed=0, privacy=membership((0.62, 0.25, 0.05, 0.01), (0.71, 0.20, 0.09, 0.02))),
    ]


@pytest.fixture(scope="module")
def board():
    return build_leaderboard(records(), headline_eps=0.1)


def entry(board, defense: str) -> dict:
    (found,) = [item for item in board.summary if item["defense"] == defense]
    return found


def main_table(text: str) -> dict[str, dict[str, str]]:
    """The Markdown main table, by defense: title → cell."""
    lines = text.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("| # |"))
    header, _, *body = [line.strip("| ").split(" | ") for line in lines[start:start + 5]]
    return {cells[1]: dict(zip(header, cells, strict=True)) for cells in body}


def test_the_summary_holds_the_backdoor_over_seeds_and_a_row_joins_its_own(board):
    backdoor = privacy_of(entry(board, ATTACKED)).backdoor
    assert backdoor.values == (0.96, 0.99) and backdoor.targets == (0, 0)
    assert backdoor.success_rate == pytest.approx(0.975) and backdoor.sd == pytest.approx(math.sqrt(2 * 0.015 ** 2))
    assert (backdoor.hits, backdoor.n) == (288 + 297, 600) and backdoor.ci == wilson(585, 600)  # pooled over seeds
    (row,) = [r for r in board.rows if r["defense"] == ATTACKED and r["seed"] == 1]
    assert "privacy" not in row and row["backdoor"] == {"target": 0, "success_rate": 0.99, "n": 300}
    one = privacy_of(row)
    assert one.seeds == (1,) and one.backdoor.values == (0.99,) and one.backdoor.ci == wilson(297, 300)
    assert one.membership is None and one.seconds is None
    assert "privacy" not in entry(board, "fedavg") and privacy_of(entry(board, "standard")).backdoor is None


def test_json_keeps_the_summary_and_reads_back_one_without_it(board):
    data = json.loads(render(board, "json"))
    summaries = {item["defense"]: item for item in data["summary"]}
    assert summaries[ATTACKED]["privacy"]["backdoor"]["ci"] == list(wilson(585, 600))
    assert PrivacySummary.from_json(summaries[ATTACKED]["privacy"]) == privacy_of(entry(board, ATTACKED))
    assert "backdoor" not in summaries["standard"]["privacy"]  # no null key where there is no backdoor
    older = {key: value for key, value in summaries["standard"]["privacy"].items()}
    assert PrivacySummary.from_json(older).backdoor is None


def test_markdown_and_terminal_show_the_column_the_legend_and_the_per_seed_intervals(board, capsys):
    from benchmark.console import print_board

    text = render(board, "md")
    main = main_table(text)
    assert list(main["standard"])[6:11] == ["MIA AUC", "MIA adv.", "TPR@1%FPR %", "backdoor ASR %", "train s"]
    assert main[ATTACKED]["backdoor ASR %"] == "97.5 ± 2.1" and main[ATTACKED]["MIA AUC"] == "–"
    assert main["fedavg"]["backdoor ASR %"] == "–" and main["standard"]["backdoor ASR %"] == "–"
    assert ("- backdoor ASR: the share (%) of the evaluated test samples not of the target class that the trigger "
            "sends to the target class (target 0), mean (± sd) over seeds") in text
    low, high = wilson(288, 300)
    assert "## Privacy and backdoor per seed" in text
    assert f"| 96.0 ({100 * low:.1f}–{100 * high:.1f}; target 0, 300 samples) |" in text
    print_board(board)
    shown = capsys.readouterr().out
    assert "backdoor ASR %" in shown and "97.5 ± 2.1" in shown and "backdoor ASR: the share" in shown


def test_csv_has_the_backdoor_fields_after_the_privacy_ones(board):
    text = render(board, "csv")
    header = next(csv.reader(io.StringIO(text)))
    assert header[-6:] == ["privacy_seconds", "backdoor_target", "backdoor_success_rate", "backdoor_ci_low",
                           "backdoor_ci_high", "backdoor_n"]
    parsed = {(line["defense"], line["seed"]): line for line in csv.DictReader(io.StringIO(text))}
    seed0 = parsed[ATTACKED, "0"]
    assert (seed0["backdoor_target"], float(seed0["backdoor_success_rate"]), seed0["backdoor_n"]) == ("0", 0.96, "300")
    assert (float(seed0["backdoor_ci_low"]), float(seed0["backdoor_ci_high"])) == wilson(288, 300)
    assert parsed["fedavg", "1"]["backdoor_success_rate"] == "" and parsed[ATTACKED, "0"]["mia_auc"] == ""


def test_latex_has_the_column_and_its_caption(board, tmp_path):
    text = render(board, "tex")
    assert r"TPR@1\%FPR (\%) & Backdoor ASR (\%) & Train (s)" in text and r"$97.5 \pm 2.1$" in text
    assert "Privacy columns (never bold)" in text and r"Backdoor ASR (never bold): the share (\%)" in text
    assert "(target 0)" in text
    low, high = wilson(585, 600)
    assert f"97.5\\,{{\\scriptsize[{100 * low:.1f}, {100 * high:.1f}]}}" in render(board, "tex", uncertainty="ci")
    alone = build_leaderboard(records()[:4], headline_eps=0.1)
    assert "Privacy columns" not in render(alone, "tex")  # only the backdoor's sentence
    if shutil.which("pdflatex") is None:
        pytest.skip("no TeX engine (apt-get install texlive-latex-recommended)")
    (tmp_path / "sd.tex").write_text(text)
    (tmp_path / "ci.tex").write_text(render(board, "tex", uncertainty="ci"))
    (tmp_path / "paper.tex").write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n"
                                        "\\input{sd}\n\\input{ci}\n\\end{document}\n")
    run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "paper.tex"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:]


def test_html_shows_a_sortable_column_and_the_per_seed_table(board):
    text = render(board, "html")
    head = text.split('<table id="board">')[1].split("</thead>")[0]
    assert "<th>TPR@1%FPR %</th><th>backdoor ASR %</th><th>train s</th>" in head
    rate = privacy_of(entry(board, ATTACKED)).backdoor.success_rate
    assert f'<td data-value="{rate}">97.5 ± 2.1</td>' in text and '<td data-value="">–</td>' in text
    assert "<h2>Privacy and backdoor per seed</h2>" in text and "target 0, 300 samples" in text


def test_a_board_with_only_backdoor_rows_names_the_table_after_it_and_every_target():
    board = build_leaderboard([record("b0", ATTACKED, seed=0, backdoor=planted(0.5, n=10)),
                               record("b1", f"{ATTACKED},byzantine_params=target=3", backdoor=planted(0.2, target=3)),
                               record("n0", "fedavg")], headline_eps=0.1)
    text = render(board, "md")
    assert "## Backdoor per seed" in text and "MIA" not in text and "privacy s" not in text
    assert "(targets 0, 3, by row: the per-seed table names each)" in text and "target 3, 300 samples" in text
    assert main_table(text)[ATTACKED]["backdoor ASR %"] == "50.0"  # one seed: no ± sd
    assert next(csv.reader(io.StringIO(render(board, "csv"))))[-6:] == [
        "job_hash", "backdoor_target", "backdoor_success_rate", "backdoor_ci_low", "backdoor_ci_high", "backdoor_n"]


def test_a_board_without_a_backdoor_shows_none_of_it():
    plain = build_leaderboard(records()[2:], headline_eps=0.1)
    for fmt in ("md", "csv", "json", "tex", "html"):
        assert "backdoor" not in render(plain, fmt).lower(), fmt


@pytest.mark.parametrize("fmt", ["md", "csv", "json", "tex", "html"])
def test_the_committed_privacy_board_renders_byte_for_byte_as_committed(fmt):
    data = json.loads((ROOT / "leaderboards/digits-privacy.json").read_text(encoding="utf-8"))
    board = Leaderboard(data["dataset"], data["norm"], data["headline_eps"], tuple(data["eps"]),
                        tuple(data["attacks"]), tuple(data["rows"]), tuple(data["summary"]), data["config"],
                        data["provenance"], data["per_attack_kind"])
    committed = (ROOT / f"leaderboards/digits-privacy.{fmt}").read_text(encoding="utf-8")
    text = render(board, fmt)
    if fmt == "html":  # matplotlib's SVG ids are drawn afresh on every run: compare what surrounds the plots
        text, committed = (re.sub(r"<svg.*?</svg>", "", item, flags=re.S) for item in (text, committed))
    assert text == committed


@pytest.fixture
def bench_check(board, monkeypatch, tmp_path):
    return check_runner(board, monkeypatch, tmp_path)


def test_bench_check_reads_the_new_summary_and_an_older_one_without_it(bench_check):
    code, out, _ = bench_check(lambda data: None)
    assert code == 0 and "OK: no regression" in out and "backdoor ASR" in out and "97.5 ± 2.1" in out

    def older(data):
        for item in data["summary"]:
            (item.get("privacy") or {}).pop("backdoor", None)

    code, out, _ = bench_check(older)
    assert code == 0 and "OK: no regression" in out


def test_bench_check_refuses_a_malformed_backdoor_with_one_line(bench_check):
    def malform(data):
        next(row for row in data["rows"] if "backdoor" in row)["backdoor"] = [1, 2]

    code, _, err = bench_check(malform)
    assert code == 2 and err.startswith("bench: error: --baseline:") and "expected a JSON object" in err
    assert len(err.splitlines()) == 1


def test_a_backdoor_no_test_sample_measured_shows_as_not_measured():
    board = build_leaderboard([record("b0", ATTACKED, seed=0, backdoor=planted(math.nan, n=0)),
                               record("b1", ATTACKED, seed=1, backdoor=planted(0.9, n=10))], headline_eps=0.1)
    backdoor = privacy_of(board.summary[0]).backdoor
    assert backdoor.values == (0.9,) and (backdoor.hits, backdoor.n) == (9, 10)
    assert privacy_of(board.rows[0]) is None and "nan" not in render(board, "md")
