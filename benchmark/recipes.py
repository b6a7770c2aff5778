"""Training recipes as data: how the shared training loop (``defenses/_train.py``) trains, per dataset as the papers do.

A ``Recipe`` says which optimiser, learning-rate schedule, epochs, batch size, augmentation, early stopping and mixed
precision the loop uses. Each dataset has a default (``PAPERS``): the papers' recipe on CIFAR-10/100, SVHN, MNIST and
Fashion-MNIST, and on every other dataset (digits, synthetic, ``npz:``, ``folder:``) the loop as it always was — Adam
at each defense's own constant ``lr``, ``epochs`` and ``batch_size``, nothing else — which trains bit for bit as before
recipes and stays out of the train hash. A dataset's paper setting may also set defense fields (PGD-AT's ε and steps
on CIFAR); ``--recipe key=value,…`` (``[evaluate] recipe = {…}``) overrides recipe fields for every defense, and a
defense's own parameters (``pgd-at:epochs=5``) override both. No torch here: the config resolves recipes cheaply.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from benchmark.constraints import Boolean, Constrained, Constraint, Interval, Options, check_params
from benchmark.errors import ConfigError
from benchmark.registry import did_you_mean

if TYPE_CHECKING:  # pragma: no cover
    from benchmark.config import EvalConfig, PluginSpec

logger = logging.getLogger(__name__)

#: The recipe fields every defense of the shared loop also has: a recipe's values become the defense's defaults.
DEFENSE_NUMBERS = ("epochs", "lr", "batch_size")
#: The fields that make the loop what it was before recipes (Adam at a constant rate, no augmentation, no early
#: stopping, full precision): a recipe with these values trains bit for bit as that loop did, so it stays out of the
#: train hash (its epochs, lr and batch_size are the defense's own parameters, hashed there).
LEGACY = {"optimiser": "adam", "weight_decay": 0.0, "schedule": "constant", "augmentation": "none",
          "early_stop": "none", "amp": "off"}


@dataclass(frozen=True)
class Fractions(Constraint):
    """Ascending fractions of training in (0, 1): ``(0.5, 0.75)``; from text, separated by spaces
    (``--recipe milestones=0.5,0.75`` arrives as ``"0.5 0.75"``)."""

    def convert(self, value: Any) -> Any:
        items = value.split() if isinstance(value, str) else value
        try:
            return tuple(float(item) for item in items)
        except (TypeError, ValueError):
            return value

    def accepts(self, value: Any) -> bool:
        return (isinstance(value, tuple) and all(isinstance(v, float) and 0 < v < 1 for v in value)
                and list(value) == sorted(value))

    def describe(self) -> str:
        return "ascending fractions in (0, 1)"


@dataclass(frozen=True)
class Recipe(Constrained):
    """How the shared loop trains. The defaults are the loop before recipes (Adam, constant rate, no augmentation).

    Args:
        optimiser: adam or sgd.
        lr: learning rate (the peak of the cyclic schedule).
        momentum: SGD's momentum.
        weight_decay: L2 weight decay (both optimisers).
        nesterov: SGD with Nesterov momentum.
        schedule: constant; piecewise (×0.1 at each of ``milestones``, fractions of the epochs; Rice et al. 2020's
            0.5 and 0.75 by default); cyclic (linear 0 → lr at ``cyclic_peak`` of training → 0, the one-cycle rate of
            Wong et al. 2020); cosine (lr · ½(1 + cos πt)).
        milestones: piecewise decay points, fractions of the epochs.
        cyclic_peak: where the cyclic rate peaks, a fraction of training.
        epochs: passes over the training set.
        batch_size: samples per optimiser step.
        augmentation: none, or crop-flip (random crop after zero padding of ``crop_padding`` pixels, and a random
            horizontal flip, per sample of each batch, drawn from the seed).
        crop_padding: padding of crop-flip, in pixels.
        early_stop: none, or robust-val (Rice et al. 2020: hold out ``val_fraction`` of the training set, measure
            PGD-``val_steps`` accuracy at the defense's own ε on it after each epoch, keep the best epoch's weights
            and record the epoch).
        val_fraction: share of the training set held out by robust-val.
        val_steps: PGD steps of robust-val's validation attack.
        amp: off, bf16 or fp16: autocast of the training forward passes, on CUDA only.
    """

    optimiser: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 0.0
    nesterov: bool = False
    schedule: str = "constant"
    milestones: tuple[float, ...] = (0.5, 0.75)
    cyclic_peak: float = 0.4
    epochs: int = 40
    batch_size: int = 128
    augmentation: str = "none"
    crop_padding: int = 4
    early_stop: str = "none"
    val_fraction: float = 0.1
    val_steps: int = 10
    amp: str = "off"

    parameter_constraints: ClassVar[dict] = {
        "optimiser": Options("adam", "sgd"),
        "lr": Interval(float, 0, 10, closed="right"),
        "momentum": Interval(float, 0, 1, closed="left"),
        "weight_decay": Interval(float, 0, 1),
        "nesterov": Boolean(),
        "schedule": Options("constant", "piecewise", "cyclic", "cosine"),
        "milestones": Fractions(),
        "cyclic_peak": Interval(float, 0, 1, closed="neither"),
        "epochs": Interval(int, 1, 10_000),
        "batch_size": Interval(int, 1, 100_000),
        "augmentation": Options("none", "crop-flip"),
        "crop_padding": Interval(int, 0, 64),
        "early_stop": Options("none", "robust-val"),
        "val_fraction": Interval(float, 0, 1, closed="neither"),
        "val_steps": Interval(int, 1, 1_000),
        "amp": Options("off", "bf16", "fp16"),
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.nesterov and (self.optimiser != "sgd" or self.momentum == 0):
            raise ValueError(f"nesterov needs optimiser=sgd with momentum > 0, got optimiser={self.optimiser}, "
                             f"momentum={self.momentum:g}")

    @property
    def legacy(self) -> bool:
        """Whether this recipe trains as the loop did before recipes (``LEGACY``): then it is not hashed."""
        return all(getattr(self, key) == value for key, value in LEGACY.items())

    def as_dict(self) -> dict[str, Any]:
        """Every field, as JSON writes it (lists, not tuples): what records and train hashes hold."""
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in dataclasses.asdict(self).items()}


FIELDS = tuple(f.name for f in dataclasses.fields(Recipe))


def learning_rate(recipe: Recipe, progress: float, epochs: int) -> float:
    """The learning rate of the optimiser step that ends ``progress`` epochs into ``epochs`` (the step ``i`` of
    ``n`` in epoch ``e``, from 0, ends at ``e + (i + 1) / n``): Rice et al. 2020's convention (locuslab/
    robust_overfitting, ``lr_schedule(epoch + (i + 1) / len(batches))``), so the last step of cyclic training has
    rate 0 and the piecewise decay applies from the step that reaches the milestone."""
    t = progress / epochs
    if recipe.schedule == "piecewise":
        return recipe.lr * 0.1 ** sum(t >= milestone for milestone in recipe.milestones)
    if recipe.schedule == "cyclic":
        peak = recipe.cyclic_peak
        return recipe.lr * (t / peak if t <= peak else max(0.0, (1 - t) / (1 - peak)))
    if recipe.schedule == "cosine":
        return recipe.lr * 0.5 * (1 + math.cos(math.pi * min(t, 1.0)))
    return recipe.lr


@dataclass(frozen=True)
class PaperSetting:
    """What a dataset's papers train with: ``recipe`` fields for every defense, and per defense (by registry name)
    recipe fields and defense fields on top (``defense_recipe``, ``defense_fields``)."""

    cite: str
    recipe: Mapping[str, Any] = field(default_factory=dict)
    defense_recipe: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    defense_fields: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


#: CIFAR PGD-AT as Rice et al. 2020 (arXiv:2002.11569) train it: SGD, momentum 0.9, weight decay 5e-4, lr 0.1 decayed
#: ×0.1 at 1/2 and 3/4 of 200 epochs, batch 128, random crop 4 + horizontal flip; PGD-10 of 2/255 at ε 8/255.
#: TRADES (Zhang et al. 2019, β 6, its ε 8/255 and 10 steps of 2/255 ≈ 0.007) for 110 epochs decayed at 100 and 105,
#: as Pang et al. 2021 ("Bag of Tricks for Adversarial Training", arXiv:2010.00467) train it. FGSM-AT as Wong et al.
#: 2020 (arXiv:2001.03994; locuslab/fast_adversarial CIFAR10/train_fgsm.py): 15 epochs of the cyclic rate peaking at
#: 0.2 half-way, α = 1.25 ε.
CIFAR = PaperSetting(
    cite="Rice et al. 2020; TRADES: Zhang et al. 2019 as Pang et al. 2021; FGSM-AT: Wong et al. 2020",
    recipe={"optimiser": "sgd", "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "schedule": "piecewise",
            "milestones": (0.5, 0.75), "epochs": 200, "batch_size": 128, "augmentation": "crop-flip"},
    defense_recipe={"trades": {"epochs": 110, "milestones": (100 / 110, 105 / 110)},
                    "fgsm-at": {"schedule": "cyclic", "lr": 0.2, "cyclic_peak": 0.5, "epochs": 15}},
    defense_fields={"pgd-at": {"eps": 8 / 255, "step": 2 / 255, "steps": 10},
                    "trades": {"beta": 6.0, "eps": 8 / 255, "step": 2 / 255, "steps": 10},
                    "fgsm-at": {"eps": 8 / 255, "step_ratio": 1.25}},
)
#: SVHN: CIFAR's setting at lr 0.01 (adversarial training on SVHN diverges at 0.1; Rice et al. 2020 train it at 0.01),
#: also the peak of FGSM-AT's cyclic rate, and without augmentation (a mirrored digit is another glyph).
SVHN = PaperSetting(
    cite="Rice et al. 2020 (SVHN: lr 0.01, no augmentation)",
    recipe={**CIFAR.recipe, "lr": 0.01, "augmentation": "none"},
    defense_recipe={"trades": CIFAR.defense_recipe["trades"],
                    "fgsm-at": {"schedule": "cyclic", "cyclic_peak": 0.5, "epochs": 15}},
    defense_fields=CIFAR.defense_fields,
)
#: MNIST as Madry et al. 2018 (arXiv:1706.06083; MadryLab/mnist_challenge): Adam at 1e-4, batch 50, 100,000 steps
#: (≈ 83 epochs of 60,000), PGD-40 of 0.01 at ε 0.3, the same inner maximisation for TRADES and ε 0.3 for FGSM-AT.
MNIST = PaperSetting(
    cite="Madry et al. 2018",
    recipe={"optimiser": "adam", "lr": 1e-4, "batch_size": 50, "epochs": 83},
    defense_fields={"pgd-at": {"eps": 0.3, "step": 0.01, "steps": 40},
                    "trades": {"eps": 0.3, "step": 0.01, "steps": 40},
                    "fgsm-at": {"eps": 0.3}},
)
#: The paper setting of each dataset by name (the registry name before any ``:``); any other: the loop as it was.
PAPERS: dict[str, PaperSetting] = {"cifar10": CIFAR, "cifar100": CIFAR, "svhn": SVHN, "mnist": MNIST,
                                   "fashion-mnist": MNIST}
NO_PAPER = PaperSetting(cite="")


def paper_setting(dataset: str) -> PaperSetting:
    """The paper setting of dataset spec ``dataset`` (``NO_PAPER`` for one without)."""
    return PAPERS.get(str(dataset).partition(":")[0].strip(), NO_PAPER)


def parse_recipe(value: Any, where: str) -> dict[str, Any]:
    """``--recipe`` text (``schedule=cosine,epochs=30``; an item without ``=`` continues the list before it:
    ``milestones=0.5,0.75``) or a TOML table → the recipe fields it sets, checked and converted. An unknown key is
    one ``ConfigError`` that lists the keys."""
    if value is None or value == "" or value == {}:
        return {}
    items = dict(value) if isinstance(value, Mapping) else split_items(str(value), where)
    for key in items:
        if key not in FIELDS:
            hint = did_you_mean(str(key), FIELDS, template="did you mean {}? ")
            raise ConfigError(f"{where}: unknown recipe key {key!r}; {hint}(keys: {', '.join(FIELDS)})")
    try:
        return check_params("recipe", Recipe.parameter_constraints, items, parse=True)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def split_items(text: str, where: str) -> dict[str, str]:
    """``"a=1,b=2,3"`` → ``{"a": "1", "b": "2 3"}``: comma-separated ``key=value`` items, a bare item continuing the
    value before it (a list); a key given twice is refused."""
    items: dict[str, str] = {}
    key = None
    for part in (part.strip() for part in text.split(",") if part.strip()):
        name, eq, value = part.partition("=")
        if not eq and key is not None:
            items[key] += " " + part
        elif not eq:
            raise ConfigError(f"{where}: expected key=value, got {part!r}")
        elif name.strip() in items:
            raise ConfigError(f"{where}: recipe key {name.strip()!r} given twice")
        else:
            key = name.strip()
            items[key] = value.strip()
    return items


@dataclass(frozen=True)
class RecipeOverrides:
    """The run's ``--recipe`` fields on its dataset's paper setting: the defaults it gives each defense, and the recipe
    each defense trains with."""

    dataset: str
    values: Mapping[str, Any]
    where: str = "--recipe"

    @classmethod
    def parse(cls, dataset: str, value: Any, where: str) -> RecipeOverrides:
        return cls(dataset, parse_recipe(value, where), where)

    def fields_for(self, name: str) -> dict[str, Any]:
        """The recipe fields defense ``name`` trains with: the paper setting's, its per-defense part, ``--recipe``."""
        paper = paper_setting(self.dataset)
        return {**paper.recipe, **paper.defense_recipe.get(name, {}), **self.values}

    def defense_defaults(self, name: str) -> dict[str, Any]:
        """The defaults defense ``name`` takes in this run instead of its class's (``benchmark.config.make_spec``):
        the paper setting's defense fields and the recipe's epochs, lr and batch_size; nothing for a defense that
        does not train with the shared loop's recipe (``takes_recipe``), and nothing on a dataset without a paper
        setting and no ``--recipe``: the class defaults, as always."""
        from benchmark import DEFENSES

        if not takes_recipe(DEFENSES.get(name)):
            return {}
        recipe = self.fields_for(name)
        fields = {**paper_setting(self.dataset).defense_fields.get(name, {}),
                  **{key: recipe[key] for key in DEFENSE_NUMBERS if key in recipe}}
        own = {f.name for f in dataclasses.fields(DEFENSES.get(name))}
        return {key: value for key, value in fields.items() if key in own}

    def recipe_for(self, spec: PluginSpec) -> Recipe | None:
        """The recipe of defense ``spec`` (its epochs, lr and batch_size its own); None if it takes no recipe."""
        from benchmark import DEFENSES
        from benchmark.plan import trained_spec

        spec = trained_spec(spec)  # a preprocessing defense trains as its base does
        if not takes_recipe(DEFENSES.get(spec.name)):
            return None
        params = dict(spec.params)
        try:
            return Recipe(**{**self.fields_for(spec.name), **{key: params[key] for key in DEFENSE_NUMBERS}})
        except ValueError as exc:
            raise ConfigError(f"{self.where}: {spec.label}: {exc}") from None

    def attach(self, config: EvalConfig) -> EvalConfig:
        """``config`` with each defense's recipe; refused (one ``ConfigError``) when ``--recipe`` is given but no
        defense trains with a recipe, or when a recipe asks for autocast on a device without CUDA."""
        recipes = tuple(self.recipe_for(spec) for spec in config.defenses)
        if paper_setting(self.dataset).cite:
            logger.info("%s trains with its papers' recipe (%s)", self.dataset, paper_setting(self.dataset).cite)
        if self.values and all(recipe is None for recipe in recipes):
            names = ", ".join(spec.name for spec in config.defenses)
            raise ConfigError(f"{self.where}: no defense of this run trains with the shared loop's recipe ({names})")
        for spec, recipe in zip(config.defenses, recipes, strict=True):
            if recipe is not None and recipe.amp != "off" and not config.device.startswith("cuda"):
                raise ConfigError(f"{self.where}: {spec.label}: amp={recipe.amp} is autocast on CUDA, but the device "
                                  f"is {config.device}: use amp=off or --device cuda")
        return dataclasses.replace(config, recipes=recipes)


def takes_recipe(cls: Any) -> bool:
    """Whether defense class ``cls`` trains with the shared loop and its recipe (``defenses._base.LoopDefense``)."""
    return bool(getattr(cls, "takes_recipe", False))
