"""Where the image datasets' files live: ``--data-dir``, else ``$BENCH_DATA``, else a per-user cache directory.

The cache directory follows the XDG base-directory rule (no platformdirs): ``$XDG_CACHE_HOME/defense-bench/data``
when ``XDG_CACHE_HOME`` is an absolute path, else ``~/.cache/defense-bench/data``. Inside it the layout is
torchvision's, so a directory a user already has for torchvision works as it is.
"""

from __future__ import annotations

import os
from pathlib import Path

#: The environment variable that names the data directory when ``--data-dir`` is not given.
ENV_VAR = "BENCH_DATA"
#: The data directory's place under the per-user cache directory.
CACHE_SUBDIR = Path("defense-bench") / "data"


def data_dir(given: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: ``given`` (``--data-dir``) if not empty, else ``$BENCH_DATA`` if set and not empty, else
    the per-user cache directory. ``~`` is expanded; the directory need not exist."""
    for candidate in (given, os.environ.get(ENV_VAR)):
        if candidate is not None and str(candidate).strip():
            return Path(str(candidate).strip()).expanduser()
    return user_cache_dir() / CACHE_SUBDIR


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME`` when it is an absolute path (the XDG rule ignores a relative one), else ``~/.cache``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg)
    return Path.home() / ".cache"


def dataset_root(root: str) -> Path:
    """The directory a dataset reads: its ``root`` parameter, or the data directory when ``root`` is empty."""
    return Path(root).expanduser() if root.strip() else data_dir()
