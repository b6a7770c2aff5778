"""What the image datasets share: the ``root`` and ``unverified`` parameters, finding the files in the data
directory, verifying them against their published checksums, and turning uint8 pixels into a ``DataBundle``."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from benchmark.api import DataBundle
from benchmark.constraints import Boolean, Constrained, Text
from benchmark.errors import DataError
from benchmark.vision.checksums import FileCheck, check_file, require
from benchmark.vision.datadir import ENV_VAR, dataset_root

log = logging.getLogger(__name__)

#: ε grids of the 32×32 colour datasets: RobustBench's CIFAR-10 threat models (L∞ headline 8/255, L2 headline 0.5).
COLOUR_EPS: dict[str, tuple[float, ...]] = {"inf": (0.0, 2 / 255, 4 / 255, 8 / 255, 16 / 255),
                                            "2": (0.0, 0.25, 0.5, 1.0)}
COLOUR_HEADLINE: dict[str, float] = {"inf": 8 / 255, "2": 0.5}
#: ε grid of the 28×28 grayscale datasets: L∞ 0.3 is Madry et al.'s MNIST challenge (2018); L2 2.0 is the MNIST
#: radius of Tramèr & Boneh (NeurIPS 2019) and Maini, Wong & Kolter (ICML 2020). RobustBench has no MNIST board.
GRAY_EPS: dict[str, tuple[float, ...]] = {"inf": (0.0, 0.1, 0.2, 0.3, 0.4), "2": (0.0, 1.0, 2.0, 3.0)}

Splits = dict[str, tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class VisionData(Constrained):
    """An image dataset read from its original files under ``root`` (empty: the data directory, see
    ``benchmark.vision.datadir``). Every file is checked against its published checksum; ``unverified=true`` loads
    files that do not verify (and ``source()`` says so)."""

    name: ClassVar[str]  # the registry name, also the key of ``checksums.FILES``
    title: ClassVar[str]  # how messages name the dataset
    nb_classes: ClassVar[int]
    #: split → the files it is read from, relative to the data directory, in reading order.
    files: ClassVar[dict[str, tuple[str, ...]]]
    #: What the user can do about a file without a published checksum (empty: nothing but ``unverified``).
    unpublished_hint: ClassVar[str] = ""
    parameter_constraints: ClassVar[dict] = {"root": Text(), "unverified": Boolean()}

    root: str = ""
    unverified: bool = False

    def source(self) -> str:
        """The status and the digest of every file read: ``mnist verified: MNIST/raw/… md5:…, …`` or ``mnist
        UNVERIFIED: …`` (with ``unverified=true``). Files that do not verify are refused here already, before any
        work, unless ``unverified``."""
        checks = self.checks()
        status = "verified" if all(check.verified for check in checks) else "UNVERIFIED"
        return f"{self.name} {status}: " + ", ".join(check.describe() for check in checks)

    def checks(self) -> tuple[FileCheck, ...]:
        """The verification of every file the dataset reads (a ``DataError`` for the first that does not verify,
        unless ``unverified``)."""
        root = dataset_root(self.root)
        checks = tuple(check_file(self.name, root, relpath) for paths in self.locate(root).values()
                       for relpath in paths)
        require(checks, unverified=self.unverified, hint=self.unpublished_hint)
        return checks

    def load(self) -> DataBundle:
        for check in self.checks():
            if not check.verified:
                log.warning("%s; reading it unverified (unverified=true)", check.problem())
        root = dataset_root(self.root)
        splits = {split: self.read_split([root / relpath for relpath in paths])
                  for split, paths in self.locate(root).items()}
        (x_train, y_train), (x_test, y_test) = splits["train"], splits["test"]
        log.info("read %s from %s: %d train and %d test images of shape %s", self.title, root, len(x_train),
                 len(x_test), x_test.shape[1:])
        return DataBundle(self.name, np.ascontiguousarray(x_train), y_train, np.ascontiguousarray(x_test), y_test,
                          nb_classes=self.nb_classes)  # uint8 pixels: DataBundle.batch makes floats per batch

    def read_split(self, paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
        """One split's images (uint8, ``(n, C, H, W)``) and labels (int64) from its files."""
        raise NotImplementedError

    def candidates(self, relpath: str) -> tuple[str, ...]:
        """The names ``relpath`` may have on disk, preferred first."""
        return (relpath,)

    def locate(self, root: Path) -> dict[str, tuple[str, ...]]:
        """split → the files present under ``root`` (each the first of its ``candidates`` that exists); a one-line
        ``DataError`` saying where to put the files when any is missing."""
        found: dict[str, tuple[str, ...]] = {}
        missing = []
        for split, relpaths in self.files.items():
            present = [next((name for name in self.candidates(rel) if (root / name).is_file()), None)
                       for rel in relpaths]
            missing += [rel for rel, name in zip(relpaths, present, strict=True) if name is None]
            found[split] = tuple(name for name in present if name is not None)
        if missing:
            raise self.missing(root, missing)
        return found

    def missing(self, root: Path, relpaths: list[str]) -> DataError:
        relative = Path(relpaths[0]).parent
        top = f"{relative.parts[0]}/" if relative.parts else f"{self.title}'s files"
        names = ", ".join(self.display(Path(rel).name) for rel in relpaths)
        return DataError(f"{self.name}: {root / relative} lacks {names}; run bench data fetch {self.name}, or put "
                         f"{self.title}'s files there, or point --data-dir, ${ENV_VAR} or the dataset option root= "
                         f"at the directory that holds {top}")

    def display(self, name: str) -> str:
        """How a missing file is named in the message."""
        return name


def check_labels(labels: np.ndarray, low: int, high: int, path: Path, what: str = "label") -> None:
    """A one-line ``DataError`` naming ``path`` unless every label is in [``low``, ``high``]."""
    bad = np.flatnonzero((labels < low) | (labels > high))
    if bad.size:
        raise DataError(f"{path}: sample {bad[0]} has {what} {labels[bad[0]]}, outside {low}–{high}")
