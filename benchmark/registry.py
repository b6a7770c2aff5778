"""Named registries of plugins (defenses, attacks, datasets, models).

After lm-evaluation-harness's ``lm_eval/api/registry.py``: a ``register(name, *aliases)`` decorator, ``get`` that
suggests the closest name, wildcard ``names()`` (timm's ``list_models``), lazy ``"module:attr"`` entries, and
third-party plugins found once, on first lookup, through an entry-point group (pluggy's
``load_setuptools_entrypoints``).
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import logging
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from benchmark.errors import UnknownNameError

logger = logging.getLogger(__name__)

T = TypeVar("T")


def close_names(name: str, choices: Iterable[str], *, cutoff: float = 0.6) -> list[str]:
    """The choices ``name`` may have meant: every one that starts with it (``apgd`` → ``apgd-ce``, ``apgd-dlr``),
    else the closest one by ``difflib`` (none when none is within ``cutoff``)."""
    choices = sorted(set(choices))
    prefixed = [choice for choice in choices if name and choice.startswith(name)]
    return prefixed or difflib.get_close_matches(name, choices, n=1, cutoff=cutoff)


def did_you_mean(name: str, choices: Iterable[str], *, cutoff: float = 0.6, template: str = "did you mean {}?"
                 ) -> str:
    """A hint naming the choices ``close_names`` finds, quoted ("" when there are none): every "unknown name" error
    uses it. ``template``'s ``{}`` receives ``'a'``, ``'a' or 'b'``, ``'a', 'b' or 'c'``."""
    names = close_names(name, choices, cutoff=cutoff)
    return template.format(quoted_list(names)) if names else ""


def quoted_list(names: list[str]) -> str:
    """``'a'``, ``'a' or 'b'``, ``'a', 'b' or 'c'``."""
    quoted = [repr(name) for name in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} or {quoted[-1]}"


def resolve_lazy(spec: str) -> Any:
    """Import ``"package.module:attr"`` and return the attribute."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise ValueError(f"lazy entry {spec!r} is not of the form 'module:attr'")
    return getattr(importlib.import_module(module_name), attr)


class Registry(Generic[T]):
    """Maps names (and aliases) to plugin objects.

    ``builtins`` names a module whose import registers the built-in plugins; it is imported on first lookup, together
    with the entry points of ``group``, so that creating a registry costs nothing.
    """

    def __init__(self, kind: str, *, group: str | None = None, builtins: str | None = None) -> None:
        self.kind = kind
        self.group = group
        self.builtins = builtins
        self._entries: dict[str, T | str] = {}
        self._aliases: dict[str, str] = {}
        self._loaded = False

    def register(self, name: str, *aliases: str) -> Callable[[T], T]:
        """Decorator: ``@REGISTRY.register("name", "alias")``."""

        def decorator(obj: T) -> T:
            self.add(name, obj, aliases=aliases)
            return obj

        return decorator

    def add(self, name: str, obj: T | str, *, aliases: Iterable[str] = ()) -> None:
        """Register ``obj`` (or a lazy ``"module:attr"`` string) under ``name``.

        Registering the same object twice is a no-op; a different object under a taken name is a ``ValueError``.
        """
        for key in (name, *aliases):
            taken = self._entries.get(self._aliases.get(key, key))
            if taken is not None and taken is not obj and taken != obj:
                raise ValueError(f"{self.kind} name {key!r} is already registered to {taken!r}")
        self._entries[name] = obj
        for alias in aliases:
            self._aliases[alias] = name

    def remove(self, name: str) -> None:
        """Unregister ``name`` and its aliases (for tests and interactive sessions)."""
        self._entries.pop(name, None)
        self._aliases = {alias: target for alias, target in self._aliases.items() if target != name}

    def get(self, name: str) -> T:
        """The plugin registered as ``name`` (or an alias); lazy entries are imported now."""
        self._load()
        key = self._aliases.get(name, name)
        if key not in self._entries:
            raise UnknownNameError(self.unknown_message(name))
        entry = self._entries[key]
        if isinstance(entry, str):
            entry = resolve_lazy(entry)
            self._entries[key] = entry
        return entry

    def canonical(self, name: str) -> str:
        """The registered name behind ``name`` (which may be an alias)."""
        self.get(name)
        return self._aliases.get(name, name)

    def names(self, pattern: str = "*") -> list[str]:
        """Sorted registered names matching the fnmatch ``pattern``."""
        self._load()
        return sorted(n for n in self._entries if fnmatch.fnmatchcase(n, pattern))

    def __contains__(self, name: object) -> bool:
        self._load()
        return isinstance(name, str) and (name in self._entries or name in self._aliases)

    def unknown_message(self, name: str) -> str:
        known = [*self._entries, *self._aliases]
        hint = did_you_mean(name, known, cutoff=0.5) or f"known: {', '.join(sorted(self._entries))}"
        return f"unknown {self.kind} {name!r}; {hint}"

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        if self.builtins:
            importlib.import_module(self.builtins)
        if self.group:
            self.load_entry_points(self.group)

    def load_entry_points(self, group: str) -> None:
        """Register every entry point of ``group``; the entry point's name becomes the plugin's name."""
        for ep in entry_points(group=group):
            try:
                obj = ep.load()
            except Exception as exc:  # a broken third-party plugin must not break the harness
                logger.warning("skipping %s plugin %r from %s: %s", self.kind, ep.name, ep.value, exc)
                continue
            if self._entries.get(ep.name) is obj:
                continue
            self.add(ep.name, obj)
