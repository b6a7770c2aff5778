"""Writing output files safely: every file the CLI writes (leaderboards, reports, plots) goes through here.

A file is written to a temporary file in the same directory and renamed over the target with ``os.replace``, so a
reader never sees half a file, and a symlink planted at the target is replaced, never followed (the file it points
to stays untouched). Checkpoints follow the same pattern in ``benchmark.store``.

Failures become one-line ``BenchError``s naming the path; a full disk (``ENOSPC``, or SQLite's "database or disk is
full" and "disk I/O error") says "no space left on <path>".
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from benchmark.errors import BenchError

#: What SQLite says when a write fails for lack of space (a full disk can also surface as an I/O error).
SQLITE_NO_SPACE = ("database or disk is full", "disk I/O error")


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; see the module docstring."""
    return write_bytes(path, text.encode("utf-8"))


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory and an atomic rename; the new
    file gets the permissions of a newly created file (0666 less the umask)."""
    path = Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
    try:
        handle = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(handle, view):]
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
    """Create directory ``path`` (and its parents) if needed; ``what`` names the option in the error."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise write_error(path, exc, what=what, verb="create") from None
    return path


def no_space(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk is full (an ``OSError`` with ``ENOSPC``, or SQLite's messages for it)."""
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT)
    return isinstance(exc, sqlite3.Error) and any(text in str(exc) for text in SQLITE_NO_SPACE)


def write_error(path: Path, exc: OSError, *, what: str = "", verb: str = "write") -> BenchError:
    """The one-line error for a failed write of ``path``."""
    if no_space(exc):
        return BenchError(f"no space left on {path}")
    prefix = f"{what}: " if what else ""
    return BenchError(f"{prefix}cannot {verb} {path}: {exc.strerror or exc}")


@contextlib.contextmanager
def disk_errors(path: str | os.PathLike) -> Iterator[None]:
    """Turn a full disk met inside the block (by SQLite or a file write) into "no space left on ``path``"."""
    try:
        yield
    except (OSError, sqlite3.Error) as exc:
        if not no_space(exc):
            raise
        raise BenchError(f"no space left on {path} ({exc})") from None
