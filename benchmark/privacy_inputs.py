"""The privacy options of a run, checked before any work: ``--privacy`` (privacy attacks from ``benchmark.PRIVACY``),
``--mia-samples`` (members and non-members per side) and ``--n-train`` (train on the first N training samples only:
a small member set, the rest a holdout of non-members never trained on).

Refusals name the option and the reason: a gradient-inversion attack when no defense of the run is federated (it
reconstructs the images a federated client's update carries); a privacy attack that needs gradients on a model
without them; a split larger than the data (``check_split_size``, once the data is loaded).
"""

from __future__ import annotations

from typing import Any

from benchmark import DEFENSES, PRIVACY
from benchmark.constraints import Interval
from benchmark.errors import ConfigError, DataError
from benchmark.plugin_specs import PluginSpec, parse_plugins

MIA_SAMPLES = Interval(int, 2, 10_000_000)
N_TRAIN = Interval(int, 1, 100_000_000)


def is_federated(name: str) -> bool:
    """Whether defense ``name`` sends client updates a server sees (it has ``released_update``)."""
    return hasattr(DEFENSES.get(name), "released_update")


def parse_privacy(value: Any, where: str, defenses: tuple[PluginSpec, ...], model_file: Any
                  ) -> tuple[PluginSpec, ...]:
    """The privacy attacks ``value`` names (none when it is empty), each checked against the run's defenses and
    model."""
    if value is None or value == "" or value == []:
        return ()
    specs = parse_plugins("privacy", value, where)
    inversions = [spec.label for spec in specs if PRIVACY.get(spec.name).kind == "inversion"]
    if len(inversions) > 1:
        raise ConfigError(f"{where}: one gradient inversion per run, got {', '.join(inversions)}; give one, with "
                          f"every setting it should sweep (batch_sizes, local_steps)")
    federated = [spec.name for spec in defenses if is_federated(spec.name)]
    for spec in specs:
        attack = PRIVACY.get(spec.name)
        if attack.kind == "inversion" and not federated:
            labels = ", ".join(spec.label for spec in defenses)
            choices = ", ".join(name for name in DEFENSES.names() if is_federated(name))
            raise ConfigError(f"{where}: {spec.label!r} reconstructs a federated client's images from the update it "
                              f"sends, but no defense of the run is federated ({labels}); add one of {choices}")
        refusal = model_refusal(attack, model_file)
        if refusal:
            raise ConfigError(f"{where}: privacy attack {spec.label!r} {refusal}")
    return specs


def model_refusal(attack: Any, model_file: Any) -> str | None:
    """Why ``attack`` cannot run on the model ``model_file`` gives (None if it can, or for a registry model)."""
    if model_file is None:
        return None
    from benchmark.sources import capabilities

    capable = capabilities(model_file)
    if getattr(attack, "needs_grad", False) and not capable.gradients:
        return f"needs gradients, but {capable.reason}"
    return None


def check_split_size(config: Any, n_train_available: int, n_test_available: int) -> None:
    """Refuse (``DataError`` naming the option) an ``--n-train`` beyond the training samples, and a
    ``--mia-samples`` beyond the members or non-members there are: members are the samples trained on, non-members
    the training samples after ``--n-train`` (a holdout) or else the test split."""
    from benchmark.membership import split_sides, split_size

    n_train = config.n_train
    if n_train is not None and n_train > n_train_available:
        raise DataError(f"--n-train: {n_train} is more than the {n_train_available} training samples of "
                        f"{config.dataset}")
    if not config.privacy or not any(PRIVACY.get(spec.name).kind == "membership" for spec in config.privacy):
        return
    members, nonmembers, _ = split_sides(n_train_available, n_train, n_test_available)
    try:
        split_size(config.mia_samples, members, nonmembers)
    except ValueError as exc:
        raise DataError(str(exc)) from None


def check_privacy_data(config: Any, train: Any) -> None:
    """Each privacy attack's ``check_data`` (if it has one) on the data the model trains on: e.g. gradient inversion
    refuses inputs that are not images, or client batches larger than the training set."""
    for spec in config.privacy:
        check = getattr(spec.build(), "check_data", None)
        if check is not None:
            try:
                check(train)
            except ValueError as exc:
                raise DataError(f"--privacy: {exc}") from None


def preflight_privacy(config: Any) -> None:
    """The privacy checks that need the data or the model, before any job: ``check_split_size``, and each
    defense's ``check_model`` (a differentially private defense refuses a model Opacus cannot train, e.g. one with
    BatchNorm, naming the fix)."""
    from benchmark.plan import load_dataset

    if config.n_train is not None or config.privacy:
        data = load_dataset(config.dataset)
        check_split_size(config, len(data.x_train), len(data.x_test))
        check_privacy_data(config, data.subset_train(config.n_train))
    if any(PRIVACY.get(spec.name).kind == "membership" for spec in config.privacy):
        for spec, recipe in zip(config.defenses, config.recipes or [None] * len(config.defenses), strict=True):
            if recipe is not None and recipe.early_stop != "none":
                raise ConfigError(f"--privacy: membership attacks count every training sample as a member, but "
                                  f"{spec.label} trains with early_stop={recipe.early_stop}, which holds some out "
                                  f"for validation; run them with --recipe early_stop=none")
    checking = [spec for spec in config.defenses if hasattr(DEFENSES.get(spec.name), "check_model")]
    if checking:
        check_private_defenses(config, checking, load_dataset(config.dataset))


def check_private_defenses(config: Any, specs: list[PluginSpec], data: Any) -> None:
    """Each private defense's ``check_model`` on the run's model and ``check_plan`` on its training set (a batch
    larger than the data, a ``target_epsilon`` out of reach), as one line naming the defense."""
    from benchmark.api import RunContext
    from benchmark.runner import build_network

    model = build_network(config.model, config.model_file, data.input_shape, data.nb_classes)
    n_train = len(data.subset_train(config.n_train).y_train)
    for spec in specs:
        defense = spec.build()
        try:
            defense.check_model(model)
            if hasattr(defense, "check_plan"):
                defense.check_plan(n_train, RunContext(seed=0, quick=config.quick))
        except ValueError as exc:
            raise ConfigError(f"--defense: {spec.label}: {exc}") from None
