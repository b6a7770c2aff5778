"""``benchmark.fileio``: atomic writes that replace a planted symlink, and one-line errors for a full disk."""

from __future__ import annotations

import errno
import os
import sqlite3
import stat

import pytest

from benchmark.errors import BenchError
from benchmark.fileio import disk_errors, write_text


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


@pytest.mark.parametrize(
    "error",
    [OSError(errno.ENOSPC, "No space left on device"), sqlite3.OperationalError("database or disk is full"),
     sqlite3.OperationalError("disk I/O error")],
)
def test_a_full_disk_says_no_space_left_on_the_path(tmp_path, error):
    with pytest.raises(BenchError, match=rf"^no space left on {tmp_path} \("), disk_errors(tmp_path):
        raise error


def test_other_errors_pass_through(tmp_path):
    with pytest.raises(sqlite3.OperationalError, match="no such table"), disk_errors(tmp_path):
        raise sqlite3.OperationalError("no such table: results")
