"""Models from files (``benchmark.sources``): each form loads back to the model that was saved, and every bad input is
a one-line ``ConfigError`` or ``DataError`` naming the option, raised before anything unsafe is read."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.errors import ConfigError, DataError
from benchmark.sources import (
    Capabilities,
    ModelFile,
    Normalize,
    build_model,
    capabilities,
    file_digest,
    load_model,
    parse_model,
    parse_normalize,
)

SHAPE = (1, 8, 8)
CLASSES = 10


class TinyNet(torch.nn.Sequential):
    """The class that ``tests.test_sources:TinyNet`` names."""

    def __init__(self, hidden: int = 16, classes: int = CLASSES) -> None:
        super().__init__(torch.nn.Flatten(), torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden,
                                                                                                          classes))


class Trap:
    """Unpickling it creates the file ``marker``: a stand-in for the code a malicious pickle runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture()
def net() -> TinyNet:
    torch.manual_seed(0)
    return TinyNet().eval()


@pytest.fixture()
def x() -> torch.Tensor:
    return torch.rand(7, *SHAPE, generator=torch.Generator().manual_seed(1))


def logits(model, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(x)


def garbage(tmp_path: Path, name: str) -> str:
    path = tmp_path / name
    path.write_bytes(b"not a model at all " * 20)
    return str(path)


# --- parse_model, parse_normalize ------------------------------------------------------------------------------------

def test_registry_names_are_not_files():
    assert parse_model("cnn-small") is None


def test_parse_model_reads_every_kind(tmp_path):
    path = garbage(tmp_path, "m.bin")
    for kind in ("torchscript", "export", "keras", "onnx", "sklearn"):
        model = parse_model(f"{kind}:{path}", normalize="mean=0.5;std=0.25")
        assert (model.kind, model.location, model.spec) == (kind, path, f"{kind}:{path}")
        assert model.normalize == ((0.5,), (0.25,)) and not model.trainable
    model = parse_model("tests.test_sources:TinyNet", args=[("hidden", 8)])
    assert (model.kind, model.location, model.args, model.trainable) == ("class", "tests.test_sources:TinyNet",
                                                                         (("hidden", 8),), True)
    trusted = parse_model(f"sklearn:{path}", trust="a.B, c.D")
    assert trusted.trust == ("a.B", "c.D")


@pytest.mark.parametrize(("spec", "match"), [
    ("torchscrpt:model.pt", r"--model: unknown model kind 'torchscrpt'.*did you mean 'torchscript'"),
    ("onyx:model.onnx", r"unknown model kind 'onyx'.*did you mean 'onnx'"),
    ("torchscript:", r"--model: 'torchscript:' names no file"),
    ("torchscript:{tmp}/missing.pt", r"--model: torchscript:.*missing.pt: no such file"),
    ("onnx:{tmp}", r"--model: onnx:.*: is a directory, not a file"),
])
def test_bad_model_specs(tmp_path, spec, match):
    with pytest.raises(ConfigError, match=match) as info:
        parse_model(spec.format(tmp=tmp_path))
    assert "\n" not in str(info.value)


def test_options_only_for_their_kind(tmp_path):
    path = garbage(tmp_path, "m.pt")
    with pytest.raises(ConfigError, match=r"--weights: only for a model given as a class"):
        parse_model(f"torchscript:{path}", weights=path)
    with pytest.raises(ConfigError, match=r"--model-arg: only for a model given as a class"):
        parse_model(f"onnx:{path}", args=[("hidden", 3)])
    with pytest.raises(ConfigError, match=r"--trust: only for a scikit-learn model"):
        parse_model(f"keras:{path}", trust=["a.B"])
    with pytest.raises(ConfigError, match=r"--weights: .*missing.pt: no such file"):
        parse_model("tests.test_sources:TinyNet", weights=str(tmp_path / "missing.pt"))


@pytest.mark.parametrize(("text", "match"), [
    ("mean=0.5", r"--normalize: expected both mean=… and std=…"),
    ("mean=0.5,0.4,std=0.2", r"--normalize: mean and std need the same number of values.*got 2 and 1"),
    ("mean=0.5,std=0", r"--normalize: every std must be > 0"),
    ("mean=0.5,std=abc", r"--normalize: 'abc' is not a number"),
    ("avg=0.5,std=1", r"--normalize: 'avg' is not mean or std"),
    ("0.5,std=1", r"--normalize: expected mean=…,std=…"),
    ("mean=1,mean=2,std=1", r"--normalize: 'mean' given twice"),
])
def test_bad_normalize(text, match):
    with pytest.raises(ConfigError, match=match):
        parse_normalize(text)


def test_parse_normalize():
    assert parse_normalize("mean=0.5,0.4,0.3,std=0.2,0.25,0.5") == ((0.5, 0.4, 0.3), (0.2, 0.25, 0.5))
    assert parse_normalize("mean=0.5; std=0.25") == ((0.5,), (0.25,))


def test_importing_the_package_is_cheap():
    code = ("import sys, benchmark.sources; heavy = [m for m in ('torch', 'keras', 'onnxruntime', 'skops', 'art') "
            "if m in sys.modules]; assert not heavy, heavy")
    subprocess.run([sys.executable, "-c", code], check=True)


# --- torch forms -----------------------------------------------------------------------------------------------------

def test_torchscript_round_trip(tmp_path, net, x):
    path = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(net), path)
    model = parse_model(f"torchscript:{path}")
    loaded = load_model(model, SHAPE, CLASSES)
    assert torch.equal(logits(loaded, x), logits(net, x))
    assert capabilities(model).gradients and capabilities(model).torch


def test_export_round_trip(tmp_path, net, x):
    path = tmp_path / "net.pt2"
    batch = torch.export.Dim("batch")
    torch.export.save(torch.export.export(net, (x,), dynamic_shapes=({0: batch},)), path)
    loaded = load_model(parse_model(f"export:{path}"), SHAPE, CLASSES)
    loaded.eval()  # an exported module refuses eval(): the wrapper must not pass it on
    assert torch.equal(logits(loaded, x), logits(net, x))


def test_export_with_a_fixed_batch_runs_in_batches_of_it(tmp_path, net, x):
    path = tmp_path / "fixed.pt2"
    torch.export.save(torch.export.export(net, (x[:4],)), path)
    loaded = load_model(parse_model(f"export:{path}"), SHAPE, CLASSES)
    assert torch.allclose(logits(loaded, x), logits(net, x), atol=1e-6)  # 7 samples: batches of 4, one padded


def test_class_with_weights_round_trip(tmp_path, net, x):
    path = tmp_path / "weights.pt"
    torch.save(net.state_dict(), path)
    model = parse_model("tests.test_sources:TinyNet", weights=str(path))
    assert not model.trainable
    loaded = load_model(model, SHAPE, CLASSES)
    assert not loaded.training and torch.equal(logits(loaded, x), logits(net, x))


def test_class_without_weights_is_built_fresh_for_training():
    model = parse_model("tests.test_sources:TinyNet", args=[("hidden", 5)], normalize="mean=0.5;std=0.5")
    network = build_model(model, SHAPE, CLASSES)
    assert isinstance(network[0], Normalize) and isinstance(network[1], TinyNet)
    assert network[1][1].out_features == 5 and network.training
    with pytest.raises(ConfigError, match=r"--weights: .* is an architecture without weights"):
        load_model(model, SHAPE, CLASSES)


def test_build_model_refuses_a_trained_file(tmp_path, net):
    path = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(net), path)
    with pytest.raises(ConfigError, match=r"--model: torchscript:.* is a trained model; only a class"):
        build_model(parse_model(f"torchscript:{path}"), SHAPE, CLASSES)


@pytest.mark.parametrize("kind", ["torchscript", "export"])
def test_loaded_torch_files_work_in_the_harness_wrapper(tmp_path, net, x, kind):
    """TorchScript modules refuse forward hooks and exported ones refuse eval(): the harness's wrapper needs both."""
    from benchmark.estimator import wrap

    path = tmp_path / "net.bin"
    if kind == "torchscript":
        torch.jit.save(torch.jit.script(net), path)
    else:
        torch.export.save(torch.export.export(net, (x,), dynamic_shapes=({0: torch.export.Dim("batch")},)), path)
    estimator = wrap(load_model(parse_model(f"{kind}:{path}"), SHAPE, CLASSES), SHAPE, CLASSES, "cpu")
    scores = estimator.predict(x.numpy())
    assert np.allclose(scores, logits(net, x).numpy(), atol=1e-6) and estimator.counts["predict"] == len(x)
    assert np.abs(estimator.loss_gradient(x.numpy(), np.eye(CLASSES)[[0] * len(x)])).sum() > 0


def test_normalize_module():
    x = torch.rand(4, 3, 2, 2)
    per_channel = Normalize((0.1, 0.2, 0.3), (0.5, 0.25, 2.0))
    expected = (x - torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1)) / torch.tensor([0.5, 0.25, 2.0]).view(1, 3, 1, 1)
    assert torch.allclose(per_channel(x), expected)
    assert torch.allclose(Normalize((0.5,), (0.25,))(x), (x - 0.5) / 0.25)
    assert torch.allclose(Normalize((0.5, 0.1), (0.25, 1.0))(torch.ones(2, 2)), torch.tensor([[2.0, 0.9]] * 2))


def test_normalize_in_front_of_a_loaded_model(tmp_path, net, x):
    path = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(net), path)
    loaded = load_model(parse_model(f"torchscript:{path}", normalize="mean=0.5;std=0.25"), SHAPE, CLASSES)
    assert torch.allclose(logits(loaded, x), logits(net, (x - 0.5) / 0.25))
    with pytest.raises(ConfigError, match=r"--normalize: 2 values, but the data has 1 channels"):
        load_model(parse_model(f"torchscript:{path}", normalize="mean=0.5,0.5,std=1,1"), SHAPE, CLASSES)


@pytest.mark.parametrize("kind", ["torchscript", "export"])
def test_a_full_pickle_is_refused_unread(tmp_path, net, kind):
    path = tmp_path / "model.pt"
    torch.save(net, path)
    with pytest.raises(ConfigError, match=rf"--model: {kind}:.*model.pt is a torch.save pickle, not .*not loaded"):
        load_model(parse_model(f"{kind}:{path}"), SHAPE, CLASSES)


def test_full_pickle_weights_are_refused_before_any_code_runs(tmp_path):
    marker, path = tmp_path / "pwned", tmp_path / "weights.pt"
    torch.save({"weight": Trap(marker)}, path)
    model = parse_model("tests.test_sources:TinyNet", weights=str(path))
    with pytest.raises(ConfigError, match=r"--weights: .*weights.pt is a full pickle \(it holds io.open.*"
                                          r"save model.state_dict\(\)"):
        load_model(model, SHAPE, CLASSES)
    assert not marker.exists()
    torch.load(path, weights_only=False)  # the file really runs code when fully unpickled (so the test means it)
    assert marker.exists()


def test_an_export_archive_with_pickled_objects_is_refused_unread(tmp_path, net, x):
    import zipfile

    path = tmp_path / "net.pt2"
    torch.export.save(torch.export.export(net, (x,)), path)
    with zipfile.ZipFile(path, "a") as archive:
        root = archive.namelist()[0].split("/")[0]
        archive.writestr(f"{root}/data/constants/opaque_obj_0", b"not loaded")
    with pytest.raises(ConfigError, match=r"net\.pt2 holds pickled Python objects \(.*opaque_obj_0\).*not loaded"):
        load_model(parse_model(f"export:{path}"), SHAPE, CLASSES)


def test_torch_load_inside_an_export_load_unpickles_weights_only(tmp_path):
    from benchmark.sources.torchfiles import weights_only_loads

    marker, path = tmp_path / "pwned", tmp_path / "trap.pt"
    torch.save({"weight": Trap(marker)}, path)
    with weights_only_loads(), pytest.raises(Exception, match="Weights only load failed"):
        torch.load(path, weights_only=False)  # what torch.export.load asks for some archives: refused here
    assert not marker.exists()


def test_a_whole_model_pickled_as_weights_is_refused(tmp_path, net):
    path = tmp_path / "model.pt"
    torch.save(net, path)
    with pytest.raises(ConfigError, match=r"--weights: .* is a full pickle \(it holds tests.test_sources.TinyNet"):
        load_model(parse_model("tests.test_sources:TinyNet", weights=str(path)), SHAPE, CLASSES)


def test_bad_weights(tmp_path, net):
    script = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(net), script)
    with pytest.raises(ConfigError, match=r"--weights: .*net.pt is a TorchScript file, not a state dict: give it "
                                          r"as --model torchscript:"):
        load_model(parse_model("tests.test_sources:TinyNet", weights=str(script)), SHAPE, CLASSES)
    with pytest.raises(ConfigError, match=r"--weights: .*junk.pt is not a file torch.load can read"):
        load_model(parse_model("tests.test_sources:TinyNet", weights=garbage(tmp_path, "junk.pt")), SHAPE, CLASSES)
    wrong = tmp_path / "wrong.pt"
    torch.save(TinyNet(hidden=3).state_dict(), wrong)
    with pytest.raises(ConfigError, match=r"--weights: .*wrong.pt does not fit tests.test_sources:TinyNet: .*size"):
        load_model(parse_model("tests.test_sources:TinyNet", weights=str(wrong)), SHAPE, CLASSES)


@pytest.mark.parametrize(("spec", "match"), [
    ("tests.no_such_module:Net", r"--model: tests.no_such_module:Net: cannot import tests.no_such_module"),
    ("tests.test_sources:TinyNt", r"--model: .* has no 'TinyNt'; did you mean 'TinyNet'\?"),
    ("tests.test_sources:Trap", r"--model: tests.test_sources:Trap is not a torch.nn.Module subclass"),
])
def test_bad_classes(spec, match):
    with pytest.raises(ConfigError, match=match):
        build_model(parse_model(spec), SHAPE, CLASSES)


def test_bad_model_args():
    with pytest.raises(ConfigError, match=r"--model-arg: tests.test_sources:TinyNet\(width=3\) failed: .*width"):
        build_model(parse_model("tests.test_sources:TinyNet", args={"width": 3}), SHAPE, CLASSES)


@pytest.mark.parametrize(("kind", "match"), [
    ("torchscript", r"is not a TorchScript file"),
    ("export", r"is not a torch.export program"),
    ("onnx", r"is not an ONNX model that onnxruntime can load"),
    ("keras", r"is not a Keras model that Keras loads safely"),
    ("sklearn", r"is not a skops file"),
])
def test_garbage_files(tmp_path, kind, match):
    path = garbage(tmp_path, "model.bin")
    with pytest.raises(ConfigError, match=rf"--model: {kind}:.*model.bin {match}") as info:
        load_model(parse_model(f"{kind}:{path}"), SHAPE, CLASSES)
    assert "\n" not in str(info.value)


def test_file_digest(tmp_path, net):
    path = tmp_path / "net.pt"
    torch.jit.save(torch.jit.script(net), path)
    assert file_digest(parse_model(f"torchscript:{path}")) == hashlib.sha256(path.read_bytes()).hexdigest()
    weights = tmp_path / "weights.pt"
    torch.save(net.state_dict(), weights)
    before = file_digest(parse_model("tests.test_sources:TinyNet", weights=str(weights)))
    assert len(before) == 64 and before != file_digest(parse_model("tests.test_sources:TinyNet"))
    torch.save(TinyNet().state_dict(), weights)
    assert file_digest(parse_model("tests.test_sources:TinyNet", weights=str(weights))) != before


# --- keras -----------------------------------------------------------------------------------------------------------

def keras_model(tmp_path: Path, input_shape: tuple[int, ...]) -> tuple[Path, object]:
    from benchmark.sources.keras_model import import_keras

    keras = import_keras(ModelFile(kind="keras", location="test.keras"))
    keras.utils.set_random_seed(0)
    network = keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(), keras.layers.Dense(CLASSES)])
    path = tmp_path / "net.keras"
    network.save(path)
    return path, network


@pytest.mark.parametrize("layout", ["channels_last", "channels_first"])
def test_keras_round_trip(tmp_path, x, layout):
    nhwc = layout == "channels_last"
    path, network = keras_model(tmp_path, (8, 8, 1) if nhwc else SHAPE)
    model = parse_model(f"keras:{path}")
    loaded = load_model(model, SHAPE, CLASSES)
    assert loaded.channels_last == nhwc and capabilities(model).gradients
    expected = network.predict(x.permute(0, 2, 3, 1).numpy() if nhwc else x.numpy(), verbose=0)
    assert np.allclose(logits(loaded, x).numpy(), expected, atol=1e-5)


def test_keras_gives_input_gradients(tmp_path, x):
    path, _ = keras_model(tmp_path, (8, 8, 1))
    loaded = load_model(parse_model(f"keras:{path}"), SHAPE, CLASSES)
    inputs = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loaded(inputs)[:, 0].sum(), inputs)
    assert grad.shape == x.shape and grad.abs().sum() > 0


def test_keras_input_shape_mismatch(tmp_path):
    path, _ = keras_model(tmp_path, (8, 8, 1))
    with pytest.raises(DataError, match=r"--model: keras:.* expects inputs of shape \(8, 8, 1\).*\(3, 4, 4\)"):
        load_model(parse_model(f"keras:{path}"), (3, 4, 4), CLASSES)


def test_keras_needs_the_torch_backend(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    with pytest.raises(ConfigError, match=r"--model: keras:.* needs KERAS_BACKEND=torch \(it is 'jax'\)"):
        load_model(parse_model(f"keras:{garbage(tmp_path, 'net.keras')}"), SHAPE, CLASSES)


# --- onnx ------------------------------------------------------------------------------------------------------------

def onnx_file(tmp_path: Path, net: torch.nn.Module, x: torch.Tensor, *, dynamic: bool = True) -> Path:
    path = tmp_path / "net.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter is deprecated (the new one needs onnxscript)
        torch.onnx.export(net, (x,), str(path), dynamo=False, input_names=["pixels"],
                          dynamic_axes={"pixels": {0: "n"}} if dynamic else None)
    return path


@pytest.mark.parametrize("dynamic", [True, False])
def test_onnx_round_trip(tmp_path, net, x, dynamic):
    path = onnx_file(tmp_path, net, x if dynamic else x[:3], dynamic=dynamic)
    model = parse_model(f"onnx:{path}", normalize="mean=0.5;std=0.25")
    loaded = load_model(model, SHAPE, CLASSES)
    assert loaded.art_estimator is None and loaded.outputs == "logits"
    assert np.allclose(loaded.predict(x.numpy()), logits(net, (x - 0.5) / 0.25).numpy(), atol=1e-5)
    assert capabilities(model) == Capabilities(gradients=False, torch=False,
                                               reason=f"onnx:{path} runs in onnxruntime, a black box")


def test_onnx_input_shape_mismatch(tmp_path, net, x):
    path = onnx_file(tmp_path, net, x)
    with pytest.raises(DataError, match=r"--model: onnx:.* expects inputs of shape \('n', 1, 8, 8\).*\(n, 64\)"):
        load_model(parse_model(f"onnx:{path}"), (64,), CLASSES)


# --- scikit-learn ----------------------------------------------------------------------------------------------------

def sklearn_file(tmp_path: Path, estimator, name: str = "model.skops") -> tuple[Path, np.ndarray]:
    """``estimator`` fitted on random 64-feature data with 3 classes, saved with skops; and some inputs."""
    import skops.io

    rng = np.random.default_rng(0)
    features, labels = rng.random((60, 64), dtype=np.float32), rng.integers(0, 3, 60)
    estimator.fit(features, labels)
    path = tmp_path / name
    skops.io.dump(estimator, path)
    return path, features[:9]


def test_sklearn_logistic_regression_round_trip(tmp_path):
    from sklearn.linear_model import LogisticRegression

    estimator = LogisticRegression(max_iter=200)
    path, features = sklearn_file(tmp_path, estimator)
    model = parse_model(f"sklearn:{path}")
    loaded = load_model(model, SHAPE, 3)  # images of 1×8×8, flattened for the estimator
    assert np.array_equal(loaded.predict(features.reshape(-1, *SHAPE)),
                          estimator.predict_proba(features).astype(np.float32))
    assert loaded.outputs == "probabilities" and loaded.art_estimator is not None
    assert capabilities(model).gradients and not capabilities(model).torch


def test_sklearn_untrusted_types_need_trust(tmp_path):
    import skops.io
    from sklearn.ensemble import RandomForestClassifier

    estimator = RandomForestClassifier(n_estimators=3, random_state=0)
    path, features = sklearn_file(tmp_path, estimator)
    untrusted = skops.io.get_untrusted_types(file=path)
    assert untrusted  # a random forest holds sklearn.tree._tree.Tree, which skops does not trust by default
    with pytest.raises(ConfigError, match=rf"--trust: sklearn:.* holds types that skops does not trust by default: "
                                          rf"{untrusted[0]}.*--trust {untrusted[0]}"):
        load_model(parse_model(f"sklearn:{path}"), (64,), 3)
    with pytest.raises(ConfigError, match=r"--trust: "):
        capabilities(parse_model(f"sklearn:{path}", trust=["something.Else"]))
    model = parse_model(f"sklearn:{path}", trust=untrusted)
    loaded = load_model(model, (64,), 3)
    assert np.array_equal(loaded.predict(features), estimator.predict_proba(features).astype(np.float32))
    assert loaded.art_estimator is None
    assert capabilities(model) == Capabilities(gradients=False, torch=False, reason=f"sklearn:{path} "
                                               "(RandomForestClassifier) has no input gradients in ART: a black box")


def test_sklearn_normalize_applies_to_scores_and_gradients(tmp_path):
    from art.estimators.classification import SklearnClassifier
    from sklearn.linear_model import LogisticRegression

    estimator = LogisticRegression(max_iter=200)
    path, features = sklearn_file(tmp_path, estimator)
    loaded = load_model(parse_model(f"sklearn:{path}", normalize="mean=0.5;std=0.25"), (64,), 3)
    standardised = (features - 0.5) / 0.25
    assert np.allclose(loaded.predict(features), estimator.predict_proba(standardised))
    labels = np.eye(3)[[0, 1, 2] * 3]
    plain = SklearnClassifier(estimator, clip_values=(0.0, 1.0), preprocessing=None)
    assert np.allclose(loaded.art_estimator.loss_gradient(features, labels),
                       plain.loss_gradient(standardised, labels) / 0.25)
    assert np.allclose(loaded.art_estimator.class_gradient(features, label=1),
                       plain.class_gradient(standardised, label=1) / 0.25)
    # the chain rule against a finite difference of the loss along one feature (ART's logistic-regression gradient
    # is the cross-entropy's divided by the number of classes)
    step, row, feature = 1e-3, features[:1].astype(np.float64), 5
    moved = row.copy()
    moved[0, feature] += step
    loss = [-np.log(estimator.predict_proba((r - 0.5) / 0.25)[0, 0]) for r in (row, moved)]
    assert np.isclose((loss[1] - loss[0]) / step / 3, loaded.art_estimator.loss_gradient(row, labels[:1])[0, feature],
                      rtol=1e-2)


def test_sklearn_model_must_fit_the_data(tmp_path):
    from sklearn.linear_model import LogisticRegression

    path, _ = sklearn_file(tmp_path, LogisticRegression(max_iter=200))
    with pytest.raises(DataError, match=r"--model: sklearn:.* takes 64 features, but the data's inputs have shape "
                                        r"\(3, 4, 4\) \(48 features"):
        load_model(parse_model(f"sklearn:{path}"), (3, 4, 4), 3)


def test_an_onnx_models_external_weights_are_part_of_its_digest(tmp_path, net, x):
    import onnx

    plain = tmp_path / "net.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(net, x[:1], plain, dynamo=False, input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    split = tmp_path / "split.onnx"
    onnx.save_model(onnx.load(plain), split, save_as_external_data=True, location="split.onnx.data",
                    size_threshold=0)
    before = file_digest(parse_model(f"onnx:{split}"))
    with open(tmp_path / "split.onnx.data", "r+b") as weights:
        weights.write(b"\x00\x00\x80\x3f")  # another first weight, same length
    assert file_digest(parse_model(f"onnx:{split}")) != before
    (tmp_path / "split.onnx.data").unlink()
    with pytest.raises(ConfigError, match=r"keeps its weights in split\.onnx\.data, which is not beside it"):
        file_digest(parse_model(f"onnx:{split}"))


def test_a_class_digest_covers_its_packages_other_modules(tmp_path, monkeypatch):
    package = tmp_path / "userpkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "layers.py").write_text("import torch\nWIDTH = 4\n")
    (package / "nets.py").write_text("import torch\nfrom userpkg.layers import WIDTH\n\n\n"
                                     "class Net(torch.nn.Linear):\n    def __init__(self):\n"
                                     "        super().__init__(64, WIDTH)\n")
    monkeypatch.chdir(tmp_path)
    before = file_digest(parse_model("userpkg.nets:Net"))
    (package / "layers.py").write_text("import torch\nWIDTH = 5\n")
    assert file_digest(parse_model("userpkg.nets:Net")) != before


def test_errors_in_the_users_code_are_one_line(tmp_path, monkeypatch):
    (tmp_path / "brokenpkg.py").write_text("import torch\nundefined_name\n")
    (tmp_path / "assertpkg.py").write_text("import torch\n\n\nclass Net(torch.nn.Module):\n"
                                           "    def __init__(self):\n        assert False, 'no way'\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match=r"cannot import brokenpkg \(NameError: name 'undefined_name' is not"):
        build_model(parse_model("brokenpkg:Net"), SHAPE, CLASSES)
    with pytest.raises(ConfigError, match=r"assertpkg:Net\(\) failed: AssertionError: no way"):
        build_model(parse_model("assertpkg:Net"), SHAPE, CLASSES)
