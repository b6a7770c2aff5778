"""ONNX models (``onnx:PATH``), run by onnxruntime on the CPU: a black box (outputs, no gradients)."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmark.errors import ConfigError, DataError
from benchmark.sources import ModelFile, channel_shape, first_line, in_batches, optional_import

_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64, "tensor(float16)": np.float16}


def onnx_session(model: ModelFile) -> Any:
    """An onnxruntime session of the file: CPU, one intra-op thread per torch thread."""
    import torch

    ort = optional_import("onnxruntime", model)
    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, torch.get_num_threads())
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: onnxruntime's warnings go to stderr, not through logging
    try:
        return ort.InferenceSession(model.location, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ConfigError(f"--model: {model.spec} is not an ONNX model that onnxruntime can load "
                          f"({first_line(exc)})") from None


def load_onnx(model: ModelFile, input_shape: tuple[int, ...]) -> Any:
    """An ``ArrayModel`` running the file's model on float32 batches (``--normalize`` applied first); a model saved
    for a fixed batch size runs in padded batches of it."""
    from benchmark.array_estimator import ArrayModel

    session = onnx_session(model)
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise ConfigError(f"--model: {model.spec} takes {len(inputs)} inputs; a classifier takes one")
    name, shape, dtype = inputs[0].name, list(inputs[0].shape), _DTYPES.get(inputs[0].type)
    if dtype is None:
        raise ConfigError(f"--model: {model.spec} takes {inputs[0].type} inputs; expected float, double or float16")
    fixed = [size if isinstance(size, int) else None for size in shape]
    fits = len(fixed) == len(input_shape) + 1 and all(
        f is None or f == s for f, s in zip(fixed[1:], input_shape, strict=True))
    if not fits:
        raise DataError(f"--model: {model.spec} expects inputs of shape {tuple(shape)} (batch first; names and None: "
                        f"any size), but the data's inputs have shape (n, {', '.join(map(str, input_shape))})")
    mean = std = None
    if model.normalize:
        view = channel_shape(model, input_shape)
        mean, std = (np.asarray(values, dtype=np.float32).reshape(view) for values in model.normalize)

    def run(x: np.ndarray) -> np.ndarray:
        return session.run(None, {name: x.astype(dtype, copy=False)})[0]

    def predict(x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if mean is not None:
            x = (x - mean) / std
        if fixed[0] is not None and len(x) != fixed[0]:
            return in_batches(x, fixed[0], run, np.concatenate).astype(np.float32)
        return run(x).astype(np.float32)

    return ArrayModel(predict=predict, art_estimator=None, outputs="logits")


def external_data_files(model: ModelFile) -> list[str]:
    """The files beside an ONNX model that hold its weights (``torch.onnx.export``'s external data), which the
    model's digest covers too; none for a self-contained file."""
    from pathlib import Path

    onnx = optional_import("onnx", model)
    try:
        proto = onnx.load(model.location, load_external_data=False)
    except Exception as exc:
        raise ConfigError(f"--model: {model.spec} is not an ONNX model ({first_line(exc)})") from None
    tensors = [*proto.graph.initializer,
               *(attr.t for node in proto.graph.node for attr in node.attribute if attr.HasField("t"))]
    names = sorted({entry.value for tensor in tensors if tensor.data_location == onnx.TensorProto.EXTERNAL
                    for entry in tensor.external_data if entry.key == "location"})
    folder = Path(model.location).parent
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise ConfigError(f"--model: {model.spec} keeps its weights in {', '.join(missing)}, which is not beside it")
    return [str(folder / name) for name in names]
