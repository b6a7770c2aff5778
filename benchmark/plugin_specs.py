"""Plugin specs: ``name:key=value`` text (or TOML tables) → ``PluginSpec``s, every name looked up in its registry
and every parameter checked against the plugin's constraint table. ``benchmark.config`` re-exports these."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from benchmark import ATTACKS, DATASETS, DEFENSES, MODELS, PRIVACY
from benchmark.constraints import check_params, parameter_constraints
from benchmark.errors import BenchError, ConfigError
from benchmark.registry import Registry, close_names, did_you_mean, quoted_list

Defaults = Callable[[str], Mapping[str, Any]]  # make_spec's: a plugin name → the values replacing its class defaults


@dataclass(frozen=True)
class PluginSpec:
    """A plugin name and every parameter (defaults included); ``overrides`` are those that differ from the
    defaults, which label the row."""

    kind: str
    name: str
    params: tuple[tuple[str, Any], ...]
    overrides: tuple[tuple[str, Any], ...] = ()
    alias: str | None = None  # a label given with --name

    @property
    def label(self) -> str:
        """The row label: ``alias`` if given, else the name with the parameters that differ from the defaults
        (``pgd-at(eps=0.05)``)."""
        if self.alias:
            return self.alias
        if not self.overrides:
            return self.name
        return f"{self.name}({','.join(f'{k}={v}' for k, v in self.overrides)})"

    def build(self) -> Any:
        return REGISTRIES[self.kind].get(self.name)(**dict(self.params))


REGISTRIES: dict[str, Registry] = {"defense": DEFENSES, "attack": ATTACKS, "dataset": DATASETS, "model": MODELS,
                                   "privacy": PRIVACY}


def lookup(registry: Registry, name: Any, where: str) -> str:
    try:
        return registry.canonical(str(name).strip())
    except BenchError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def split_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, (list, tuple)):  # a TOML list: its strings may be comma lists too
        return [part for item in value for part in (split_list(item) if isinstance(item, str) else [item])]
    return [value]


def expand_suites(value: Any, norm: str, where: str) -> list[Any]:
    """Replace each ``suite:NAME`` item by the suite's attack names (a name already listed is not repeated)."""
    from attacks.suites import expand_suite, suite_names

    items: list[Any] = []
    for item in split_list(value):
        if isinstance(item, str) and item.startswith("suite:"):
            name = item.split(":", 1)[1]
            try:
                items += [attack for attack in expand_suite(name, norm) if attack not in items]
            except KeyError:
                close = [f"suite:{suite}" for suite in close_names(name, suite_names())]
                hint = f"did you mean {quoted_list(close)}? " if close else ""
                raise ConfigError(f"{where}: unknown suite {name!r}; {hint}(suites: {', '.join(suite_names())})"
                                  ) from None
        elif not (isinstance(item, str) and item in items):
            items.append(item)
    return items


def parse_plugins(kind: str, value: Any, where: str, defaults: Defaults | None = None) -> tuple[PluginSpec, ...]:
    """``"pgd-at:eps=0.05,steps=3,standard"`` (or a TOML list of such strings or of ``{name=…, key=…}`` tables)."""
    raw: list[tuple[str, dict[str, Any]]] = []
    for item in split_list(value):
        if isinstance(item, dict):
            params = dict(item)
            if "name" not in params:
                raise ConfigError(f"{where}: a {kind} table needs a 'name' key")
            raw.append((str(params.pop("name")), params))
            continue
        item = str(item).strip()
        name, colon, rest = item.partition(":")
        if "=" in name and not colon:  # "key=value" continues the previous plugin's parameters
            if not raw:
                raise ConfigError(f"{where}: parameter {item!r} comes before any {kind} name")
            key, _, text = item.partition("=")
            add_param(raw[-1], key, text, where)
            continue
        raw.append((name.strip(), {}))
        if rest:
            key, eq, text = rest.partition("=")
            if not eq:
                raise ConfigError(f"{where}: expected {name}:key=value, got {item!r}")
            add_param(raw[-1], key, text, where)
    if not raw:
        raise ConfigError(f"{where}: the {kind} list is empty")
    specs = tuple(make_spec(kind, name, params, where, defaults) for name, params in raw)
    labels = [spec.label for spec in specs]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    if duplicates:
        raise ConfigError(f"{where}: {kind} listed twice: {', '.join(duplicates)}")
    return specs


def add_param(plugin: tuple[str, dict[str, Any]], key: str, text: str, where: str) -> None:
    """Set one ``key=value`` of ``plugin`` (its name and parameters so far); a key given twice is refused."""
    name, params = plugin
    key = key.strip()
    if key in params:
        raise ConfigError(f"{where}: {name}: parameter {key!r} given twice ({params[key]!r} and {text.strip()!r}); "
                          "give each parameter once")
    params[key] = text.strip()


def make_spec(kind: str, name: str, params: Mapping[str, Any], where: str, defaults: Defaults | None = None
              ) -> PluginSpec:
    """Check ``params`` against the plugin's fields and their constraints (converting text to the fields' types),
    then build the plugin once (its checks across fields run then). ``defaults(name)``: values replacing the class's
    in this run (``benchmark.recipes``), which ``params`` override; the label names what differs from them."""
    canonical = lookup(REGISTRIES[kind], name, where)
    cls = REGISTRIES[kind].get(canonical)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init} if dataclasses.is_dataclass(cls) else {}
    for key in params:
        if key not in fields:
            hint = did_you_mean(key, fields, template="did you mean {}? ")
            known = ", ".join(fields) or "none"
            raise ConfigError(f"{where}: {kind} {canonical!r} has no parameter {key!r}; {hint}(parameters: {known})")
    if kind == "model" and not dataclasses.is_dataclass(cls):  # a builder function: no parameters, nothing to build
        return PluginSpec(kind, canonical, ())
    base = dict(defaults(canonical)) if defaults else {}
    try:
        values = check_params(canonical, parameter_constraints(cls), {**base, **params}, parse=True)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    try:
        instance = cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {canonical}: {exc}") from None
    full = dataclasses.asdict(instance) if dataclasses.is_dataclass(instance) else {}
    overrides = tuple((key, full[key]) for key in fields if full[key] != base.get(key, fields[key].default))
    return PluginSpec(kind, canonical, tuple(full.items()), overrides)
