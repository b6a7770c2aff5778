"""Declared parameter constraints of plugins, after scikit-learn's ``_parameter_constraints``.

Every built-in plugin is a frozen dataclass that inherits ``Constrained`` and declares one table, a constraint per
field::

    parameter_constraints: ClassVar[dict] = {
        "steps": Interval(int, 1, 10_000),
        "step_fraction": Interval(float, 0, 1, closed="right"),
        "random_start": Boolean(),
    }

The config checks command-line and TOML values against the table before any work (``check_params(..., parse=True)``
also converts text to the field's type); ``Constrained.__post_init__`` checks the same table when a plugin is built
in Python, so ``PGD(steps=0)`` fails too. Checks that span several fields stay in the plugin's ``__post_init__``
(after ``super().__post_init__()``). A third-party plugin without a table is only type-checked, against the type of
each field's default, when the config is built.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from benchmark.registry import did_you_mean

#: Which ends belong to an ``Interval``.
CLOSED = ("both", "left", "right", "neither")
TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")


class Constraint:
    """What a parameter accepts. ``convert`` turns command-line text (or a TOML value) into the typed value;
    ``accepts`` checks a typed value; ``describe`` says what is allowed ("an int in [1, 10000]"); ``short`` says it in
    a few characters for ``bench list`` ("[1, 10000]")."""

    def convert(self, value: Any) -> Any:
        return value

    def accepts(self, value: Any) -> bool:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError

    def short(self) -> str:
        return self.describe()

    def hint(self, value: Any) -> str:
        """Appended to the error message (a did-you-mean); empty by default."""
        return ""


@dataclass(frozen=True)
class Interval(Constraint):
    """A number of ``type`` (``int`` or ``float``) between ``low`` and ``high`` (``None``: unbounded); ``closed`` says
    which ends are included. A float is also finite; an int field never takes a float or a bool."""

    type: type
    low: float | None = None
    high: float | None = None
    closed: str = "both"

    def __post_init__(self) -> None:
        if self.type not in (int, float):
            raise ValueError(f"Interval type must be int or float, got {self.type!r}")
        if self.closed not in CLOSED:
            raise ValueError(f"Interval closed must be one of {', '.join(CLOSED)}, got {self.closed!r}")

    def convert(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return self.type(value.strip())
            except ValueError:  # also a string of more digits than Python converts: reported as not an int
                return value
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float) if self.type is float else int):
            return False
        if self.type is float and not math.isfinite(value):
            return False
        low_ok = self.low is None or value > self.low or (value == self.low and self.closed in ("both", "left"))
        high_ok = self.high is None or value < self.high or (value == self.high and self.closed in ("both", "right"))
        return low_ok and high_ok

    def describe(self) -> str:
        noun = "an int" if self.type is int else "a number"
        if self.low is None and self.high is None:
            return noun
        return f"{noun} in {self.bounds(', ')}"

    def short(self) -> str:
        return self.bounds(",")

    def bounds(self, separator: str) -> str:
        """``[1, 10000]``, ``(0, 1]``, ``[0, inf)``."""
        left = "[" if self.closed in ("both", "left") and self.low is not None else "("
        right = "]" if self.closed in ("both", "right") and self.high is not None else ")"
        low = "-inf" if self.low is None else _number(self.low)
        high = "inf" if self.high is None else _number(self.high)
        return f"{left}{low}{separator}{high}{right}"


@dataclass(frozen=True, init=False)
class Options(Constraint):
    """One of the given strings: ``Options("iid", "dirichlet")``."""

    choices: tuple[str, ...]

    def __init__(self, *choices: str) -> None:
        if not choices or not all(isinstance(choice, str) for choice in choices):
            raise ValueError(f"Options needs one or more strings, got {choices!r}")
        object.__setattr__(self, "choices", choices)

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) and value in self.choices

    def describe(self) -> str:
        return f"one of {', '.join(self.choices)}"

    def short(self) -> str:
        return "|".join(self.choices)

    def hint(self, value: Any) -> str:
        return did_you_mean(str(value), self.choices, template="; did you mean {}?")


@dataclass(frozen=True)
class Boolean(Constraint):
    """``True`` or ``False``; from text, true/false, 1/0, yes/no or on/off."""

    def convert(self, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip().lower()
            if text in TRUE_WORDS:
                return True
            if text in FALSE_WORDS:
                return False
        return value

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)

    def describe(self) -> str:
        return "true or false"

    def short(self) -> str:
        return "true|false"


@dataclass(frozen=True)
class Text(Constraint):
    """Any string (what a third-party plugin's ``str`` field without a declared constraint accepts)."""

    def convert(self, value: Any) -> Any:
        return value if isinstance(value, str) else str(value)

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str)

    def describe(self) -> str:
        return "a string"


def _number(bound: float) -> str:
    return str(bound) if isinstance(bound, int) else f"{bound:g}"


class Constrained:
    """Mixin for plugin dataclasses: ``__post_init__`` checks every field against ``parameter_constraints``.

    A subclass with checks across fields overrides ``__post_init__`` and calls ``super().__post_init__()`` first.
    """

    parameter_constraints: ClassVar[Mapping[str, Constraint]] = {}

    def __post_init__(self) -> None:
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.init}  # type: ignore[arg-type]
        check_params(type(self).__name__, self.parameter_constraints, values)


def implied_constraint(default: Any) -> Constraint | None:
    """The type check of a field without a declared constraint, from its default (``None``: no check)."""
    if isinstance(default, bool):
        return Boolean()
    if isinstance(default, (int, float)):
        return Interval(type(default))
    if default is None or isinstance(default, str):
        return Text()
    return None


def parameter_constraints(cls: Any) -> dict[str, Constraint | None]:
    """The constraint of each constructor field of plugin ``cls``: the declared one, or for a field without one (a
    third-party plugin), the type check implied by its default; ``{}`` for a plugin that is not a dataclass."""
    if not dataclasses.is_dataclass(cls):
        return {}
    declared = getattr(cls, "parameter_constraints", {})
    return {f.name: declared[f.name] if f.name in declared else implied_constraint(f.default)
            for f in dataclasses.fields(cls) if f.init}


def check_value(constraint: Constraint, value: Any, *, parse: bool = False) -> Any:
    """``value`` (converted from text first when ``parse``) if ``constraint`` accepts it; otherwise a ``ValueError``
    whose message reads "must be <what is allowed>, got <value>" (the converted value: ``0``, not ``'0'``)."""
    converted = constraint.convert(value) if parse else value
    if not constraint.accepts(converted):
        raise ValueError(f"must be {constraint.describe()}, got {converted!r}{constraint.hint(value)}")
    return converted


def check_params(label: str, table: Mapping[str, Constraint | None], params: Mapping[str, Any], *,
                 parse: bool = False) -> dict[str, Any]:
    """``params`` checked against the constraints of ``table`` (and converted from text when ``parse``); a
    ``ValueError`` names ``label`` (the plugin), the parameter and what it accepts: "pgd: steps must be an int in
    [1, 10000], got 0". Keys without a constraint pass unchanged (unknown keys are the caller's to refuse)."""
    checked = dict(params)
    for key, value in params.items():
        constraint = table.get(key)
        if constraint is not None:
            try:
                checked[key] = check_value(constraint, value, parse=parse)
            except ValueError as exc:
                raise ValueError(f"{label}: {key} {exc}") from None
    return checked


def missing_constraints(cls: Any) -> list[str]:
    """The constructor fields of ``cls`` without a declared constraint (every built-in plugin must have none)."""
    declared = getattr(cls, "parameter_constraints", None)
    if not dataclasses.is_dataclass(cls):
        return []
    return [f.name for f in dataclasses.fields(cls) if f.init and (declared is None or f.name not in declared)]


def format_constraint(constraint: Constraint | None) -> str:
    """What a parameter accepts in a few characters: ``[1,10000]``, ``(0,1]``, ``iid|dirichlet``, ``true|false``;
    ``""`` when it has no constraint."""
    return "" if constraint is None else constraint.short()


def describe_fields(plugin: Any) -> list[str]:
    """``bench list``'s view of a plugin's parameters: ``name=default`` and what it accepts, for each constructor
    field (``steps=10 [1,10000]``); ``[]`` for a plugin that is not a dataclass."""
    if not dataclasses.is_dataclass(plugin):
        return []
    table = parameter_constraints(plugin)
    return [f"{f.name}={f.default} {format_constraint(table[f.name])}".rstrip()
            for f in dataclasses.fields(plugin) if f.init]


@dataclass(frozen=True)
class OptionalInterval(Interval):
    """An ``Interval``, or None (not set); from text, ``none`` (any case) is None."""

    def convert(self, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() == "none":
            return None
        return super().convert(value)

    def accepts(self, value: Any) -> bool:
        return value is None or super().accepts(value)

    def describe(self) -> str:
        return f"{super().describe()}, or none"

    def short(self) -> str:
        return f"{super().short()}|none"
