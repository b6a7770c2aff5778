"""Models the user brings, as files or as a class: ``--model kind:location``.

``torchscript:PATH`` (``torch.jit.load``), ``export:PATH`` (``torch.export.load``), ``keras:PATH.keras`` (Keras 3 on
its torch backend), ``onnx:PATH`` (onnxruntime, a black box), ``sklearn:PATH.skops`` (skops, safe loading) and
``pkg.mod:Class`` (an importable ``nn.Module`` subclass, with ``--weights`` a state dict). A registry name (no colon)
is not this package's business.

Importing this package is cheap: torch, keras, onnxruntime and skops are imported when a model is loaded.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.errors import ConfigError
from benchmark.registry import close_names, did_you_mean

FILE_KINDS = ("torchscript", "export", "keras", "onnx", "sklearn")
TORCH_KINDS = ("torchscript", "export", "keras", "class")
#: The optional extra that installs each kind's packages: ``pip install 'defense-bench[EXTRA]'``.
EXTRAS = {"keras": "keras", "onnxruntime": "onnx", "skops": "sklearn"}

_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


@dataclass(frozen=True)
class ModelFile:
    """A model given by ``--model kind:location`` (and the options that go with it)."""

    kind: str  # FILE_KINDS or "class"
    location: str  # the path as given, or "pkg.mod:Class"
    weights: str | None = None  # --weights PATH: a state dict (kind "class" only)
    args: tuple[tuple[str, Any], ...] = ()  # --model-arg key=value (kind "class" only)
    normalize: tuple[tuple[float, ...], tuple[float, ...]] | None = None  # --normalize mean=…,std=…
    trust: tuple[str, ...] = ()  # --trust TYPE,… (kind "sklearn" only)

    @property
    def spec(self) -> str:
        """What ``--model`` said: ``"torchscript:model.pt"``, ``"pkg.mod:Class"``."""
        return self.location if self.kind == "class" else f"{self.kind}:{self.location}"

    @property
    def trainable(self) -> bool:
        """A class without weights: an architecture that the defenses train here."""
        return self.kind == "class" and self.weights is None


@dataclass(frozen=True)
class Capabilities:
    """What the attacks can have of a model."""

    gradients: bool  # input gradients available (torch kinds; sklearn LR/SVC via ART), else a black box
    torch: bool  # a torch nn.Module (every attack); False for onnx and sklearn
    reason: str  # why not, for error messages: "onnx:m.onnx runs in onnxruntime, a black box"


def parse_model(spec: str, *, weights: str | None = None, args: Iterable[tuple[str, Any]] | Mapping[str, Any] = (),
                normalize: Any = None, trust: Iterable[str] | str = ()) -> ModelFile | None:
    """The ``ModelFile`` that ``--model spec`` (and its options) name; None for a registry name (no ``:``).

    ``normalize`` is ``--normalize``'s text or ``(mean, std)``; ``trust`` a list of type names or their
    comma-separated text. Every problem is a ``ConfigError`` naming the option."""
    spec = str(spec).strip()
    if ":" not in spec:
        return None
    kind, location = split_spec(spec)
    args = tuple(args.items()) if isinstance(args, Mapping) else tuple(tuple(pair) for pair in args)
    trust = tuple(name.strip() for name in (trust.split(",") if isinstance(trust, str) else trust) if name.strip())
    if kind != "class":
        only_class = "--weights" if weights is not None else "--model-arg" if args else None
        if only_class:
            raise ConfigError(f"{only_class}: only for a model given as a class (pkg.mod:Class), not {spec}")
        check_file(location, "--model", spec)
    if trust and kind != "sklearn":
        raise ConfigError(f"--trust: only for a scikit-learn model (sklearn:PATH.skops), not {spec}")
    if weights is not None:
        weights = str(weights)
        check_file(weights, "--weights", weights)
    if isinstance(normalize, str):
        normalize = parse_normalize(normalize)
    if normalize is not None:
        normalize = check_normalize(*normalize)
    return ModelFile(kind=kind, location=location, weights=weights, args=args, normalize=normalize, trust=trust)


def split_spec(spec: str) -> tuple[str, str]:
    """``(kind, location)`` of ``"kind:location"``; ``("class", spec)`` for ``"pkg.mod:Class"``."""
    kind, _, location = spec.partition(":")
    if kind in FILE_KINDS:
        if not location.strip():
            raise ConfigError(f"--model: {spec!r} names no file; expected {kind}:PATH")
        return kind, location
    if _DOTTED.fullmatch(kind) and _DOTTED.fullmatch(location):
        # "mod:Class", unless mod is a misspelt kind ("torchscrpt:model.pt") and no module of that name exists
        if "." in kind or not close_names(kind, FILE_KINDS) or importlib.util.find_spec(kind) is not None:
            return "class", spec
    hint = did_you_mean(kind, FILE_KINDS, template="did you mean {}? ")
    raise ConfigError(f"--model: unknown model kind {kind!r} in {spec!r}; {hint}(kinds: "
                      f"{', '.join(f'{k}:PATH' for k in FILE_KINDS)}, or pkg.module:Class)")


def check_file(path: str, option: str, spec: str) -> None:
    """A ``ConfigError`` naming ``option`` unless ``path`` is a readable file."""
    where = f"{option}: {spec}" if spec != path else f"{option}: {path}"
    file = Path(path)
    if not file.exists():
        raise ConfigError(f"{where}: no such file")
    if file.is_dir():
        raise ConfigError(f"{where}: is a directory, not a file")
    if not os.access(file, os.R_OK):
        raise ConfigError(f"{where}: the file is not readable (permission denied)")


def parse_normalize(text: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``"mean=0.5,0.4,std=0.2,0.2"`` (or ``"mean=0.5;std=0.25"``) → ``((0.5, 0.4), (0.2, 0.2))``."""
    values: dict[str, list[float]] = {}
    key = None
    for item in re.split(r"[,;]", str(text)):
        item = item.strip()
        if "=" in item:
            key, _, item = (part.strip() for part in item.partition("="))
            if key not in ("mean", "std") or key in values:
                problem = "given twice" if key in values else "is not mean or std"
                raise ConfigError(f"--normalize: {key!r} {problem}; expected mean=…,std=…, got {text!r}")
            values[key] = []
        if key is None or not item:
            raise ConfigError(f"--normalize: expected mean=…,std=… (numbers), got {text!r}")
        try:
            values[key].append(float(item))
        except ValueError:
            raise ConfigError(f"--normalize: {item!r} is not a number (in {text!r})") from None
    if set(values) != {"mean", "std"}:
        raise ConfigError(f"--normalize: expected both mean=… and std=…, got {text!r}")
    return check_normalize(values["mean"], values["std"])


def check_normalize(mean: Iterable[float], std: Iterable[float]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``(mean, std)`` as float tuples: the same number of values, every std > 0."""
    mean, std = tuple(float(v) for v in mean), tuple(float(v) for v in std)
    if not mean or len(mean) != len(std):
        raise ConfigError(f"--normalize: mean and std need the same number of values (one, or one per channel), got "
                          f"{len(mean)} and {len(std)}")
    if not all(s > 0 for s in std):
        raise ConfigError(f"--normalize: every std must be > 0, got {', '.join(f'{s:g}' for s in std)}")
    return mean, std


def channel_shape(model: ModelFile, input_shape: tuple[int, ...]) -> tuple[int, ...]:
    """The shape that ``--normalize``'s values broadcast with over a batch of ``input_shape`` (one value per channel,
    dim 1, or one for all); a ``ConfigError`` when their number fits neither."""
    count = len(model.normalize[0])
    if count not in (1, input_shape[0]):
        raise ConfigError(f"--normalize: {count} values, but the data has {input_shape[0]} channels (input shape "
                          f"{tuple(input_shape)}); give one value, or one per channel")
    return (1, count) + (1,) * (len(input_shape) - 1)


def file_digest(model: ModelFile) -> str:
    """SHA-256 (hex) of everything the model is loaded from: the file (an ONNX model's external weight files too);
    for a class, the source files of its package (``class_sources``) and the weights file (if any)."""
    digest = hashlib.sha256()
    names: list[str] = []
    if model.kind == "class":
        sources = class_sources(import_class(model.location))
        base = os.path.dirname(os.path.commonpath(sources)) if sources else ""
        names = [os.path.relpath(path, base) for path in sources]  # where the project lies does not count
        paths = [*sources, *([model.weights] if model.weights else [])]
    elif model.kind == "onnx":
        from benchmark.sources.onnx_model import external_data_files

        paths = [model.location, *external_data_files(model)]
    else:
        paths = [model.location]
    for index, path in enumerate(paths):
        digest.update(f"{names[index]}\0".encode() if index < len(names) else b"")
        with open(path, "rb") as file:
            while block := file.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def class_sources(cls: type) -> list[str]:
    """The source files a class's code comes from: every ``.py`` file of the user's top-level package (a helper
    module of the package changes the class too), or only the class's own file for an installed package."""
    import inspect
    import sys
    import sysconfig

    own = inspect.getsourcefile(cls)
    top = sys.modules.get(cls.__module__.split(".")[0])
    folders = [Path(folder) for folder in getattr(top, "__path__", [])]
    installed = Path(sysconfig.get_paths()["purelib"]).resolve()
    if not folders or any(installed in folder.resolve().parents for folder in folders):
        return [own] if own else []
    return sorted(str(file) for folder in folders for file in folder.rglob("*.py"))


def in_batches(x: Any, size: int, run: Any, concat: Any) -> Any:
    """``run`` over ``x`` (a numpy array or a tensor) in batches of exactly ``size`` samples, for a model saved with
    a fixed batch size: the last batch is padded with copies of its first sample, whose outputs are dropped."""
    outputs = []
    for first in range(0, len(x), size):
        part = x[first : first + size]
        short = size - len(part)
        if short:
            part = part[[*range(len(part)), *[0] * short]]
        outputs.append(run(part)[: size - short])
    return concat(outputs)


def first_line(exc: BaseException) -> str:
    """An exception's message on one line (for one-line errors), at most 300 characters. A TorchScript error's
    message is a traceback of the scripted code whose last line is the reason: that line is kept."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and "TorchScript" in lines[0]:
        lines = lines[-1:]
    text = " ".join(" ".join(lines).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def import_class(location: str) -> Any:
    """The ``nn.Module`` subclass ``"pkg.mod:Class"`` names; a ``ConfigError`` naming ``--model`` otherwise. The
    module is looked up as ``python -m`` would, the current directory first (the ``bench`` script's own directory
    is not the user's project), for this import only."""
    import sys

    import torch

    module_name, _, name = location.partition(":")
    added = os.getcwd() not in sys.path
    if added:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module: an ImportError, or any error its code raises on import
        raise ConfigError(f"--model: {location}: cannot import {module_name} ({type(exc).__name__}: "
                          f"{first_line(exc)})") from None
    finally:
        if added:
            sys.path.remove(os.getcwd())
    target: Any = module
    for part in name.split("."):
        if not hasattr(target, part):
            classes = [n for n, v in vars(module).items() if isinstance(v, type) and issubclass(v, torch.nn.Module)]
            hint = did_you_mean(part, classes, template="; did you mean {}?")
            raise ConfigError(f"--model: {location}: {module_name} has no {name!r}{hint}")
        target = getattr(target, part)
    if not (isinstance(target, type) and issubclass(target, torch.nn.Module)):
        raise ConfigError(f"--model: {location} is not a torch.nn.Module subclass")
    return target


def optional_import(module: str, model: ModelFile) -> Any:
    """``import module`` for ``model``, or a ``ConfigError`` saying which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise ConfigError(f"--model: {model.spec} needs {top}: pip install "
                          f"'defense-bench[{EXTRAS.get(top, top)}]'") from None


def capabilities(model: ModelFile) -> Capabilities:
    """What the attacks can have of ``model`` (a scikit-learn model is loaded to decide: cheap)."""
    if model.kind in TORCH_KINDS:
        return Capabilities(gradients=True, torch=True, reason="")
    if model.kind == "onnx":
        return Capabilities(gradients=False, torch=False, reason=f"{model.spec} runs in onnxruntime, a black box")
    from benchmark.sources.sklearn_model import sklearn_capabilities

    return sklearn_capabilities(model)


def load_model(model: ModelFile, input_shape: tuple[int, ...], nb_classes: int) -> Any:
    """The trained model as the attacks see it, ``--normalize`` applied in front: a float32 ``torch.nn.Module`` in
    eval mode (inputs in [0, 1] shaped ``(N, *input_shape)``, logits out) for the torch kinds, a
    ``benchmark.array_estimator.ArrayModel`` for onnx and sklearn. Output shapes are not checked here."""
    input_shape = tuple(input_shape)
    if model.normalize:
        channel_shape(model, input_shape)  # the number of values fits the data
    if model.kind == "onnx":
        from benchmark.sources.onnx_model import load_onnx

        return load_onnx(model, input_shape)
    if model.kind == "sklearn":
        from benchmark.sources.sklearn_model import load_sklearn

        return load_sklearn(model, input_shape)
    if model.kind == "keras":
        from benchmark.sources.keras_model import load_keras

        return load_keras(model, input_shape)
    from benchmark.sources import torchfiles

    if model.kind == "class" and model.weights is None:
        raise ConfigError(f"--weights: {model.spec} is an architecture without weights: give --weights PATH (a state "
                          "dict), or train it with a defense")
    loaders = {"torchscript": torchfiles.load_torchscript, "export": torchfiles.load_export,
               "class": torchfiles.load_class}
    return loaders[model.kind](model, input_shape)


def build_model(model: ModelFile, input_shape: tuple[int, ...], nb_classes: int) -> Any:
    """A fresh instance of the class ``model`` names (``Class(**args)``), ``--normalize`` in front: for the defenses
    to train."""
    if model.kind != "class":
        raise ConfigError(f"--model: {model.spec} is a trained model; only a class (pkg.mod:Class) can be trained")
    from benchmark.sources.torchfiles import build_class

    if model.normalize:
        channel_shape(model, tuple(input_shape))  # the number of values fits the data
    return build_class(model, tuple(input_shape))


def __getattr__(name: str) -> Any:
    if name == "Normalize":  # a torch module: imported on first use, so that importing this package stays cheap
        from benchmark.sources.torchfiles import Normalize

        return Normalize
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
