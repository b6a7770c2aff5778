"""A job's interval-bound-propagation certificate (``--ibp``; ``benchmark/ibp.py``, Gowal et al. 2018): the share of
the evaluated test samples IBP verifies at each L∞ ε of the grid, beside the empirical robust accuracy at the same ε.
A verified sample cannot be broken by any attack inside the box, so verified accuracy above the empirical robust
accuracy at an ε is impossible for a sound certificate (``violated``, the ``certificate_violated`` flag). Torch is
imported only when a certificate is computed."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.privacy import eps_key, from_fields

#: How far a certified accuracy may exceed the empirical one before it counts as a violation: float round-off only.
TOLERANCE = 1e-9


@dataclass(frozen=True, kw_only=True)
class IBPResult:
    """IBP-verified accuracy per ε key of the job's grid; per sample, the first ε index at which it is no longer
    verified (0: not even at ε = 0, i.e. misclassified; the grid's length: verified at every ε); cost."""

    verified: dict[str, float]
    verified_below: tuple[int, ...]
    seconds: float
    forward_passes: int

    @property
    def samples(self) -> int:
        """How many of the evaluated test samples were certified (all of them)."""
        return len(self.verified_below)

    def accuracy_at(self, eps: float) -> float:
        return self.verified[eps_key(eps)]

    @classmethod
    def from_json(cls, data: Any) -> IBPResult:
        return from_fields(cls, data, verified_below=tuple)


def check_model(model: Any) -> None:
    """Refuse, before any work, a model IBP cannot bound (``ibp.UnsupportedLayer`` names the layer)."""
    from benchmark.ibp import ibp_layers

    ibp_layers(model)


def ibp_of(job: Any, model: Any, x: np.ndarray, y: np.ndarray, batch_size: int) -> IBPResult | None:
    """The job's IBP certificate on ``x``, ``y`` at each ε of its grid (None unless it asked for one)."""
    if not getattr(job, "ibp", False):
        return None
    from benchmark.ibp import verified_accuracy

    start, passes = time.perf_counter(), 0
    level = np.zeros(len(y), dtype=int)
    for k, eps in enumerate(job.eps):
        verified, cost = verified_accuracy(model, x, y, eps=float(eps), batch_size=batch_size)
        level[np.asarray(verified, dtype=bool) & (level == k)] = k + 1  # verified at every ε up to this one
        passes += cost.forward_passes
    return IBPResult(verified={eps_key(e): float(np.mean(level > k)) for k, e in enumerate(job.eps)},
                     verified_below=tuple(level.tolist()), seconds=time.perf_counter() - start,
                     forward_passes=passes)


def violated(result: IBPResult | None, robust_accuracy: dict[str, float]) -> bool:
    """Whether the certificate claims more than the attacks left: verified accuracy above the empirical robust
    accuracy at some ε (keys of both dicts)."""
    if result is None:
        return False
    return any(result.verified[key] > robust_accuracy[key] + TOLERANCE for key in result.verified
               if key in robust_accuracy)


def preflight_ibp(config: Any) -> None:
    """With ``--ibp``, refuse before any work a defense whose model IBP cannot bound (a preprocessing wrapper, a
    layer it has no rule for), naming the defense, the model and the layer."""
    if not config.ibp or config.model_file is not None and not config.model_file.trainable:
        return
    from benchmark.errors import ConfigError
    from benchmark.ibp import UnsupportedLayer
    from benchmark.plan import load_dataset
    from benchmark.runner import build_network, inference_model

    data = load_dataset(config.dataset)
    for spec in config.defenses:
        network = build_network(config.model, config.model_file, data.input_shape, data.nb_classes)
        try:
            check_model(inference_model(spec.build(), network))
        except UnsupportedLayer as exc:
            raise ConfigError(f"--ibp: {spec.label} on {config.model}: {exc}") from None
