"""``benchmark.evaluate(model, x_test, y_test, ...)``: one call from a trained model and test arrays to numbers, the
way RobustBench's ``benchmark()`` works. The same attacks, ε sweep, probes, validity flags and typed record as
``bench evaluate`` (the runner's ``evaluate`` and ``make_record`` stages); nothing is written unless ``out`` is
given. The pytest ``robustness`` fixture is a thin wrapper of it.

    import benchmark
    result = benchmark.evaluate(model, x_test, y_test, attacks="suite:default", eps=[0, 0.05, 0.1], norm="inf")
    print(result)                     # the leaderboard table of this one row
    result.robust_accuracy            # worst case at the largest ε
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.api import DataBundle, arrays_sha256, check_labels, check_split, unit_float
from benchmark.datafiles import NpzData  # the ε grids of data from a file: those of the one call's arrays
from benchmark.errors import ConfigError, DataError
from benchmark.preflight import check_attack_inputs, fitting_attacks
from benchmark.record import Record, eps_key


@dataclass(frozen=True)
class Result:
    """What ``benchmark.evaluate`` found: the record of the one job (``record``) and its numbers by ε."""

    record: Record

    @property
    def eps(self) -> tuple[float, ...]:
        """The ε evaluated, without 0."""
        return self.record.eps[1:]

    @property
    def clean_accuracy(self) -> float:
        return self.record.clean_accuracy

    @property
    def accuracy(self) -> dict[float, float]:
        """Worst case over the attacks per ε (0 included: clean accuracy)."""
        return {e: self.record.robust_accuracy[eps_key(e)] for e in self.record.eps}

    @property
    def robust_accuracy(self) -> float:
        """Worst-case robust accuracy at the largest ε evaluated."""
        return self.accuracy[self.record.eps[-1]]

    @property
    def per_attack(self) -> dict[str, dict[float, float]]:
        """Per attack that was not stopped, its accuracy per ε (cumulative with shared survivors)."""
        return {name: {e: run.accuracy[eps_key(e)] for e in self.record.eps}
                for name, run in self.record.runs.items() if run.accuracy is not None}

    @property
    def per_attack_kind(self) -> str:
        """"cumulative" (shared survivors: after each attack in turn) or "standalone" (per-attack survivors)."""
        from benchmark.sweep import per_attack_kind

        return per_attack_kind(self.record.survivors)

    @property
    def flags(self) -> tuple[str, ...]:
        return self.record.flags

    @property
    def attacks(self) -> tuple[str, ...]:
        return tuple(self.record.attacks)

    @property
    def norm(self) -> str:
        return self.record.norm

    @property
    def n(self) -> int:
        return self.record.n_test

    @property
    def seconds(self) -> float:
        """Attack and probe time."""
        return self.record.eval_seconds + self.record.probe_seconds

    @property
    def grad_evals(self) -> int:
        return sum(run.grad_evals for run in self.record.runs.values())

    @property
    def queries(self) -> int:
        return sum(run.queries for run in self.record.runs.values())

    def leaderboard(self):
        from benchmark.leaderboard import build_leaderboard

        return build_leaderboard([self.record])

    def table(self, fmt: str = "md") -> str:
        """The leaderboard of this one row, as ``bench leaderboard --format fmt`` renders it."""
        from benchmark.render import render

        return render(self.leaderboard(), fmt)

    def __str__(self) -> str:
        return self.table()

    def to_dict(self) -> dict[str, Any]:
        """The headline numbers as plain JSON values (the pytest fixture attaches them to the test report)."""
        return {"attacks": list(self.attacks), "norm": self.norm, "n": self.n, "clean_accuracy": self.clean_accuracy,
                "robust_accuracy": {f"{e:g}": a for e, a in self.accuracy.items()}, "flags": list(self.flags),
                "seconds": self.seconds}


def evaluate(model: Any, x_test: Any, y_test: Any, *, attacks: str | Sequence[str] = "suite:default",
             eps: float | Sequence[float] | None = None, norm: str = "inf", n: int | None = None, seed: int = 0,
             device: str = "cpu", survivors: str = "shared", normalize: str | None = None, name: str | None = None,
             nb_classes: int | None = None, out: str | Path | None = None, weights: str | None = None,
             model_args: dict[str, Any] | None = None, trust: Sequence[str] = ()) -> Result:
    """Attack ``model`` on the first ``n`` (default: all) samples of ``x_test``, ``y_test``.

    ``model``: a ``torch.nn.Module`` returning logits for inputs in [0, 1] (a float32 copy is attacked, the
    original is untouched), or a model file spec as ``--model`` takes it (``"torchscript:model.pt"``,
    ``"onnx:model.onnx"``, ``"sklearn:model.skops"``, …). ``normalize="mean=…,std=…"`` puts standardisation in
    front of it; ``weights``, ``model_args`` and ``trust`` are ``--weights``, ``--model-arg`` and ``--trust`` for a
    file spec (``"pkg.mod:Class"`` with ``weights="net.pt"``; ``"sklearn:rf.skops"`` with ``trust=[...]``).
    ``x_test``: floats in [0, 1] or uint8 0–255, shaped ``(n, C, H, W)`` or ``(n, d)``; ``y_test``:
    integer labels. The class count is the number of scores the model returns (``nb_classes``, if given, must
    agree). ``attacks``: names, ``name:key=value`` and ``suite:NAME`` as ``--attack`` takes them; those a model
    without gradients cannot take are dropped from the default suite, refused when named. ``eps``: one ε or
    several (default: 2, 4, 8, 16 /255 under L∞; 0.25, 0.5, 1 under L2). ``survivors="per-attack"`` gives
    standalone per-attack numbers. ``out``: a results directory to store the record in (and write
    ``leaderboard.md``/``.json``, as ``bench evaluate`` does); nothing is written without it.
    Bad input raises ``DataError`` or ``ConfigError`` (both ``BenchError``) naming the argument."""
    from benchmark.config import parse_choice, parse_eps, resolve_device
    from benchmark.sweep import SURVIVORS

    parse_choice(norm, "norm", ("inf", "2"))
    parse_choice(survivors, "survivors", SURVIVORS)
    device = resolve_device(device, "device")
    x, y = test_arrays(x_test, y_test, n)
    network, model_file, label, digest = resolve_model(model, tuple(x.shape[1:]), device, normalize=normalize,
                                                       weights=weights, model_args=model_args, trust=trust)
    data = test_bundle(x, y, network, nb_classes, label, device)
    grid = parse_eps(NpzData.default_eps[norm] if eps is None else list(eps) if isinstance(eps, Sequence) else [eps],
                     "eps", norm)
    specs = attack_specs(attacks, norm, model_file, network)
    if attacks == "suite:default":
        specs = fitting_attacks(specs, data.input_shape)
    check_attack_inputs(specs, data.input_shape)
    job = make_job(data, label, digest, model_file, name, specs, grid, norm, seed, device, survivors)
    record = run_one(job, data, network)
    if out is not None:
        store_result(Path(out), record)
    return Result(record)


def test_arrays(x_test: Any, y_test: Any, n: int | None) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` samples as float32 inputs in [0, 1] (uint8 is divided by 255) and int64 labels, checked."""
    x, y = unit_float(np.asarray(x_test)), np.asarray(y_test)
    check_split(x, y, "x_test", "y_test")
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"n must be a positive integer, got {n!r}")
        x, y = x[:n], y[:n]
    if not len(x):
        raise DataError("x_test has no samples")
    return x, y.astype(np.int64, copy=False)


def resolve_model(model: Any, input_shape: tuple[int, ...], device: str, *, normalize: str | None = None,
                  weights: str | None = None, model_args: dict[str, Any] | None = None, trust: Sequence[str] = ()
                  ) -> tuple[Any, Any, str, str]:
    """(the model to attack, its ``ModelFile`` or None, its name on the board, its SHA-256): a file spec is loaded
    as ``--model`` loads it; a module is copied to float32 on ``device`` (behind ``normalize``), its weights and
    buffers hashed."""
    from benchmark.sources import parse_normalize

    norm = parse_normalize(normalize) if normalize else None
    if isinstance(model, str):
        return load_spec(model, input_shape, device, normalize=norm, weights=weights, model_args=model_args,
                         trust=trust)
    import torch

    if weights or model_args or trust:
        raise ConfigError("weights, model_args and trust: only for a model given as a file spec (a string)")
    if not isinstance(model, torch.nn.Module):
        raise DataError(f"model must be a torch.nn.Module returning logits, or a model file spec such as "
                        f"'torchscript:model.pt'; got {type(model).__name__}")
    network = copied(model)
    if norm is not None:
        from benchmark.sources import Normalize

        network = torch.nn.Sequential(Normalize(*norm), network).eval()
    digest = hashlib.sha256()
    for key, tensor in network.state_dict().items():
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return network.to(device), None, f"python:{type(model).__name__}", digest.hexdigest()


def load_spec(spec: str, input_shape: tuple[int, ...], device: str, **options: Any) -> tuple[Any, Any, str, str]:
    """``resolve_model`` for a file spec: parsed and loaded as ``--model`` does it."""
    from benchmark.sources import file_digest, load_model, parse_model

    args = options.pop("model_args") or {}
    model_file = parse_model(spec, args=args, **options)
    if model_file is None:
        raise ConfigError(f"model: {spec!r} is a registry architecture, which bench evaluate trains; give a trained "
                          f"model: a file spec ('torchscript:PATH', …) or a torch.nn.Module")
    if model_file.trainable:
        raise ConfigError(f"model: {model_file.spec} is an architecture without weights: give weights=PATH")
    network = load_model(model_file, input_shape, 0)
    return (network.to(device) if hasattr(network, "to") else network), model_file, model_file.spec, \
        file_digest(model_file)


def copied(model: Any) -> Any:
    """A float32 copy of ``model`` in eval mode, which the attacks may freeze without touching the caller's model.
    A TorchScript module is copied through its serialised form (a deep copy's parameters are not leaves)."""
    import io

    import torch

    if not isinstance(model, torch.jit.ScriptModule):
        return copy.deepcopy(model).float().eval()
    from benchmark.sources.torchfiles import Loaded

    buffer = io.BytesIO()
    torch.jit.save(model, buffer)
    buffer.seek(0)
    return Loaded(torch.jit.load(buffer, map_location="cpu").float().eval())


def test_bundle(x: np.ndarray, y: np.ndarray, network: Any, nb_classes: int | None, label: str,
                device: str) -> DataBundle:
    """The test arrays as a ``DataBundle`` (no train split) with the class count of the model's output."""
    from benchmark.preflight import output_classes, predictor

    classes = output_classes(predictor(network, device), x, label=label)
    if nb_classes is not None and classes != nb_classes:
        raise DataError(f"{label} returns {classes} scores per sample, but nb_classes is {nb_classes}")
    check_labels(y, classes, "y_test", source=f"the number of scores {label} returns")
    return DataBundle("arrays", x[:0], y[:0], x, y, nb_classes=classes)


def attack_specs(attacks: str | Sequence[str], norm: str, model_file: Any, network: Any) -> tuple:
    """The attacks as ``--attack`` takes them, checked against the model's capabilities."""
    from benchmark.array_estimator import ArrayModel
    from benchmark.inputs import parse_attacks

    if model_file is None and isinstance(network, ArrayModel):
        raise DataError("model: pass an ONNX or scikit-learn model as a file spec ('onnx:PATH', 'sklearn:PATH')")
    names = attacks if isinstance(attacks, str) else ",".join(attacks)
    where = "attacks (default)" if names == "suite:default" else "attacks"
    return parse_attacks(names, where, norm, model_file)


def make_job(data: DataBundle, label: str, digest: str, model_file: Any, name: str | None, specs: tuple,
             grid: tuple[float, ...], norm: str, seed: int, device: str, survivors: str):
    """The one job of a call, as ``benchmark.plan`` would plan it for a pretrained model."""
    from benchmark.config import SEED, PluginSpec, parse_value
    from benchmark.data import nearest_eps
    from benchmark.plan import Job
    from benchmark.provenance import library_versions

    if name is not None and not str(name).strip():
        raise ConfigError("name: is empty")
    return Job(dataset=data.name, model=label, defense=PluginSpec("defense", "pretrained", (), (), alias=name),
               seed=parse_value(seed, "seed", SEED), attacks=specs, eps=grid, norm=norm, device=device, quick=False,
               n_test=len(data.x_test), data_fingerprint=data.fingerprint(), versions=library_versions(),
               survivors=survivors, model_file=model_file, model_digest=digest,
               headline_eps=nearest_eps(grid, NpzData.headline_eps[norm]),
               data_source=f"arrays sha256:{arrays_sha256(data.x_test, data.y_test)}")


def run_one(job, data: DataBundle, network: Any) -> Record:
    """The runner's evaluate and record stages on an already loaded model."""
    from benchmark.runner import Progress, Trained, evaluate, make_record
    from benchmark.store import CheckpointInfo

    trained = Trained(model=network, info=CheckpointInfo(train_seconds=None, train_grad_evals=0), cached=False)
    evaluation = evaluate(job, data, trained, progress=Progress(job, None))
    return make_record(job, data, trained, evaluation)


def store_result(out: Path, record: Record) -> None:
    """Keep ``record`` in the results store at ``out`` and rewrite its ``leaderboard.md`` / ``.json``."""
    from benchmark.cli_reports import write_leaderboards
    from benchmark.config import writable_dir
    from benchmark.leaderboard import build_leaderboard
    from benchmark.store import Store

    out = writable_dir(out, "out")
    with Store(out) as store:
        store.put(record)
    write_leaderboards(out, build_leaderboard([record]))
