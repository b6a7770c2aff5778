"""Plots with matplotlib (Agg): robustness curves (accuracy vs ε per defense, ± sd over seeds; for a row with
randomized-smoothing certificates, its certified accuracy vs L2 radius beside it, dashed in the same colour) and the
cost-robustness trade-off (training seconds vs robust accuracy at the headline ε)."""

from __future__ import annotations

import io
from pathlib import Path

from benchmark.leaderboard import Leaderboard, eps_key
from benchmark.leaderboard_certified import entry_certified


def robustness_figure(board: Leaderboard):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.0), layout="constrained")
    axes = figure.add_subplot()
    for entry in board.summary:
        keys = [eps_key(e) for e in board.eps]
        means = [100 * entry["robust_accuracy"][k]["mean"] for k in keys]
        sds = [100 * entry["robust_accuracy"][k]["sd"] for k in keys]
        line = axes.errorbar(board.eps, means, yerr=sds, marker="o", markersize=3, capsize=2,
                             label=legend_label(entry))
        certified_curve(axes, board, entry, line.lines[0].get_color())
    axes.axvline(board.headline_eps, color="grey", linestyle=":", linewidth=1)
    axes.set_xlabel(f"ε (L{'∞' if board.norm == 'inf' else board.norm})")
    axes.set_ylabel("worst-case robust accuracy (%)")
    axes.set_ylim(-2, 102)
    axes.set_title(f"Robustness curves: {board.dataset}")
    axes.legend(fontsize="small")
    axes.grid(alpha=0.3)
    return figure


def certified_curve(axes, board: Leaderboard, entry: dict, color: str) -> None:
    """An entry's certified accuracy at each ε of the grid (an L2 radius; mean over seeds), dashed, if it has
    certificates: a lower bound drawn under the empirical curve, its upper bound."""
    certified = entry_certified(entry)
    if certified is None:
        return
    means = [100 * certified.stat(certified.accuracy[eps_key(e)])[0] for e in board.eps]
    axes.plot(board.eps, means, linestyle="--", marker="s", markersize=3, color=color,
              label=f"{legend_label(entry)}: certified (L2 radius)")


def cost_figure(board: Leaderboard):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6.4, 4.0), layout="constrained")
    axes = figure.add_subplot()
    key = board.headline_key
    for entry in board.summary:
        if entry["train_seconds"] is None:  # not trained here: no training cost to plot
            continue
        stat = entry["robust_accuracy"][key]
        axes.errorbar([entry["train_seconds"]], [100 * stat["mean"]], yerr=[100 * stat["sd"]], marker="o", capsize=2,
                      label=legend_label(entry))
    axes.set_xscale("log")
    axes.set_xlabel("training time (s, log scale)")
    axes.set_ylabel(f"robust accuracy at ε = {key} (%)")
    axes.set_title("Robustness vs training cost")
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize="small")
    else:
        axes.text(0.5, 0.5, "no model was trained here", transform=axes.transAxes, ha="center")
    axes.grid(alpha=0.3)
    return figure


def legend_label(entry: dict) -> str:
    """A defense as the plots' legends name it: unranked rows (untrustworthy robust accuracy) say so."""
    return entry["defense"] + (" (unreliable)" if entry["rank"] is None else "")


def figures(board: Leaderboard) -> dict:
    return {"robustness": robustness_figure(board), "cost": cost_figure(board)}


def svg_text(figure) -> str:
    """The figure as an ``<svg>`` element to inline in HTML (text drawn as paths, so no user string is raw)."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def write_plots(board: Leaderboard, directory: Path, stem: str = "leaderboard") -> list[Path]:
    """Both figures as PNG and SVG, each written atomically (``benchmark.fileio``)."""
    from benchmark.fileio import write_figure

    written = []
    for name, figure in figures(board).items():
        for fmt in ("png", "svg"):
            path = directory / f"{stem}-{name}.{fmt}"
            written.append(write_figure(path, figure, fmt, dpi=150, metadata={"Date": None} if fmt == "svg" else None))
    return written
