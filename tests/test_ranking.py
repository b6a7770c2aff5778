"""Honest ranking: a row whose flags say its robust accuracy cannot be trusted never ranks above a trusted row, in
any format (Markdown, CSV, JSON, LaTeX, HTML and the terminal table), and the legend says why."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from benchmark.leaderboard import RANK_NEUTRAL, UNRELIABLE, build_leaderboard, seeds_text
from benchmark.render import render
from benchmark.validity import LEGEND
from tests.test_store import record

ROOT = Path(__file__).resolve().parents[1]
UNRANKED = {"—", "--", "", None}


def test_every_flag_is_either_unreliable_or_rank_neutral_with_a_reason():
    assert set(UNRELIABLE) | set(RANK_NEUTRAL) == set(LEGEND)
    assert not set(UNRELIABLE) & set(RANK_NEUTRAL)
    assert {"gradient_masking", "black_box_beats_white_box", "randomized", "outside_ball"} <= set(UNRELIABLE)


def test_seeds_column_gives_the_count_and_the_seeds():
    assert [seeds_text(s) for s in ([0], [0, 1], [0, 1, 2], [2, 0, 1, 3], [0, 2, 5])] == \
        ["1 (0)", "2 (0,1)", "3 (0–2)", "4 (0–3)", "3 (0,2,5)"]


def ranks_md(text: str) -> list[tuple[str, str]]:
    """(rank, defense) of the main Markdown table, top to bottom."""
    return [(cells[0], cells[1]) for cells in (line.strip("| ").split(" | ") for line in text.splitlines()
                                               if re.match(r"^\| (\d+|—) \| ", line))]


def ranks_json(text: str) -> list[tuple[object, str]]:
    board = json.loads(text)
    assert [(r["rank"], r["defense"]) for r in board["rows"]] == [(s["rank"], s["defense"]) for s in board["summary"]
                                                                  for _ in s["seeds"]]
    return [(entry["rank"], entry["defense"]) for entry in board["summary"]]


def ranks_csv(text: str) -> list[tuple[str, str]]:
    return [(row["rank"], row["defense"]) for row in csv.DictReader(io.StringIO(text))]


def ranks_tex(text: str) -> list[tuple[str, str]]:
    body = text.split(r"\midrule", 1)[1].split(r"\bottomrule")[0]
    return [tuple(cell.strip() for cell in line.split(" & ")[:2]) for line in body.splitlines() if " & " in line]


def ranks_html(text: str) -> list[tuple[str, str]]:
    board = text.split('<table id="board">')[1].split("</table>")[0].split("<tbody>")[1]
    return [tuple(re.findall(r"<td[^>]*>([^<]*)</td>", row)[:2]) for row in board.split("</tr>") if "<td" in row]


PARSERS = {"md": ranks_md, "json": ranks_json, "csv": ranks_csv, "tex": ranks_tex, "html": ranks_html}


def assert_trusted_first(ranks: list[tuple[object, str]], trusted: str, flagged: str, fmt: str) -> None:
    """In ``ranks`` (rank, defense) top to bottom, ``trusted`` ranks 1 and comes before ``flagged``, which is
    unranked."""
    order = [defense for _, defense in ranks]
    rank = {defense: str(value) if isinstance(value, int) else value for value, defense in ranks}
    assert trusted in order and flagged in order, (fmt, ranks)
    assert order.index(trusted) < order.index(flagged), (fmt, ranks)
    assert rank[trusted] == "1" and rank[flagged] in UNRANKED, (fmt, ranks)


def test_a_flagged_row_with_the_best_numbers_ranks_after_the_trusted_rows_in_every_format():
    masked = record("j1", "masked", flags=("gradient_masking",), robust_accuracy={"0": 0.9, "0.1": 0.9})
    honest = record("j2", "honest", robust_accuracy={"0": 0.9, "0.1": 0.3})
    neutral = record("j3", "mismatched", flags=("clean_mismatch",), robust_accuracy={"0": 0.9, "0.1": 0.2})
    board = build_leaderboard([masked, honest, neutral], headline_eps=0.1)
    assert [(entry["rank"], entry["defense"]) for entry in board.summary] == \
        [(1, "honest"), (2, "mismatched"), (None, "masked")]
    for fmt, parse in PARSERS.items():
        assert_trusted_first(parse(render(board, fmt)), "honest", "masked", fmt)
    assert "Rank —: a row flagged gradient_masking" in render(board, "md")
    assert "rows ranked -- carry validity flags" in render(board, "tex")


ZERO_GRADIENT_PLUGIN = '''
"""A third-party defense that masks gradients: standard training, and at test time logits with no input gradient."""

import dataclasses

import torch

from defenses.standard import Standard


class ZeroGradient(torch.nn.Module):
    def __init__(self, network):
        super().__init__()
        self.network = network

    def forward(self, x):
        return self.network(x).detach() + 0.0 * x.flatten(1).sum(1, keepdim=True)


@dataclasses.dataclass(frozen=True)
class ZeroGrad(Standard):
    """Standard training; the attacks see logits whose input gradient is zero (masking, not robustness)."""

    def inference_model(self, model):
        return ZeroGradient(model)
'''


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> dict[str, str]:
    """An environment in which the entry-point group ``bench.defenses`` holds ``zero-grad``: a plugin module and
    its ``.dist-info`` on ``PYTHONPATH``, as ``pip install`` of a third-party package leaves them."""
    site = tmp_path_factory.mktemp("site")
    (site / "zero_grad_plugin.py").write_text(textwrap.dedent(ZERO_GRADIENT_PLUGIN))
    info = site / "zero_grad_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: zero-grad-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[bench.defenses]\nzero-grad = zero_grad_plugin:ZeroGrad\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))}


def bench(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmark", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=600)


@pytest.mark.slow
def test_a_planted_masking_defense_never_outranks_an_unflagged_one(planted, tmp_path):
    out = str(tmp_path / "results")
    run = bench("evaluate", "--dataset", "synthetic", "--model", "mlp", "--quick", "--device", "cpu",
                "--defense", "standard,zero-grad", "--attack", "fgsm,pgd", "--out", out, env=planted)
    assert run.returncode == 0, run.stderr
    board = json.loads(Path(out, "leaderboard.json").read_text())
    entries = {entry["defense"]: entry for entry in board["summary"]}
    key = str(board["headline_eps"])
    # the premise: the masked row has the better robust number, and only it carries a flag that makes it unreliable
    assert entries["zero-grad"]["robust_accuracy"][key]["mean"] > entries["standard"]["robust_accuracy"][key]["mean"]
    assert "gradient_masking" in entries["zero-grad"]["flags"]
    assert not set(entries["standard"]["flags"]) & set(UNRELIABLE), entries["standard"]["flags"]
    terminal = [line for line in run.stdout.splitlines() if re.match(r"^│ (\d+|—) +│ (standard|zero-grad) ", line)]
    assert_trusted_first([tuple(cell.strip() for cell in line.split("│")[1:3]) for line in terminal], "standard",
                         "zero-grad", "terminal")
    assert "Rank —: a row flagged" in run.stdout
    for fmt, parse in PARSERS.items():
        shown = bench("leaderboard", "--store", out, "--format", fmt, env=planted)
        assert shown.returncode == 0, shown.stderr
        assert_trusted_first(parse(shown.stdout), "standard", "zero-grad", fmt)


def test_a_gap_narrower_than_the_intervals_is_called_unsettled_and_a_wide_one_is_not():
    def row(name, robust, n):
        return record(job_hash=name, defense=name, n_test=n, correct=(1,) * n,
                      robust_accuracy={"0": 1.0, "0.1": robust}, runs={})

    close = build_leaderboard([row("a", 0.50, 100), row("b", 0.45, 100)], headline_eps=0.1)
    (line,) = [line for line in render(close, "md").splitlines() if "not settled" in line]
    assert "ranks 1 and 2 (a, b) are 5.0 points apart at ε = 0.1" in line and "on 100 test samples" in line
    far = build_leaderboard([row("a", 0.90, 1000), row("b", 0.20, 1000)], headline_eps=0.1)
    assert "not settled" not in render(far, "md")
