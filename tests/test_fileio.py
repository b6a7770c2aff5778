"""``benchmark.fileio``: atomic (fsynced) writes that replace a planted symlink, one-line errors for a full disk or
a failing one, and an exclusive lock file."""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import sqlite3
import stat
from types import SimpleNamespace

import pytest

from benchmark.errors import BenchError
from benchmark.fileio import NEARLY_FULL, disk_errors, exclusive_lock, write_text


def test_a_planted_symlink_is_replaced_and_its_target_untouched(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "leaderboard.md"
    link.symlink_to(victim)
    write_text(link, "fresh")
    assert victim.read_text() == "precious"
    assert not link.is_symlink() and link.read_text() == "fresh"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["leaderboard.md", "victim.txt"]


def test_a_written_file_gets_the_permissions_of_a_new_file(tmp_path):
    previous = os.umask(0o022)
    try:
        path = write_text(tmp_path / "board.md", "x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_the_data_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    calls = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append(("fsync", os.fstat(fd).st_size)) or fsync(fd))
    monkeypatch.setattr(os, "replace", lambda *paths: calls.append(("replace", None)) or replace(*paths))
    write_text(tmp_path / "board.md", "12345")
    assert calls == [("fsync", 5), ("replace", None)]


def free_space(monkeypatch, free: int) -> None:
    monkeypatch.setattr(shutil, "disk_usage", lambda path: SimpleNamespace(total=1 << 40, used=0, free=free))


@pytest.mark.parametrize(
    ("error", "free"),
    [(OSError(errno.ENOSPC, "No space left on device"), 1 << 40),
     (sqlite3.OperationalError("database or disk is full"), 1 << 40),
     (sqlite3.OperationalError("disk I/O error"), 0), (sqlite3.OperationalError("disk I/O error"), NEARLY_FULL - 1)],
    ids=["ENOSPC", "sqlite-full", "sqlite-io-error-no-space", "sqlite-io-error-nearly-full"],
)
def test_a_full_disk_says_no_space_left_on_the_path(tmp_path, monkeypatch, error, free):
    free_space(monkeypatch, free)
    with pytest.raises(BenchError, match=rf"^no space left on {re.escape(str(tmp_path))} \("), disk_errors(tmp_path):
        raise error


def test_an_io_error_with_space_left_says_disk_io_error(tmp_path, monkeypatch):
    free_space(monkeypatch, NEARLY_FULL)
    target = tmp_path / "not-yet-created" / "bench.db"  # the nearest existing parent is measured
    with pytest.raises(BenchError, match=rf"^disk I/O error on {re.escape(str(target))} \(disk I/O error\)$"), \
            disk_errors(target):
        raise sqlite3.OperationalError("disk I/O error")


def test_other_errors_pass_through(tmp_path):
    with pytest.raises(sqlite3.OperationalError, match="no such table"), disk_errors(tmp_path):
        raise sqlite3.OperationalError("no such table: results")


def test_the_lock_is_exclusive_across_open_files_and_released_after(tmp_path):
    path = tmp_path / ".leaderboard.lock"

    def try_lock() -> bool:
        with open(path, "a") as other:  # another open file description: flock treats it as another process
            try:
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

    with exclusive_lock(path):
        assert not try_lock()
    assert try_lock()


def test_the_lock_file_is_never_a_planted_symlink(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / ".leaderboard.lock").symlink_to(victim)
    with pytest.raises(BenchError, match=r"^cannot lock .*\.leaderboard\.lock: "), \
            exclusive_lock(tmp_path / ".leaderboard.lock"):
        pass
    assert victim.read_text() == "precious"
