"""The one place a trained model is wrapped for ART, with a counter of what attacks ask of it."""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch
from art.estimators.classification import PyTorchClassifier


class CallCounter:
    """A forward hook on the model that counts, per sample, the gradients and predictions attacks ask for.

    A forward pass whose output needs a gradient registers a tensor hook that counts each backward pass through it
    (so ART's ``class_gradient``, one backward per class, counts one per class); any other forward pass is a
    prediction (a query). Being on the model rather than on the ART wrapper, it also counts attacks that build their
    own wrapper (ART's APGD does).
    """

    def __init__(self) -> None:
        self.counts: Counter = Counter()

    def __call__(self, module: torch.nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        if output.requires_grad:
            output.register_hook(self._count_backward)
        else:
            self.counts["predict"] += len(output)

    def _count_backward(self, grad: torch.Tensor) -> None:
        self.counts["grad"] += len(grad)


class Classifier(PyTorchClassifier):
    """ART's ``PyTorchClassifier`` with a faster ``predict`` for the harness's case (no preprocessing, no
    defences): batches are sliced from one tensor instead of going through a ``DataLoader`` over a
    ``TensorDataset``, which indexes sample by sample (measured: most of a small model's prediction time here, and
    Square predicts three times per iteration). Inputs are cast to float32 (ART's HopSkipJump sends float64)."""

    def predict(self, x, batch_size: int = 128, training_mode: bool = False, **kwargs):
        if isinstance(x, np.ndarray) and x.dtype != np.float32:
            x = x.astype(np.float32)
        if self.preprocessing_operations or self.postprocessing_defences or not isinstance(x, np.ndarray):
            return super().predict(x, batch_size=batch_size, training_mode=training_mode, **kwargs)
        self._model.train(mode=training_mode)
        inputs = torch.from_numpy(x)
        outputs = []
        with torch.no_grad():
            for first in range(0, len(x), batch_size):
                logits = self._model(inputs[first : first + batch_size].to(self._device))[-1]
                outputs.append(logits.detach().cpu().numpy().astype(np.float32))
        return np.concatenate(outputs) if outputs else np.zeros((0, self.nb_classes), dtype=np.float32)


def wrap(model: torch.nn.Module, input_shape: tuple[int, ...], nb_classes: int, device: str) -> Classifier:
    """Wrap ``model`` (logits out, inputs in [0, 1]) for attacks; ``estimator.counts`` counts its use.

    The weights are frozen, since attacks only need input gradients and back-propagating into every weight roughly
    doubles their cost.
    """
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    counter = CallCounter()
    # ART runs an nn.Sequential child by child (to expose every layer), never through its own forward: hook the last
    # child there, the model itself otherwise.
    last = model[-1] if isinstance(model, torch.nn.Sequential) and len(model) else model
    last.register_forward_hook(counter)
    estimator = Classifier(
        model=model,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=tuple(input_shape),
        nb_classes=nb_classes,
        clip_values=(0.0, 1.0),
        preprocessing=None,  # ART's default (0, 1) standardisation is an identity that costs two ops per call
        device_type="gpu" if device.startswith("cuda") else "cpu",
    )
    estimator.counts = counter.counts
    return estimator
