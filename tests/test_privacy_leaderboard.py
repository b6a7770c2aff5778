"""The privacy columns of a leaderboard: per row the worst case over the membership attacks (with the attack and the
samples), Wilson intervals where the number is a proportion, reconstruction PSNR for federated rows, DP ε for private
rows and the privacy attacks' seconds; aggregated over seeds; shown in every format; held by ``bench check``."""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import subprocess

import pytest
from click.testing import CliRunner

from benchmark.compare import check_rows, diff
from benchmark.leaderboard import build_leaderboard
from benchmark.leaderboard_privacy import PrivacySummary, advantage_of, privacy_of
from benchmark.privacy import (
    DPGuarantee,
    InversionOutcome,
    InversionSetting,
    MembershipOutcome,
    MembershipSplitInfo,
    PrivacyResult,
)
from benchmark.render import render
from benchmark.stats import wilson
from tests.test_store import record

HOSTILE = "<script>alert(1)</script> & 100% #1 {x}"
SPLIT = MembershipSplitInfo(members=400, nonmembers=400, nonmember_source="holdout", eval_members=200,
                            eval_nonmembers=200, seed=0, indices_sha256="0" * 64)


def outcome(auc: float, advantage: float, tpr_1: float, tpr_01: float, n: int = 200) -> MembershipOutcome:
    return MembershipOutcome(auc=auc, advantage=advantage, tpr_at_fpr={"0.01": tpr_1, "0.001": tpr_01}, n_members=n,
                             n_nonmembers=n, seconds=1.0, queries=2 * n)


def membership(rule: tuple, blackbox: tuple, seconds: float = 3.0) -> PrivacyResult:
    """Two attacks that produced numbers and one that failed (its error full of HTML and LaTeX specials)."""
    failed = MembershipOutcome(auc=None, advantage=None, error=f"label-only failed: {HOSTILE}")
    return PrivacyResult(membership={"mia-rule": outcome(*rule), "mia-blackbox": outcome(*blackbox),
                                     "mia-label": failed}, split=SPLIT, seconds=seconds)


def inversion(*psnr: float) -> PrivacyResult:
    setting = InversionSetting(batch_size=1, local_steps=1, psnr=psnr, ssim=(0.9,) * len(psnr))
    late = InversionSetting(batch_size=8, local_steps=4, psnr=(12.0,), ssim=(0.1,))
    return PrivacyResult(inversion=InversionOutcome(attack="gradient-inversion", settings=(setting, late),
                                                    psnr_threshold=25.0, seconds=2.0), seconds=2.0)


def guarantee(epsilon: float) -> DPGuarantee:
    return DPGuarantee(epsilon=epsilon, delta=1e-5, level="sample", accountant="rdp", noise_multiplier=1.1,
                       max_grad_norm=1.0, sample_rate=0.01, steps=300)


def records() -> list:
    """standard (2 seeds) leaks; dp-sgd (2 seeds) leaks less and carries ε; fedavg (2 seeds) is inverted; pgd-at has
    no privacy results."""
    return [
        record("s0", "standard", seed=0, privacy=membership((0.62, 0.25, 0.05, 0.010), (0.71, 0.20, 0.09, 0.020))),
        record("s1", "standard", seed=1, privacy=membership((0.64, 0.21, 0.06, 0.015), (0.75, 0.30, 0.11, 0.005),
                                                            seconds=5.0)),
        record("d0", "dp-sgd", seed=0, privacy=membership((0.52, 0.04, 0.01, 0.0), (0.53, 0.05, 0.015, 0.0)),
               dp=guarantee(2.5)),
        record("d1", "dp-sgd", seed=1, privacy=membership((0.51, 0.03, 0.01, 0.0), (0.54, 0.06, 0.02, 0.0)),
               dp=guarantee(2.7)),
        record("f0", "fedavg", seed=0, privacy=inversion(31.0, 29.0, 18.0, 26.0)),
        record("f1", "fedavg", seed=1, privacy=inversion(24.0, 27.0)),
        record("p0", "pgd-at", seed=0),
    ]


@pytest.fixture(scope="module")
def board():
    return build_leaderboard(records(), headline_eps=0.1)


def entry(board, defense: str) -> PrivacySummary | None:
    (found,) = [e for e in board.summary if e["defense"] == defense]
    return privacy_of(found)


def row(board, defense: str, seed: int) -> dict:
    (found,) = [r for r in board.rows if r["defense"] == defense and r["seed"] == seed]
    return found


def test_a_row_holds_the_worst_case_over_the_attacks_with_the_attack_and_the_samples(board):
    summary = privacy_of(row(board, "standard", 0))
    found = summary.membership
    assert (found.auc.mean, found.auc.attacks) == (0.71, ("mia-blackbox",))
    assert (found.advantage.mean, found.advantage.attacks) == (0.25, ("mia-rule",))  # another attack's worst case
    tpr = found.tpr_at_fpr["0.01"]
    assert (tpr.mean, tpr.attacks, tpr.n_members, tpr.n_nonmembers) == (0.09, ("mia-blackbox",), 200, 200)
    assert tpr.found == 18 and tpr.ci == wilson(18, 200)
    assert found.tpr_at_fpr["0.001"].mean == 0.02 and found.tpr_at_fpr["0.001"].ci == wilson(4, 200)
    assert found.auc.ci is None and found.advantage.ci is None  # not proportions: no interval
    assert found.attacks == ("mia-rule", "mia-blackbox") and found.nonmember_source == "holdout"
    assert summary.errors == {"mia-label": f"label-only failed: {HOSTILE}"} and summary.seconds == 3.0
    assert summary.inversion is None and summary.dp is None
    assert "privacy" not in row(board, "pgd-at", 0) and entry(board, "pgd-at") is None


def test_seeds_aggregate_like_the_accuracies(board):
    standard = entry(board, "standard")
    assert standard.seeds == (0, 1)
    advantage = standard.membership.advantage
    assert advantage.values == (0.25, 0.30) and advantage.attacks == ("mia-rule", "mia-blackbox")
    assert advantage.mean == pytest.approx(0.275) and advantage.sd == pytest.approx(math.sqrt(2 * 0.025 ** 2))
    tpr = standard.membership.tpr_at_fpr["0.01"]
    assert tpr.values == (0.09, 0.11) and (tpr.found, tpr.n_members) == (18 + 22, 400)
    assert tpr.ci == wilson(40, 400)  # pooled over the seeds' members
    assert standard.seconds == pytest.approx(4.0)
    dp = entry(board, "dp-sgd").dp
    assert (dp.epsilon, dp.values, dp.delta, dp.level) == (2.7, (2.5, 2.7), 1e-5, "sample")  # the largest ε
    fedavg = entry(board, "fedavg").inversion
    assert fedavg.psnr_values == (26.0, 25.5) and fedavg.psnr == pytest.approx(25.75)  # the headline setting's means
    assert (fedavg.recovered, fedavg.images, fedavg.batch_size) == (3 + 1, 6, 1) and fedavg.ci == wilson(4, 6)


def test_a_board_without_privacy_results_has_no_privacy_anywhere():
    plain = build_leaderboard([record("p0", "pgd-at"), record("s0", "standard")], headline_eps=0.1)
    assert not any("privacy" in item for item in (*plain.rows, *plain.summary))
    for fmt in ("md", "csv", "json", "tex", "html"):
        text = render(plain, fmt)
        assert "MIA" not in text and "privacy" not in text.lower() and "mia_" not in text, fmt
    assert next(csv.reader(io.StringIO(render(plain, "csv"))))[-1] == "job_hash"


def test_markdown_and_terminal_show_the_columns_the_legend_and_the_per_seed_intervals(board, capsys):
    from benchmark.console import print_board

    text = render(board, "md")
    lines = text.splitlines()
    start = next(index for index, line in enumerate(lines) if line.startswith("| # |"))
    header, *body = [line.strip("| ").split(" | ") for line in lines[start:start + 6] if not line.startswith("|--")]
    assert header[6:] == ["MIA AUC", "MIA adv.", "TPR@1%FPR %", "PSNR dB", "DP ε", "train s", "eval s", "privacy s",
                          "flags"]
    main = {cells[1]: dict(zip(header, cells, strict=True)) for cells in body}
    assert [main["standard"][title] for title in header[6:11]] == ["0.730 ± 0.028", "0.275 ± 0.035", "10.0 ± 1.4",
                                                                   "–", "–"]
    assert main["dp-sgd"]["DP ε"] == "2.70 (sample)" and main["fedavg"]["PSNR dB"] == "25.8 ± 0.4"
    assert main["standard"]["privacy s"] == "4.0"  # the mean over seeds of the privacy attacks' seconds
    assert [main["pgd-at"][title] for title in [*header[6:11], "privacy s"]] == ["–"] * 6
    low, high = wilson(18, 200)
    assert f"| 0.250 (mia-rule) | 9.0 ({100 * low:.1f}–{100 * high:.1f}; mia-blackbox) |" in text
    assert "| 200 / 200 (holdout) |" in text and "26.0 (gradient-inversion, batch 1, 1 step)" in text
    assert "2.50 (δ=1e-05, sample, rdp)" in text and "## Privacy per seed" in text
    assert "- MIA AUC, MIA adv., TPR@1%FPR: membership inference" in text and "no interval" in text
    assert "TPR@0.1%FPR on 200 evaluation non-members" in text  # 200 < 1/0.001: the FPR cannot be resolved
    assert "standard (seed 1): privacy attack mia-label stopped, no numbers: label-only failed" in text
    print_board(board)
    shown = capsys.readouterr().out
    assert "MIA adv." in shown and "0.275 ± 0.035" in shown and "2.70 (sample)" in shown and "DP ε:" in shown


def test_csv_parses_back_with_the_intervals(board):
    parsed = {(line["defense"], line["seed"]): line for line in csv.DictReader(io.StringIO(render(board, "csv")))}
    standard = parsed["standard", "1"]
    assert float(standard["mia_advantage"]) == 0.30 and standard["mia_advantage_attack"] == "mia-blackbox"
    assert float(standard["mia_tpr_at_0.01_fpr"]) == 0.11
    assert (float(standard["mia_tpr_at_0.01_fpr_ci_low"]), float(standard["mia_tpr_at_0.01_fpr_ci_high"])) == \
        wilson(22, 200)
    assert standard["mia_eval_members"] == "200" and float(standard["privacy_seconds"]) == 5.0
    fedavg = parsed["fedavg", "0"]
    assert float(fedavg["recovered_share"]) == 0.75 and float(fedavg["recovered_ci_low"]) == wilson(3, 4)[0]
    assert fedavg["mia_auc"] == "" and parsed["dp-sgd", "1"]["dp_epsilon"] == "2.7"
    assert all(value == "" for key, value in parsed["pgd-at", "0"].items() if key.startswith(("mia_", "dp_")))


def test_json_keeps_the_typed_summaries(board):
    data = json.loads(render(board, "json"))
    summaries = {item["defense"]: item for item in data["summary"]}
    assert PrivacySummary.from_json(summaries["standard"]["privacy"]) == entry(board, "standard")
    assert summaries["standard"]["privacy"]["membership"]["tpr_at_fpr"]["0.01"]["ci"] == list(wilson(40, 400))
    assert "privacy" not in summaries["pgd-at"]
    rows = [item for item in data["rows"] if item["defense"] == "dp-sgd"]
    assert [item["privacy"]["dp"]["epsilon"] for item in rows] == [2.5, 2.7]


def test_latex_has_the_columns_and_escapes(board, tmp_path):
    text = render(board, "tex")
    assert r"MIA AUC & MIA adv. & TPR@1\%FPR (\%) & PSNR (dB) & DP $\varepsilon$ & Train (s) & Privacy (s) \\" in text
    assert r"$0.275 \pm 0.035$" in text and "2.70 (sample)" in text and "Privacy columns (never bold)" in text
    low, high = wilson(40, 400)
    assert f"10.0\\,{{\\scriptsize[{100 * low:.1f}, {100 * high:.1f}]}}" in render(board, "tex", uncertainty="ci")
    if shutil.which("pdflatex") is None:
        pytest.skip("no TeX engine (apt-get install texlive-latex-recommended)")
    for uncertainty in ("sd", "ci"):
        (tmp_path / "table.tex").write_text(render(board, "tex", uncertainty=uncertainty))
        (tmp_path / "paper.tex").write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n"
                                            "\\input{table}\n\\end{document}\n")
        run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "paper.tex"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout[-2000:]


def test_html_shows_sortable_privacy_columns_and_escapes_every_string(board):
    text = render(board, "html")
    head = text.split('<table id="board">')[1].split("</thead>")[0]
    assert "<th>MIA AUC</th><th>MIA adv.</th><th>TPR@1%FPR %</th><th>PSNR dB</th><th>DP ε</th>" in head
    auc = entry(board, "standard").membership.auc.mean
    assert f'<td data-value="{auc}">0.730 ± 0.028</td>' in text and '<td data-value="">–</td>' in text
    assert '<table id="privacy">' in text and "2.50 (δ=1e-05, sample, rdp)" in text
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; 100%" in text


def baseline_rows(board, **advantages: float) -> list[dict]:
    """The board's rows as a baseline file holds them, with the membership advantage of some rows replaced
    (``standard_0=0.1``: the row of standard, seed 0)."""
    rows = json.loads(render(board, "json"))["rows"]
    for name, value in advantages.items():
        defense, seed = name.rsplit("_", 1)
        (target,) = [r for r in rows if r["defense"] == defense.replace("_", "-") and r["seed"] == int(seed)]
        target["privacy"]["membership"]["advantage"].update(mean=value, values=[value])
    return rows


def test_check_flags_a_rise_of_the_advantage_beyond_the_tolerance_and_passes_a_fall(board):
    fresh = list(board.rows)
    lines = check_rows(baseline_rows(board, standard_0=0.20, dp_sgd_1=0.10), fresh, list(board.eps), 0.02)
    by_row = {(line.label, line.metric): line for line in lines}
    risen = by_row["standard · mlp · seed 0", "MIA adv."]
    assert (risen.before, risen.after, risen.status) == (0.20, 0.25, "regression") and risen.loss == pytest.approx(0.05)
    fallen = by_row["dp-sgd · mlp · seed 1", "MIA adv."]
    assert fallen.status == "ok" and fallen.loss < 0  # less leakage is an improvement
    assert [line for line in lines if line.status != "ok"] == [risen]
    within = check_rows(baseline_rows(board, standard_0=0.24), fresh, list(board.eps), 0.02)
    assert all(line.status == "ok" for line in within)
    assert not any(line.metric == "MIA adv." and "pgd-at" in line.label for line in within)  # no privacy: no line


def test_check_needs_the_advantage_the_baseline_holds_and_ignores_one_it_lacks(board):
    rows = baseline_rows(board)
    without = [{k: v for k, v in r.items() if k != "privacy"} for r in board.rows]
    with pytest.raises(KeyError, match="no membership-inference advantage"):
        check_rows(rows, without, list(board.eps), 0.02)
    assert not [line for line in check_rows(without, list(board.rows), list(board.eps), 0.02)
                if line.metric == "MIA adv."]  # a baseline from before the privacy axis keeps working


def test_compare_shows_the_advantage_of_both_sides(board):
    pairs = [(row(board, "standard", seed), row(board, "dp-sgd", seed)) for seed in (0, 1)]
    (line,) = [line for line in diff(pairs, list(board.eps), "x") if line.metric == "MIA adv."]
    assert (line.before, line.after) == (pytest.approx(0.275), pytest.approx(0.055)) and line.test is None
    assert advantage_of(row(board, "fedavg", 0)) is None


@pytest.fixture
def bench_check(board, monkeypatch, tmp_path):
    return check_runner(board, monkeypatch, tmp_path)


def check_runner(board, monkeypatch, tmp_path):
    """``bench check`` against an edited copy of the board's JSON, the fresh run being the board itself."""
    from benchmark import cli_reports
    from benchmark.cli import main

    monkeypatch.setattr(cli_reports, "run_or_plan", lambda make_config, **options: (None, board))

    def run(edit) -> tuple[int, str, str]:
        data = json.loads(render(board, "json"))
        edit(data)
        path = tmp_path / "baseline.json"
        path.write_text(json.dumps(data))
        result = CliRunner().invoke(main, ["check", "--baseline", str(path), "--out", str(tmp_path / "out")])
        return result.exit_code, result.stdout, result.stderr
    return run


def test_bench_check_fails_on_a_planted_rise_and_names_it(bench_check):
    def lower(data):
        target = next(r for r in data["rows"] if r["defense"] == "standard" and r["seed"] == 1)
        target["privacy"]["membership"]["advantage"].update(mean=0.22, values=[0.22])

    code, out, _ = bench_check(lower)
    assert code == 1, out
    assert "FAIL: 1 regression(s)" in out and "worst: standard · mlp · seed 1, MIA adv., +8.0 points" in out
    code, out, _ = bench_check(lambda data: None)
    assert code == 0 and "OK: no regression" in out and "MIA adv." in out


def test_bench_check_refuses_a_malformed_privacy_block_with_one_line(bench_check):
    def malform(data):
        data["rows"][0]["privacy"]["membership"] = [1, 2]

    code, _, err = bench_check(malform)
    assert code == 2 and err.startswith("bench: error: --baseline:") and "is malformed: rows[0].privacy" in err
    assert len(err.splitlines()) == 1


def test_a_perfect_reconstruction_shows_an_infinite_psnr_and_stays_a_valid_baseline(tmp_path):
    from benchmark.cli_reports import read_baseline

    perfect = build_leaderboard([record("f0", "fedavg", seed=0, privacy=inversion(math.inf, math.inf)),
                                 record("f1", "fedavg", seed=1, privacy=inversion(30.0))], headline_eps=0.1)
    found = entry(perfect, "fedavg").inversion
    assert found.psnr == math.inf and found.psnr_sd is None and (found.recovered, found.images) == (3, 3)
    assert "| inf |" in render(perfect, "md")
    path = tmp_path / "baseline.json"
    path.write_text(render(perfect, "json"))  # +∞ is written as JSON's Infinity
    assert read_baseline(str(path))["summary"][0]["privacy"]["inversion"]["psnr"] == math.inf
