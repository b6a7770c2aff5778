"""The certified part of a leaderboard: a row whose record has randomized-smoothing certificates
(``Record.certification``, ``benchmark.certify_stage``) keeps their summary under ``"certification"`` (one seed);
``benchmark.leaderboard_privacy.privacy_of`` joins it to the row's privacy summary, and a summary entry's
``"privacy"`` carries it over the seeds (``combine_certified``), only where there is one, as the backdoor is carried.
``benchmark.privacy_columns`` shows it: certified accuracy at each ε > 0 (an L2 radius), the abstain rate, the
certification's seconds and forward passes, and a legend line with the setting (σ, n0, N, α, samples).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from benchmark.privacy import from_fields
from benchmark.stats import mean_sd, wilson

if TYPE_CHECKING:
    from benchmark.leaderboard import Leaderboard
    from benchmark.record import Record


@dataclass(frozen=True, kw_only=True)
class CertifiedSummary:
    """Certificates over seeds, each tuple per seed: certified accuracy per ε key (an L2 radius), abstain rate, the
    samples certified, N estimation draws (by device, when ``n`` was 0), seconds and forward passes; the setting
    shared by the seeds (σ, n0 selection draws, α)."""

    accuracy: dict[str, tuple[float, ...]]
    abstain_rate: tuple[float, ...]
    samples: tuple[int, ...]
    n: tuple[int, ...]
    seconds: tuple[float, ...]
    forward_passes: tuple[int, ...]
    sigma: float
    n0: int
    alpha: float

    def stat(self, values: Sequence[float]) -> tuple[float, float | None, tuple[float, float]]:
        """Mean, sd over seeds (None for one seed) and the Wilson 95 % interval over the pooled samples of a
        per-seed share."""
        mean, sd = mean_sd(list(values))
        hits = sum(round(value * count) for value, count in zip(values, self.samples, strict=True))
        return mean, sd if len(values) > 1 else None, wilson(hits, sum(self.samples))

    def setting_text(self, *, tex: bool = False) -> str:
        """``σ=0.25, n0=100, N=10,000, α=0.001, 360 samples`` (per seed where they differ), or its LaTeX form."""
        draws = "/".join(f"{n:,}" for n in dict.fromkeys(self.n))
        samples = "/".join(str(count) for count in dict.fromkeys(self.samples))
        if tex:
            return (f"$\\sigma={self.sigma:g}$, $n_0={self.n0}$, $N={draws.replace(',', '{,}')}$, "
                    f"$\\alpha={self.alpha:g}$, {samples} samples")
        return f"σ={self.sigma:g}, n0={self.n0}, N={draws}, α={self.alpha:g}, {samples} samples"

    def csv_values(self) -> dict[str, Any]:
        """A row's (one seed's) CSV fields (``benchmark.privacy_columns.CERTIFIED_CSV_COLUMNS``)."""
        return {**{f"certified_{key}": values[0] for key, values in self.accuracy.items()},
                "abstain_rate": self.abstain_rate[0], "cert_sigma": self.sigma, "cert_n0": self.n0, "cert_n": self.n[0],
                "cert_alpha": self.alpha, "cert_samples": self.samples[0], "cert_seconds": self.seconds[0],
                "cert_forward_passes": self.forward_passes[0]}

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> CertifiedSummary:
        return from_fields(cls, data, accuracy=lambda items: {key: tuple(values) for key, values in items.items()},
                           abstain_rate=tuple, samples=tuple, n=tuple, seconds=tuple, forward_passes=tuple)


def record_certified(record: Record) -> CertifiedSummary | None:
    """One seed's summary of a record's certificates; None without any."""
    found = record.certification
    if found is None:
        return None
    certification = found.certification
    return CertifiedSummary(accuracy={key: (value,) for key, value in found.accuracy.items()},
                            abstain_rate=(found.abstain_rate,), samples=(found.samples,), n=(certification.n,),
                            seconds=(certification.seconds,), forward_passes=(certification.forward_passes,),
                            sigma=certification.sigma, n0=certification.n0, alpha=certification.alpha)


def certified_row(record: Record) -> dict[str, Any]:
    """``{"certification": …}`` for a record with certificates (what its leaderboard row adds), else nothing."""
    summary = record_certified(record)
    return {} if summary is None else {"certification": summary.to_json()}


def row_certified(data: Any) -> CertifiedSummary:
    """A row's ``"certification"`` (a fresh board's or a baseline file's) as one seed's summary."""
    try:
        return CertifiedSummary.from_json(data)
    except (TypeError, AttributeError) as exc:  # a baseline file's value of the wrong type
        raise ValueError(f"certification: {exc}") from None


def combine_certified(parts: Sequence[CertifiedSummary]) -> CertifiedSummary:
    """Several seeds' summaries as one (per-seed tuples joined in ``parts``' order; the setting of the first)."""
    keys = dict.fromkeys(key for part in parts for key in part.accuracy)

    def joined(name: str) -> tuple[Any, ...]:
        return tuple(value for part in parts for value in getattr(part, name))

    return dataclasses.replace(
        parts[0], accuracy={key: tuple(v for part in parts for v in part.accuracy.get(key, ())) for key in keys},
        **{name: joined(name) for name in ("abstain_rate", "samples", "n", "seconds", "forward_passes")})


def entry_certified(entry: dict[str, Any]) -> CertifiedSummary | None:
    """A summary entry's certificates over its seeds (under its ``"privacy"``); None without any."""
    data = (entry.get("privacy") or {}).get("certified")
    return None if data is None else CertifiedSummary.from_json(data)


def settings_text(board: Leaderboard, *, tex: bool = False, escape: Callable[[str], str] = str) -> list[str]:
    """Per summary entry with certificates: ``defense: σ=0.25, n0=100, N=10,000, α=0.001, 360 samples`` (LaTeX with
    ``tex``; ``escape`` applies to the defense)."""
    found = [(entry, entry_certified(entry)) for entry in board.summary]
    return [f"{escape(entry['defense'])}: {summary.setting_text(tex=tex)}" for entry, summary in found
            if summary is not None]


def certified_caption(board: Leaderboard, escape: Callable[[str], str]) -> str:
    """The LaTeX caption's sentence on the certified columns (with a space before it), or "" without any."""
    settings = settings_text(board, tex=True, escape=escape)
    if not settings:
        return ""
    return (r" Cert.\ columns (never bold): certified accuracy (\%) at $\ell_2$ radius $\epsilon$ of the smoothed "
            r"classifier (Cohen et al.\ 2019's CERTIFY; " + "; ".join(settings) + r"), abstentions never certified; "
            r"Abstain: their share (\%); a lower bound on the robust accuracy, which the attacks bound from above.")
