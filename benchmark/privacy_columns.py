"""What every renderer shows of a leaderboard's privacy summaries (``benchmark.leaderboard_privacy``): the privacy
columns of the main tables (Markdown, terminal, HTML, LaTeX), the per-seed detail table (Markdown, HTML), the CSV
fields and the legend lines. A board without privacy results gets no column, no table, no field and no line. A
planted backdoor's success rate (federated rows whose Byzantine clients plant one) is shown the same way, in its own
column, table column, CSV fields and legend line, only on a board that has one; so are randomized-smoothing
certificates (``benchmark.leaderboard_certified``): certified accuracy at each ε > 0 of the grid (an L2 radius) and
the abstain rate after the accuracies, the certification's seconds and forward passes among the costs, CSV fields, a
legend line with the setting (and a LaTeX caption sentence), only on a board with certified rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from benchmark.leaderboard_certified import settings_text
from benchmark.leaderboard_privacy import (
    BackdoorSummary,
    InversionSummary,
    MembershipSummary,
    PrivacySummary,
    WorstCase,
    privacy_of,
)
from benchmark.privacy import LOW_FPRS, fpr_key
from benchmark.record import eps_key
from benchmark.stats import mean_sd

if TYPE_CHECKING:
    from benchmark.leaderboard import Leaderboard


@dataclass(frozen=True)
class Shown:
    """One privacy cell: its number, the sd over seeds (None: one seed), its interval and a note after it."""

    value: float
    sd: float | None = None
    ci: tuple[float, float] | None = None
    note: str = ""


def _worst(item: WorstCase | None) -> Shown | None:
    return None if item is None else Shown(item.mean, item.sd if len(item.values) > 1 else None, item.ci)


def _membership(summary: PrivacySummary, metric: str) -> Shown | None:
    membership = summary.membership
    if membership is None:
        return None
    if metric in ("auc", "advantage"):
        return _worst(getattr(membership, metric))
    return _worst(membership.tpr_at_fpr.get(metric))


def _psnr(summary: PrivacySummary) -> Shown | None:
    inversion = summary.inversion
    if inversion is None:
        return None
    return Shown(inversion.psnr, inversion.psnr_sd if len(inversion.psnr_values) > 1 else None)


def _epsilon(summary: PrivacySummary) -> Shown | None:
    return None if summary.dp is None else Shown(summary.dp.epsilon, note=f" ({summary.dp.level})")


def _backdoor(summary: PrivacySummary) -> Shown | None:
    found = summary.backdoor
    if found is None:
        return None
    return Shown(found.success_rate, found.sd if len(found.values) > 1 else None, found.ci)


def _certified(summary: PrivacySummary, key: str) -> Shown | None:
    """The certified accuracy at ε ``key`` (an L2 radius) over seeds, with its pooled Wilson interval."""
    found = summary.certified
    if found is None or key not in found.accuracy:
        return None
    mean, sd, ci = found.stat(found.accuracy[key])
    return Shown(mean, sd, ci)


def _abstain(summary: PrivacySummary) -> Shown | None:
    found = summary.certified
    return None if found is None else Shown(*found.stat(found.abstain_rate))


def _certified_cost(summary: PrivacySummary, name: str) -> Shown | None:
    found = summary.certified
    return None if found is None else Shown(mean_sd(list(getattr(found, name)))[0])


@dataclass(frozen=True, kw_only=True)
class Column:
    """A column of the main tables from a row's privacy summary: its title (plain and LaTeX), what it shows of a
    summary entry, and how; ``kind`` says what it measures (``privacy``, ``backdoor``, ``certified``)."""

    title: str
    tex: str
    pick: Callable[[PrivacySummary], Shown | None]
    digits: int
    scale: float = 1.0
    kind: str = "privacy"

    def shown(self, entry: dict[str, Any]) -> Shown | None:
        summary = privacy_of(entry)
        return None if summary is None else self.pick(summary)

    def value(self, entry: dict[str, Any]) -> float | None:
        shown = self.shown(entry)
        return None if shown is None else shown.value

    def text(self, entry: dict[str, Any], *, tex: bool = False, uncertainty: str = "sd",
             escape: Callable[[str], str] = str) -> str:
        """``0.712``, ``0.712 ± 0.020`` over seeds, "–" for none; LaTeX: ``$0.712 \\pm 0.020$`` or, with
        ``uncertainty="ci"``, the Wilson interval where there is one. ``escape`` applies to the note."""
        shown = self.shown(entry)
        if shown is None:
            return "--" if tex else "–"
        number = f"{self.scale * shown.value:.{self.digits}f}"
        if uncertainty == "sd" and shown.sd is not None:
            spread = f"{self.scale * shown.sd:.{self.digits}f}"
            number = f"${number} \\pm {spread}$" if tex else f"{number} ± {spread}"
        elif tex and uncertainty == "ci" and shown.ci is not None:
            low, high = (f"{self.scale * bound:.{self.digits}f}" for bound in shown.ci)
            number += f"\\,{{\\scriptsize[{low}, {high}]}}"
        return number + escape(shown.note)


BACKDOOR_COLUMN = Column(title="backdoor ASR %", tex=r"Backdoor ASR (\%)", pick=_backdoor, digits=1, scale=100,
                         kind="backdoor")
METRIC_COLUMNS = (
    Column(title="MIA AUC", tex="MIA AUC", pick=lambda s: _membership(s, "auc"), digits=3),
    Column(title="MIA adv.", tex="MIA adv.", pick=lambda s: _membership(s, "advantage"), digits=3),
    Column(title="TPR@1%FPR %", tex=r"TPR@1\%FPR (\%)", pick=lambda s: _membership(s, fpr_key(0.01)), digits=1,
           scale=100),
    Column(title="PSNR dB", tex="PSNR (dB)", pick=_psnr, digits=1),
    Column(title="DP ε", tex=r"DP $\varepsilon$", pick=_epsilon, digits=2),
    BACKDOOR_COLUMN,
)
SECONDS_COLUMN = Column(title="privacy s", tex="Privacy (s)", digits=1,
                        pick=lambda s: None if s.seconds is None else Shown(s.seconds))
ABSTAIN_COLUMN = Column(title="abstain %", tex=r"Abstain (\%)", pick=_abstain, digits=1, scale=100, kind="certified")
CERTIFIED_COSTS = (
    Column(title="cert s", tex=r"Cert.\ (s)", pick=partial(_certified_cost, name="seconds"), digits=1,
           kind="certified"),
    Column(title="cert passes", tex=r"Cert.\ passes", pick=partial(_certified_cost, name="forward_passes"), digits=0,
           kind="certified"),
)


def certified_columns(board: Leaderboard) -> list[Column]:
    """Certified accuracy at each ε > 0 of the board's grid (an L2 radius), then the abstain rate."""
    return [Column(title=f"cert. ε={e:g} %", tex=f"Cert.\\ $\\epsilon={e:g}$", digits=1, scale=100, kind="certified",
                   pick=partial(_certified, key=eps_key(e))) for e in board.eps if e > 0] + [ABSTAIN_COLUMN]


def main_columns(board: Leaderboard) -> tuple[list[Column], list[Column]]:
    """The privacy summary's columns a board's main table shows: metrics (after the accuracies) and costs (after the
    other seconds), each only where some entry has a number; none for a board without privacy results, a backdoor
    or certificates."""
    def present(column: Column) -> bool:
        return any(column.shown(entry) is not None for entry in board.summary)

    from benchmark.entry_columns import entry_columns

    metrics = [*METRIC_COLUMNS, *certified_columns(board), *entry_columns(board)]
    return [c for c in metrics if present(c)], [c for c in (SECONDS_COLUMN, *CERTIFIED_COSTS) if present(c)]


#: Legend lines, each shown when a board shows one of its columns.
LEGEND = (
    ({"MIA AUC", "MIA adv.", "TPR@1%FPR %"},
     "MIA AUC, MIA adv., TPR@1%FPR: membership inference on the evaluation half of the member/non-member split, the "
     "highest any attack that ran reached (the per-seed table names it); AUC 0.5 and adv. 0 are a guess. MIA adv. is "
     "the largest TPR − FPR over thresholds; TPR@1%FPR the members found (%) at ≤ 1 % false positives (Carlini et al. "
     "2022), with a Wilson 95 % interval over the members (per-seed table, CSV, JSON). AUC and adv. have no interval: "
     "the advantage is a maximum, over thresholds chosen on the same samples, of a difference of two proportions, "
     "which a binomial interval does not cover."),
    ({"PSNR dB"},
     "PSNR dB: gradient inversion of a client's update by the server (federated rows), in the attacker's best setting "
     "(smallest batch, fewest local steps): mean PSNR of the reconstructions against their best-matching true images; "
     "the per-seed table gives the share recovered at the PSNR threshold, with a Wilson 95 % interval."),
    ({"DP ε"},
     "DP ε: the (ε, δ)-differential privacy the defense's accountant certifies, per sample (DP-SGD) or per client "
     "(DP-FedAvg), the largest over seeds; smaller is more private."),
    ({"backdoor ASR %"},
     "backdoor ASR: the share (%) of the evaluated test samples not of the target class that the trigger sends to the "
     "target class ({target}), mean (± sd) over seeds; federated rows whose Byzantine clients plant a backdoor. The "
     "per-seed table and the CSV give each seed's rate with a Wilson 95 % interval over those samples."),
    ({"privacy s"}, "privacy s: seconds the privacy attacks took (mean over seeds), a cost beside train s and eval s."),
    ({"abstain %"},
     "cert. ε=r %: certified accuracy (%) at L2 radius r of the smoothed classifier (Cohen et al. 2019's CERTIFY: "
     "n0 selection and N estimation draws of Gaussian noise σ, each certificate wrong with probability ≤ α; at ε=0 "
     "its accuracy), mean (± sd) over seeds, on the first evaluated test samples; abstain %: the samples where it "
     "abstained (never certified). A lower bound on robust accuracy beside the attacks' upper bound in the ε columns, "
     "where such a row's predictions are the smoothed classifier's too (a vote over n0 draws): a row where it is "
     "higher is flagged certificate_violated. {certified}"),
    ({"cert s", "cert passes"},
     "cert s, cert passes: seconds and forward passes (noisy inputs classified: samples × (n0 + N)) of the "
     "certification, mean over seeds."),
)


def targets_text(board: Leaderboard) -> str:
    """The backdoor target class(es) of a board's rows: ``target 7``, or ``targets 0, 7`` (the per-seed table says
    whose)."""
    summaries = [summary for summary in map(privacy_of, board.summary) if summary is not None]
    targets = list(dict.fromkeys(t for s in summaries if s.backdoor is not None for t in s.backdoor.targets))
    if len(targets) == 1:
        return f"target {targets[0]}"
    return f"targets {', '.join(map(str, targets))}, by row: the per-seed table names each"


def legend(board: Leaderboard) -> list[str]:
    """What the privacy columns a board shows mean ("–": not measured for that row), where a low FPR cannot be
    resolved by the non-members there were, and which privacy attacks produced nothing."""
    metrics, costs = main_columns(board)
    titles = {column.title for column in metrics + costs}
    targets = targets_text(board) if BACKDOOR_COLUMN in metrics else ""
    settings = "; ".join(settings_text(board))
    lines = [text.replace("{target}", targets).replace("{certified}", f"Settings: {settings}.")
             for shown, text in LEGEND if shown & titles]
    if lines:
        lines[0] += " In these columns, – : not measured for that row."
    summaries = [(row, summary) for row in board.rows if (summary := privacy_of(row)) is not None]
    for fpr in LOW_FPRS:
        rates = [s.membership.tpr_at_fpr.get(fpr_key(fpr)) for _, s in summaries if s.membership is not None]
        counts = [rate.n_nonmembers for rate in rates if rate is not None]
        if counts and min(counts) * fpr < 1:
            lines.append(f"TPR@{100 * fpr:g}%FPR on {min(counts)} evaluation non-members: below 1/FPR of them, the "
                         f"only threshold within {100 * fpr:g} % FPR allows no false positive at all.")
    for row, summary in summaries:
        lines += [f"{row['defense']} (seed {row['seed']}): privacy attack {attack} stopped, no numbers: {error}"
                  for attack, error in summary.errors.items()]
    return lines


def _percent(value: float) -> str:
    return f"{100 * value:.1f}"


def _by(worst: WorstCase) -> str:
    """The attack(s) that reached a worst case: one name, or each seed's joined by "/"."""
    return "/".join(dict.fromkeys(worst.attacks))


def _membership_cells(membership: MembershipSummary) -> list[str]:
    def plain(worst: WorstCase | None) -> str:
        return "–" if worst is None else f"{worst.mean:.3f} ({_by(worst)})"

    def rate(worst: WorstCase | None) -> str:
        if worst is None or worst.ci is None:
            return "–"
        low, high = worst.ci
        return f"{_percent(worst.mean)} ({_percent(low)}–{_percent(high)}; {_by(worst)})"

    worst_cases = (membership.auc, membership.advantage, *membership.tpr_at_fpr.values())
    counted = next((worst for worst in worst_cases if worst is not None), None)
    source = f" ({membership.nonmember_source})" if membership.nonmember_source else ""
    return [plain(membership.auc), plain(membership.advantage),
            *[rate(membership.tpr_at_fpr.get(fpr_key(fpr))) for fpr in LOW_FPRS],
            "–" if counted is None else f"{counted.n_members} / {counted.n_nonmembers}{source}"]


def _inversion_cells(inversion: InversionSummary) -> list[str]:
    steps = f"{inversion.local_steps} step{'s' if inversion.local_steps != 1 else ''}"
    low, high = inversion.ci
    return [f"{inversion.psnr:.1f} ({inversion.attack}, batch {inversion.batch_size}, {steps})",
            f"{_percent(inversion.share)} ({_percent(low)}–{_percent(high)}) at ≥ {inversion.psnr_threshold:g} dB, "
            f"{inversion.recovered} of {inversion.images}"]


def _backdoor_cells(backdoor: BackdoorSummary) -> list[str]:
    low, high = backdoor.ci
    targets = "/".join(map(str, dict.fromkeys(backdoor.targets)))
    return [f"{_percent(backdoor.success_rate)} ({_percent(low)}–{_percent(high)}; target {targets}, "
            f"{backdoor.n} samples)"]


BACKDOOR_DETAIL = "backdoor ASR % (95% CI; target, samples)"
#: The per-seed table's column groups: titles, the part of a summary they show, and its cells.
DETAIL = (
    (["MIA AUC (attack)", "MIA adv. (attack)", *[f"TPR@{100 * fpr:g}%FPR % (95% CI; attack)" for fpr in LOW_FPRS],
      "eval members / non-members"], lambda s: s.membership, _membership_cells),
    (["PSNR dB (attack, setting)", "recovered % (95% CI)"], lambda s: s.inversion, _inversion_cells),
    (["DP ε (δ, level, accountant)"], lambda s: s.dp,
     lambda dp: [f"{dp.epsilon:.2f} (δ={dp.delta:g}, {dp.level}, {dp.accountant})"]),
    ([BACKDOOR_DETAIL], lambda s: s.backdoor, _backdoor_cells),
    (["privacy s"], lambda s: s.seconds, lambda seconds: [f"{seconds:.1f}"]),
)


def detail_title(board: Leaderboard) -> str:
    """The per-seed table's heading: ``Privacy per seed``, ``Backdoor per seed`` or both, after what it shows."""
    header, _ = detail_cells(board)
    if BACKDOOR_DETAIL not in header:
        return "Privacy per seed"
    privacy = set(header) - {"defense", "seed", BACKDOOR_DETAIL}
    return "Privacy and backdoor per seed" if privacy else "Backdoor per seed"


def detail_cells(board: Leaderboard) -> tuple[list[str], list[list[str]]]:
    """Header and body of the per-seed privacy table (the worst case's attack, the TPRs at every low FPR with their
    Wilson intervals, the sample counts, the inversion setting and share recovered, δ); empty without privacy."""
    rows = [(row, summary) for row in board.rows if (summary := privacy_of(row)) is not None]
    groups = [group for group in DETAIL if any(group[1](summary) is not None for _, summary in rows)]
    if not groups:  # rows with certificates only: the main table and the CSV hold them
        return [], []
    header = ["defense", "seed", *[title for titles, _, _ in groups for title in titles]]
    body = []
    for row, summary in rows:
        cells = [row["defense"], str(row["seed"])]
        for titles, part, texts in groups:
            shown = part(summary)
            cells += ["–"] * len(titles) if shown is None else texts(shown)
        body.append(cells)
    return header, body


#: The CSV's privacy columns (after the others; written only when some row has privacy results).
CSV_COLUMNS = (
    "mia_auc", "mia_auc_attack", "mia_advantage", "mia_advantage_attack",
    *[f"mia_tpr_at_{fpr_key(fpr)}_fpr{end}" for fpr in LOW_FPRS for end in ("", "_ci_low", "_ci_high", "_attack")],
    "mia_eval_members", "mia_eval_nonmembers", "psnr_db", "inversion_batch_size", "inversion_local_steps",
    "recovered_share", "recovered_ci_low", "recovered_ci_high", "psnr_threshold", "dp_epsilon", "dp_delta", "dp_level",
    "privacy_seconds",
)
#: The CSV's backdoor columns (after those; written only when some row has a backdoor).
BACKDOOR_CSV_COLUMNS = ("backdoor_target", "backdoor_success_rate", "backdoor_ci_low", "backdoor_ci_high",
                        "backdoor_n")


#: The CSV's certification columns (after those, with ``certified_<ε>`` before them for each ε of the grid; written
#: only when some row has certificates).
CERTIFIED_CSV_COLUMNS = ("abstain_rate", "cert_sigma", "cert_n0", "cert_n", "cert_alpha", "cert_samples",
                         "cert_seconds", "cert_forward_passes")


def csv_header(board: Leaderboard) -> list[str]:
    """The privacy columns where some row has privacy results, then the backdoor columns where some row has one,
    then the certification columns where some row has certificates."""
    privacy = list(CSV_COLUMNS) if any("privacy" in row for row in board.rows) else []
    backdoor = list(BACKDOOR_CSV_COLUMNS) if any("backdoor" in row for row in board.rows) else []
    certified = ([f"certified_{eps_key(e)}" for e in board.eps] + list(CERTIFIED_CSV_COLUMNS)
                 if any("certification" in row for row in board.rows) else [])
    return privacy + backdoor + certified


def csv_cells(row: dict[str, Any], header: list[str]) -> list[Any]:
    """A row's values for the columns of ``header`` (``csv_header``; "" where it has none)."""
    summary = privacy_of(row)
    values = {} if summary is None else csv_values(summary)
    return [values.get(column, "") for column in header]


def csv_values(summary: PrivacySummary) -> dict[str, Any]:
    values: dict[str, Any] = {"privacy_seconds": summary.seconds}
    membership = summary.membership
    if membership is not None:
        named = {"mia_auc": membership.auc, "mia_advantage": membership.advantage,
                 **{f"mia_tpr_at_{key}_fpr": worst for key, worst in membership.tpr_at_fpr.items()}}
        for name, worst in named.items():
            if worst is not None:
                values.update({name: worst.mean, f"{name}_attack": _by(worst), "mia_eval_members": worst.n_members,
                               "mia_eval_nonmembers": worst.n_nonmembers})
                if worst.ci is not None:
                    values[f"{name}_ci_low"], values[f"{name}_ci_high"] = worst.ci
    if summary.inversion is not None:
        found = summary.inversion
        values.update({"psnr_db": found.psnr, "inversion_batch_size": found.batch_size,
                       "inversion_local_steps": found.local_steps, "recovered_share": found.share,
                       "recovered_ci_low": found.ci[0], "recovered_ci_high": found.ci[1],
                       "psnr_threshold": found.psnr_threshold})
    if summary.dp is not None:
        values.update({"dp_epsilon": summary.dp.epsilon, "dp_delta": summary.dp.delta, "dp_level": summary.dp.level})
    if summary.backdoor is not None:
        found = summary.backdoor
        values.update({"backdoor_target": "/".join(map(str, dict.fromkeys(found.targets))),
                       "backdoor_success_rate": found.success_rate, "backdoor_ci_low": found.ci[0],
                       "backdoor_ci_high": found.ci[1], "backdoor_n": found.n})
    if summary.certified is not None:
        values.update(summary.certified.csv_values())
    return values
