"""User-facing errors: the CLI prints their message on one line and exits with code 2."""

from __future__ import annotations

import signal

#: The signals that stop a run (``Stopped``): SIGINT, SIGTERM, and SIGALRM of ``--time-limit``.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)


class BenchError(Exception):
    """Bad input or an unusable environment; the message is shown to the user as is."""


class UnknownNameError(BenchError):
    """A name that no registry knows; the message suggests the closest match."""


class ConfigError(BenchError):
    """A configuration value that fails validation; the message names the parameter."""


class AttackError(BenchError):
    """An attack returned something that is not a valid adversarial example (outside the ball or the input range)."""


class DataError(BenchError, ValueError):
    """Arrays that break the data contract (``benchmark.api.check_split``), or a model whose output does not fit
    them; the message names the argument."""


class Stopped(BaseException):
    """The run was stopped from outside: SIGINT (exit code 130), SIGTERM (143) or its ``--time-limit`` (2). A
    ``BaseException``, so no ``except Exception`` swallows it; executors end their workers, then fill in ``kept``
    (finished jobs in the store) and ``running`` (the jobs cut short, as "label (seed N)")."""

    def __init__(self, reason: str, code: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.kept: int | None = None
        self.running: list[str] = []
