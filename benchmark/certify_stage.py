"""The certification stage of a job: for a defense with certification settings (``certify_settings(device)``, e.g.
``smoothing``), Cohen et al.'s CERTIFY (``benchmark.certify``) after the attacks, on the first ``samples`` of the
evaluated test samples, seeded by the job's seed. The record keeps it (``Record.certification``) with the certified
accuracy at each ε of the job's grid taken as an L2 radius (at ε = 0: the smoothed classifier's accuracy, abstentions
counted wrong) and the abstain rate; ``benchmark.validity`` holds it against the empirical robust accuracy on the
same samples (``certificate_violated``).

The base classifier certified is the trained network behind a clip to [0, 1]: exactly what the attacked model
draws (ART's GaussianAugmentation clips the noisy input; ``noise-aug`` trains on clipped noisy inputs). Cohen's
theorem holds for any base classifier, so the certificate is about the randomized classifier the attacks saw.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.certify import ABSTAIN, Certification
from benchmark.privacy import eps_key, from_fields

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class CertifiedOutcome:
    """A job's certificates (``certification``: the setting, per sample the class and radius, the cost) and, per ε key
    of its grid taken as an L2 radius, the certified accuracy on the certified samples, with the abstain rate."""

    certification: Certification
    accuracy: dict[str, float]
    abstain_rate: float

    @property
    def samples(self) -> int:
        """How many test samples were certified: the first that many evaluated ones."""
        return len(self.certification.predicted)

    def accuracy_at(self, eps: float) -> float:
        return self.accuracy[eps_key(eps)]

    @classmethod
    def from_json(cls, data: Any) -> CertifiedOutcome:
        return from_fields(cls, data, certification=Certification.from_json)


def outcome(certification: Certification, labels: Any, eps: tuple[float, ...]) -> CertifiedOutcome:
    """The certified accuracy of ``certification`` against ``labels`` at each ε of ``eps`` (an L2 radius; at 0 the
    share predicted correctly, abstentions counted wrong), and its abstain rate."""
    radii = [e for e in eps if e > 0]
    curve, abstain = certification.curve(labels, radii) if radii else ([], certification.abstain_rate)
    predicted = np.asarray(certification.predicted)
    at = dict(zip(radii, curve, strict=True))
    at_zero = float(np.mean((predicted == np.asarray(labels)) & (predicted != ABSTAIN)))
    return CertifiedOutcome(certification=certification, abstain_rate=float(abstain),
                            accuracy={eps_key(e): float(at[e]) if e > 0 else at_zero for e in eps})


def base_classifier(model: Any) -> Any:
    """The network CERTIFY samples: the wrapped ``net`` of a preprocessed model (else the model) behind a clip to
    [0, 1] (``Hardtanh(0, 1)``), what the attacked model classifies each noisy draw with."""
    import torch

    return torch.nn.Sequential(torch.nn.Hardtanh(0.0, 1.0), getattr(model, "net", model))


def certification_of(job: Any, x: np.ndarray, y: np.ndarray, model: Any, nb_classes: int, progress: Any = None
                     ) -> CertifiedOutcome | None:
    """The job's certificates on the first samples of ``x`` (float32 inputs), ``y``, with ``model`` (what the attacks
    saw); None unless the job's defense has certification settings. ``progress`` (``runner.Progress``) reports it."""
    from benchmark.certify import certify

    settings = getattr(job.defense.build(), "certify_settings", None)
    if settings is None:
        return None
    setting = settings(job.device)
    count = len(x) if setting.samples == 0 else min(setting.samples, len(x))
    if progress is not None:
        progress.emit("phase", text=f"{progress.label}: certification (N={setting.n:,}, {count} samples)",
                      step=progress.steps - 1, steps=progress.steps)
    certification = certify(base_classifier(model), x[:count], sigma=setting.sigma, nb_classes=nb_classes,
                            n0=setting.n0, n=setting.n, alpha=setting.alpha, batch_size=setting.batch, seed=job.seed)
    return outcome(certification, y[:count], tuple(job.eps))
