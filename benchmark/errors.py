"""User-facing errors: the CLI prints their message on one line and exits with code 2."""

from __future__ import annotations


class BenchError(Exception):
    """Bad input or an unusable environment; the message is shown to the user as is."""


class UnknownNameError(BenchError):
    """A name that no registry knows; the message suggests the closest match."""


class ConfigError(BenchError):
    """A configuration value that fails validation; the message names the parameter."""


class AttackError(BenchError):
    """An attack returned something that is not a valid adversarial example (outside the ball or the input range)."""
