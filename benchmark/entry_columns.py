"""Main-table columns read from a summary entry's own keys rather than its privacy summary: the naive worst case of
a row whose attacks also ran adaptively (``benchmark.adaptive``; at the headline ε, beside the ε columns that include
the adaptive runs) and the IBP-verified accuracy of a run with ``--ibp`` (``benchmark.ibp_stage``; at each ε > 0).
Each shows only on a board where some entry has it, in every format that shows the privacy columns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from benchmark.privacy_columns import Column, Shown
from benchmark.record import eps_key

if TYPE_CHECKING:
    from benchmark.leaderboard import Leaderboard

LEGEND = {
    "naive": "naive ε=… %: the worst case over the naive runs only (gradients of the defended model as it is: zero "
             "through rounding or JPEG, one draw of a randomized model), the number a careless evaluation reports; "
             "the ε columns add the BPDA and EoT runs (Athalye et al. 2018).",
    "ibp": "IBP ε=… %: the share of the evaluated samples interval bound propagation verifies in the whole L∞ box "
           "(Gowal et al. 2018): a lower bound beside the attacks' upper bound, flagged certificate_violated if above.",
}


@dataclass(frozen=True, kw_only=True)
class EntryColumn(Column):
    """A column showing ``entry[field][key]`` (a mean ± sd over seeds with its Wilson interval)."""

    field: str
    key: str

    def shown(self, entry: dict[str, Any]) -> Shown | None:
        stat = (entry.get(self.field) or {}).get(self.key)
        if stat is None:
            return None
        ci = stat.get("ci")
        return Shown(stat["mean"], stat["sd"] if len(stat["values"]) > 1 else None, None if ci is None else tuple(ci))


def _none(_: Any) -> None:
    return None


def entry_columns(board: Leaderboard) -> list[EntryColumn]:
    """The naive column at the headline ε, then an IBP column per ε > 0; each only where some entry has it."""
    headline = board.headline_eps
    columns = [EntryColumn(title=f"naive ε={headline:g} %", tex=f"Naive $\\epsilon={headline:g}$", pick=_none,
                           digits=1, scale=100, kind="naive", field="naive_robust_accuracy",
                           key=eps_key(headline))]
    columns += [EntryColumn(title=f"IBP ε={e:g} %", tex=f"IBP $\\epsilon={e:g}$", pick=_none, digits=1, scale=100,
                            kind="ibp", field="ibp_verified", key=eps_key(e)) for e in board.eps if e > 0]
    return [column for column in columns if any(column.shown(entry) is not None for entry in board.summary)]


def legend(board: Leaderboard) -> list[str]:
    return [LEGEND[kind] for kind in dict.fromkeys(column.kind for column in entry_columns(board))]
