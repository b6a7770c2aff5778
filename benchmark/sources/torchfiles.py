"""PyTorch models from files: TorchScript, ``torch.export`` programs, and a class with a state dict (``--weights``,
loaded with ``torch.load(weights_only=True)`` only: a file that needs full unpickling is refused, never loaded)."""

from __future__ import annotations

import logging
import os
import pickle
import re
import warnings
import zipfile
from contextlib import contextmanager
from typing import Any

import torch

from benchmark.errors import ConfigError
from benchmark.sources import ModelFile, first_line, import_class, in_batches

logger = logging.getLogger(__name__)


class Normalize(torch.nn.Module):
    """``(x - mean) / std``, one value per channel (dim 1) or one for all: ``--normalize`` in front of a model that
    expects standardised inputs."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = (1, -1) + (1,) * (x.dim() - 2)
        return (x - self.mean.view(shape)) / self.std.view(shape)


class Loaded(torch.nn.Module):
    """A trained model loaded from a file, with ``--normalize`` and an input adapter in front: a plain module, so
    that the harness can hook it (TorchScript modules refuse forward hooks) and switch its mode (exported programs
    refuse ``train()`` and ``eval()``). The loaded model stays in the mode it was saved in (it is scored, never
    trained here)."""

    def __init__(self, inner: Any, *, normalize: tuple | None = None, channels_last: bool = False,
                 batch: int | None = None) -> None:
        super().__init__()
        self.normalize = Normalize(*normalize) if normalize is not None else None
        self.inner = inner
        self.channels_last = channels_last  # NCHW data → NHWC model (a Keras model)
        self.batch = batch  # a program exported for exactly this many samples: run in padded batches of it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize is not None:
            x = self.normalize(x)
        if self.channels_last:
            x = x.movedim(1, -1)
        if self.batch is not None and len(x) != self.batch:
            return in_batches(x, self.batch, self._run, torch.cat)
        return self._run(x)

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)

    def train(self, mode: bool = True) -> Loaded:
        self.training = mode
        return self


def with_normalize(module: torch.nn.Module, model: ModelFile) -> torch.nn.Module:
    """``module`` behind ``--normalize`` (if given): ``nn.Sequential(Normalize, module)``."""
    return torch.nn.Sequential(Normalize(*model.normalize), module) if model.normalize else module


def torch_file_kind(path: str) -> str | None:
    """What a file that ``torch.jit.load`` or ``torch.export.load`` cannot read is, if torch wrote it:
    "a torch.save pickle", "a TorchScript file", "a torch.export program", or None."""
    with open(path, "rb") as file:
        head = file.read(2)
    if head[:1] == b"\x80":  # pickle protocol 2+ (torch.save without the zip format)
        return "a torch.save pickle"
    if not zipfile.is_zipfile(path):
        return None
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
    if any(name.endswith("/constants.pkl") for name in names):
        return "a TorchScript file"
    if any(name.endswith("/archive_format") or "/models/" in name for name in names):
        return "a torch.export program"
    if any(name.endswith("/data.pkl") for name in names):
        return "a torch.save pickle"
    return None


def read_torch_file(model: ModelFile, what: str, how: str, load: Any) -> Any:
    """``load(path)`` of a file that should be ``what`` (as ``torch_file_kind`` names it):
    another file torch wrote (a pickle above all) is refused unread, a failed load is one line saying ``how`` to
    save the right kind."""
    found = torch_file_kind(model.location)
    if found not in (None, what):
        raise ConfigError(f"--model: {model.spec} is {found}, not {what} (not loaded); {how}")
    try:
        return load(model.location)
    except Exception as exc:
        raise ConfigError(f"--model: {model.spec} is not {what} ({first_line(exc)}); {how}") from None


def load_torchscript(model: ModelFile, input_shape: tuple[int, ...]) -> torch.nn.Module:
    """``torch.jit.load`` of the file (on the CPU, eval mode); anything else torch wrote is refused unread."""

    def load(path: str) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch 2.10+ deprecates TorchScript
            return torch.jit.load(path, map_location="cpu")

    module = read_torch_file(model, "a TorchScript file",
                             "save it with torch.jit.save(torch.jit.script(model), PATH)", load)
    module.eval()
    return Loaded(module, normalize=model.normalize)


@contextmanager
def quiet(name: str):
    """A block in which logger ``name`` (and its children) logs errors only: ``torch.export.load`` logs a warning
    with a traceback for any file that is not a ``.pt2`` archive before it tries the other formats."""
    log = logging.getLogger(name)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


@contextmanager
def weights_only_loads():
    """A block in which every ``torch.load`` unpickles weights only, even where its caller asks for a full unpickle
    (``torch.export.load`` does for some archives): torch's ``TORCH_FORCE_WEIGHTS_ONLY_LOAD``."""
    before = os.environ.get("TORCH_FORCE_WEIGHTS_ONLY_LOAD")
    os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = "1"
    try:
        yield
    finally:
        if before is None:
            del os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"]
        else:
            os.environ["TORCH_FORCE_WEIGHTS_ONLY_LOAD"] = before


def pickled_objects(path: str) -> list[str]:
    """The members of a ``.pt2`` archive that ``torch.export.load`` would unpickle in full (custom and opaque
    constants: arbitrary Python objects)."""
    from torch.export.pt2_archive.constants import CUSTOM_OBJ_FILENAME_PREFIX, OPAQUE_OBJ_FILENAME_PREFIX

    if not zipfile.is_zipfile(path):
        return []
    with zipfile.ZipFile(path) as archive:
        return [name for name in archive.namelist()
                if name.rsplit("/", 1)[-1].startswith((CUSTOM_OBJ_FILENAME_PREFIX, OPAQUE_OBJ_FILENAME_PREFIX))]


def load_export(model: ModelFile, input_shape: tuple[int, ...]) -> torch.nn.Module:
    """``torch.export.load`` of the file, unpickling weights only (an archive holding pickled Python objects is
    refused unread); a program exported for a fixed batch size runs in padded batches of it."""
    pickled = pickled_objects(model.location)
    if pickled:
        raise ConfigError(f"--model: {model.spec} holds pickled Python objects ({', '.join(pickled[:3])}), which "
                          "loading would run as code; not loaded")

    def load(path: str) -> Any:
        with quiet("torch.export"), weights_only_loads():
            return torch.export.load(path)

    program = read_torch_file(model, "a torch.export program",
                              "save it with torch.export.save(torch.export.export(model, (x,)), PATH)", load)
    inputs = program.graph_signature.user_inputs
    if len(inputs) != 1:
        raise ConfigError(f"--model: {model.spec} takes {len(inputs)} inputs; a classifier takes one batch of inputs")
    placeholder = next(node for node in program.graph.nodes if node.op == "placeholder" and node.name == inputs[0])
    example = placeholder.meta.get("val")
    batch = example.shape[0] if example is not None and isinstance(example.shape[0], int) else None
    if batch is not None:
        logger.info("%s was exported for batches of %d samples: running it in batches of that size", model.spec,
                    batch)
    return Loaded(program.module(), normalize=model.normalize, batch=batch)


def build_class(model: ModelFile, input_shape: tuple[int, ...]) -> torch.nn.Module:
    """A fresh ``Class(**args)`` behind ``--normalize``."""
    cls = import_class(model.location)
    try:
        instance = cls(**dict(model.args))
    except Exception as exc:  # the user's constructor: any error is theirs, reported on one line
        arguments = ", ".join(f"{key}={value!r}" for key, value in model.args)
        raise ConfigError(f"--model-arg: {model.spec}({arguments}) failed: {type(exc).__name__}: "
                          f"{first_line(exc)}") from None
    if not isinstance(instance, torch.nn.Module):
        raise ConfigError(f"--model: {model.spec}() did not return a torch.nn.Module")
    return with_normalize(instance, model)


def load_class(model: ModelFile, input_shape: tuple[int, ...]) -> torch.nn.Module:
    """``Class(**args)`` with the state dict of ``--weights``, in eval mode, behind ``--normalize``."""
    network = build_class(model, input_shape)
    instance = network[-1] if model.normalize else network
    state = load_state_dict(model.weights)
    try:
        instance.load_state_dict(state)
    except (RuntimeError, ValueError, TypeError) as exc:
        raise ConfigError(f"--weights: {model.weights} does not fit {model.spec}: {first_line(exc)}") from None
    return network.eval()


def load_state_dict(path: str) -> dict[str, Any]:
    """``torch.load(path, weights_only=True)`` on the CPU: a state dict, or a ``ConfigError`` (a full pickle is
    refused by torch's restricted unpickler before any of its code runs, and never loaded another way)."""
    how = "save model.state_dict() with torch.save instead"
    found = torch_file_kind(path)
    if found in ("a TorchScript file", "a torch.export program"):
        kind = "torchscript" if found == "a TorchScript file" else "export"
        raise ConfigError(f"--weights: {path} is {found}, not a state dict: give it as --model {kind}:{path}, "
                          f"or {how}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        needs = re.search(r"GLOBAL ([\w.]+)", str(exc))
        if isinstance(exc, pickle.UnpicklingError) and (needs or found == "a torch.save pickle"):
            holds = f"it holds {needs.group(1)}, " if needs else ""
            raise ConfigError(f"--weights: {path} is a full pickle ({holds}which only full unpickling can load; "
                              f"not loaded); {how}") from None
        raise ConfigError(f"--weights: {path} is not a file torch.load can read ({first_line(exc)}); {how}") from None
    if not isinstance(state, dict):
        raise ConfigError(f"--weights: {path} holds a {type(state).__name__}, not a state dict (parameter names → "
                          f"tensors); {how}")
    return state
