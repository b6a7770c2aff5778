"""pytest plugin (entry point ``pytest11``): the ``robustness`` fixture, for a team's own test suite.

    def test_model_is_robust(robustness):
        result = robustness.evaluate(model, data, attack="pgd", eps=0.1)
        assert result.robust_accuracy >= 0.80

``data`` is a ``benchmark.api.DataBundle``, a dataset name (``"digits"``) or a pair of arrays ``(x, y)`` with
inputs in [0, 1]. The numbers are attached to the test report (``user_properties``, so they land in JUnit XML) and
summarised at the end of the run. The fixture is named ``robustness`` so it does not collide with pytest-benchmark's
``benchmark``; importing this plugin imports neither torch nor ART.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from benchmark.errors import ConfigError, DataError

PROPERTY = "robustness"


@dataclass(frozen=True)
class RobustnessResult:
    attacks: tuple[str, ...]
    norm: str
    eps: tuple[float, ...]  # ascending, without 0
    clean_accuracy: float
    accuracy: dict[float, float]  # worst case over the attacks, per ε (0 included)
    per_attack: dict[str, dict[float, float]] = field(default_factory=dict)  # see ``per_attack_kind``
    per_attack_kind: str = "cumulative"  # after each attack in turn (shared survivors), or "standalone"
    n: int = 0
    seconds: float = 0.0

    @property
    def robust_accuracy(self) -> float:
        """Worst-case robust accuracy at the largest ε evaluated."""
        return self.accuracy[self.eps[-1]]

    def to_dict(self) -> dict[str, Any]:
        return {"attacks": list(self.attacks), "norm": self.norm, "n": self.n, "clean_accuracy": self.clean_accuracy,
                "robust_accuracy": {f"{e:g}": a for e, a in self.accuracy.items()}, "seconds": self.seconds}


class Robustness:
    """The fixture's object: ``evaluate`` runs the harness's sweep on a user's model."""

    def __init__(self, node: pytest.Item) -> None:
        self._node = node

    def evaluate(self, model, data, attack: str | Sequence[str] = "pgd", eps: float | Sequence[float] = 0.1, *,
                 norm: str = "inf", n: int | None = None, seed: int = 0, batch_size: int = 128,
                 device: str = "cpu", survivors: str = "shared") -> RobustnessResult:
        """Attack a copy of ``model`` (logits out) on ``data`` with ``attack`` (names, ``name:key=value`` or
        ``suite:NAME``) at ``eps`` (one or several) under ``norm``; the first ``n`` test samples if given.
        ``survivors="per-attack"`` gives standalone per-attack numbers (see ``benchmark/sweep.py``).

        The arrays are checked as a ``DataBundle``'s are (``benchmark.api.check_split``): ``x`` of shape
        ``(n, C, H, W)`` with finite values in [0, 1] (floating arrays are cast to float32), ``y`` integer labels.
        The copy of the model runs in float32 (a float64 or half model is converted). The class count is the
        number of logits the model returns, never guessed from the labels; the model must return finite logits of
        shape ``(batch, classes)`` on every test sample. Anything else raises ``DataError`` (a ``ValueError``)."""
        from benchmark.config import expand_suites, parse_eps, parse_plugins
        from benchmark.runner import sample_keys
        from benchmark.sweep import SURVIVORS, run_sweep

        if survivors not in SURVIVORS:
            raise ConfigError(f"survivors must be one of {', '.join(SURVIVORS)}, got {survivors!r}")
        x, y, nb_classes = _test_arrays(data)
        if n is not None:
            x, y = x[: _positive(n, "n")], y[:n]
        if not len(x):
            raise DataError("data has no test samples")
        names = attack if isinstance(attack, str) else ",".join(attack)
        specs = parse_plugins("attack", expand_suites(names, norm, "attack"), "attack")
        grid = parse_eps(list(eps) if isinstance(eps, Sequence) else [eps], "eps", norm)
        start = time.perf_counter()
        estimator = _estimator(model, x, y, nb_classes, _positive(batch_size, "batch_size"), device)
        sweep = run_sweep(estimator, x, y, {s.label: s.build() for s in specs}, grid, norm=norm,
                          keys=sample_keys(seed, len(x)), batch_size=batch_size, seed=seed, survivors=survivors)
        result = RobustnessResult(
            attacks=tuple(s.label for s in specs), norm=norm, eps=grid[1:], clean_accuracy=float(sweep.correct.mean()),
            accuracy=sweep.accuracy(), per_attack=sweep.per_attack(), per_attack_kind=sweep.per_attack_kind,
            n=len(x), seconds=time.perf_counter() - start)
        self._node.user_properties.append((PROPERTY, result.to_dict()))
        return result


def _positive(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return value


def _test_arrays(data) -> tuple[Any, Any, int | None]:
    """(x, y, the class count ``data`` declares, or None for bare arrays), checked as ``DataBundle`` checks them."""
    import numpy as np

    from benchmark.api import DataBundle, check_split

    if isinstance(data, str):
        from benchmark.plan import load_dataset

        data = load_dataset(data)
    if isinstance(data, DataBundle):
        return data.x_test, data.y_test, data.nb_classes
    if not isinstance(data, tuple | list) or len(data) != 2:
        raise DataError(f"data must be a DataBundle, a dataset name or a pair (x, y), got {type(data).__name__}")
    x, y = np.asarray(data[0]), np.asarray(data[1])
    if np.issubdtype(x.dtype, np.floating):
        x = x.astype(np.float32, copy=False)
    check_split(x, y, "x", "y")
    return x, y.astype(np.int64, copy=False), None


def _estimator(model, x, y, nb_classes: int | None, batch_size: int, device: str):
    """The harness's ART wrapper around a float32 copy of ``model``, whose logits on ``x`` give the class count."""
    import torch

    from benchmark.api import check_labels
    from benchmark.estimator import wrap

    if not isinstance(model, torch.nn.Module):
        raise DataError(f"model must be a torch.nn.Module that returns logits, got {type(model).__name__}")
    copied = copy.deepcopy(model).float().to(device).eval()
    classes = _class_count(copied, x, batch_size, device)
    if nb_classes is not None and classes != nb_classes:
        raise DataError(f"model returns {classes} logits per sample, but data has {nb_classes} classes")
    check_labels(y, classes, "y", source="the number of logits the model returns")
    return wrap(copied, tuple(x.shape[1:]), classes, device)


def _class_count(model, x, batch_size: int, device: str) -> int:
    """The number of logits ``model`` returns per sample, after checking its output on every batch of ``x``:
    a finite ``(batch, classes)`` tensor with the same number of classes (at least 2) each time."""
    import torch

    classes = None
    with torch.no_grad():
        for first in range(0, len(x), batch_size):
            rows = f"x[{first}:{min(first + batch_size, len(x))}]"
            batch = torch.from_numpy(x[first : first + batch_size]).to(device)
            try:
                logits = model(batch)
            except Exception as exc:
                raise DataError(f"model failed on {rows} of shape {tuple(batch.shape)}: {exc}") from exc
            if not isinstance(logits, torch.Tensor) or logits.ndim != 2 or len(logits) != len(batch) \
                    or logits.shape[1] < 2 or logits.shape[1] != (classes or logits.shape[1]):
                found = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
                raise DataError(f"model must return logits of shape (batch, classes ≥ 2), the same classes for "
                                f"every batch; got {found} for {rows}")
            if not torch.isfinite(logits).all():
                raise DataError(f"model returned non-finite logits (NaN or inf) for {rows}")
            classes = logits.shape[1]
    return classes


@pytest.fixture
def robustness(request: pytest.FixtureRequest) -> Robustness:
    """Evaluate a model's robustness with the harness's ART attacks: ``robustness.evaluate(model, data, ...)``."""
    return Robustness(request.node)


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    lines = []
    for reports in terminalreporter.stats.values():
        for report in reports:
            if getattr(report, "when", None) != "call":
                continue
            for name, value in getattr(report, "user_properties", ()):
                if name == PROPERTY:
                    accuracy = ", ".join(f"ε={e}: {100 * a:.1f}%" for e, a in value["robust_accuracy"].items())
                    lines.append(f"{report.nodeid}: {'+'.join(value['attacks'])} (L{value['norm']}, "
                                 f"n={value['n']}): {accuracy}")
    if lines:
        terminalreporter.section("robustness")
        for line in lines:
            terminalreporter.write_line(line)
