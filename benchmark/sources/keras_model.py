"""Keras 3 models (``keras:PATH.keras``), run on Keras's torch backend: a torch module, so every attack works."""

from __future__ import annotations

import os
from typing import Any

import torch

from benchmark.errors import ConfigError, DataError
from benchmark.sources import ModelFile, first_line, optional_import
from benchmark.sources.torchfiles import Loaded


class KerasModule(Loaded):
    """A Keras model (on Keras's torch backend) as a torch module: called in inference mode, on the device of its
    inputs (Keras would otherwise move them to its default device, the GPU when there is one)."""

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        import keras

        with keras.device(str(x.device)):
            return self.inner(x, training=False)


def import_keras(model: ModelFile) -> Any:
    """Keras on its torch backend (``KERAS_BACKEND=torch``, set here unless the environment chose another)."""
    backend = os.environ.get("KERAS_BACKEND", "torch")
    if backend != "torch":
        raise ConfigError(f"--model: {model.spec} needs KERAS_BACKEND=torch (it is {backend!r}): Keras models run on "
                          "its torch backend here, so that gradient attacks reach them")
    os.environ["KERAS_BACKEND"] = "torch"
    keras = optional_import("keras", model)
    if keras.backend.backend() != "torch":  # imported earlier in this process with another backend
        raise ConfigError(f"--model: {model.spec} needs KERAS_BACKEND=torch, but Keras was already imported with the "
                          f"{keras.backend.backend()!r} backend")
    return keras


def load_keras(model: ModelFile, input_shape: tuple[int, ...]) -> Any:
    """``keras.saving.load_model(PATH, safe_mode=True)`` behind ``--normalize``; a model that expects channels-last
    inputs gets NCHW → NHWC in front."""
    keras = import_keras(model)
    try:
        with keras.device("cpu"):  # like every loader (the runner moves the model to the run's device)
            network = keras.saving.load_model(model.location, safe_mode=True)
    except Exception as exc:
        raise ConfigError(f"--model: {model.spec} is not a Keras model that Keras loads safely "
                          f"({first_line(exc)})") from None
    expected = network.input_shape
    if not isinstance(expected, tuple) or not expected or isinstance(expected[0], (tuple, list)):
        raise ConfigError(f"--model: {model.spec} takes several inputs ({expected}); a classifier takes one")
    channels_last = keras_layout(model, tuple(expected[1:]), input_shape)
    return KerasModule(network, normalize=model.normalize, channels_last=channels_last).eval()


def keras_layout(model: ModelFile, expected: tuple[Any, ...], input_shape: tuple[int, ...]) -> bool:
    """Whether the model expects the data's (channels-first) inputs channels-last; a ``DataError`` naming both
    shapes when it expects neither (None in the model's shape matches any size)."""

    def fits(shape: tuple[int, ...]) -> bool:
        return len(shape) == len(expected) and all(e is None or e == s for e, s in zip(expected, shape, strict=True))

    if fits(input_shape):
        return False
    if len(input_shape) >= 2 and fits(input_shape[1:] + input_shape[:1]):
        return True
    raise DataError(f"--model: {model.spec} expects inputs of shape {expected} (None: any size), but the data's "
                    f"inputs have shape {tuple(input_shape)} (channels first; channels last would be "
                    f"{tuple(input_shape[1:] + input_shape[:1])})")
