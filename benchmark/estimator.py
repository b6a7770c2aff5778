"""The one place a trained model is wrapped for ART, with a counter of what attacks ask of it."""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch
from art.estimators.classification import PyTorchClassifier

from benchmark.memo import Memoizing, memo_predict


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


class Classifier(Memoizing, PyTorchClassifier):
    """ART's ``PyTorchClassifier`` with faster ``predict`` and ``loss_gradient`` for the harness's case (no
    preprocessing, no defences, no RNN, no AMP; anything else goes to ART's own code):

    * ``predict`` slices batches from one tensor instead of going through a ``DataLoader`` over a ``TensorDataset``,
      which indexes sample by sample (measured: most of a small model's prediction time here, and Square predicts
      three times per iteration). Inputs are cast to float32 (ART's HopSkipJump sends float64).
    * ``loss_gradient`` asks autograd for the input gradient only, and sets train/eval mode only when it changes (ART
      walks every module to set it on each call; at ~0.3 ms of Python per call that dominated small models).
      Same gradient, same types out as ART's.
    """

    adopted_fields: tuple[str, ...] = ()  # what a twin made by ``adopt`` copies besides the label conventions

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._modules_seen = list(self._model.modules())
        self._last_labels: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def _plain(self) -> bool:
        return not (self.preprocessing_operations or self.postprocessing_defences or self.is_rnn or self._use_amp)

    def _set_mode(self, training: bool) -> None:
        if any(module.training != training for module in self._modules_seen):
            self._model.train(mode=training)

    def predict(self, x, batch_size: int = 128, training_mode: bool = False, **kwargs):
        if isinstance(x, np.ndarray) and x.dtype != np.float32:
            x = x.astype(np.float32)
        if not self._plain or not isinstance(x, np.ndarray):
            return super().predict(x, batch_size=batch_size, training_mode=training_mode, **kwargs)
        self._set_mode(training_mode)
        if self._memo is None or training_mode:
            return self._forward(x, batch_size)
        return memo_predict(self._memo, x, lambda rows: self._forward(rows, batch_size))

    def _forward(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        inputs = torch.from_numpy(x)
        outputs = []
        with torch.no_grad():
            for first in range(0, len(x), batch_size):
                logits = self._model(inputs[first : first + batch_size].to(self._device))[-1]
                outputs.append(logits.detach().cpu().numpy().astype(np.float32))
        return np.concatenate(outputs) if outputs else np.zeros((0, self.nb_classes), dtype=np.float32)

    def adopt(self, other: PyTorchClassifier) -> PyTorchClassifier:
        """``other``, a plain ART wrapper that an attack built around this model with a loss of its own (ART's APGD
        does, for its cross-entropy and DLR losses), as a ``Classifier`` with that loss and the same label
        conventions, so the attack gets the fast paths too. Anything else is returned unchanged."""
        if type(other) is not PyTorchClassifier or other.model is not self.model or other.preprocessing_operations:
            return other
        twin = type(self)(model=self.model, loss=other._loss, input_shape=self.input_shape,
                          nb_classes=self.nb_classes, clip_values=self.clip_values, preprocessing=None,
                          device_type="gpu" if self._device.type == "cuda" else "cpu")
        for flag in ("_reduce_labels", "_int_labels", "_probability_labels", *self.adopted_fields):
            setattr(twin, flag, getattr(other, flag))
        return twin

    def _labels(self, y) -> torch.Tensor:
        """``y`` as the loss wants it, on the device. Iterative attacks pass the same label tensor at every step:
        the last one is remembered (by identity, holding a reference) rather than reduced again."""
        if self._last_labels is not None and self._last_labels[0] is y:
            return self._last_labels[1]
        labels = self.reduce_labels(y if isinstance(y, torch.Tensor) else torch.from_numpy(np.asarray(y)))
        labels = labels.to(self._device)
        if isinstance(y, torch.Tensor):
            self._last_labels = (y, labels)
        return labels

    def loss_gradient(self, x, y, training_mode: bool = False, **kwargs):
        if not self._plain:
            return super().loss_gradient(x, y, training_mode=training_mode, **kwargs)
        self._set_mode(training_mode)
        as_tensor = isinstance(x, torch.Tensor)
        inputs = x if as_tensor else torch.from_numpy(np.asarray(x, dtype=np.float32))
        inputs = inputs.to(self._device).detach().requires_grad_(True)
        loss = self._loss(self._model(inputs)[-1], self._labels(y))
        (grad,) = torch.autograd.grad(loss, inputs)
        return grad if as_tensor else grad.cpu().numpy()


class EoTClassifier(Classifier):
    """A ``Classifier`` of a randomized model whose gradients are Expectation over Transformation: the mean of
    ``draws`` gradients, each through a fresh forward pass (``benchmark/adaptive.py``)."""

    adopted_fields = ("draws",)
    draws: int = 1

    def loss_gradient(self, x, y, training_mode: bool = False, **kwargs):
        grads = [super(EoTClassifier, self).loss_gradient(x, y, training_mode=training_mode, **kwargs)
                 for _ in range(self.draws)]
        return sum(grads[1:], grads[0]) / self.draws

    def class_gradient(self, x, label=None, training_mode: bool = False, **kwargs):
        grads = [super(EoTClassifier, self).class_gradient(x, label=label, training_mode=training_mode, **kwargs)
                 for _ in range(self.draws)]
        return sum(grads[1:], grads[0]) / self.draws


def wrap(model: torch.nn.Module, input_shape: tuple[int, ...], nb_classes: int, device: str, *,
         counts: Counter | None = None, eot_draws: int = 0) -> Classifier:
    """Wrap ``model`` (logits out, inputs in [0, 1]) for attacks; ``estimator.counts`` counts its use (``counts``:
    another wrapper's, for a view of the same model). ``eot_draws`` > 0: an ``EoTClassifier`` averaging that many.

    The weights are frozen, since attacks only need input gradients and back-propagating into every weight roughly
    doubles their cost.
    """
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    # ART runs an nn.Sequential child by child (to expose every layer), never through its own forward: hook the last
    # child there, the model itself otherwise. A view sharing ``counts`` with a module already counted keeps that
    # module's counter (a second hook would count each pass twice).
    last = model[-1] if isinstance(model, torch.nn.Sequential) and len(model) else model
    hooked = [hook for hook in last._forward_hooks.values() if isinstance(hook, CallCounter) and hook.counts is counts]
    counter = hooked[0] if hooked else None
    if counter is None:
        counter = CallCounter()
        if counts is not None:
            counter.counts = counts
        last.register_forward_hook(counter)
    estimator = (EoTClassifier if eot_draws else Classifier)(
        model=model,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=tuple(input_shape),
        nb_classes=nb_classes,
        clip_values=(0.0, 1.0),
        preprocessing=None,  # ART's default (0, 1) standardisation is an identity that costs two ops per call
        device_type="gpu" if device.startswith("cuda") else "cpu",
    )
    estimator.counts = counter.counts
    if eot_draws:
        estimator.draws = eot_draws
    return estimator
