"""The privacy axis's typed results, kept in ``Record.privacy`` and ``Record.dp``.

* ``MembershipOutcome``: one membership-inference attack scored on the evaluation half of a fixed member/non-member
  split (``MembershipSplitInfo``): AUC, advantage (max TPR − FPR over thresholds) and the TPR at low FPRs (Carlini et
  al. 2022, "Membership inference attacks from first principles"), with the sample counts behind them.
* ``InversionOutcome``: gradient inversion of client updates (Zhu et al. 2019; Geiping et al. 2020): per setting
  (client batch size × local steps), the PSNR and SSIM of each reconstruction against its best-matching true image.
* ``DPGuarantee``: what a differentially private defense's accountant certifies for the trained model.

Every type reads back from its JSON form (``from_json``), ignoring unknown keys, so records stay readable both ways.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

#: The false-positive rates at which each membership attack's TPR is reported (keys of ``tpr_at_fpr``).
LOW_FPRS = (0.01, 0.001)


def fpr_key(fpr: float) -> str:
    """How an FPR is written as a JSON key: ``0.01`` → ``"0.01"``."""
    return f"{fpr:g}"


def eps_key(eps: float) -> str:
    """How an ε is written as a JSON key: ``0.1`` → ``"0.1"`` (here, beside ``from_fields``, so that the record parts
    ``benchmark.record`` imports can use it too)."""
    return f"{eps:g}"


def from_fields(cls: type, data: Any, **convert: Any) -> Any:
    """``cls`` from the keys of ``data`` that name its fields (each through ``convert[name]`` where given); a missing
    field takes the dataclass's default, unknown keys are ignored: how every typed result reads its JSON form."""
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object for {cls.__name__}, got {type(data).__name__}")
    values = {f.name: data[f.name] for f in dataclasses.fields(cls) if f.name in data}
    try:
        return cls(**{name: convert[name](value) if name in convert else value for name, value in values.items()})
    except (TypeError, AttributeError) as exc:  # a field without default is missing, or a value of the wrong shape
        raise ValueError(f"{cls.__name__}: {exc}") from None


@dataclass(frozen=True, kw_only=True)
class MembershipSplitInfo:
    """Which samples were members and non-members: members are training samples the model was trained on;
    non-members come from ``nonmember_source`` ("holdout": training samples beyond ``--n-train``, never trained on;
    "test": the test split). Each side is halved: the attack-train half (for attacks that learn or calibrate) and the
    evaluation half every attack is scored on. ``indices_sha256`` hashes the chosen indices (members, then
    non-members), so two records with the same value attacked the same samples."""

    members: int  # per side, both halves together
    nonmembers: int
    nonmember_source: str  # "holdout" or "test"
    eval_members: int
    eval_nonmembers: int
    seed: int
    indices_sha256: str

    @classmethod
    def from_json(cls, data: Any) -> MembershipSplitInfo:
        return from_fields(cls, data)


@dataclass(frozen=True, kw_only=True)
class MembershipOutcome:
    """One membership attack on the evaluation half: ``auc`` (ROC AUC of its scores, members positive),
    ``advantage`` (max over thresholds of TPR − FPR), ``tpr_at_fpr`` (``fpr_key`` → the highest TPR at an FPR at
    most that; 0 where no threshold reaches it), the counts behind them, its cost, and ``error`` (why it produced
    nothing; then the numbers are None)."""

    auc: float | None
    advantage: float | None
    tpr_at_fpr: dict[str, float] = field(default_factory=dict)
    n_members: int = 0
    n_nonmembers: int = 0
    seconds: float = 0.0
    queries: int = 0  # predictions it asked of the model
    error: str | None = None

    @classmethod
    def from_json(cls, data: Any) -> MembershipOutcome:
        return from_fields(cls, data)


@dataclass(frozen=True, kw_only=True)
class InversionSetting:
    """Reconstructions of one client setting: a client with ``batch_size`` images taking ``local_steps`` SGD steps;
    ``psnr`` and ``ssim`` per reconstructed image, each against its best-matching true image of that client."""

    batch_size: int
    local_steps: int
    psnr: tuple[float, ...]
    ssim: tuple[float, ...]

    @property
    def mean_psnr(self) -> float:
        return sum(self.psnr) / len(self.psnr) if self.psnr else float("nan")

    def recovered(self, threshold: float) -> int:
        """How many reconstructions reach ``threshold`` dB."""
        return sum(p >= threshold for p in self.psnr)

    @classmethod
    def from_json(cls, data: Any) -> InversionSetting:
        return from_fields(cls, data, psnr=tuple, ssim=tuple)


@dataclass(frozen=True, kw_only=True)
class InversionOutcome:
    """Gradient inversion of the updates a federated defense's clients send: one ``InversionSetting`` per (batch
    size, local steps); an image counts as recovered at ``psnr_threshold`` dB or more."""

    attack: str  # the plugin's label
    settings: tuple[InversionSetting, ...]
    psnr_threshold: float
    seconds: float = 0.0
    error: str | None = None

    @property
    def headline(self) -> InversionSetting | None:
        """The setting leaderboards show: the first (the smallest batch and fewest steps, the attacker's best case)."""
        return self.settings[0] if self.settings else None

    @classmethod
    def from_json(cls, data: Any) -> InversionOutcome:
        return from_fields(cls, data, settings=lambda items: tuple(InversionSetting.from_json(item) for item in items))


@dataclass(frozen=True, kw_only=True)
class PrivacyResult:
    """The privacy attacks run on one trained model: membership attacks by label (in the order they ran), the split
    they shared, gradient inversion (federated defenses only), the seconds all of them took, and what re-runs them
    (``attacks``: every attack asked for with its parameters; ``mia_samples``)."""

    membership: dict[str, MembershipOutcome] = field(default_factory=dict)
    split: MembershipSplitInfo | None = None
    inversion: InversionOutcome | None = None
    seconds: float = 0.0
    attacks: dict[str, dict[str, Any]] = field(default_factory=dict)  # label → every parameter, in the order run
    mia_samples: int | None = None  # --mia-samples as given (None: the default size)

    @classmethod
    def from_json(cls, data: Any) -> PrivacyResult:
        return from_fields(cls, data,
                      membership=lambda items: {k: MembershipOutcome.from_json(v) for k, v in items.items()},
                      split=lambda item: None if item is None else MembershipSplitInfo.from_json(item),
                      inversion=lambda item: None if item is None else InversionOutcome.from_json(item))


@dataclass(frozen=True, kw_only=True)
class DPGuarantee:
    """What a differentially private defense's accountant certifies: (``epsilon``, ``delta``)-DP at the ``level`` of
    a sample ("sample": DP-SGD) or of a client's whole data ("client": DP-FedAvg), from ``accountant`` (Opacus's
    "rdp" or "prv") over ``steps`` noisy steps (or rounds) at ``sample_rate`` with ``noise_multiplier`` σ and clipping
    norm ``max_grad_norm``."""

    epsilon: float
    delta: float
    level: str
    accountant: str
    noise_multiplier: float
    max_grad_norm: float
    sample_rate: float
    steps: int

    @classmethod
    def from_json(cls, data: Any) -> DPGuarantee:
        return from_fields(cls, data)


@dataclass(frozen=True, kw_only=True)
class BackdoorOutcome:
    """A backdoor's success on the trained model (federated rows whose Byzantine clients plant one): the share of
    the evaluated test samples not of class ``target`` that the triggered input sends to ``target``, and how many
    such samples there were."""

    target: int
    success_rate: float
    n: int

    @classmethod
    def from_json(cls, data: Any) -> BackdoorOutcome:
        return from_fields(cls, data)


@dataclass(frozen=True, kw_only=True)
class ClientThreat:
    """The Byzantine clients of a federated row: the client attack, with all its parameters (defaults included); its
    kind (``update``: it replaces the attackers' updates; ``data``: it poisons their data); whether it read the
    round's honest updates (``omniscient``, the setting of ALIE, IPM, min-max and min-sum); how many clients attack,
    how they are chosen (``fixed`` or drawn each ``round``) and from which round."""

    attack: str
    params: dict[str, Any]
    kind: str
    omniscient: bool
    attackers: int
    sampling: str
    attack_start: int

    @classmethod
    def from_json(cls, data: Any) -> ClientThreat:
        return from_fields(cls, data)

