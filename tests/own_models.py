"""A user's own model and data, made in the tests: a small MLP trained briefly on digits, saved in each form that
``--model`` takes (TorchScript, ``torch.export``, a class with a state dict, Keras 3, ONNX), and digits as an npz.
Shared by ``tests/e2e/test_own_model.py`` and ``tests/test_oneshot.py``."""

from __future__ import annotations

import os
import sys
import textwrap
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import numpy as np
import torch

SHAPE = (1, 8, 8)
CLASSES = 10
HIDDEN = 32

#: The architecture as a user's own module file: ``nets.py`` in a package directory on ``PYTHONPATH``.
NETS_SOURCE = textwrap.dedent(f"""
    import torch


    class Net(torch.nn.Sequential):
        def __init__(self, hidden: int = {HIDDEN}, classes: int = {CLASSES}, softmax: bool = False) -> None:
            layers = [torch.nn.Flatten(), torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden,
                                                                                                      classes)]
            super().__init__(*layers, *([torch.nn.Softmax(dim=1)] if softmax else []))
""")


def mlp(hidden: int = HIDDEN, classes: int = CLASSES, softmax: bool = False) -> torch.nn.Sequential:
    """The same architecture as ``NETS_SOURCE``'s ``Net`` (same state-dict keys), built here."""
    layers = [torch.nn.Flatten(), torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, classes)]
    return torch.nn.Sequential(*layers, *([torch.nn.Softmax(dim=1)] if softmax else []))


@cache
def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(x_train, y_train, x_test, y_test): the built-in digits split, float32 in [0, 1], shape (n, 1, 8, 8)."""
    from benchmark.data import Digits

    data = Digits().load()
    return data.x_train, data.y_train, data.x_test, data.y_test


def write_digits(path: Path, *, train: bool = False, **override: np.ndarray) -> Path:
    """Digits as an npz (``x_test``, ``y_test``; ``x_train``, ``y_train`` with ``train``); ``override`` replaces or
    adds keys (a key given as None is left out)."""
    x_train, y_train, x_test, y_test = digits()
    arrays = {"x_test": x_test, "y_test": y_test, **({"x_train": x_train, "y_train": y_train} if train else {})}
    arrays.update(override)
    np.savez(path, **{key: value for key, value in arrays.items() if value is not None})
    return path


def train_mlp(steps: int = 300, seed: int = 0, **kwargs) -> torch.nn.Sequential:
    """``mlp(**kwargs)`` after ``steps`` full-batch Adam steps on the digits training split (about a second)."""
    x_train, y_train, _, _ = digits()
    torch.manual_seed(seed)
    model = mlp(**kwargs)
    if steps:
        x, y = torch.from_numpy(x_train), torch.from_numpy(y_train)
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        for _ in range(steps):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
    return model.eval()


def save_torchscript(model: torch.nn.Module, path: Path) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.10+ deprecates TorchScript
        torch.jit.save(torch.jit.script(model), str(path))
    return f"torchscript:{path}"


def save_export(model: torch.nn.Module, path: Path) -> str:
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(model, (torch.rand(4, *SHAPE),), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))
    return f"export:{path}"


def save_class(model: torch.nn.Module, directory: Path, package: str = "mypkg") -> tuple[str, str]:
    """``directory/package/nets.py`` (``Net``) and ``directory/weights.pt`` (the state dict): (spec, weights path).
    ``directory`` must be on ``sys.path`` / ``PYTHONPATH`` for the class to import."""
    write_package(directory, package)
    weights = directory / "weights.pt"
    torch.save(model.state_dict(), weights)
    return f"{package}.nets:Net", str(weights)


def write_package(directory: Path, package: str = "mypkg") -> None:
    (directory / package).mkdir(parents=True, exist_ok=True)
    (directory / package / "__init__.py").write_text("")
    (directory / package / "nets.py").write_text(NETS_SOURCE)


def save_keras(model: torch.nn.Sequential, path: Path) -> str:
    """The same weights in a Keras 3 model taking channels-last (8, 8, 1) inputs; with one channel its flattening
    order is the torch model's, so the weights carry over exactly."""
    os.environ.setdefault("KERAS_BACKEND", "torch")
    import keras

    first, last = model[1], model[3]
    network = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                keras.layers.Dense(first.out_features, activation="relu"),
                                keras.layers.Dense(last.out_features)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # Keras's torch backend and NumPy 2's copy keyword
        for layer, linear in zip(network.layers[1:], (first, last), strict=True):
            layer.set_weights([linear.weight.detach().numpy().T, linear.bias.detach().numpy()])
        network.save(str(path))
    return f"keras:{path}"


def save_onnx(model: torch.nn.Module, path: Path) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter is deprecated
        torch.onnx.export(model, (torch.rand(2, *SHAPE),), str(path), dynamo=False, input_names=["x"],
                          output_names=["logits"], dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}})
    return f"onnx:{path}"


@contextmanager
def importable(directory: Path, package: str = "mypkg") -> Iterator[None]:
    """``directory`` on ``sys.path`` for the block (and ``package`` forgotten after it)."""
    sys.path.insert(0, str(directory))
    try:
        yield
    finally:
        sys.path.remove(str(directory))
        for name in [name for name in sys.modules if name == package or name.startswith(package + ".")]:
            del sys.modules[name]


def pythonpath(directory: Path) -> dict[str, str]:
    """The environment of a ``bench`` subprocess that imports packages from ``directory``."""
    paths = [str(directory), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in paths if p), "KERAS_BACKEND": "torch"}
