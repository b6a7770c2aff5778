"""Every renderer from a real store: escaping, parse-back, LaTeX that compiles, and no training or torch import."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
import shutil
import subprocess
import sys

import pytest

from benchmark.leaderboard import build_leaderboard
from benchmark.render import render, write_all

HOSTILE = "<script>alert(1)</script> my_def & 100% #1 {x} ~^\\"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from benchmark.config import build_config
    from benchmark.pipeline import run_config

    out = tmp_path_factory.mktemp("render")
    config = build_config(None, {"out": str(out), "device": "cpu", "dataset": "synthetic", "model": "mlp",
                                 "quick": True, "seeds": "0,1", "defenses": "standard,pgd-at:eps=0.2",
                                 "attacks": "suite:quick,noise"})
    run_config(config)
    return out


@pytest.fixture(scope="module")
def board(store):
    from benchmark.store import Store

    with Store(store) as opened:
        return build_leaderboard(opened.records())


@pytest.fixture(scope="module")
def hostile(board):
    """The same board with a defense name full of HTML and LaTeX specials."""
    summary = [dict(board.summary[0], defense=HOSTILE), *board.summary[1:]]
    rows = [dict(row, defense=HOSTILE) if row["defense"] == board.summary[0]["defense"] else row for row in board.rows]
    return dataclasses.replace(board, summary=tuple(summary), rows=tuple(rows))


def test_summary_aggregates_seeds(board):
    assert board.seeds == [0, 1] and len(board.rows) == 4 and len(board.summary) == 2
    for entry in board.summary:
        values = entry["robust_accuracy"]["0.1"]["values"]
        assert len(values) == 2 and entry["robust_accuracy"]["0.1"]["mean"] == pytest.approx(sum(values) / 2)
        low, high = entry["clean_accuracy"]["ci"]
        assert low <= entry["clean_accuracy"]["mean"] <= high
    assert {e["defense"] for e in board.summary} == {"pgd-at(eps=0.2)", "standard"}
    key = board.headline_key
    assert [e["robust_accuracy"][key]["mean"] for e in board.summary] == sorted(
        (e["robust_accuracy"][key]["mean"] for e in board.summary), reverse=True)


def test_stored_records_are_typed_and_round_trip(store):
    from benchmark.record import Record
    from benchmark.store import Store

    with Store(store) as opened:
        records = opened.records()
    assert len(records) == 4 and all(isinstance(r, Record) for r in records)
    for stored in records:
        assert Record.from_json(json.loads(stored.to_text())) == stored
        assert len(stored.correct) == stored.n_test and list(stored.runs) == ["fgsm", "pgd", "noise"]  # run order
        assert all(len(run.broken_at) == stored.n_test for run in stored.runs.values())


def test_markdown(board):
    text = render(board, "md")
    assert "| # | defense | model | seeds |" in text and "± " in text and "Mean ± sd over seeds 0, 1" in text
    assert "| 2 (0,1) |" in text  # the seeds column: how many, and which
    assert "## Attack cost" in text and "(95% CI)" in text


def test_csv_parses_back(board):
    rows = list(csv.DictReader(io.StringIO(render(board, "csv"))))
    assert len(rows) == 4
    for parsed, row in zip(rows, board.rows, strict=True):
        assert parsed["defense"] == row["defense"] and float(parsed["robust_0.1"]) == row["robust_accuracy"]["0.1"]
        assert parsed["rank"] == ("" if row["rank"] is None else str(row["rank"]))
        low, high = float(parsed["robust_0.1_ci_low"]), float(parsed["robust_0.1_ci_high"])
        assert low <= float(parsed["robust_0.1"]) <= high


def test_json_is_the_documented_schema(board):
    data = json.loads(render(board, "json"))
    assert data["schema_version"] == 2 and data["dataset"] == "synthetic" and data["norm"] == "inf"
    assert data["config"]["seeds"] == [0, 1]
    trusted = sum(not set(entry["flags"]) & set(data["unreliable_flags"]) for entry in data["summary"])
    assert [entry["rank"] for entry in data["summary"]] == [*range(1, trusted + 1), *[None] * (2 - trusted)]
    assert [row["rank"] for row in data["rows"]] == [entry["rank"] for entry in data["summary"] for _ in (0, 1)]
    pgd_at = {"name": "pgd-at", "eps": 0.2, "step": 0.025, "steps": 7, "epochs": 40, "lr": 0.001, "batch_size": 128}
    assert pgd_at in data["config"]["defenses"]
    assert {"config_hash", "versions", "device", "git_sha", "created"} <= set(data["provenance"])
    assert len(data["rows"][0]["samples"]["worst_broken_at"]) == data["rows"][0]["n_test"]


def test_latex_escapes_and_bolds_the_best(hostile):
    text = render(hostile, "tex")
    assert r"\toprule" in text and r"\bottomrule" in text and r"\textbf{" in text or r"\mathbf{" in text
    assert r"my\_def \& 100\% \#1 \{x\} \textasciitilde{}\textasciicircum{}\textbackslash{}" in text
    assert "\\pm" in text
    assert "[" in render(hostile, "tex", uncertainty="ci")


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="no TeX engine (apt-get install texlive-latex-recommended)")
def test_latex_compiles(hostile, tmp_path):
    for uncertainty in ("sd", "ci"):
        (tmp_path / "table.tex").write_text(render(hostile, "tex", uncertainty=uncertainty))
        (tmp_path / "paper.tex").write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\begin{document}\n"
                                            "\\input{table}\n\\end{document}\n")
        run = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "paper.tex"], cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stdout[-2000:]
        assert (tmp_path / "paper.pdf").stat().st_size > 1000


def test_html_escapes_user_strings(hostile):
    text = render(hostile, "html")
    assert "<script>alert(1)</script>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; my_def &amp; 100%" in text
    assert text.count("<script>") == 1  # only the page's own sorting script
    assert "<svg" in text
    assert re.findall(r'(?:src|href)="(?:https?:)?//', text) == [] and "<link" not in text  # self-contained


def test_write_all_writes_every_format_and_plots(board, tmp_path):
    names = sorted(path.name for path in write_all(board, tmp_path))
    assert names == sorted(["leaderboard.md", "leaderboard.csv", "leaderboard.json", "leaderboard.tex",
                            "leaderboard.html", "leaderboard-robustness.png", "leaderboard-robustness.svg",
                            "leaderboard-cost.png", "leaderboard-cost.svg"])
    assert (tmp_path / "leaderboard-robustness.png").read_bytes()[:4] == b"\x89PNG"


def test_bench_leaderboard_renders_without_torch(store, tmp_path):
    probe = (
        "import sys\n"
        "from benchmark.cli import main\n"
        f"for fmt in ('md', 'csv', 'json', 'tex', 'html'):\n"
        f"    try:\n"
        f"        main(['leaderboard', '--store', {str(store)!r}, '--format', fmt,\n"
        f"              '--out', {str(tmp_path)!r} + '/b.' + fmt])\n"
        "    except SystemExit as exit:\n"
        "        assert exit.code == 0, exit.code\n"
        "print('torch' in sys.modules, 'art' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("False False")  # nothing trained, nothing attacked
    assert (tmp_path / "b.html").exists() and (tmp_path / "b-robustness.svg").exists()
