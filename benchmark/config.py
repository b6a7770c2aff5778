"""Configuration: an optional TOML file plus command-line overrides → one frozen, validated ``EvalConfig``.

Every name is looked up in its registry here and every ε parsed and range-checked here, before any work starts; each
problem becomes one ``ConfigError`` that names the parameter and where it came from.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from benchmark.constraints import Boolean, Constraint, Interval, check_value
from benchmark.errors import ConfigError
from benchmark.plugin_specs import (  # noqa: F401  (re-exported: the config's plugin parsing lives there)
    REGISTRIES,
    Defaults,
    PluginSpec,
    add_param,
    expand_suites,
    lookup,
    make_spec,
    parse_plugins,
    split_list,
)
from benchmark.recipes import RecipeOverrides
from benchmark.registry import did_you_mean
from benchmark.sweep import SURVIVORS

if TYPE_CHECKING:  # pragma: no cover
    from benchmark.sources import ModelFile

DEFAULTS: dict[str, Any] = {
    "dataset": "digits",
    "model": "cnn-small",
    "defenses": None,  # standard,pgd-at; "pretrained" for a trained model given as a file
    "attacks": "suite:default",  # the attacks of it the model can take, for a model without gradients
    "eps": None,  # the dataset's default grid for the norm
    "norm": "inf",
    "seeds": (0,),
    "device": "auto",
    "out": "bench-results",
    "quick": False,
    "n_test": None,
    "survivors": "shared",
    # a model given as a file or a class (benchmark.sources)
    "model_args": (),
    "weights": None,
    "normalize": None,
    "trust": (),
    "name": None,  # the row label instead of the defense's
    "recipe": None,  # training recipe fields over the dataset's paper setting (benchmark.recipes)
    "shards": 1,  # pieces of each job's test samples, run as separate tasks (benchmark/shards.py)
    "unverified_data": False,  # use dataset files that fail their published checksums (rows are flagged)
    "privacy": None,  # privacy attacks (benchmark.PRIVACY) run on each trained model (benchmark/privacy_inputs.py)
    "mia_samples": None,  # members and non-members per side of the membership split (default: up to 500)
    "n_train": None,  # train on the first N training samples only; the rest are non-members never trained on
    "ibp": False,  # certify each model's L∞ robustness by interval bound propagation (benchmark/ibp_stage.py)
    "eot_draws": None,  # gradients averaged per EoT step on a randomized model (default: benchmark.adaptive.EOT_DRAWS)
}
DEFAULT_DEFENSES = {False: "standard,pgd-at", True: "pretrained"}  # by: is the model a trained one from a file
#: How each key is spelled on the command line, for error messages.
OPTION_NAMES = {"defenses": "--defense", "attacks": "--attack", "seeds": "--seed", "model_args": "--model-arg"}
NORMS = ("inf", "2")
QUICK_N_TEST = 100
#: The ranges of the run's own integer options (plugins declare theirs in ``parameter_constraints``).
SEED = Interval(int, 0, 2**31 - 1)  # per-sample keys are seed · 2³² + index, in int64
SEED_COUNT = Interval(int, 1, 1_000)  # bench evaluate --seeds N
N_TEST = Interval(int, 1, 1_000_000)
SHARDS = Interval(int, 1, 10_000)
EOT_DRAWS = Interval(int, 1, 10_000)
@dataclass(frozen=True)
class EvalConfig:
    dataset: str
    model: str
    defenses: tuple[PluginSpec, ...]
    attacks: tuple[PluginSpec, ...]
    eps: tuple[float, ...]  # ascending, starts at 0
    norm: str
    seeds: tuple[int, ...]
    device: str
    out: Path
    quick: bool
    n_test: int | None  # as given (None: every test sample, or QUICK_N_TEST with quick: ``test_count``)
    survivors: str = "shared"  # which samples each attack gets: "shared" or "per-attack" (benchmark/sweep.py)
    model_file: ModelFile | None = None  # the model as a file or class (None: a registry architecture)
    default_attacks: bool = False  # the attacks are the default suite's (preflight drops what the data cannot take)
    recipes: tuple[Any, ...] = ()  # per defense, in order: its ``benchmark.recipes.Recipe`` (None: it takes none)
    shards: int = 1  # pieces of each job's test samples, run as separate tasks (benchmark/shards.py)
    privacy: tuple[PluginSpec, ...] = ()  # privacy attacks run on each trained model (benchmark.PRIVACY)
    mia_samples: int | None = None  # members (and non-members) per side of the membership split (None: default)
    n_train: int | None = None  # train on the first N training samples only (None: all)
    ibp: bool = False  # IBP-verified accuracy beside the empirical one (L∞ only)
    eot_draws: int | None = None  # EoT's draws per gradient (None: benchmark.adaptive.EOT_DRAWS)

    @property
    def headline_eps(self) -> float:
        from benchmark.data import headline_eps

        return headline_eps(self.dataset, self.norm, self.eps)


def test_count(config: EvalConfig, available: int) -> int:
    """How many test samples the run scores, of the ``available``: ``--n-test`` (more than there are is refused),
    else ``QUICK_N_TEST`` at most with ``--quick``, else all."""
    if config.n_test is None:
        return min(QUICK_N_TEST, available) if config.quick else available
    if config.n_test > available:
        raise ConfigError(f"--n-test: {config.n_test} is more than the {available} test samples of {config.dataset}")
    return config.n_test


def load_toml(path: str | os.PathLike) -> dict[str, Any]:
    """The ``[evaluate]`` table of a TOML config file (or its top level when it has no such table)."""
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"--config: file not found: {path}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--config: {path} is not a TOML file (not UTF-8 text)") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"--config: cannot read {path}: {exc}") from None
    table = document.get("evaluate", document)
    if not isinstance(table, dict):
        raise ConfigError(f"--config: [evaluate] in {path} must be a table")
    return table


def build_config(file_values: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None,
                 *, file_label: str = "config file", create_out: bool = True) -> EvalConfig:
    """Merge defaults < file values < overrides (unset overrides must be dropped by the caller) and validate;
    ``create_out=False`` (a dry run) checks that ``out`` could be created instead of creating it."""
    from benchmark.inputs import dataset_text, parse_attacks, parse_dataset, parse_defenses, parse_model_option
    from benchmark.privacy_inputs import MIA_SAMPLES, N_TRAIN, parse_privacy

    values = merge_values(file_values or {}, overrides or {}, file_label)

    def get(key: str) -> Any:
        return values[key][0]

    def where(key: str) -> str:
        return values[key][1]

    unverified = parse_value(get("unverified_data"), where("unverified_data"), Boolean())
    dataset = dataset_text(parse_dataset(get("dataset"), where("dataset"), unverified=unverified))
    model, model_file = parse_model_option(get, where)
    norm = str(get("norm"))
    if norm not in NORMS:
        raise ConfigError(f"{where('norm')}: unknown norm {norm!r}; supported: {', '.join(NORMS)}")
    recipe = RecipeOverrides.parse(dataset, get("recipe"), where("recipe"))
    defenses = parse_defenses(get, where, model_file, defaults=recipe.defense_defaults)
    attacks = parse_attacks(get("attacks"), where("attacks"), norm, model_file)
    eps = default_eps(dataset, norm) if get("eps") is None else parse_eps(get("eps"), where("eps"), norm)
    quick = parse_value(get("quick"), where("quick"), Boolean())
    return recipe.attach(EvalConfig(
        dataset=dataset,
        model=model,
        defenses=defenses,
        attacks=attacks,
        eps=eps,
        norm=norm,
        seeds=parse_seeds(get("seeds"), where("seeds")),
        device=resolve_device(str(get("device")), where("device")),
        out=writable_dir(get("out"), where("out"), create=create_out),
        quick=quick,
        n_test=parse_optional(get("n_test"), where("n_test"), N_TEST),
        survivors=parse_choice(get("survivors"), where("survivors"), SURVIVORS),
        model_file=model_file,
        default_attacks=where("attacks").endswith("(default)"),
        shards=parse_value(get("shards"), where("shards"), SHARDS),
        privacy=parse_privacy(get("privacy"), where("privacy"), defenses, model_file),
        mia_samples=parse_optional(get("mia_samples"), where("mia_samples"), MIA_SAMPLES),
        n_train=parse_optional(get("n_train"), where("n_train"), N_TRAIN),
        ibp=parse_ibp(get("ibp"), where("ibp"), norm),
        eot_draws=parse_optional(get("eot_draws"), where("eot_draws"), EOT_DRAWS),
    ))


def parse_ibp(value: Any, where: str, norm: str) -> bool:
    """``--ibp``: interval bound propagation certifies L∞ boxes only, so an L2 run is refused naming the norm."""
    ibp = parse_value(value, where, Boolean())
    if ibp and norm != "inf":
        raise ConfigError(f"{where}: interval bound propagation certifies L∞ boxes, not L{norm} balls: use --norm inf "
                          "(randomized smoothing certifies L2: the smoothing defense)")
    return ibp


def default_eps(dataset: str, norm: str) -> tuple[float, ...]:
    """The dataset's ε grid for ``norm`` (when ``--eps`` is not given)."""
    from benchmark.data import dataset_instance

    return tuple(dataset_instance(dataset).default_eps[norm])


def merge_values(file_values: Mapping[str, Any], overrides: Mapping[str, Any], file_label: str
                 ) -> dict[str, tuple[Any, str]]:
    """Each key's value and where it came from (for error messages): defaults < file values < overrides."""
    values: dict[str, tuple[Any, str]] = {key: (value, f"{key} (default)") for key, value in DEFAULTS.items()}
    for key, value in file_values.items():
        key = key.replace("-", "_")
        key = {"defense": "defenses", "attack": "attacks", "seed": "seeds"}.get(key, key)
        if key not in DEFAULTS:
            hint = did_you_mean(key, DEFAULTS, template="; did you mean {}?")
            raise ConfigError(f"{file_label}: unknown key {key!r}{hint}")
        values[key] = (value, f"{key} (in {file_label})")
    for key, value in overrides.items():
        values[key] = (value, OPTION_NAMES.get(key, "--" + key.replace("_", "-")))
    return values


def parse_choice(value: Any, where: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        hint = did_you_mean(str(value), choices, template="; did you mean {}?")
        raise ConfigError(f"{where}: must be one of {', '.join(choices)}, got {value!r}{hint}")
    return value


def parse_eps(value: Any, where: str, norm: str) -> tuple[float, ...]:
    """ε list → ascending distinct tuple that starts at 0 (clean accuracy). Each ε ≥ 0, finite, ≤ 1 under L∞."""
    grid = {0.0}
    items = split_list(value)
    if not items:
        raise ConfigError(f"{where}: no ε given")
    for item in items:
        try:
            eps = float(item)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: {item!r} is not a number") from None
        if not math.isfinite(eps) or eps < 0:
            raise ConfigError(f"{where}: ε must be a finite number ≥ 0, got {item!r}")
        if norm == "inf" and eps > 1:
            raise ConfigError(f"{where}: ε = {eps:g} exceeds 1, the whole input range [0, 1], under L∞")
        grid.add(eps)
    return tuple(sorted(grid))


def parse_value(value: Any, where: str, constraint: Constraint) -> Any:
    """``value`` (text or a TOML value) converted and checked: "--seed: must be an int in [0, 2147483647], got -1"."""
    try:
        return check_value(constraint, value, parse=True)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def parse_optional(value: Any, where: str, constraint: Constraint) -> Any:
    """``parse_value`` for an option that may be unset (None stays None)."""
    return None if value is None else parse_value(value, where, constraint)


def parse_seeds(value: Any, where: str) -> tuple[int, ...]:
    seeds = tuple(parse_value(item, where, SEED) for item in split_list(value))
    if not seeds:
        raise ConfigError(f"{where}: no seed given")
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"{where}: seeds repeat: {seeds}")
    return seeds


def resolve_device(device: str, where: str) -> str:
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise ConfigError(f"{where}: expected auto, cpu or cuda, got {device!r}")
    if device == "cpu" or (device == "auto" and not Path("/proc/driver/nvidia/version").exists()
                           and sys.platform == "linux"):
        return "cpu"  # no NVIDIA driver: no CUDA, and no need to import torch to find out
    import torch

    if torch.cuda.is_available():
        return "cuda" if device == "auto" else device
    if device == "auto":
        return "cpu"
    raise ConfigError(f"{where}: {device!r} requested but CUDA is not available on this machine (use --device cpu)")


def writable_dir(value: Any, where: str, *, create: bool = True) -> Path:
    """``value`` as a writable directory, created if missing; with ``create=False`` only checked: a missing one must
    lie under a writable directory (its nearest existing ancestor)."""
    path = Path(str(value)).expanduser()
    existing = path
    try:
        if create:
            path.mkdir(parents=True, exist_ok=True)
        while not existing.exists():
            existing = existing.parent
    except OSError as exc:
        raise ConfigError(f"{where}: cannot create {path}: {exc.strerror or exc}") from None
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        problem = f"{existing} is not a writable directory"
        raise ConfigError(f"{where}: {problem}" if existing == path else f"{where}: cannot create {path}: {problem}")
    return path


def reference_defenses() -> list[str]:
    """The defenses of the reference leaderboards (``leaderboards/regenerate.sh``, L∞ and L2): every registered one
    that trains a model (``trains``, False for ``pretrained``) and is on them (``reference_board``, False for the
    preprocessing wrappers, randomized smoothing and IBP training, whose numbers the README gives on their own)."""
    from benchmark import DEFENSES

    return [name for name in DEFENSES.names() if getattr(DEFENSES.get(name), "trains", True)
            and getattr(DEFENSES.get(name), "reference_board", True)]
