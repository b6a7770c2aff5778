"""scikit-learn classifiers saved with skops (``sklearn:PATH.skops``): loaded safely (types skops does not trust by
default are refused unless ``--trust`` names them), run on flattened inputs, with input gradients where ART has them
(logistic regression, SVC)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.errors import ConfigError, DataError
from benchmark.sources import Capabilities, ModelFile, channel_shape, first_line, optional_import


def load_estimator(model: ModelFile) -> Any:
    """The estimator in the skops file; a ``ConfigError`` listing the untrusted types that ``--trust`` omits."""
    sio = optional_import("skops.io", model)
    try:
        untrusted = sio.get_untrusted_types(file=model.location)
    except Exception as exc:
        raise ConfigError(f"--model: {model.spec} is not a skops file ({first_line(exc)}); save the estimator with "
                          "skops.io.dump(estimator, PATH)") from None
    missing = [name for name in untrusted if name not in model.trust]
    if missing:
        raise ConfigError(f"--trust: {model.spec} holds types that skops does not trust by default: "
                          f"{', '.join(missing)}; if you trust the file, give --trust {','.join(untrusted)}")
    try:
        estimator = sio.load(model.location, trusted=list(model.trust))
    except Exception as exc:
        raise ConfigError(f"--model: {model.spec}: skops cannot load it ({first_line(exc)})") from None
    if not callable(getattr(estimator, "predict_proba", None)):
        raise ConfigError(f"--model: {model.spec} holds a {type(estimator).__name__}, which has no predict_proba: "
                          "the attacks need scores (an SVC needs probability=True)")
    return estimator


def art_classifier(estimator: Any) -> Any | None:
    """ART's ``SklearnClassifier`` of ``estimator`` if it gives input gradients (logistic regression, SVC), else
    None."""
    from art.estimators.classification import SklearnClassifier
    from art.estimators.estimator import LossGradientsMixin

    try:
        classifier = SklearnClassifier(estimator, clip_values=(0.0, 1.0), preprocessing=None)
    except TypeError:  # not a scikit-learn class (ART wraps only those)
        return None
    return classifier if isinstance(classifier, LossGradientsMixin) else None


@dataclass(frozen=True)
class Standardised:
    """The gradients of ``estimator`` (ART's, on flattened inputs) with ``--normalize`` in front: ``(x - mean) / std``
    goes in, and the chain rule divides the gradients by ``std``. (ART's own ``preprocessing`` is not used: its
    logistic regression applies it twice in ``loss_gradient``, ART 1.20.)"""

    estimator: Any
    mean: np.ndarray
    std: np.ndarray

    def loss_gradient(self, x: np.ndarray, y: np.ndarray, **kwargs) -> np.ndarray:
        return self.estimator.loss_gradient((x - self.mean) / self.std, y, **kwargs) / self.std

    def class_gradient(self, x: np.ndarray, label: Any = None, **kwargs) -> np.ndarray:
        return self.estimator.class_gradient((x - self.mean) / self.std, label=label, **kwargs) / self.std


def sklearn_capabilities(model: ModelFile) -> Capabilities:
    estimator = load_estimator(model)
    name = type(estimator).__name__
    if art_classifier(estimator) is None:
        return Capabilities(gradients=False, torch=False, reason=f"{model.spec} ({name}) has no input gradients in "
                                                                 "ART: a black box")
    return Capabilities(gradients=True, torch=False, reason=f"{model.spec} ({name}) runs in scikit-learn, not "
                                                            "PyTorch")


def load_sklearn(model: ModelFile, input_shape: tuple[int, ...]) -> Any:
    """An ``ArrayModel``: ``predict_proba`` of the flattened inputs (``--normalize`` applied first), with ART's
    gradients where it has them."""
    from benchmark.array_estimator import ArrayModel

    estimator = load_estimator(model)
    check_fits(model, estimator, input_shape)
    features = math.prod(input_shape)
    mean = std = None
    if model.normalize:
        view = channel_shape(model, input_shape)
        mean, std = (np.broadcast_to(np.asarray(values, dtype=np.float32).reshape(view), (1, *input_shape))
                     .reshape(features) for values in model.normalize)
    gradients = art_classifier(estimator)
    if gradients is not None and mean is not None:
        gradients = Standardised(gradients, mean, std)

    def predict(x: np.ndarray) -> np.ndarray:
        flat = np.asarray(x, dtype=np.float32).reshape(len(x), features)
        if mean is not None:
            flat = (flat - mean) / std
        return estimator.predict_proba(flat).astype(np.float32)

    return ArrayModel(predict=predict, art_estimator=gradients, outputs="probabilities")


def check_fits(model: ModelFile, estimator: Any, input_shape: tuple[int, ...]) -> None:
    """A ``DataError`` unless the estimator takes the data's inputs (flattened) and its classes are 0, 1, …"""
    features = getattr(estimator, "n_features_in_", None)
    if features is not None and features != math.prod(input_shape):
        raise DataError(f"--model: {model.spec} takes {features} features, but the data's inputs have shape "
                        f"{tuple(input_shape)} ({math.prod(input_shape)} features flattened)")
    classes = getattr(estimator, "classes_", None)
    if classes is not None and [str(c) for c in classes] != [str(i) for i in range(len(classes))]:
        shown = ", ".join(map(str, list(classes)[:10])) + (", …" if len(classes) > 10 else "")
        raise DataError(f"--model: {model.spec} was fitted on the classes {shown}; expected the labels 0 … "
                        f"{len(classes) - 1} in order, so that its scores' columns are the classes")
