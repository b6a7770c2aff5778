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
        ``survivors="per-attack"`` gives standalone per-attack numbers (see ``benchmark/sweep.py``)."""
        from benchmark.config import expand_suites, parse_eps, parse_plugins
        from benchmark.estimator import wrap
        from benchmark.runner import sample_keys
        from benchmark.sweep import run_sweep

        x, y, nb_classes = _test_arrays(data)
        if n is not None:
            x, y = x[:n], y[:n]
        names = attack if isinstance(attack, str) else ",".join(attack)
        specs = parse_plugins("attack", expand_suites(names, norm, "attack"), "attack")
        grid = parse_eps(list(eps) if isinstance(eps, Sequence) else [eps], "eps", norm)
        start = time.perf_counter()
        estimator = wrap(copy.deepcopy(model).to(device), tuple(x.shape[1:]), nb_classes, device)
        sweep = run_sweep(estimator, x, y, {s.label: s.build() for s in specs}, grid, norm=norm,
                          keys=sample_keys(seed, len(x)), batch_size=batch_size, seed=seed, survivors=survivors)
        result = RobustnessResult(
            attacks=tuple(s.label for s in specs), norm=norm, eps=grid[1:], clean_accuracy=float(sweep.correct.mean()),
            accuracy=sweep.accuracy(), per_attack=sweep.per_attack(), per_attack_kind=sweep.per_attack_kind,
            n=len(x), seconds=time.perf_counter() - start)
        self._node.user_properties.append((PROPERTY, result.to_dict()))
        return result


def _test_arrays(data):
    import numpy as np

    from benchmark.api import DataBundle

    if isinstance(data, str):
        from benchmark.plan import load_dataset

        data = load_dataset(data)
    if isinstance(data, DataBundle):
        return data.x_test, data.y_test, data.nb_classes
    x, y = data
    x, y = np.asarray(x, dtype=np.float32), np.asarray(y, dtype=np.int64)
    return x, y, int(y.max()) + 1


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
