"""LaTeX: a booktabs table in rank order, best value per column among the ranked rows in bold, ready to ``\\input``
in a paper (needs ``\\usepackage{booktabs}``). Rows whose flags make their robust accuracy untrustworthy are ranked
"--" below a rule, and never bold. Accuracies carry their uncertainty as ± sd over seeds (``uncertainty="sd"``) or
as the Wilson 95 % interval (``uncertainty="ci"``)."""

from __future__ import annotations

import re

from benchmark import privacy_columns
from benchmark.errors import BenchError
from benchmark.leaderboard import Leaderboard, eps_key, seconds_text
from benchmark.leaderboard_certified import certified_caption

_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
            "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


#: The caption's sentence on the privacy columns, when the table has any.
PRIVACY_CAPTION = (r"Privacy columns (never bold): membership inference, the highest over the attacks that ran (AUC, "
                   r"advantage, TPR at 1\% FPR in \%); mean PSNR (dB) of gradient-inversion reconstructions of a "
                   r"client's update; the DP $\varepsilon$ the defense's accountant certifies; the privacy attacks' "
                   r"seconds; -- where not measured.")
#: Its sentence on the backdoor column ({target}: the target class).
BACKDOOR_CAPTION = (r"Backdoor ASR (never bold): the share (\%) of the test samples not of the target class "
                    r"({target}) that the trigger sends to it, for federated rows whose Byzantine clients plant a "
                    r"backdoor; -- for the others.")


def escape(text: str) -> str:
    """Escape every character LaTeX treats specially."""
    return re.sub(r"[\\&%$#_{}~^]", lambda m: _SPECIAL[m.group()], str(text))


def cell(stat: dict, best: bool, uncertainty: str) -> str:
    value = f"{100 * stat['mean']:.1f}"
    if uncertainty == "sd" and len(stat["values"]) > 1:
        body = f"{value} \\pm {100 * stat['sd']:.1f}"
        return f"$\\mathbf{{{body}}}$" if best else f"${body}$"
    text = f"\\textbf{{{value}}}" if best else value
    if uncertainty == "ci":
        low, high = stat["ci"]
        text += f"\\,{{\\scriptsize[{100 * low:.1f}, {100 * high:.1f}]}}"
    return text


def render(board: Leaderboard, uncertainty: str = "sd") -> str:
    if uncertainty not in ("sd", "ci"):
        raise BenchError(f"--uncertainty: expected sd or ci, got {uncertainty!r}")
    eps_columns = [e for e in board.eps if e > 0]
    columns = [("clean_accuracy", None)] + [("robust_accuracy", eps_key(e)) for e in eps_columns]
    ranked = [entry for entry in board.summary if entry["rank"] is not None]
    best = {column: max((stat(entry, column)["mean"] for entry in ranked), default=None) for column in columns}
    fastest = min((entry["train_seconds"] for entry in board.summary if entry["train_seconds"] is not None),
                  default=None)
    metrics, costs = privacy_columns.main_columns(board)
    titles = [f"$\\epsilon={e:g}$" for e in eps_columns] + [c.tex for c in metrics] + ["Train (s)"]
    titles += [c.tex for c in costs]
    lines = [*preamble(board, uncertainty),
             r"\begin{tabular}{rl" + "r" * (len(titles) + 1) + "}",
             r"\toprule",
             r"\# & Defense & Clean & " + " & ".join(titles) + r" \\",
             r"\midrule"]
    for index, entry in enumerate(board.summary):
        if ranked and index == len(ranked):
            lines.append(r"\midrule")  # the unreliable rows, unranked, below the ranked ones
        cells = ["--" if entry["rank"] is None else str(entry["rank"]), escape(entry["defense"])]
        cells += [cell(stat(entry, c), stat(entry, c)["mean"] == best[c], uncertainty) for c in columns]
        cells += [c.text(entry, tex=True, uncertainty=uncertainty, escape=escape) for c in metrics]
        seconds = seconds_text(entry["train_seconds"]).replace("–", "--")
        cells.append(f"\\textbf{{{seconds}}}" if entry["train_seconds"] in (fastest,) and fastest else seconds)
        cells += [c.text(entry, tex=True) for c in costs]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def stat(entry: dict, column: tuple[str, str | None]) -> dict:
    field, key = column
    return entry[field] if key is None else entry[field][key]


def preamble(board: Leaderboard, uncertainty: str) -> list[str]:
    """The table's opening lines: a provenance comment, the caption (what the numbers are, how rows are ranked) and
    the label."""
    norm = r"\ell_\infty" if board.norm == "inf" else r"\ell_2"
    seeds = board.seeds
    spread = (f"mean $\\pm$ sd over {len(seeds)} seeds" if uncertainty == "sd" and len(seeds) > 1
              else "Wilson 95\\% intervals" if uncertainty == "ci" else f"seed {seeds[0]}")
    unranked = ("; rows ranked -- carry validity flags that make their robust accuracy untrustworthy and are listed "
                "last" if any(entry["rank"] is None for entry in board.summary) else "")
    metrics = privacy_columns.main_columns(board)[0]
    privacy = " " + PRIVACY_CAPTION if [c for c in metrics if c.kind == "privacy"] else ""
    if privacy_columns.BACKDOOR_COLUMN in metrics:
        privacy += " " + BACKDOOR_CAPTION.replace("{target}", escape(privacy_columns.targets_text(board)))
    privacy += certified_caption(board, escape)  # "" without certified rows
    return [
        f"% Generated by defense-bench; config hash {board.provenance['config_hash']}.",
        r"\begin{table}[t]",
        r"\centering",
        f"\\caption{{Clean and worst-case robust accuracy (\\%) on {escape(board.dataset)} under ${norm}$ "
        f"perturbations (attacks: {escape(', '.join(board.attacks))}; {spread}), ranked at "
        f"$\\epsilon={board.headline_eps:g}$. Best of the ranked rows in bold{unranked}.{privacy}}}",
        f"\\label{{tab:bench-{escape(board.dataset)}-{board.norm}}}",
    ]
