"""Provenance: content hashes, library versions, and the environment a result was produced in.

Every module that hashes or records provenance imports it from here (plan, runner, leaderboard); it imports nothing
of the harness but the record type, so none of them has to import another to get it.
"""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
import sys
import time
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from benchmark.record import Environment

#: Packages whose versions enter every job hash: a new version of any of them recomputes results.
VERSIONED = ("defense-bench", "torch", "adversarial-robustness-toolbox", "scikit-learn", "numpy")


def content_hash(payload: Any) -> str:
    """A short SHA-256 of ``payload`` as canonical JSON (sorted keys): equal payloads, equal hashes."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


@cache
def library_versions() -> tuple[tuple[str, str], ...]:
    found = []
    for package in VERSIONED:
        try:
            found.append((package, version(package)))
        except PackageNotFoundError:
            found.append((package, "not installed"))
    return tuple(found)


@cache
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@cache
def git_sha(cwd: str | None = None) -> str | None:
    """The commit of the repository the run was started in, with ``-dirty`` for uncommitted changes; None outside."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def now() -> str:
    """The local time, as records write it (``2026-11-29T07:45:00+0000``)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def environment(device: str) -> Environment:
    """Python, library versions, device (with the GPU's name), CPU model, thread count and git SHA."""
    import torch

    return Environment(
        python=sys.version.split()[0],
        platform=platform.platform(),
        versions=dict(library_versions()),
        device=device,
        cpu=cpu_model(),
        torch_threads=torch.get_num_threads(),
        git_sha=git_sha(),
        gpu=torch.cuda.get_device_name(torch.device(device)) if device.startswith("cuda") else None,
    )
