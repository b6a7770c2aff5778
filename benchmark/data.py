"""Dataset registry. Every dataset yields a ``DataBundle`` with a fixed train/test split.

A dataset is a frozen dataclass with ``load() -> DataBundle`` and two class attributes: the default ε grid per norm
and the headline ε per norm (the column leaderboards sort by). Like every plugin it inherits ``Constrained`` and
declares a constraint per field (the built-in datasets have no fields, so their table is empty).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar

import numpy as np

from benchmark import DATASETS
from benchmark.api import DataBundle
from benchmark.constraints import Constrained


def headline_eps(dataset: str, norm: str, eps: tuple[float, ...]) -> float:
    """The ε of ``eps`` that leaderboards sort by: the one nearest the dataset's headline ε for ``norm``."""
    return nearest_eps(eps, dataset_instance(dataset).headline_eps.get(norm, eps[-1]))


def nearest_eps(eps: tuple[float, ...], wanted: float) -> float:
    """The ε > 0 of ``eps`` nearest ``wanted`` (the smaller on a tie)."""
    return min(eps[1:] or eps, key=lambda e: abs(e - wanted))


def split_spec(text: str) -> tuple[str, dict[str, Any]]:
    """A dataset spec → its name and parameters: ``"npz:data.npz,layout=nhwc"`` → ``("npz", {"path": "data.npz",
    "layout": "nhwc"})``; ``"digits"`` → ``("digits", {})``. The first item after the colon is the path unless it
    reads ``key=value``."""
    name, _, rest = str(text).strip().partition(":")
    params: dict[str, Any] = {}
    for index, item in enumerate(part for part in rest.split(",") if part.strip()):
        key, eq, value = item.partition("=")
        if index == 0 and not (eq and key.strip().isidentifier()):
            params["path"] = item.strip()
        else:
            params[key.strip()] = value.strip() if eq else ""
    return name.strip(), params


@cache
def dataset_instance(spec: str) -> Any:
    """The dataset plugin a spec names (checked as the config checks it), built once per process."""
    from benchmark.inputs import parse_dataset

    return parse_dataset(spec, "--dataset").build()


@DATASETS.register("digits")
@dataclass(frozen=True)
class Digits(Constrained):
    """scikit-learn's 8×8 handwritten digits (1,797 images, 10 classes), scaled to [0, 1], shape 1×8×8.

    One fixed stratified 80/20 split (``random_state=0``): every run and seed sees the same 360 test samples, so
    leaderboard rows can be compared sample by sample.
    """

    default_eps: ClassVar[dict[str, tuple[float, ...]]] = {"inf": (0.0, 0.05, 0.1, 0.2, 0.3),
                                                          "2": (0.0, 0.25, 0.5, 0.75, 1.0)}
    headline_eps: ClassVar[dict[str, float]] = {"inf": 0.1, "2": 0.5}

    def source(self) -> str:
        """What determines the data (``benchmark.plan.data_facts``): the scikit-learn release and this split."""
        from importlib.metadata import version

        return f"scikit-learn {version('scikit-learn')}; stratified 80/20 split, random_state=0"

    def load(self) -> DataBundle:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        x = (digits.images / 16.0).astype(np.float32)[:, None, :, :]
        y = digits.target.astype(np.int64)
        x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
        return DataBundle("digits", x_train, y_train, x_test, y_test, nb_classes=10)


@DATASETS.register("synthetic")
@dataclass(frozen=True)
class Synthetic(Constrained):
    """A tiny generated task for tests: 4 classes of noisy 1×6×6 prototypes, 240 train and 80 test samples."""

    default_eps: ClassVar[dict[str, tuple[float, ...]]] = {"inf": (0.0, 0.1, 0.2, 0.3), "2": (0.0, 0.5, 1.0, 2.0)}
    headline_eps: ClassVar[dict[str, float]] = {"inf": 0.1, "2": 1.0}

    def load(self) -> DataBundle:
        rng = np.random.default_rng(1234)
        classes, shape = 4, (1, 6, 6)
        prototypes = rng.uniform(0.2, 0.8, size=(classes, *shape))
        y = np.repeat(np.arange(classes), 80)
        x = prototypes[y] + rng.normal(0.0, 0.12, size=(len(y), *shape))
        x = np.clip(x, 0.0, 1.0).astype(np.float32)
        order = rng.permutation(len(y))
        x, y = x[order], y[order].astype(np.int64)
        return DataBundle("synthetic", x[:240], y[:240], x[240:], y[240:], nb_classes=classes)


from benchmark import datafiles, vision  # noqa: E402, F401  (register npz:, folder: and the image datasets)
