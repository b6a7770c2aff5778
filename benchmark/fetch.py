"""Downloads of the canonical dataset files (``bench data fetch``): resumed where a previous download stopped,
verified against the published checksum, and never left half-written under the final name.

A file is streamed into ``<name>.part`` beside its final path; a later call asks the server for the rest (an HTTP
``Range`` request) and appends. Only a complete file whose MD5 matches is renamed to its final name (fsynced first);
a mismatch removes the part file. Archives (CIFAR's binary tarballs) are unpacked after verification, with
``tarfile``'s ``data`` filter (no absolute paths, links out of the root or device files).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tarfile
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from benchmark.errors import DataError

logger = logging.getLogger(__name__)

#: ``on_progress(name, done_bytes, total_bytes or None)``.
Progress = Callable[[str, int, int | None], None]
CHUNK = 1 << 16


@dataclass(frozen=True)
class RemoteFile:
    """One canonical file of a dataset."""

    url: str
    path: str  # where it ends up, relative to the data root
    md5: str  # the published checksum of the downloaded bytes
    extract: bool = False  # a .tar.gz unpacked into the data root once verified

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


def md5_of(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def fetch(remote: RemoteFile, root: Path, *, on_progress: Progress | None = None, timeout: float = 30.0) -> Path:
    """``remote`` under ``root``, downloaded (or the rest of it) unless a verified copy is there; unpacked if it is
    an archive. Returns the final path. Every failure is one ``DataError`` line; a partial download is kept for the
    next call to resume."""
    target = Path(root) / remote.path
    if target.exists() and md5_of(target) == remote.md5:
        logger.info("%s is there and verified", target)
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        download(remote, partial, on_progress=on_progress, timeout=timeout)
        verify_and_place(remote, partial, target)
    if remote.extract:
        unpack(target, Path(root))
    return target


def download(remote: RemoteFile, partial: Path, *, on_progress: Progress | None, timeout: float) -> None:
    """Append the bytes of ``remote`` that ``partial`` lacks (all of them when the server ignores ``Range``)."""
    offset = partial.stat().st_size if partial.exists() else 0
    request = urllib.request.Request(remote.url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            resumed = response.status == 206
            if offset and not resumed:
                logger.info("%s: the server sent the whole file again", remote.url)
                offset = 0
            total = response.headers.get("Content-Length")
            total = offset + int(total) if total is not None else None
            with open(partial, "ab" if resumed else "wb") as file:
                done = offset
                while block := response.read(CHUNK):
                    file.write(block)
                    done += len(block)
                    if on_progress is not None:
                        on_progress(remote.name, done, total)
                file.flush()
                os.fsync(file.fileno())
            if total is not None and done < total:  # the connection closed before the end
                raise ConnectionError(f"connection closed after {done} of {total} bytes")
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing left to send: the part file is complete
            return
        raise DataError(f"download of {remote.url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        kept = partial.stat().st_size if partial.exists() else 0
        reason = getattr(exc, "reason", None) or exc
        raise DataError(f"download of {remote.url} stopped: {reason}; {kept} bytes kept in {partial}, run the same "
                        f"command again to resume") from None


def verify_and_place(remote: RemoteFile, partial: Path, target: Path) -> None:
    """Rename the complete ``partial`` to ``target`` if its MD5 is the published one; otherwise remove it."""
    found = md5_of(partial)
    if found != remote.md5:
        partial.unlink()
        raise DataError(f"{remote.url}: checksum mismatch (MD5 {found}, published {remote.md5}); the download was "
                        f"removed, run again")
    os.replace(partial, target)
    logger.info("%s verified (MD5 %s)", target, found)


def unpack(archive: Path, root: Path) -> None:
    """Unpack a verified tarball into ``root`` with tarfile's ``data`` filter (refuses absolute paths, links out of
    ``root`` and special files)."""
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(root, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise DataError(f"{archive}: cannot unpack: {exc}") from None
