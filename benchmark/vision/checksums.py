"""Published checksums of the image datasets' files, and their verification.

``FILES`` maps a dataset name to its files, each a ``Published`` entry: the path relative to the data directory
(torchvision's layout), the published digest (``"md5:<hex>"``), the URL a fetcher downloads it from (empty for a file
that comes out of an archive, which ``archive`` names) and who publishes the digest. A loader verifies the files it
reads with ``check_file`` and ``require``; a fetcher downloads ``downloads(name)``, checks each with ``check_file``
before moving it under its final name, unpacks archives and checks their members the same way.

What is published, and by whom:

- MNIST, Fashion-MNIST: the MD5 of each ``.gz`` file (torchvision ``datasets/mnist.py``; Fashion-MNIST's README
  lists the same). Nobody publishes a checksum of the uncompressed IDX files, so those cannot be verified.
- CIFAR-10/100 binary: the dataset authors publish only the MD5 of the tarball (cs.toronto.edu/~kriz/cifar.html).
  The extracted ``.bin`` files are checked against the SHA-1 per file that Apache MXNet publishes
  (``python/mxnet/gluon/data/vision/datasets.py``), the only per-file list from a maintained project we found.
- SVHN cropped digits: the MD5 of each ``.mat`` file (torchvision ``datasets/svhn.py``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from benchmark.errors import DataError

#: How a user accepts files that do not verify (the dataset parameter; the CLI may add a flag that sets it).
UNVERIFIED_HINT = "use it anyway with the dataset option unverified=true (e.g. --dataset mnist:unverified=true)"
#: The digest of a file without a published checksum, recorded in provenance all the same.
FALLBACK_ALGORITHM = "sha256"

TORCHVISION_MNIST = "torchvision datasets/mnist.py"
TORCHVISION_SVHN = "torchvision datasets/svhn.py"
CIFAR_AUTHORS = "the dataset authors, cs.toronto.edu/~kriz/cifar.html"
MXNET = "Apache MXNet gluon/data/vision/datasets.py"


@dataclass(frozen=True)
class Published:
    """One file and its published digest."""

    path: str  # relative to the data directory, with "/" separators
    digest: str  # "<algorithm>:<hex>", as published
    url: str = ""  # where a fetcher downloads it; "" for a file extracted from ``archive``
    archive: str = ""  # the ``path`` of the archive (an entry of the same dataset) this file comes out of
    by: str = ""  # who publishes the digest

    @property
    def algorithm(self) -> str:
        return self.digest.partition(":")[0]

    @property
    def hexdigest(self) -> str:
        return self.digest.partition(":")[2]


def _idx(folder: str, base_url: str, md5s: dict[str, str], by: str) -> tuple[Published, ...]:
    return tuple(Published(f"{folder}/{name}", f"md5:{md5}", base_url + name, by=by) for name, md5 in md5s.items())


def _members(folder: str, archive: str, sha1s: dict[str, str]) -> tuple[Published, ...]:
    return tuple(Published(f"{folder}/{name}", f"sha1:{sha1}", archive=archive, by=MXNET)
                 for name, sha1 in sha1s.items())


FILES: dict[str, tuple[Published, ...]] = {
    "mnist": _idx("MNIST/raw", "https://ossci-datasets.s3.amazonaws.com/mnist/", {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    }, TORCHVISION_MNIST),
    "fashion-mnist": _idx("FashionMNIST/raw",
                          "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/", {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }, TORCHVISION_MNIST),
    "cifar10": (
        Published("cifar-10-binary.tar.gz", "md5:c32a1d4ab5d03f1284b67883e8d87530",
                  "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz", by=CIFAR_AUTHORS),
        *_members("cifar-10-batches-bin", "cifar-10-binary.tar.gz", {
            "data_batch_1.bin": "aadd24acce27caa71bf4b10992e9e7b2d74c2540",
            "data_batch_2.bin": "c0ba65cce70568cd57b4e03e9ac8d2a5367c1795",
            "data_batch_3.bin": "1dd00a74ab1d17a6e7d73e185b69dbf31242f295",
            "data_batch_4.bin": "aab85764eb3584312d3c7f65fd2fd016e36a258e",
            "data_batch_5.bin": "26e2849e66a845b7f1e4614ae70f4889ae604628",
            "test_batch.bin": "67eb016db431130d61cd03c7ad570b013799c88c",
        }),
    ),
    "cifar100": (
        Published("cifar-100-binary.tar.gz", "md5:03b5dce01913d631647c71ecec9e9cb8",
                  "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz", by=CIFAR_AUTHORS),
        *_members("cifar-100-binary", "cifar-100-binary.tar.gz", {
            "train.bin": "e207cd2e05b73b1393c74c7f5e7bea451d63e08e",
            "test.bin": "8fb6623e830365ff53cf14adec797474f5478006",
        }),
    ),
    "svhn": (
        Published("train_32x32.mat", "md5:e26dedcc434d2e4c54c9b2d4a06d8373",
                  "http://ufldl.stanford.edu/housenumbers/train_32x32.mat", by=TORCHVISION_SVHN),
        Published("test_32x32.mat", "md5:eb5a983be6a315427106f1b164d9cef3",
                  "http://ufldl.stanford.edu/housenumbers/test_32x32.mat", by=TORCHVISION_SVHN),
    ),
}


def downloads(name: str) -> tuple[Published, ...]:
    """The files a fetcher downloads for dataset ``name`` (those with a URL)."""
    return tuple(entry for entry in FILES[name] if entry.url)


def published(name: str, relpath: str) -> Published | None:
    """The published entry of ``relpath`` (relative to the data directory) of dataset ``name``, if any."""
    return next((entry for entry in FILES.get(name, ()) if entry.path == relpath), None)


@dataclass(frozen=True)
class FileCheck:
    """A file's digest next to its published one (``expected`` is empty when none is published)."""

    path: Path
    relpath: str
    algorithm: str
    actual: str
    expected: str = ""
    by: str = ""

    @property
    def verified(self) -> bool:
        return bool(self.expected) and self.actual == self.expected

    def describe(self) -> str:
        """``MNIST/raw/t10k-labels-idx1-ubyte.gz md5:ec29…`` plus what is wrong, for provenance."""
        text = f"{self.relpath} {self.algorithm}:{self.actual}"
        if self.verified:
            return text
        return f"{text} (published: {self.expected})" if self.expected else f"{text} (no published checksum)"

    def problem(self) -> str:
        """Why the file does not verify, in one line naming it (empty when it verifies)."""
        if self.verified:
            return ""
        if not self.expected:
            return f"{self.path}: no checksum is published for this file, so it cannot be verified"
        return (f"{self.path}: {self.algorithm} {self.actual}, but the published {self.algorithm} is {self.expected} "
                f"({self.by}): a damaged or different file")


def check_file(name: str, root: Path, relpath: str) -> FileCheck:
    """The digest of ``root/relpath`` in the algorithm its published checksum uses (SHA-256 when none is
    published), beside the published one."""
    entry = published(name, relpath)
    algorithm = entry.algorithm if entry else FALLBACK_ALGORITHM
    path = root / relpath
    return FileCheck(path, relpath, algorithm, file_digest(path, algorithm), entry.hexdigest if entry else "",
                     entry.by if entry else "")


def require(checks: Iterable[FileCheck], *, unverified: bool, hint: str = "") -> None:
    """Raise a one-line ``DataError`` for the first file that does not verify, unless ``unverified``; ``hint`` says
    what else the user can do about a file without a published checksum."""
    if unverified:
        return
    for check in checks:
        if not check.verified:
            remedy = hint if hint and not check.expected else "fetch it again" if check.expected else ""
            raise DataError("; ".join(part for part in (check.problem(), remedy, UNVERIFIED_HINT) if part))


def file_digest(path: Path, algorithm: str) -> str:
    """The hex digest of the file's bytes, computed once while its inode, size and modification time stay the same."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    return _cached_digest(os.path.abspath(path), algorithm, (stat.st_ino, stat.st_size, stat.st_mtime_ns))


@lru_cache(maxsize=64)
def _cached_digest(path: str, algorithm: str, stamp: tuple[int, int, int]) -> str:
    digest = hashlib.new(algorithm, usedforsecurity=False)
    try:
        with open(path, "rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
    except OSError as exc:
        raise DataError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    return digest.hexdigest()
