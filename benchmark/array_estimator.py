"""The ART wrapper of a model that is not a torch module (an ONNX model, a scikit-learn estimator): it maps numpy
arrays to scores, and gives input gradients only where ART can compute them (scikit-learn's logistic regression and
SVC), with the same counter and memory as ``benchmark.estimator.Classifier``."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from art.estimators.classification import BlackBoxClassifierNeuralNetwork
from art.estimators.classification.classifier import ClassGradientsMixin
from art.estimators.estimator import LossGradientsMixin

from benchmark.errors import AttackError
from benchmark.memo import Memoizing, memo_predict


@dataclass(frozen=True, eq=False)
class ArrayModel:
    """A trained model as numpy functions."""

    predict: Callable[[np.ndarray], np.ndarray]  # float32 (n, *input_shape) in [0, 1] → (n, classes) scores
    art_estimator: Any | None = None  # an ART estimator with loss and class gradients, on flattened inputs
    outputs: str = "logits"  # "logits", or "probabilities" (scikit-learn's predict_proba)


class ArrayClassifier(Memoizing, ClassGradientsMixin, LossGradientsMixin, BlackBoxClassifierNeuralNetwork):
    """An ART classifier of an ``ArrayModel`` that every registered attack accepts by type (a neural-network
    classifier with loss and class gradients); the gradients come from ``model.art_estimator`` or, for a black box,
    are refused with an ``AttackError``. ``counts`` counts per-sample predictions ("predict") and input gradients
    ("grad"), as ``benchmark.estimator.CallCounter`` does for a torch model."""

    def __init__(self, model: ArrayModel, input_shape: tuple[int, ...], nb_classes: int) -> None:
        super().__init__(predict_fn=model.predict, input_shape=tuple(input_shape), nb_classes=nb_classes,
                         channels_first=True, clip_values=(0.0, 1.0), preprocessing=None)
        self.array_model = model
        self.counts: Counter = Counter()

    def predict(self, x: np.ndarray, batch_size: int = 128, **kwargs) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if self._memo is None:
            return self._forward(x, batch_size)
        return memo_predict(self._memo, x, lambda rows: self._forward(rows, batch_size))

    def _forward(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        self.counts["predict"] += len(x)
        outputs = [np.asarray(self.array_model.predict(x[first : first + batch_size]), dtype=np.float32)
                   for first in range(0, len(x), batch_size)]
        return np.concatenate(outputs) if outputs else np.zeros((0, self.nb_classes), dtype=np.float32)

    def compute_loss(self, x: np.ndarray, y: np.ndarray, reduction: str = "none", **kwargs) -> np.ndarray:
        """Cross-entropy of the outputs for ``x`` (logits through a softmax, probabilities as they are) against
        labels ``y`` (one-hot or integers), per sample: what ART's ``PyTorchClassifier`` gives and ART's membership
        attack asks for (``input_type="loss"``). Only ``reduction="none"``."""
        from scipy.special import log_softmax

        if reduction != "none":
            raise ValueError(f"reduction must be 'none', got {reduction!r}")
        outputs = self.predict(x).astype(np.float64)
        log_probs = log_softmax(outputs, axis=1) if self.array_model.outputs == "logits" else np.log(outputs + 1e-12)
        labels = np.asarray(y)
        labels = labels.argmax(axis=1) if labels.ndim == 2 else labels.astype(np.int64)
        return (-log_probs[np.arange(len(labels)), labels]).astype(np.float32)

    def _gradients(self) -> Any:
        estimator = self.array_model.art_estimator
        if estimator is None:
            raise AttackError("this model is a black box: it gives no input gradients, so attacks that need them "
                              "cannot run on it")
        return estimator

    def loss_gradient(self, x: np.ndarray, y: np.ndarray, **kwargs) -> np.ndarray:
        estimator = self._gradients()
        x = np.asarray(x, dtype=np.float32)
        self.counts["grad"] += len(x)
        grad = estimator.loss_gradient(x.reshape(len(x), -1), y, **kwargs)
        return np.asarray(grad, dtype=np.float32).reshape(x.shape)

    def class_gradient(self, x: np.ndarray, label: int | list[int] | np.ndarray | None = None, **kwargs
                       ) -> np.ndarray:
        estimator = self._gradients()
        x = np.asarray(x, dtype=np.float32)
        # as many as a torch model's backward passes: one per class asked for (ART's PyTorchClassifier)
        classes = self.nb_classes if label is None else 1 if np.ndim(label) == 0 else len(np.unique(label))
        self.counts["grad"] += len(x) * classes
        grad = np.asarray(estimator.class_gradient(x.reshape(len(x), -1), label=label, **kwargs), dtype=np.float32)
        return grad.reshape(len(x), grad.shape[1], *x.shape[1:])


def wrap_arrays(model: ArrayModel, input_shape: tuple[int, ...], nb_classes: int) -> ArrayClassifier:
    """Wrap ``model`` (inputs in [0, 1]) for attacks; ``estimator.counts`` counts its use."""
    return ArrayClassifier(model, input_shape, nb_classes)
