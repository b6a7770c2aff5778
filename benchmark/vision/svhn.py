"""SVHN cropped digits (Netzer et al. 2011) from ``<root>/train_32x32.mat`` and ``<root>/test_32x32.mat``.

Each file is a MATLAB (v5) file read with ``scipy.io.loadmat`` (a documented binary format, not a pickle; only the
variables ``X`` and ``y`` are read): ``X`` is uint8 of shape 32×32×3×N (row, column, channel, image), ``y`` holds N
labels 1–10 where 10 stands for the digit 0. The ``extra_32x32.mat`` split is not read.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchmark import DATASETS
from benchmark.errors import DataError
from benchmark.vision.base import COLOUR_EPS, COLOUR_HEADLINE, VisionData, check_labels

IMAGE_SHAPE = (32, 32, 3)


def read_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The uint8 images ``(N, 3, 32, 32)`` (a transposed view) and int64 labels 0–9 of an SVHN ``.mat`` file; a
    one-line ``DataError`` naming the file when it cannot be read or does not hold SVHN's arrays."""
    mat = _loadmat(path)
    for key in ("X", "y"):
        if key not in mat:
            raise DataError(f"{path}: no variable {key!r} (SVHN's .mat files hold X and y; truncated?)")
    x, y = mat["X"], mat["y"]
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[:3] != IMAGE_SHAPE:
        raise DataError(f"{path}: X is {x.dtype} of shape {x.shape}; SVHN's is uint8 of shape 32×32×3×N")
    if not np.issubdtype(y.dtype, np.number) or y.size != x.shape[3] or max(y.shape, default=0) != y.size:
        raise DataError(f"{path}: y is {y.dtype} of shape {y.shape}; SVHN's holds one number per image ({x.shape[3]})")
    labels = y.reshape(-1)
    if not np.array_equal(labels, np.round(labels)):
        raise DataError(f"{path}: y holds labels that are not whole numbers")
    labels = labels.astype(np.int64)
    check_labels(labels, 1, 10, path)
    return x.transpose(3, 2, 0, 1), labels % 10


def _loadmat(path: Path) -> dict[str, Any]:
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    try:
        return loadmat(path, variable_names=["X", "y"])
    except (MatReadError, ValueError, IndexError, EOFError, zlib.error, NotImplementedError) as exc:
        raise DataError(f"{path}: not a readable MATLAB v5 .mat file, or truncated ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read it, or truncated ({exc.strerror or exc})") from None


@DATASETS.register("svhn")
@dataclass(frozen=True)
class SVHN(VisionData):
    """SVHN cropped digits: 73,257 train and 26,032 test colour images, 3×32×32, 10 classes.

    Netzer et al. 2011; files ``<root>/train_32x32.mat`` and ``test_32x32.mat`` (label 10 in them is the digit 0).
    ε: as CIFAR-10's, L∞ headline 8/255, L2 headline 0.5."""

    name: ClassVar[str] = "svhn"
    title: ClassVar[str] = "SVHN"
    nb_classes: ClassVar[int] = 10
    files: ClassVar[dict[str, tuple[str, ...]]] = {"train": ("train_32x32.mat",), "test": ("test_32x32.mat",)}
    default_eps: ClassVar[dict[str, tuple[float, ...]]] = COLOUR_EPS
    headline_eps: ClassVar[dict[str, float]] = COLOUR_HEADLINE

    def read_split(self, paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
        (path,) = paths
        return read_mat(path)
