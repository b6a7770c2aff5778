"""The privacy part of a leaderboard. Per row (one seed) and per summary entry (a defense × model over its seeds),
a typed ``PrivacySummary`` of the privacy attacks that ran (``Record.privacy``) and the DP guarantee the model carries
(``Record.dp``); ``benchmark.leaderboard`` keeps its JSON form under ``"privacy"``, only where there is one, so a
leaderboard without privacy results is exactly what it was. Renderers read it back (``privacy_of``), never a record;
``benchmark.privacy_columns`` says what each of them shows, ``bench check`` holds the advantage (``advantage_of``).

* Membership inference: the worst case (highest) over the membership attacks that ran of AUC, advantage and TPR at
  each of ``LOW_FPRS``, each with the attack that reached it and the evaluation samples behind it. TPR at an FPR is
  the share of members found at a threshold the non-members set, so given that threshold each member is found or not
  independently: a proportion, with a Wilson 95 % interval over the members. AUC (a rank statistic) and advantage
  have none: the advantage is a maximum, over thresholds chosen on the same samples, of a difference of two
  proportions, and a binomial interval at the chosen threshold would not cover that selection.
* Reconstruction (federated rows): ``InversionOutcome.headline``'s mean PSNR, and the share of its images recovered
  at the outcome's PSNR threshold, with a Wilson interval.
* DP: ε and δ of the defense's accountant at the level it certifies (sample or client).
* Cost: the privacy attacks' seconds, a cost column beside training and evaluation seconds.
* Backdoor (federated rows whose Byzantine clients plant one): the share of the evaluated test samples not of the
  target class that the trigger sends to it, with a Wilson interval over those samples. Not a privacy number, but
  read and shown the same way: a row keeps it under its own key (``"backdoor"``, ``benchmark.leaderboard.backdoor_row``,
  what ``bench check`` holds), which ``privacy_of`` joins to the row's summary, and a summary entry's ``"privacy"``
  carries it over the seeds, only where there is one (a board without a backdoor is exactly what it was).
* Certificates (randomized smoothing): joined and carried the same way, under the row's ``"certification"``
  (``benchmark.leaderboard_certified``).

Over seeds, as for accuracies: mean ± sd of the seeds' values and Wilson intervals over the pooled samples; DP ε is
the largest over the seeds (the guarantee every seed's model has).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from benchmark.leaderboard_certified import CertifiedSummary, certified_row, combine_certified, row_certified
from benchmark.privacy import (
    LOW_FPRS,
    BackdoorOutcome,
    DPGuarantee,
    InversionOutcome,
    MembershipOutcome,
    PrivacyResult,
    fpr_key,
)
from benchmark.privacy import from_fields as build
from benchmark.stats import mean_sd, wilson

if TYPE_CHECKING:
    from benchmark.record import Record


def _spread(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sd over seeds; sd None where it is undefined (an infinite PSNR: a perfect reconstruction)."""
    if all(math.isfinite(value) for value in values):
        return mean_sd(values)
    return sum(values) / len(values), None


def _interval(data: Any) -> tuple[float, float] | None:
    return None if data is None else tuple(data)


def _optional(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda data: None if data is None else parse(data)


@dataclass(frozen=True, kw_only=True)
class WorstCase:
    """One membership metric, the highest any attack reached: per seed, the value and the attack; over seeds, their
    mean ± sd. Counts are evaluation samples summed over seeds; ``found`` and ``ci`` only for a TPR (members found,
    Wilson 95 % over ``n_members``)."""

    mean: float
    sd: float | None
    values: tuple[float, ...]
    attacks: tuple[str, ...]
    n_members: int
    n_nonmembers: int
    found: int | None = None
    ci: tuple[float, float] | None = None

    @classmethod
    def from_json(cls, data: Any) -> WorstCase:
        return build(cls, data, values=tuple, attacks=tuple, ci=_interval)


@dataclass(frozen=True, kw_only=True)
class MembershipSummary:
    """The membership attacks' worst cases (``tpr_at_fpr`` by ``fpr_key``), the attacks that produced numbers and
    where the non-members came from."""

    auc: WorstCase | None
    advantage: WorstCase | None
    tpr_at_fpr: dict[str, WorstCase] = field(default_factory=dict)
    attacks: tuple[str, ...] = ()
    nonmember_source: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> MembershipSummary:
        worst = _optional(WorstCase.from_json)
        return build(cls, data, auc=worst, advantage=worst, attacks=tuple,
                     tpr_at_fpr=lambda items: {key: WorstCase.from_json(item) for key, item in items.items()})


@dataclass(frozen=True, kw_only=True)
class InversionSummary:
    """Gradient inversion's headline setting (a client with ``batch_size`` images taking ``local_steps`` steps):
    mean PSNR per seed (dB; over seeds mean ± sd) and the images recovered at ``psnr_threshold`` dB or more, summed
    over seeds, with a Wilson 95 % interval on the share."""

    attack: str
    batch_size: int
    local_steps: int
    psnr: float
    psnr_sd: float | None
    psnr_values: tuple[float, ...]
    psnr_threshold: float
    recovered: int
    images: int
    ci: tuple[float, float]

    @property
    def share(self) -> float:
        return self.recovered / self.images

    @classmethod
    def from_json(cls, data: Any) -> InversionSummary:
        return build(cls, data, psnr_values=tuple, ci=_interval)


@dataclass(frozen=True, kw_only=True)
class DPSummary:
    """A DP defense's guarantee: ``epsilon`` the largest over seeds (``values`` per seed), at ``delta`` and
    ``level`` ("sample" or "client") from ``accountant``."""

    epsilon: float
    values: tuple[float, ...]
    delta: float
    level: str
    accountant: str

    @classmethod
    def from_json(cls, data: Any) -> DPSummary:
        return build(cls, data, values=tuple)


@dataclass(frozen=True, kw_only=True)
class BackdoorSummary:
    """A planted backdoor's success: per seed, the share of the evaluated test samples not of the target class
    (``targets``, one per seed) that the trigger sends to it (``values``); over seeds their mean ± sd, and the
    samples sent (``hits``) and evaluated (``n``) summed, with a Wilson 95 % interval on the pooled share."""

    success_rate: float
    sd: float | None
    values: tuple[float, ...]
    targets: tuple[int, ...]
    hits: int
    n: int
    ci: tuple[float, float]

    @classmethod
    def from_json(cls, data: Any) -> BackdoorSummary:
        return build(cls, data, values=tuple, targets=tuple, ci=_interval)


@dataclass(frozen=True, kw_only=True)
class PrivacySummary:
    """What a leaderboard row shows of privacy (and of a planted backdoor); ``seconds`` is the privacy attacks' cost
    (mean over seeds; None: none ran) and ``errors`` says, per attack, why one produced no numbers."""

    seeds: tuple[int, ...]
    membership: MembershipSummary | None = None
    inversion: InversionSummary | None = None
    dp: DPSummary | None = None
    seconds: float | None = None
    errors: dict[str, str] = field(default_factory=dict)
    backdoor: BackdoorSummary | None = None
    certified: CertifiedSummary | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON form; ``backdoor`` and ``certified`` only where there is one, so a board without them is what it
        was before."""
        data = dataclasses.asdict(self)
        for name in ("backdoor", "certified"):
            if getattr(self, name) is None:
                del data[name]
        return data

    @classmethod
    def from_json(cls, data: Any) -> PrivacySummary:
        return build(cls, data, seeds=tuple, membership=_optional(MembershipSummary.from_json),
                     inversion=_optional(InversionSummary.from_json), dp=_optional(DPSummary.from_json),
                     backdoor=_optional(BackdoorSummary.from_json), certified=_optional(CertifiedSummary.from_json))


def record_privacy(record: Record) -> PrivacySummary | None:
    """The privacy summary of one record (one seed); None when it has neither privacy results nor a DP guarantee."""
    if record.privacy is None and record.dp is None:
        return None
    result = record.privacy or PrivacyResult()
    errors = {label: outcome.error for label, outcome in result.membership.items() if outcome.error}
    if result.inversion is not None and result.inversion.error:
        errors[result.inversion.attack] = result.inversion.error
    return PrivacySummary(seeds=(record.seed,), membership=membership_summary(result),
                          inversion=inversion_summary(result.inversion), dp=dp_summary(record.dp),
                          seconds=None if record.privacy is None else result.seconds, errors=errors)


def membership_summary(result: PrivacyResult) -> MembershipSummary | None:
    outcomes = {label: outcome for label, outcome in result.membership.items() if outcome.error is None}
    if not outcomes:
        return None
    source = None if result.split is None else result.split.nonmember_source
    tpr = {key: worst_of(outcomes, _tpr_at(key), proportion=True) for key in map(fpr_key, LOW_FPRS)}
    return MembershipSummary(auc=worst_of(outcomes, lambda outcome: outcome.auc),
                             advantage=worst_of(outcomes, lambda outcome: outcome.advantage),
                             tpr_at_fpr={key: worst for key, worst in tpr.items() if worst is not None},
                             attacks=tuple(outcomes), nonmember_source=source)


def _tpr_at(key: str) -> Callable[[MembershipOutcome], float | None]:
    return lambda outcome: outcome.tpr_at_fpr.get(key)


def worst_of(outcomes: dict[str, MembershipOutcome], metric: Callable[[MembershipOutcome], float | None], *,
             proportion: bool = False) -> WorstCase | None:
    """The highest ``metric`` over ``outcomes`` (the first attack to reach it), None if no attack has it."""
    scored = [(value, label) for label, outcome in outcomes.items() if (value := metric(outcome)) is not None]
    if not scored:
        return None
    value, label = max(scored, key=lambda pair: pair[0])
    outcome = outcomes[label]
    found = round(value * outcome.n_members) if proportion else None
    return WorstCase(mean=value, sd=0.0, values=(value,), attacks=(label,), n_members=outcome.n_members,
                     n_nonmembers=outcome.n_nonmembers, found=found,
                     ci=None if found is None else wilson(found, outcome.n_members))


def inversion_summary(outcome: InversionOutcome | None) -> InversionSummary | None:
    setting = None if outcome is None or outcome.error else outcome.headline
    if setting is None or not setting.psnr:
        return None
    recovered, images = setting.recovered(outcome.psnr_threshold), len(setting.psnr)
    return InversionSummary(attack=outcome.attack, batch_size=setting.batch_size, local_steps=setting.local_steps,
                            psnr=setting.mean_psnr, psnr_sd=0.0, psnr_values=(setting.mean_psnr,),
                            psnr_threshold=outcome.psnr_threshold, recovered=recovered, images=images,
                            ci=wilson(recovered, images))


def dp_summary(guarantee: DPGuarantee | None) -> DPSummary | None:
    if guarantee is None:
        return None
    return DPSummary(epsilon=guarantee.epsilon, values=(guarantee.epsilon,), delta=guarantee.delta,
                     level=guarantee.level, accountant=guarantee.accountant)


def backdoor_summary(outcome: BackdoorOutcome) -> BackdoorSummary:
    """One seed's backdoor (``hits``: the samples the trigger sent to the target)."""
    hits = round(outcome.success_rate * outcome.n)
    return BackdoorSummary(success_rate=outcome.success_rate, sd=0.0, values=(outcome.success_rate,),
                           targets=(outcome.target,), hits=hits, n=outcome.n, ci=wilson(hits, outcome.n))


def combine(parts: Sequence[PrivacySummary]) -> PrivacySummary:
    """Several seeds' summaries as one (each part's numbers are per seed, in ``parts``' order)."""
    memberships = [part.membership for part in parts if part.membership is not None]
    inversions = [part.inversion for part in parts if part.inversion is not None]
    guarantees = [part.dp for part in parts if part.dp is not None]
    seconds = [part.seconds for part in parts if part.seconds is not None]
    backdoors = [part.backdoor for part in parts if part.backdoor is not None]
    certified = [part.certified for part in parts if part.certified is not None]
    return PrivacySummary(
        seeds=tuple(seed for part in parts for seed in part.seeds),
        membership=combine_membership(memberships) if memberships else None,
        inversion=combine_inversion(inversions) if inversions else None,
        dp=combine_dp(guarantees) if guarantees else None,
        seconds=mean_sd(seconds)[0] if seconds else None,
        errors={label: error for part in reversed(parts) for label, error in part.errors.items()},
        backdoor=combine_backdoor(backdoors) if backdoors else None,
        certified=combine_certified(certified) if certified else None,
    )


def combine_worst(parts: Sequence[WorstCase | None]) -> WorstCase | None:
    parts = [part for part in parts if part is not None]
    if not parts:
        return None
    values = tuple(value for part in parts for value in part.values)
    mean, sd = _spread(values)
    members = sum(part.n_members for part in parts)
    found = None if any(part.found is None for part in parts) else sum(part.found for part in parts)
    return WorstCase(mean=mean, sd=sd, values=values, attacks=tuple(a for part in parts for a in part.attacks),
                     n_members=members, n_nonmembers=sum(part.n_nonmembers for part in parts), found=found,
                     ci=None if found is None else wilson(found, members))


def combine_membership(parts: Sequence[MembershipSummary]) -> MembershipSummary:
    keys = dict.fromkeys(key for part in parts for key in part.tpr_at_fpr)
    sources = sorted({part.nonmember_source for part in parts if part.nonmember_source})
    return MembershipSummary(
        auc=combine_worst([part.auc for part in parts]), advantage=combine_worst([part.advantage for part in parts]),
        tpr_at_fpr={key: combine_worst([part.tpr_at_fpr.get(key) for part in parts]) for key in keys},
        attacks=tuple(dict.fromkeys(a for part in parts for a in part.attacks)),
        nonmember_source=", ".join(sources) or None)


def combine_inversion(parts: Sequence[InversionSummary]) -> InversionSummary:
    values = tuple(value for part in parts for value in part.psnr_values)
    psnr, sd = _spread(values)
    recovered, images = sum(part.recovered for part in parts), sum(part.images for part in parts)
    first = parts[0]
    return dataclasses.replace(first, psnr=psnr, psnr_sd=sd, psnr_values=values, recovered=recovered, images=images,
                               ci=wilson(recovered, images))


def combine_dp(parts: Sequence[DPSummary]) -> DPSummary:
    values = tuple(value for part in parts for value in part.values)
    return DPSummary(epsilon=max(values), values=values, delta=max(part.delta for part in parts),
                     level=", ".join(dict.fromkeys(part.level for part in parts)),
                     accountant=", ".join(dict.fromkeys(part.accountant for part in parts)))


def combine_backdoor(parts: Sequence[BackdoorSummary]) -> BackdoorSummary:
    values = tuple(value for part in parts for value in part.values)
    rate, sd = _spread(values)
    hits, n = sum(part.hits for part in parts), sum(part.n for part in parts)
    return BackdoorSummary(success_rate=rate, sd=sd, values=values,
                           targets=tuple(target for part in parts for target in part.targets), hits=hits, n=n,
                           ci=wilson(hits, n))


def privacy_row(record: Record) -> dict[str, Any]:
    """What ``benchmark.leaderboard.make_row`` adds for a record: ``{"privacy": …}`` and ``{"certification": …}``
    (``benchmark.leaderboard_certified``), each only where the record has it."""
    summary = record_privacy(record)
    return ({} if summary is None else {"privacy": summary.to_json()}) | certified_row(record)


def summary_privacy(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What a summary entry adds for its rows (one per seed, by seed): ``{"privacy": …}`` over them, or nothing."""
    parts = [summary for summary in map(privacy_of, rows) if summary is not None]
    return {"privacy": combine(parts).to_json()} if parts else {}


def privacy_of(entry: dict[str, Any]) -> PrivacySummary | None:
    """The typed privacy summary of a row or summary entry (a fresh board's or a baseline file's), a row's backdoor
    and certificates (their own keys, ``"backdoor"``, ``"certification"``) joined to it; None without any."""
    data, planted, certificates = entry.get("privacy"), entry.get("backdoor"), entry.get("certification")
    joined = {"backdoor": None if planted is None else row_backdoor(planted),
              "certified": None if certificates is None else row_certified(certificates)}
    joined = {name: value for name, value in joined.items() if value is not None}
    if data is None and not joined:
        return None
    summary = PrivacySummary(seeds=(entry.get("seed"),)) if data is None else PrivacySummary.from_json(data)
    return dataclasses.replace(summary, **joined)


def row_backdoor(data: Any) -> BackdoorSummary | None:
    """A row's ``"backdoor"`` as one seed's summary; None where no test sample measured it (its rate is NaN)."""
    try:
        outcome = BackdoorOutcome.from_json(data)
        return backdoor_summary(outcome) if outcome.n else None
    except TypeError as exc:  # a baseline file's value of the wrong type
        raise ValueError(f"backdoor: {exc}") from None


def advantage_of(row: dict[str, Any]) -> float | None:
    """A row's membership advantage (the worst case over the attacks; what ``bench check`` holds); None without."""
    summary = privacy_of(row)
    membership = None if summary is None else summary.membership
    return None if membership is None or membership.advantage is None else membership.advantage.mean
