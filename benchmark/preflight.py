"""Checks of a user's model against the data before any work: it runs on every test sample and returns finite
scores of shape (batch, classes), with as many classes as the data has. Shared by ``bench evaluate`` / ``bench
check`` (for a model given as a file or class) and by ``benchmark.evaluate`` (and so the pytest fixture).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmark.api import DataBundle, unit_float
from benchmark.errors import BenchError, ConfigError, DataError
from benchmark.sources import first_line

logger = logging.getLogger(__name__)

Predict = Callable[[np.ndarray], Any]


def output_classes(predict: Predict, x: np.ndarray, batch_size: int = 256, *, label: str = "model") -> int:
    """The number of scores ``predict`` returns per sample, after checking its output on every batch of ``x``: a
    finite ``(batch, classes)`` array (or tensor) with the same number of classes (at least 2) each time. ``x`` may be
    uint8 pixels: each batch is converted to float32 (``unit_float``)."""
    classes = None
    for first in range(0, len(x), batch_size):
        batch = unit_float(x[first : first + batch_size])
        rows = f"x[{first}:{first + len(batch)}]"
        try:
            scores = predict(batch)
        except Exception as exc:  # the user's model: any failure is theirs to fix, reported on one line
            raise DataError(f"{label} failed on {rows} of shape {tuple(batch.shape)}: {first_line(exc)}") from exc
        shape = tuple(getattr(scores, "shape", ()))
        if len(shape) != 2 or shape[0] != len(batch) or shape[1] < 2 or shape[1] != (classes or shape[1]):
            found = shape if shape else type(scores).__name__
            raise DataError(f"{label} must return scores of shape (batch, classes ≥ 2), the same classes for every "
                            f"batch; got {found} for {rows} of shape {tuple(batch.shape)}")
        if not np.isfinite(np.asarray(scores)).all():
            raise DataError(f"{label} returned non-finite scores (NaN or inf) for {rows}")
        classes = shape[1]
    if classes is None:
        raise DataError("the data has no test samples")
    return classes


def predictor(model: Any, device: str = "cpu") -> Predict:
    """``x → scores`` of a torch module (without gradients, on ``device``) or of an ``ArrayModel``."""
    from benchmark.array_estimator import ArrayModel

    if isinstance(model, ArrayModel):
        return model.predict
    import torch

    def predict(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(batch).to(device)).detach().cpu().numpy()

    return predict


def check_model(model: Any, data: DataBundle, *, label: str, device: str = "cpu") -> None:
    """Refuse (``DataError``, one line) a model whose output does not fit ``data``'s test split."""
    classes = output_classes(predictor(model, device), data.x_test, label=label)
    if classes != data.nb_classes:
        raise DataError(f"{label} returns {classes} scores per sample, but the data has {data.nb_classes} classes "
                        f"(labels 0 … {data.nb_classes - 1})")


def preflight(config: Any) -> Any:
    """Before any job starts: a dataset from a file must have a train split if a defense trains; the model (loaded
    from its file, or built) must run on the run's test data with its class count. Registry architectures on
    built-in datasets are built for them (and are not checked here, so a re-run plans without loading data), unless
    they declare the input shapes they take (``check_input_shape``).
    Returns the config to run: the default suite without the attacks that the data's inputs cannot take. The
    privacy options are checked too (``benchmark.privacy_inputs.preflight_privacy``), and certifying defenses
    against the norm (``check_certified_norm``)."""
    from benchmark.ibp_stage import preflight_ibp
    from benchmark.privacy_inputs import preflight_privacy
    from benchmark.runner import is_pretrained

    check_certified_norm(config)
    preflight_ibp(config)
    if config.model_file is None:
        check_input_shape(config.model, config.dataset)
    preflight_privacy(config)
    check_defense_data(config)
    if config.model_file is None and ":" not in config.dataset:  # a built-in dataset of images
        return config
    import dataclasses

    from benchmark.config import test_count
    from benchmark.plan import load_dataset

    data = load_dataset(config.dataset)
    data = data.subset_test(test_count(config, len(data.x_test)))
    if config.default_attacks:
        config = dataclasses.replace(config, attacks=fitting_attacks(config.attacks, data.input_shape))
    check_attack_inputs(config.attacks, data.input_shape)
    if not data.has_train and not is_pretrained(config.model_file):
        raise DataError(f"--dataset: {config.dataset} has no train split (x_train, y_train), which defense "
                        f"{config.defenses[0].label!r} needs to train {config.model}; a trained model given as a "
                        f"file needs only the test split")
    return check_loaded_model(config, data)


def check_certified_norm(config: Any) -> None:
    """Refuse a defense that certifies L2 radii (one with ``certify_settings``: randomized smoothing) in a run whose
    norm is another: its certified accuracy at ε would not be a bound on the robust accuracy in that column."""
    from benchmark import DEFENSES

    for spec in config.defenses:
        if config.norm != "2" and hasattr(DEFENSES.get(spec.name), "certify_settings"):
            raise ConfigError(f"--defense: {spec.label}: randomized smoothing certifies L2 radii, and this run's "
                              f"norm is L∞ (--norm {config.norm}); use --norm 2")


def check_defense_data(config: Any) -> None:
    """Each defense's ``check_data`` (federated ones with Byzantine clients or FLTrust: the attack fits the data, the
    root set leaves the clients data), with the data loaded only for them; one line naming the defense."""
    from benchmark import DEFENSES
    from benchmark.plan import load_dataset

    for spec in config.defenses:
        params = dict(spec.params)
        if hasattr(DEFENSES.get(spec.name), "check_data") and (params.get("byzantine")
                                                                 or params.get("aggregation") == "fltrust"):
            try:
                spec.build().check_data(load_dataset(config.dataset))
            except ValueError as exc:
                raise DataError(f"--defense: {spec.label}: {exc}") from None


def check_input_shape(model: str, dataset: str) -> None:
    """Refuse a registry architecture that declares the input shapes it takes (``input_shapes``, e.g.
    ``benchmark.architectures``) when ``dataset``'s inputs have another, naming both; the data is loaded only then."""
    from benchmark.architectures import input_shape_problem
    from benchmark.inputs import model_builder
    from benchmark.plan import load_dataset

    accepted = getattr(model_builder(model), "input_shapes", ())
    problem = input_shape_problem(accepted, load_dataset(dataset).input_shape) if accepted else None
    if problem:
        raise DataError(f"--model: {model} {problem} (the inputs of dataset {dataset})")


def check_loaded_model(config: Any, data: DataBundle) -> Any:
    """Load (or build) the run's model and check it against ``data`` (``check_model``); returns ``config``."""
    from benchmark.runner import build_network, is_pretrained

    if is_pretrained(config.model_file):
        from benchmark.sources import load_model

        model = load_model(config.model_file, data.input_shape, data.nb_classes)
    else:
        try:
            model = build_network(config.model, config.model_file, data.input_shape, data.nb_classes)
        except BenchError:
            raise
        except Exception as exc:  # a registry builder or the user's class refusing the data's shape
            raise DataError(f"--model: {config.model} cannot be built for inputs of shape {data.input_shape}: "
                            f"{first_line(exc)}") from exc
    if hasattr(model, "eval"):
        model.eval()
    check_model(model, data, label=config.model if config.model_file is None else config.model_file.spec)
    return config


def images_only(name: str) -> bool:
    """Whether attack ``name`` runs only on images (tag ``images_only``: ART's Square needs (n, C, H, W))."""
    from benchmark import ATTACKS

    return bool(getattr(ATTACKS.get(name), "images_only", False))


def check_attack_inputs(attacks: Any, input_shape: tuple[int, ...]) -> None:
    """Refuse an attack that runs only on images when the inputs are flat features."""
    from benchmark import ATTACKS

    refused = [spec for spec in attacks if images_only(spec.name)] if len(input_shape) < 3 else []
    if refused:
        others = [name for name in ATTACKS.names() if not images_only(name)]
        raise DataError(f"--attack: {refused[0].label!r} runs only on images (n, C, H, W) in ART, but the data has "
                        f"flat features of shape {input_shape}; attacks for flat data: {', '.join(others)}")


def fitting_attacks(attacks: Any, input_shape: tuple[int, ...]) -> tuple:
    """``attacks`` without those that run only on images when the inputs are flat features."""
    if len(input_shape) >= 3:
        return tuple(attacks)
    kept = tuple(spec for spec in attacks if not images_only(spec.name))
    if len(kept) < len(attacks):
        logger.info("flat features %s: attacking with %s", input_shape, ", ".join(spec.label for spec in kept))
    return kept
