"""Writing output files safely: every file the CLI writes (leaderboards, reports, plots) goes through here.

A file is written to a temporary file in the same directory and renamed over the target with ``os.replace``, so a
reader never sees half a file, and a symlink planted at the target is replaced, never followed (the file it points
to stays untouched). The data is synced to disk before the rename. Checkpoints (``benchmark.store``) are written
here too.

Failures become one-line ``BenchError``s naming the path. A full disk (``ENOSPC``, SQLite's "database or disk is
full", or its "disk I/O error" while the disk has (nearly) no free space left) says "no space left on <path>"; any
other SQLite "disk I/O error" says "disk I/O error on <path>".
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from benchmark.errors import BenchError

#: What SQLite says when a write fails for lack of space, and when it fails otherwise (a full disk can also surface
#: as an I/O error: see ``disk_problem``).
SQLITE_FULL, SQLITE_IO_ERROR = "database or disk is full", "disk I/O error"

#: Free bytes below which a disk counts as full (an I/O error there is most likely a write that did not fit).
NEARLY_FULL = 16 << 20


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; see the module docstring."""
    return write_bytes(path, text.encode("utf-8"))


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory (an unpredictable name, created
    exclusively, never through a symlink; synced to disk) and an atomic rename; the new file gets the permissions of
    a newly created file (0666 less the umask)."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
    try:
        handle = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(handle, view):]
            os.fsync(handle)  # the data is on disk before the rename makes it the file
        finally:
            os.close(handle)
        os.replace(partial, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise write_error(path, exc) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
    return path


def write_figure(path: str | os.PathLike, figure, fmt: str, **options) -> Path:
    """Save a matplotlib ``figure`` as ``fmt`` to ``path`` atomically."""
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format=fmt, **options)
    return write_bytes(path, buffer.getvalue())


def make_directory(path: str | os.PathLike, what: str) -> Path:
    """Create directory ``path`` (and its parents) if needed; ``what`` names the option in the error ("": none)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(path, exc, what=what, verb="create") from None
    return path


def disk_problem(exc: BaseException, path: str | os.PathLike) -> str | None:
    """What ``exc``, met writing under ``path``, says about the disk: "no space left on <path>" (``ENOSPC``, a full
    quota, SQLite's "database or disk is full", or its "disk I/O error" on a disk with (nearly) no free space),
    "disk I/O error on <path>" (SQLite's I/O error otherwise), or None (not a disk problem)."""
    if isinstance(exc, OSError):
        return f"no space left on {path}" if exc.errno in (errno.ENOSPC, errno.EDQUOT) else None
    if not isinstance(exc, sqlite3.Error):
        return None
    if SQLITE_FULL in str(exc) or (SQLITE_IO_ERROR in str(exc) and nearly_full(path)):
        return f"no space left on {path}"
    return f"disk I/O error on {path}" if SQLITE_IO_ERROR in str(exc) else None


def nearly_full(path: str | os.PathLike) -> bool:
    """Whether the filesystem holding ``path`` (or its nearest existing parent) has under ``NEARLY_FULL`` bytes free
    (False when that cannot be found out)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        return shutil.disk_usage(path).free < NEARLY_FULL
    except OSError:
        return False


def write_error(path: Path, exc: OSError, *, what: str = "", verb: str = "write") -> BenchError:
    """The one-line error for a failed write of ``path``."""
    problem = disk_problem(exc, path)
    if problem is not None:
        return BenchError(problem)
    prefix = f"{what}: " if what else ""
    return BenchError(f"{prefix}cannot {verb} {path}: {exc.strerror or exc}")


@contextlib.contextmanager
def disk_errors(path: str | os.PathLike) -> Iterator[None]:
    """Turn a disk problem met inside the block (by SQLite or a file write) into a one-line ``BenchError``: "no
    space left on ``path``" or "disk I/O error on ``path``" (see ``disk_problem``)."""
    try:
        yield
    except (OSError, sqlite3.Error) as exc:
        problem = disk_problem(exc, path)
        if problem is None:
            raise
        raise BenchError(f"{problem} ({exc})") from None


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the file ``path`` (created if needed, never through a symlink) inside the
    block: one process at a time, across processes; the lock ends with the block (or the process)."""
    import fcntl

    path = Path(path)
    try:
        handle = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    except OSError as exc:
        raise write_error(path, exc, verb="lock") from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)
