"""MNIST and Fashion-MNIST from their IDX files (LeCun et al.'s format), gzipped or not, parsed with numpy.

An IDX file: two zero bytes, a type code (0x08: unsigned byte), the number of dimensions, each dimension as a
big-endian uint32, then the values in row-major order. Layout: ``<root>/MNIST/raw/`` and
``<root>/FashionMNIST/raw/`` holding ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each ``.gz`` or not (the ``.gz`` is read when both are there:
only its checksum is published).
"""

from __future__ import annotations

import gzip
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from benchmark import DATASETS
from benchmark.errors import DataError
from benchmark.vision.base import GRAY_EPS, VisionData, check_labels

UNSIGNED_BYTE = 0x08
IMAGE_SIZE = (28, 28)


def read_idx(path: Path, ndim: int) -> np.ndarray:
    """The uint8 array of an IDX file with ``ndim`` dimensions (gunzipped first when its name ends in ``.gz``); a
    one-line ``DataError`` naming the file when it is not such a file or is truncated."""
    raw = _read_bytes(path)
    header = 4 + 4 * ndim
    if len(raw) < 4 or raw[:2] != b"\0\0":
        raise DataError(f"{path}: not an IDX file (it does not start with two zero bytes)")
    if raw[2] != UNSIGNED_BYTE or raw[3] != ndim:
        raise DataError(f"{path}: an IDX file of type 0x{raw[2]:02X} with {raw[3]} dimension(s); expected unsigned "
                        f"bytes (0x{UNSIGNED_BYTE:02X}) in {ndim}")
    if len(raw) < header:
        raise DataError(f"{path}: truncated ({len(raw)} bytes, shorter than its {header}-byte header)")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    size = int(np.prod(shape, dtype=np.int64))
    if len(raw) != header + size:
        state = "truncated" if len(raw) < header + size else "longer than its header says"
        raise DataError(f"{path}: {state}: {len(raw)} bytes, but its header promises {header + size} "
                        f"(shape {'×'.join(map(str, shape))})")
    return np.frombuffer(raw, dtype=np.uint8, count=size, offset=header).reshape(shape)


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix != ".gz":
            return path.read_bytes()
        with gzip.open(path, "rb") as stream:
            return stream.read()
    except EOFError:
        raise DataError(f"{path}: truncated (the gzip stream ends early)") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        raise DataError(f"{path}: not a readable gzip file ({exc})") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def idx_files(folder: str) -> dict[str, tuple[str, ...]]:
    """split → its images and labels files in ``<folder>/raw/`` (without ``.gz``)."""
    return {split: (f"{folder}/raw/{prefix}-images-idx3-ubyte", f"{folder}/raw/{prefix}-labels-idx1-ubyte")
            for split, prefix in (("train", "train"), ("test", "t10k"))}


@dataclass(frozen=True)
class IdxData(VisionData):
    """Images and labels in IDX files: ``train-*`` and ``t10k-*`` in ``<root>/<folder>/raw/``."""

    nb_classes: ClassVar[int] = 10
    unpublished_hint: ClassVar[str] = "put the .gz file (whose MD5 is published) beside it"

    def candidates(self, relpath: str) -> tuple[str, ...]:
        return (f"{relpath}.gz", relpath)

    def display(self, name: str) -> str:
        return f"{name}[.gz]"

    def read_split(self, paths: list[Path]) -> tuple[np.ndarray, np.ndarray]:
        images_path, labels_path = paths
        images, labels = read_idx(images_path, 3), read_idx(labels_path, 1)
        if images.shape[1:] != IMAGE_SIZE:
            raise DataError(f"{images_path}: images of {images.shape[1]}×{images.shape[2]} pixels; {self.title}'s are "
                            f"{IMAGE_SIZE[0]}×{IMAGE_SIZE[1]}")
        if len(images) != len(labels):
            raise DataError(f"{images_path} holds {len(images)} images but {labels_path} {len(labels)} labels")
        check_labels(labels, 0, self.nb_classes - 1, labels_path)
        return images[:, None], labels.astype(np.int64)


@DATASETS.register("mnist")
@dataclass(frozen=True)
class MNIST(IdxData):
    """MNIST handwritten digits from the IDX files: 60,000 train and 10,000 test images, 1×28×28, 10 classes.

    LeCun et al. 1998; files in ``<root>/MNIST/raw/``. ε: L∞ headline 0.3 (Madry et al. 2018), L2 headline 2.0
    (Tramèr & Boneh 2019; Maini, Wong & Kolter 2020)."""

    name: ClassVar[str] = "mnist"
    title: ClassVar[str] = "MNIST"
    files: ClassVar[dict[str, tuple[str, ...]]] = idx_files("MNIST")
    default_eps: ClassVar[dict[str, tuple[float, ...]]] = GRAY_EPS
    headline_eps: ClassVar[dict[str, float]] = {"inf": 0.3, "2": 2.0}


@DATASETS.register("fashion-mnist")
@dataclass(frozen=True)
class FashionMNIST(IdxData):
    """Fashion-MNIST from the IDX files: 60,000 train and 10,000 test clothing images, 1×28×28, 10 classes.

    Xiao, Rasul & Vollgraf 2017; files in ``<root>/FashionMNIST/raw/``. ε: L∞ headline 0.1 (Wong & Kolter 2018, the
    radius later Fashion-MNIST robustness papers use), L2 as MNIST's."""

    name: ClassVar[str] = "fashion-mnist"
    title: ClassVar[str] = "Fashion-MNIST"
    files: ClassVar[dict[str, tuple[str, ...]]] = idx_files("FashionMNIST")
    default_eps: ClassVar[dict[str, tuple[float, ...]]] = GRAY_EPS
    headline_eps: ClassVar[dict[str, float]] = {"inf": 0.1, "2": 2.0}
