"""What a run takes in beyond plugin names: the dataset spec (``digits``, ``npz:PATH``, ``folder:PATH``), the model
spec (a registry architecture with its parameters, ``kind:PATH`` or ``pkg.mod:Class`` with its options), and
which defenses and attacks fit that model. Each problem is one ``ConfigError`` naming the option, raised before any work
(``benchmark.config.build_config`` calls these).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from benchmark import ATTACKS, MODELS
from benchmark.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from benchmark.config import Defaults, PluginSpec
    from benchmark.sources import ModelFile

logger = logging.getLogger(__name__)

#: The options that only a model given as a file or a class takes, with how the command line spells them.
MODEL_OPTIONS = {"weights": "--weights", "model_args": "--model-arg", "normalize": "--normalize", "trust": "--trust"}


def parse_dataset(text: Any, where: str, *, unverified: bool = False) -> PluginSpec:
    """A dataset spec (``digits``, ``npz:data.npz,layout=nhwc``) → its checked ``PluginSpec``. ``unverified``
    (``--unverified-data``) sets the dataset's ``unverified`` option: files that fail their published checksums are
    used anyway, and the rows say so (the dataset's name carries the option; the flag ``unverified_data``)."""
    from benchmark.config import make_spec
    from benchmark.data import split_spec

    name, params = split_spec(str(text))
    if not name:
        raise ConfigError(f"{where}: no dataset given")
    if unverified:
        spec = make_spec("dataset", name, params, where)
        if "unverified" not in dict(spec.params):
            raise ConfigError(f"--unverified-data: dataset {spec.name!r} has no published checksums to skip")
        params = {**params, "unverified": "true"}
    return make_spec("dataset", name, params, where)


def dataset_text(spec: PluginSpec) -> str:
    """The canonical spec text of a dataset: ``digits``; ``npz:data.npz,layout=nhwc`` (the path first, then the
    parameters that differ from the defaults; ``cifar10:unverified=True``)."""
    params = dict(spec.params)
    items = [str(params["path"])] if "path" in params else []
    items += [f"{key}={value}" for key, value in spec.overrides if key != "path"]
    return f"{spec.name}:" + ",".join(items) if items else spec.name


def parse_model_option(get: Callable[[str], Any], where: Callable[[str], str]) -> tuple[str, ModelFile | None]:
    """(the model's name on the board, its ``ModelFile`` or None for a registry architecture). The model options
    (``MODEL_OPTIONS``) are refused with a registry architecture."""
    value = get("model")
    text = str(value).strip()
    given = [key for key in MODEL_OPTIONS if get(key) not in (None, (), [], "", {})]
    if isinstance(value, dict) or is_registry_model(text):
        if given:
            raise ConfigError(f"{where(given[0])}: only for a model given as a file (kind:PATH) or a class "
                              f"(pkg.mod:Class), not for the registry architecture {text!r}")
        return model_text(parse_registry_model(value, where("model"))), None
    from benchmark.sources import parse_model, parse_normalize

    normalize = get("normalize")
    if isinstance(normalize, str):
        normalize = parse_normalize(normalize)
    elif isinstance(normalize, dict):  # as a leaderboard's config writes it
        normalize = (tuple(normalize.get("mean", ())), tuple(normalize.get("std", ())))
    model_file = parse_model(text, weights=get("weights"), args=parse_model_args(get("model_args"),
                                                                                  where("model_args")),
                             normalize=normalize, trust=tuple(split_names(get("trust"))))
    return model_file.spec, model_file


def is_registry_model(text: str) -> bool:
    """Whether ``--model`` text names a registry architecture: a bare name, or ``NAME:key=value,…`` with ``NAME``
    registered (never a file kind; a ``pkg.mod:Class`` has a module before the colon and no ``=`` after it)."""
    name, colon, rest = text.partition(":")
    return not colon or (name.strip() in MODELS and "=" in rest)


def parse_registry_model(value: Any, where: str) -> PluginSpec:
    """A registry architecture with its parameters, ``preact-resnet18:norm=group`` (or a TOML table ``{name=…,
    norm=…}``), checked as plugins are (``benchmark.config.parse_plugins``)."""
    from benchmark.config import parse_plugins

    specs = parse_plugins("model", value, where)
    if len(specs) != 1:
        raise ConfigError(f"{where}: one model, got {len(specs)}: {', '.join(spec.label for spec in specs)}")
    return specs[0]


def model_text(spec: PluginSpec) -> str:
    """The canonical text of a registry architecture, the run's ``model`` (in its hashes, records and boards):
    ``preact-resnet18:norm=group``, only the parameters that differ from the defaults; with none, the bare name, so
    a model without parameters hashes as it always has."""
    if not spec.overrides:
        return spec.name
    return f"{spec.name}:" + ",".join(f"{key}={value}" for key, value in spec.overrides)


def model_builder(text: str) -> Callable[[tuple[int, ...], int], Any]:
    """``(input_shape, nb_classes) → network`` of a registry architecture's canonical text (``model_text``): the
    registered function, or the registered dataclass made with the text's parameters."""
    import dataclasses

    spec = parse_registry_model(text, "--model")
    plugin = MODELS.get(spec.name)
    return plugin(**dict(spec.params)) if dataclasses.is_dataclass(plugin) else plugin


def split_names(value: Any) -> list[str]:
    from benchmark.config import split_list

    return [str(item) for item in split_list(value)] if value else []


def parse_model_args(value: Any, where: str) -> tuple[tuple[str, Any], ...]:
    """``--model-arg key=value`` (repeatable; values read as int, float, true/false or text), or a TOML table."""
    if not value:
        return ()
    if isinstance(value, dict):
        return tuple(value.items())
    pairs = []
    for item in [value] if isinstance(value, str) else value:
        key, eq, text = str(item).partition("=")
        if not eq or not key.strip().isidentifier():
            raise ConfigError(f"{where}: expected key=value, got {item!r}")
        if key.strip() in dict(pairs):
            raise ConfigError(f"{where}: {key.strip()!r} given twice")
        pairs.append((key.strip(), literal(text.strip())))
    return tuple(pairs)


def literal(text: str) -> Any:
    """``"3"`` → 3, ``"0.5"`` → 0.5, ``"true"`` → True; anything else stays text."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def parse_defenses(get: Callable[[str], Any], where: Callable[[str], str], model_file: ModelFile | None,
                   defaults: Defaults | None = None) -> tuple[PluginSpec, ...]:
    """The defenses: by default ``standard,pgd-at``, or ``pretrained`` for a trained model from a file. A trained
    model cannot be trained again, and ``pretrained`` needs one; ``--name`` labels the single defense's row.
    ``defaults``: the run's defense defaults (``benchmark.config.make_spec``)."""
    import dataclasses

    from benchmark.config import DEFAULT_DEFENSES, parse_plugins

    trained = model_file is not None and not model_file.trainable
    value = DEFAULT_DEFENSES[trained] if get("defenses") is None else get("defenses")
    specs = parse_plugins("defense", value, where("defenses"), defaults)
    for spec in specs:
        if spec.name == "pretrained" and not trained:
            model = get("model") if model_file is None else model_file.spec
            raise ConfigError(f"{where('defenses')}: defense 'pretrained' scores a trained model as it is, but "
                              f"{model!r} is an untrained architecture: give a model file (torchscript:PATH, …) or "
                              f"--weights, or a defense that trains it (e.g. standard)")
        if spec.name != "pretrained" and trained:
            raise ConfigError(f"{where('defenses')}: {model_file.spec} is a trained model, scored as it is (defense "
                              f"'pretrained'); to train an architecture with {spec.name!r}, give it as pkg.mod:Class "
                              f"without --weights")
    name = get("name")
    if name is not None:
        name = str(name).strip()
        if not name or len(specs) != 1:
            problem = "is empty" if not name else f"labels one defense's row, but {len(specs)} defenses are given"
            raise ConfigError(f"{where('name')}: {problem}")
        specs = (dataclasses.replace(specs[0], alias=name),)
    return specs


def parse_attacks(value: Any, where: str, norm: str, model_file: ModelFile | None) -> tuple[PluginSpec, ...]:
    """The attacks, each supporting ``norm`` and the model's capabilities. An attack the model cannot take is
    refused, naming why; when the attacks are the default suite, those the model can take are kept instead."""
    from benchmark.config import expand_suites, parse_plugins

    specs = parse_plugins("attack", expand_suites(value, norm, where), where)
    for spec in specs:
        supported = ATTACKS.get(spec.name).norms
        if norm not in supported:
            raise ConfigError(f"{where}: attack {spec.name!r} supports {' and '.join('L' + n for n in supported)}, "
                              f"not the run's L{norm} (--norm)")
    if model_file is None:
        return specs
    from benchmark.sources import capabilities

    capable = capabilities(model_file)
    refusals = {spec.label: attack_refusal(spec.name, capable) for spec in specs}
    kept = tuple(spec for spec in specs if refusals[spec.label] is None)
    if where.endswith("(default)") and kept:
        if len(kept) < len(specs):
            logger.info("%s: %s; attacking with %s", model_file.spec, capable.reason, ", ".join(s.label for s in kept))
        return kept
    for label, refusal in refusals.items():
        if refusal:
            raise ConfigError(f"{where}: attack {label!r} {refusal}")
    return specs


def attack_refusal(name: str, capable: Any) -> str | None:
    """Why attack ``name`` cannot run on a model with these ``capabilities`` (None if it can)."""
    attack = ATTACKS.get(name)
    black_box = ", ".join(n for n in ATTACKS.names() if getattr(ATTACKS.get(n), "black_box", False))
    if attack.needs_grad and not capable.gradients:
        return f"needs input gradients, but {capable.reason}; attacks that need only outputs: {black_box}"
    if getattr(attack, "torch_only", False) and not capable.torch:
        return f"runs only on a PyTorch model (ART's implementation), but {capable.reason}"
    return None
