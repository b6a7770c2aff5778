"""defense-bench: train defenses under one budget, score them with ART attacks over ε sweeps, publish leaderboards.

Importing this package is cheap (no torch, no ART): the registries fill themselves on first lookup.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from benchmark.registry import Registry

__version__ = "0.2.0"

DEFENSES: Registry[Any] = Registry("defense", group="bench.defenses", builtins="defenses")
ATTACKS: Registry[Any] = Registry("attack", group="bench.attacks", builtins="attacks")
DATASETS: Registry[Any] = Registry("dataset", group="bench.datasets", builtins="benchmark.data")
MODELS: Registry[Any] = Registry("model", group="bench.models", builtins="benchmark.models")
PRIVACY: Registry[Any] = Registry("privacy attack", group="bench.privacy", builtins="attacks.privacy")
CLIENT_ATTACKS: Registry[Any] = Registry("client attack", group="bench.client_attacks", builtins="attacks.federated")

if TYPE_CHECKING:  # pragma: no cover
    import torch


def load_model(out: str = "bench-results", *, defense: str | None = None, job: str | None = None,
               raw: bool = False) -> torch.nn.Module:
    """Load a trained model back from a results directory (the newest job of ``defense``, or the job hash ``job``):
    what the attacks saw, i.e. the trained network inside the defense's ``inference_model`` wrapper if it has one;
    ``raw=True`` returns the trained network alone."""
    from benchmark.runner import load_model as _load_model

    return _load_model(out, defense=defense, job=job, raw=raw)


def __getattr__(name: str) -> Any:
    """``benchmark.evaluate`` (one call from a model and test arrays to a ``Result``) and ``benchmark.Result``,
    imported on first use (``benchmark.oneshot``) so that importing the package stays cheap."""
    if name in ("evaluate", "Result"):
        from benchmark import oneshot

        return getattr(oneshot, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ATTACKS", "CLIENT_ATTACKS", "DATASETS", "DEFENSES", "MODELS", "PRIVACY", "Registry", "Result",
           "__version__", "evaluate", "load_model"]
