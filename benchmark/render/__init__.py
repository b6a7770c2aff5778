"""Renderers: a ``Leaderboard`` → text in one format. None of them recomputes anything.

``render(board, fmt)`` returns the text; ``write_all(board, directory)`` writes every format plus the plots.
"""

from __future__ import annotations

from pathlib import Path

from benchmark.errors import BenchError
from benchmark.leaderboard import Leaderboard

FORMATS = {"md": "markdown", "csv": "tabular", "json": "jsonfile", "tex": "latex", "html": "html"}


def render(board: Leaderboard, fmt: str, **options) -> str:
    import importlib

    if fmt not in FORMATS:
        raise BenchError(f"--format: unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    return importlib.import_module(f"benchmark.render.{FORMATS[fmt]}").render(board, **options)


def write_all(board: Leaderboard, directory: Path, stem: str = "leaderboard") -> list[Path]:
    """Every format as ``stem.<fmt>`` plus the plots (PNG and SVG) in ``directory``."""
    from benchmark.fileio import write_text
    from benchmark.render.plots import write_plots

    written = []
    for fmt in FORMATS:
        path = directory / f"{stem}.{fmt}"
        written.append(write_text(path, render(board, fmt)))
    return written + write_plots(board, directory, stem)
