"""The one place a trained model is wrapped for ART: a ``PyTorchClassifier`` that counts what attacks ask of it."""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch
from art.estimators.classification import PyTorchClassifier


class CountingClassifier(PyTorchClassifier):
    """ART's ``PyTorchClassifier`` that counts per-sample input gradients (``grad``) and predictions (``predict``).

    The counts are the cost of an attack independent of the machine: gradient evaluations for white-box attacks,
    queries for black-box ones.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.counts: Counter = Counter()

    def loss_gradient(self, x, y, training_mode: bool = False, **kwargs):
        self.counts["grad"] += len(x)
        return super().loss_gradient(x, y, training_mode=training_mode, **kwargs)

    def class_gradient(self, x, label=None, training_mode: bool = False, **kwargs):
        per_sample = self.nb_classes if label is None else 1
        self.counts["grad"] += len(x) * per_sample
        return super().class_gradient(x, label=label, training_mode=training_mode, **kwargs)

    def predict(self, x: np.ndarray, batch_size: int = 128, training_mode: bool = False, **kwargs) -> np.ndarray:
        self.counts["predict"] += len(x)
        return super().predict(x, batch_size=batch_size, training_mode=training_mode, **kwargs)


def wrap(model: torch.nn.Module, input_shape: tuple[int, ...], nb_classes: int, device: str) -> CountingClassifier:
    """Wrap ``model`` (logits out, inputs in [0, 1]) for attacks; its weights are frozen, since attacks only need
    input gradients and back-propagating into every weight roughly doubles their cost."""
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return CountingClassifier(
        model=model,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=tuple(input_shape),
        nb_classes=nb_classes,
        clip_values=(0.0, 1.0),
        device_type="gpu" if device.startswith("cuda") else "cpu",
    )
