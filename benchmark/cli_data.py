"""``bench data list`` and ``bench data fetch NAME``: the image datasets' canonical files in the data directory
(``--data-dir``, else ``$BENCH_DATA``, else the per-user cache; ``benchmark.vision.datadir``). ``benchmark.cli`` adds
the ``data`` group; this module imports neither torch nor ART."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlparse

import click

from benchmark.errors import ConfigError

DATA_DIR_HELP = "Data directory (default: $BENCH_DATA, else ~/.cache/defense-bench/data)."


@click.group()
def data() -> None:
    """The image datasets' files: which are present and verified, and fetching them."""


@data.command("list")
@click.option("--data-dir", help=DATA_DIR_HELP)
def list_data(data_dir: str | None) -> None:
    """Each dataset with its files: present, verified against the published checksum, or missing."""
    from benchmark.vision.checksums import FILES
    from benchmark.vision.datadir import data_dir as resolve

    root = resolve(data_dir)
    click.echo(f"data directory: {root}")
    for name in FILES:
        click.echo(f"{name:<14} {status(name, root)}")


def status(name: str, root: Path) -> str:
    """One dataset's files in ``root``: "verified", "present, N not verified: …" or "missing … (bench data fetch)"."""
    from benchmark.errors import DataError
    from benchmark.vision.checksums import FILES, check_file

    needed = [entry for entry in FILES[name] if not entry.path.endswith(".tar.gz")]
    missing = [entry.path for entry in needed if not (root / entry.path).exists()]
    if missing:
        return f"missing {len(missing)} of {len(needed)} files (bench data fetch {name})"
    problems = []
    for entry in needed:
        try:
            check = check_file(name, root, entry.path)
        except DataError as exc:
            problems.append(str(exc))
            continue
        if not check.verified:
            problems.append(entry.path)
    return "verified" if not problems else f"present, {len(problems)} not verified: {', '.join(problems)}"


@data.command()
@click.argument("name")
@click.option("--data-dir", help=DATA_DIR_HELP)
@click.option("--mirror", help="Base URL to fetch the files from instead of their canonical hosts (same file names).")
def fetch(name: str, data_dir: str | None, mirror: str | None) -> None:
    """Download dataset NAME's canonical files, verify their published checksums, unpack archives. A stopped
    download resumes where it stopped; a file is under its final name only once verified."""
    from benchmark.fetch import RemoteFile
    from benchmark.fetch import fetch as fetch_file
    from benchmark.registry import did_you_mean
    from benchmark.vision.checksums import FILES, check_file, downloads, require
    from benchmark.vision.datadir import data_dir as resolve

    if name not in FILES:
        hint = did_you_mean(name, FILES, template="; did you mean {}?")
        raise ConfigError(f"unknown dataset {name!r}{hint} (datasets to fetch: {', '.join(FILES)})")
    root = resolve(data_dir)
    for entry in downloads(name):
        algorithm, _, digest = entry.digest.partition(":")
        if algorithm != "md5":  # every downloadable file's published checksum is an MD5 today
            raise ConfigError(f"{entry.path}: published as {algorithm}, which the fetcher does not check")
        url = entry.url if mirror is None else f"{mirror.rstrip('/')}/{Path(urlparse(entry.url).path).name}"
        remote = RemoteFile(url=url, path=entry.path, md5=digest, extract=entry.path.endswith(".tar.gz"))
        click.echo(f"fetching {url}")
        fetch_file(remote, root, on_progress=Reporter())
        members = [member.path for member in FILES[name] if member.archive == entry.path]
        require([check_file(name, root, path) for path in members], unverified=False)
    click.echo(f"{name}: {status(name, root)} in {root}")


class Reporter:
    """Download progress as a line every few seconds (and at the end), readable on a terminal and in a CI log."""

    EVERY = 2.0

    def __init__(self) -> None:
        self.last = 0.0

    def __call__(self, name: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - self.last < self.EVERY and done != total:
            return
        self.last = now
        size = f"{done / 1e6:.1f} of {total / 1e6:.1f} MB ({100 * done / total:.0f} %)" if total else \
            f"{done / 1e6:.1f} MB"
        click.echo(f"  {name}: {size}")
