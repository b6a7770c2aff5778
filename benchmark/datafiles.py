"""Datasets from the user's files: ``npz:PATH`` (arrays) and ``folder:PATH`` (images, one sub-folder per class).

Both yield a ``DataBundle`` whose train split may be empty (data to score a model trained elsewhere). Every problem
with the files is a one-line ``DataError`` that names the file (and the array or image) before any work; ``source()``
is the SHA-256 of the data, which provenance records and the planner's cache keys on.
"""

from __future__ import annotations

import hashlib
import logging
import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from benchmark import DATASETS
from benchmark.api import DataBundle, check_labels, check_split, unit_float
from benchmark.constraints import Constrained, Interval, Options, Text
from benchmark.errors import DataError

log = logging.getLogger(__name__)

#: Sizes an image's channel axis can have: how ``layout=auto`` tells NCHW from NHWC.
CHANNEL_SIZES = (1, 3, 4)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
#: Pillow modes read as one grayscale channel; every other mode is converted to RGB.
GRAY_MODES = ("1", "L", "LA")


class _UserData(Constrained):
    """What both file datasets share: an ε grid for inputs in [0, 1] and a required ``path``."""

    kind: ClassVar[str]
    default_eps: ClassVar[dict[str, tuple[float, ...]]] = {"inf": (0.0, 2 / 255, 4 / 255, 8 / 255, 16 / 255),
                                                          "2": (0.0, 0.25, 0.5, 1.0)}
    headline_eps: ClassVar[dict[str, float]] = {"inf": 8 / 255, "2": 0.5}

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.path:  # type: ignore[attr-defined]
            raise ValueError(f"path is required ({self.kind}:PATH)")


@DATASETS.register("npz")
@dataclass(frozen=True)
class NpzData(_UserData):
    """Arrays in a NumPy ``.npz`` file: ``x_test``, ``y_test`` and, for defenses that train, ``x_train``, ``y_train``.

    ``x``: uint8 (0–255) or floats in [0, 1], shaped ``(n, C, H, W)``, ``(n, H, W, C)``, ``(n, H, W)`` (grayscale) or
    ``(n, d)`` (feature vectors). ``layout`` says how to read it: ``auto`` tells NCHW from NHWC by the axis of size 1,
    3 or 4 (when only one end has one), ``nchw``/``nhwc`` force it, ``flat`` makes every sample a feature vector.
    ``y``: integer labels; ``classes`` 0 counts them as the largest label + 1.
    """

    kind: ClassVar[str] = "npz"
    parameter_constraints: ClassVar[dict] = {"path": Text(), "layout": Options("auto", "nchw", "nhwc", "flat"),
                                             "classes": Interval(int, 0, 1_000_000)}

    path: str = ""
    layout: str = "auto"
    classes: int = 0

    def source(self) -> str:
        """``sha256:<hex>`` of the file's bytes."""
        return f"sha256:{_file_sha256(self.path)}"

    def load(self) -> DataBundle:
        arrays = _read_npz(self.path)
        with _about(self.path):
            splits = {split: (_arrange(_unit_float(arrays[f"x_{split}"], f"x_{split}"), self.layout, f"x_{split}"),
                              _int64(arrays[f"y_{split}"])) for split in ("train", "test") if f"x_{split}" in arrays}
            return _bundle(f"npz:{self.path}", splits, self.classes)


@DATASETS.register("folder")
@dataclass(frozen=True)
class FolderData(_UserData):
    """PNG and JPEG images in ``PATH/<class>/``: the sorted sub-folder names are the classes (label = index).

    With ``PATH/train/<class>/`` and ``PATH/test/<class>/`` those are the splits, otherwise every image is a test
    sample. All grayscale images give one channel, otherwise RGB; ``size`` > 0 resizes each image (bilinear) to
    ``size``×``size``, which images of different sizes need.
    """

    kind: ClassVar[str] = "folder"
    parameter_constraints: ClassVar[dict] = {"path": Text(), "size": Interval(int, 0, 8192)}

    path: str = ""
    size: int = 0

    def source(self) -> str:
        """``sha256:<hex>`` over the images' sorted relative paths and bytes."""
        root = Path(self.path)
        digest = hashlib.sha256()
        for split_dir in _split_dirs(root, self.path).values():
            for files in _class_files(split_dir, root, self.path).values():
                for file in files:
                    digest.update(f"{_relative(file, root)}\0{_file_sha256(str(file))}\n".encode())
        return f"sha256:{digest.hexdigest()}"

    def load(self) -> DataBundle:
        root = Path(self.path)
        listing = {split: _class_files(folder, root, self.path)
                   for split, folder in _split_dirs(root, self.path).items()}
        names = [sorted(classes) for classes in listing.values()]
        if names[0] != names[-1]:
            raise DataError(f"{self.path}: train/ has classes {', '.join(names[0])} but test/ has "
                            f"{', '.join(names[-1])}")
        if len(names[0]) < 2:
            raise DataError(f"{self.path}: one class sub-folder ({names[0][0]}); at least 2 are needed")
        files = [file for classes in listing.values() for folder in classes.values() for file in folder]
        gray = _image_format(files, root, self.path, self.size)
        splits = {}
        for split, classes in listing.items():
            x = _read_images([f for folder in classes.values() for f in folder], root, self.path, gray, self.size)
            y = np.repeat(np.arange(len(classes), dtype=np.int64), [len(folder) for folder in classes.values()])
            splits[split] = (x, y)
        log.info("read %d images of %d classes from %s", len(files), len(names[0]), self.path)
        with _about(self.path):
            return _bundle(f"folder:{self.path}", splits, len(names[0]))


# --- shared ---------------------------------------------------------------------------------------------------------

@contextmanager
def _about(label: str) -> Iterator[None]:
    """Prefix the message of a ``DataError`` raised inside with ``label`` (the file it is about)."""
    try:
        yield
    except DataError as exc:
        raise DataError(f"{label}: {exc}") from None


def _bundle(name: str, splits: dict[str, tuple[np.ndarray, np.ndarray]], classes: int) -> DataBundle:
    """The checked bundle of ``splits`` (split name → (x, y); without "train", an empty train split); ``classes`` 0
    counts the largest label + 1."""
    if "train" not in splits:
        shape = np.shape(splits["test"][0])[1:]
        splits = {"train": (np.zeros((0, *shape), np.float32), np.zeros(0, np.int64)), **splits}
    for split, (x, y) in splits.items():
        check_split(x, y, f"x_{split}", f"y_{split}")
    if not classes:
        classes = max(int(y.max()) if y.size else -1 for _, y in splits.values()) + 1
        if classes < 2:
            raise DataError(f"the labels hold {max(classes, 0)} class(es), at least 2 are needed (or give classes=)")
    for split, (_, y) in splits.items():
        check_labels(y, classes, f"y_{split}", source="classes")
    (x_train, y_train), (x_test, y_test) = splits["train"], splits["test"]
    return DataBundle(name, x_train, y_train, x_test, y_test, nb_classes=classes)


def _unit_float(x: np.ndarray, key: str) -> np.ndarray:
    """``x`` as float32 (``benchmark.api.unit_float``); another dtype is refused naming ``key``."""
    if x.dtype != np.uint8 and not np.issubdtype(x.dtype, np.floating):
        raise DataError(f"{key} is {x.dtype}; give uint8 (0–255) or floats in [0, 1]")
    return unit_float(x)


def _int64(y: np.ndarray) -> np.ndarray:
    """Integer labels as int64; anything else unchanged (for ``check_split`` to refuse by name)."""
    return y.astype(np.int64, copy=False) if np.issubdtype(y.dtype, np.integer) else y


@lru_cache(maxsize=256)
def _cached_sha256(path: str, stamp: tuple[int, int, int]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _file_sha256(path: str) -> str:
    """The SHA-256 (hex) of the file's bytes, read once while its inode, size and modification time stay the same."""
    try:
        stat = os.stat(path)
        return _cached_sha256(os.path.abspath(path), (stat.st_ino, stat.st_size, stat.st_mtime_ns))
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read it ({exc.strerror or exc})") from None


# --- npz ------------------------------------------------------------------------------------------------------------

def _read_npz(path: str) -> dict[str, np.ndarray]:
    """The arrays of ``path`` among x_test, y_test, x_train, y_train: the test pair required, the train pair both or
    neither. Never unpickles."""
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (ValueError, EOFError, zipfile.BadZipFile):  # numpy tries unknown formats as pickles, and refuses
        raise DataError(f"{path}: not an npz file (the zip of .npy arrays that np.savez writes)") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(f"{path}: a single array, not an npz file (save with np.savez(path, x_test=..., y_test=...))")
    with archive:
        found = list(archive.files)
        for key in ("x_test", "y_test"):
            if key not in found:
                raise DataError(f"{path}: no {key!r} (found: {', '.join(found) or 'nothing'})")
        for key, other in (("x_train", "y_train"), ("y_train", "x_train")):
            if key in found and other not in found:
                raise DataError(f"{path}: {key} given without {other}")
        return {key: _member(archive, key, path) for key in ("x_train", "y_train", "x_test", "y_test") if key in found}


def _member(archive: Any, key: str, path: str) -> np.ndarray:
    try:
        return archive[key]
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise DataError(f"{path}: {key} is an object array; pickled arrays are refused") from None
        raise DataError(f"{path}: {key} cannot be read ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: {key} cannot be read ({exc})") from None


def _arrange(x: np.ndarray, layout: str, key: str) -> np.ndarray:
    """``x`` as ``(n, C, H, W)`` images or ``(n, d)`` feature vectors, read as ``layout`` says."""
    if not 2 <= x.ndim <= 4:
        raise DataError(f"{key} must have shape (n, d), (n, H, W), (n, C, H, W) or (n, H, W, C), got {x.shape}")
    if layout == "flat":
        return x.reshape(len(x), -1)
    if x.ndim == 2:
        if layout != "auto":
            raise DataError(f"layout={layout} needs images, but {key} has shape {x.shape} (feature vectors)")
        return x
    if x.ndim == 3:
        return x[:, None]
    layout = _detect_layout(x.shape, key) if layout == "auto" else layout
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)) if layout == "nhwc" else x


def _detect_layout(shape: tuple[int, ...], key: str) -> str:
    first, last = shape[1] in CHANNEL_SIZES, shape[3] in CHANNEL_SIZES
    if first != last:
        return "nchw" if first else "nhwc"
    raise DataError(f"cannot tell whether {key} of shape {shape} is NCHW or NHWC; give layout=nchw or layout=nhwc")


# --- folder ---------------------------------------------------------------------------------------------------------

def _split_dirs(root: Path, label: str) -> dict[str, Path]:
    """{"train": ..., "test": ...} when both sub-folders exist, else {"test": root}."""
    if not root.is_dir():
        raise DataError(f"{label}: no such folder" if not root.exists() else f"{label}: not a folder")
    train, test = root / "train", root / "test"
    if train.is_dir() and test.is_dir():
        return {"train": train, "test": test}
    if train.is_dir() or test.is_dir():
        given, missing = ("train", "test") if train.is_dir() else ("test", "train")
        raise DataError(f"{label}: has {given}/ but no {missing}/ (give both, or only class sub-folders)")
    return {"test": root}


def _visible(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if not p.name.startswith("."))


def _class_files(folder: Path, root: Path, label: str) -> dict[str, list[Path]]:
    """Class name → its image files (sorted), for the class sub-folders of ``folder``."""
    classes = [p for p in _visible(folder) if p.is_dir()]
    if not classes:
        raise DataError(f"{label}: no class sub-folders in {_relative(folder, root)}/")
    listing = {}
    for class_dir in classes:
        files = _visible(class_dir)
        for file in files:
            if not file.is_file() or file.suffix.lower() not in IMAGE_SUFFIXES:
                raise DataError(f"{label}: {_relative(file, root)} is not a PNG or JPEG image")
        if not files:
            raise DataError(f"{label}: class folder {_relative(class_dir, root)}/ holds no images")
        listing[class_dir.name] = files
    return listing


@contextmanager
def _image(file: Path, root: Path, label: str) -> Iterator[Any]:
    """The opened Pillow image of ``file``; a file Pillow cannot read is a ``DataError`` naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as image:
            yield image
    except DataError:
        raise
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DataError(f"{label}: {_relative(file, root)} is not a readable image ({exc})") from None


def _image_format(files: list[Path], root: Path, label: str, size: int) -> bool:
    """Whether every image is grayscale, after checking (from the headers) that all have one size unless
    ``size`` resizes them."""
    gray, sizes = True, {}
    for file in files:
        with _image(file, root, label) as image:
            gray = gray and image.mode in GRAY_MODES
            sizes.setdefault(image.size, file)
        if not size and len(sizes) > 1:
            seen = [f"{_relative(path, root)} is {w}×{h}" for (w, h), path in sizes.items()]
            raise DataError(f"{label}: images differ in size ({seen[0]}, {seen[1]}); give size=N to resize them")
    return gray


def _relative(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _read_images(files: list[Path], root: Path, label: str, gray: bool, size: int) -> np.ndarray:
    """The images as float32 ``(n, C, H, W)`` in [0, 1]: one channel when ``gray``, else RGB."""
    from PIL import Image

    pixels = []
    for file in files:
        with _image(file, root, label) as image:
            image = image.convert("L" if gray else "RGB")
            if size:
                image = image.resize((size, size), Image.Resampling.BILINEAR)
            pixels.append(np.asarray(image, dtype=np.uint8))
    stacked = np.stack(pixels)
    stacked = stacked[:, None] if gray else stacked.transpose(0, 3, 1, 2)
    return _unit_float(np.ascontiguousarray(stacked), "images")
