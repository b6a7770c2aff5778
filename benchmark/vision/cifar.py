"""CIFAR-10 and CIFAR-100 from their *binary* versions (Krizhevsky 2009, cs.toronto.edu/~kriz/cifar.html).

Each record is the label byte(s) then 3,072 pixel bytes: the 1,024 red values of the 32×32 image row by row, then
green, then blue (so a record reshapes to C×H×W as it is). CIFAR-10 (``<root>/cifar-10-batches-bin/``):
``data_batch_1.bin`` … ``data_batch_5.bin`` and ``test_batch.bin``, one label byte (0–9). CIFAR-100
(``<root>/cifar-100-binary/``): ``train.bin`` and ``test.bin``, a coarse (0–19) then a fine (0–99) label byte; the
fine label is the class. The Python version (``cifar-10-batches-py``, ``cifar-100-python``) is a pickle, which the
bench never loads: it is refused with a pointer to the binary version.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from benchmark import DATASETS
from benchmark.errors import DataError
from benchmark.vision.base import COLOUR_EPS, COLOUR_HEADLINE, VisionData, check_labels
from benchmark.vision.checksums import downloads

PIXELS = 3 * 32 * 32


@dataclass(frozen=True)
class CifarData(VisionData):
    """Fixed-size records of label bytes and 3×32×32 pixels."""

    folder: ClassVar[str]  # the binary version's directory under the data directory
    pickle_folder: ClassVar[str]  # the Python version's, refused
    #: the largest value of each label byte, in record order; the last is the class.
    label_limits: ClassVar[tuple[int, ...]]
    default_eps: ClassVar[dict[str, tuple[float, ...]]] = COLOUR_EPS
    headline_eps: ClassVar[dict[str, float]] = COLOUR_HEADLINE

    def read_split(self, paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
        records = [read_records(path, self.label_limits) for path in paths]
        return np.concatenate([pixels for pixels, _ in records]), np.concatenate([labels for _, labels in records])

    def missing(self, root: Path, relpaths: list[str]) -> DataError:
        pickled = root if root.name == self.pickle_folder else root / self.pickle_folder
        if not pickled.is_dir():
            return super().missing(root, relpaths)
        archive = downloads(self.name)[0]
        return DataError(f"{self.name}: {pickled} is the Python (pickle) version of {self.title}, which the bench "
                         f"never unpickles; use the binary version instead: {archive.url} (MD5 {archive.hexdigest}) "
                         f"unpacked in {pickled.parent} (it holds {self.folder}/)")


def read_records(path: Path, label_limits: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The uint8 images ``(n, 3, 32, 32)`` and int64 labels (the last label byte) of a CIFAR binary file whose
    records start with ``len(label_limits)`` label bytes; a one-line ``DataError`` naming the file when it is not a
    whole number of records or a label is out of range."""
    record = len(label_limits) + PIXELS
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if not raw or len(raw) % record:
        raise DataError(f"{path}: truncated or not a CIFAR binary file: {len(raw)} bytes is not a whole number of "
                        f"{record}-byte records")
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(-1, record)
    names = ("coarse label", "label") if len(label_limits) == 2 else ("label",)
    for column, (limit, what) in enumerate(zip(label_limits, names, strict=True)):
        check_labels(rows[:, column], 0, limit, path, what)
    return rows[:, len(label_limits):].reshape(-1, 3, 32, 32), rows[:, len(label_limits) - 1].astype(np.int64)


@DATASETS.register("cifar10")
@dataclass(frozen=True)
class CIFAR10(CifarData):
    """CIFAR-10, binary version: 50,000 train and 10,000 test colour images, 3×32×32, 10 classes.

    Krizhevsky 2009; files in ``<root>/cifar-10-batches-bin/``. ε: RobustBench's, L∞ headline 8/255, L2 headline 0.5.
    """

    name: ClassVar[str] = "cifar10"
    title: ClassVar[str] = "CIFAR-10"
    nb_classes: ClassVar[int] = 10
    folder: ClassVar[str] = "cifar-10-batches-bin"
    pickle_folder: ClassVar[str] = "cifar-10-batches-py"
    label_limits: ClassVar[tuple[int, ...]] = (9,)
    files: ClassVar[dict[str, tuple[str, ...]]] = {
        "train": tuple(f"cifar-10-batches-bin/data_batch_{i}.bin" for i in range(1, 6)),
        "test": ("cifar-10-batches-bin/test_batch.bin",),
    }


@DATASETS.register("cifar100")
@dataclass(frozen=True)
class CIFAR100(CifarData):
    """CIFAR-100, binary version: 50,000 train and 10,000 test colour images, 3×32×32, 100 (fine) classes.

    Krizhevsky 2009; files in ``<root>/cifar-100-binary/``. ε: RobustBench's, L∞ headline 8/255, L2 headline 0.5.
    """

    name: ClassVar[str] = "cifar100"
    title: ClassVar[str] = "CIFAR-100"
    nb_classes: ClassVar[int] = 100
    folder: ClassVar[str] = "cifar-100-binary"
    pickle_folder: ClassVar[str] = "cifar-100-python"
    label_limits: ClassVar[tuple[int, ...]] = (19, 99)
    files: ClassVar[dict[str, tuple[str, ...]]] = {"train": ("cifar-100-binary/train.bin",),
                                                   "test": ("cifar-100-binary/test.bin",)}
