"""pytest plugin (entry point ``pytest11``): the ``robustness`` fixture, for a team's own test suite.

    def test_model_is_robust(robustness):
        result = robustness.evaluate(model, data, attack="pgd", eps=0.1)
        assert result.robust_accuracy >= 0.80

``robustness.evaluate`` is a thin wrapper of ``benchmark.evaluate`` (same checks, same one-line errors) and returns
its ``benchmark.Result``. ``data`` is a ``benchmark.api.DataBundle``, a dataset name (``"digits"``) or a pair of
arrays ``(x, y)`` with inputs in [0, 1] (or uint8 0–255). The numbers are attached to the test report
(``user_properties``, so they land in JUnit XML) and summarised at the end of the run. The fixture is named
``robustness`` so it does not collide with pytest-benchmark's ``benchmark``; importing this plugin imports neither
torch nor ART.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pytest

from benchmark.errors import DataError

if TYPE_CHECKING:  # pragma: no cover
    from benchmark.oneshot import Result

PROPERTY = "robustness"


class Robustness:
    """The fixture's object: ``evaluate`` is ``benchmark.evaluate`` on a dataset or arrays, with the numbers
    attached to the test report."""

    def __init__(self, node: pytest.Item) -> None:
        self._node = node

    def evaluate(self, model, data, attack: str | Sequence[str] = "pgd", eps: float | Sequence[float] = 0.1, *,
                 norm: str = "inf", n: int | None = None, seed: int = 0, device: str = "cpu",
                 survivors: str = "shared", normalize: str | None = None, batch_size: int | None = None) -> Result:
        """``benchmark.evaluate(model, x_test, y_test, attacks=attack, eps=eps, ...)`` on ``data``'s test split:
        a ``DataBundle`` (its class count must match the model's), a dataset name, or a pair ``(x, y)``. Returns
        its ``Result`` (``robust_accuracy``: the worst case at the largest ε; ``accuracy``, ``per_attack``,
        ``flags``). Bad arrays or models raise ``DataError`` (a ``ValueError``) naming the argument."""
        import benchmark

        if batch_size is not None:  # the attack batch is chosen per model and device, as in bench evaluate
            warnings.warn("robustness.evaluate(batch_size=...) is ignored: the attack batch size is the "
                          "harness's choice per model and device", DeprecationWarning, stacklevel=2)
        x, y, nb_classes = _test_arrays(data)
        result = benchmark.evaluate(model, x, y, attacks=attack, eps=eps, norm=norm, n=n, seed=seed, device=device,
                                    survivors=survivors, normalize=normalize, nb_classes=nb_classes)
        self._node.user_properties.append((PROPERTY, result.to_dict()))
        return result


def _test_arrays(data) -> tuple[Any, Any, int | None]:
    """(x, y, the class count ``data`` declares, or None for bare arrays)."""
    from benchmark.api import DataBundle

    if isinstance(data, str):
        from benchmark.plan import load_dataset

        data = load_dataset(data)
    if isinstance(data, DataBundle):
        return data.x_test, data.y_test, data.nb_classes
    if not isinstance(data, tuple | list) or len(data) != 2:
        raise DataError(f"data must be a DataBundle, a dataset name or a pair (x, y), got {type(data).__name__}")
    return data[0], data[1], None


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
