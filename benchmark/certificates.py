"""A job's certificates beside its empirical robustness: randomized smoothing's (``benchmark.certify_stage``, for a
defense with certification settings) and interval bound propagation's (``benchmark.ibp_stage``, with ``--ibp``). Each
is held against the sweep's empirical robust accuracy on the same samples (``validity``: ``certificate_violated``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Certificates:
    smoothing: Any = None  # ``certify_stage.CertifiedOutcome`` (None: not a smoothed defense)
    ibp: Any = None  # ``ibp_stage.IBPResult`` (None: no --ibp)

    @property
    def present(self) -> tuple[Any, ...]:
        """The certificates the job has, for the validity check."""
        return tuple(found for found in (self.smoothing, self.ibp) if found is not None)


def certificates_of(job: Any, x: np.ndarray, y: np.ndarray, model: Any, *, nb_classes: int, batch_size: int,
                    progress: Any = None) -> Certificates:
    """The job's certificates on the evaluated samples ``x``, ``y`` of ``model`` (what the attacks saw)."""
    from benchmark.certify_stage import certification_of
    from benchmark.ibp_stage import ibp_of

    return Certificates(smoothing=certification_of(job, x, y, model, nb_classes, progress),
                        ibp=ibp_of(job, model, x, y, batch_size))
