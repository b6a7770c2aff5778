"""``benchmark.inputs``: the dataset and model specs a run takes, and which defenses and attacks fit the model; every
problem a one-line ``ConfigError`` naming the option."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmark import ATTACKS
from benchmark.config import merge_values
from benchmark.errors import ConfigError
from benchmark.inputs import (
    attack_refusal,
    dataset_text,
    literal,
    parse_attacks,
    parse_dataset,
    parse_defenses,
    parse_model_args,
    parse_model_option,
)
from benchmark.sources import Capabilities, ModelFile

DEFAULT_SUITE = ("fgsm", "pgd", "apgd-ce", "apgd-dlr", "square", "noise")


def options(**given):
    """``get`` and ``where`` over the defaults and the command-line options ``given``, as ``build_config`` has them."""
    values = merge_values({}, given, "config file")
    return (lambda key: values[key][0]), (lambda key: values[key][1])


def model_file(tmp_path: Path, name: str = "model.pt") -> str:
    path = tmp_path / name
    path.write_bytes(b"a model")
    return str(path)


@pytest.fixture(scope="module")
def logistic(tmp_path_factory) -> ModelFile:
    """A scikit-learn logistic regression saved with skops: input gradients through ART, but not a torch model."""
    import skops.io
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("sklearn") / "lr.skops"
    skops.io.dump(LogisticRegression().fit(rng.random((40, 4)), np.arange(40) % 2), path)
    return ModelFile(kind="sklearn", location=str(path))


# --- datasets ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "canonical"), [
    ("npz:data.npz,layout=nhwc", "npz:data.npz,layout=nhwc"),
    ("npz:data.npz,layout=auto", "npz:data.npz"),  # a default is left out
    ("npz:path=data.npz", "npz:data.npz"),
    ("npz:data.npz,classes=10,layout=nhwc", "npz:data.npz,layout=nhwc,classes=10"),  # the fields' order
    (" npz:data.npz , layout=flat ", "npz:data.npz,layout=flat"),
    ("folder:images,size=8", "folder:images,size=8"),
    ("digits", "digits"),
])
def test_dataset_text_is_canonical_and_round_trips(text, canonical):
    assert dataset_text(parse_dataset(text, "--dataset")) == canonical
    assert dataset_text(parse_dataset(canonical, "--dataset")) == canonical


def test_dataset_parameters_are_typed():
    spec = parse_dataset("npz:data.npz,classes=10", "--dataset")
    assert dict(spec.params) == {"path": "data.npz", "layout": "auto", "classes": 10}


@pytest.mark.parametrize(("text", "message"), [
    ("", "--dataset: no dataset given"),
    ("digitz", "--dataset: unknown dataset 'digitz'; did you mean 'digits'?"),
    ("npz:data.npz,layot=nhwc", "--dataset: dataset 'npz' has no parameter 'layot'; did you mean 'layout'?"),
    ("npz:data.npz,layout=xyz", "--dataset: npz: layout must be one of auto, nchw, nhwc, flat, got 'xyz'"),
    ("npz:data.npz,classes=-1", "--dataset: npz: classes must be an int"),
    ("npz:", "--dataset: npz: path is required"),
])
def test_bad_dataset_spec_names_the_option(text, message):
    with pytest.raises(ConfigError) as raised:
        parse_dataset(text, "--dataset")
    assert str(raised.value).startswith(message)


# --- models -----------------------------------------------------------------------------------------------------------

def test_a_registry_name_is_no_model_file():
    assert parse_model_option(*options(model="mlp")) == ("mlp", None)


def test_a_file_spec_and_its_options(tmp_path):
    path = model_file(tmp_path, "net.skops")
    name, source = parse_model_option(*options(model=f"sklearn:{path}", trust="a.B, c.D",
                                               normalize="mean=0.5,std=0.25"))
    assert name == f"sklearn:{path}" == source.spec
    assert (source.kind, source.location, source.trust) == ("sklearn", path, ("a.B", "c.D"))
    assert source.normalize == ((0.5,), (0.25,)) and not source.trainable


def test_a_class_spec_with_model_args():
    name, source = parse_model_option(*options(model="pkg.nets:Net", model_args=("hidden=16", "act=relu",
                                                                                  "bias=false", "p=0.5")))
    assert name == "pkg.nets:Net" and (source.kind, source.location) == ("class", "pkg.nets:Net")
    assert source.args == (("hidden", 16), ("act", "relu"), ("bias", False), ("p", 0.5)) and source.trainable


def test_a_leaderboards_config_reads_back():
    """A leaderboard's config writes normalize as {mean, std} and model args as a table (``bench check``)."""
    _, source = parse_model_option(*options(model="pkg.nets:Net", normalize={"mean": [0.5, 0.4], "std": [0.2, 0.3]},
                                            model_args={"hidden": 16}))
    assert source.normalize == ((0.5, 0.4), (0.2, 0.3)) and source.args == (("hidden", 16),)


@pytest.mark.parametrize(("given", "message"), [
    ({"model": "mlp", "weights": "w.pt"}, "--weights: only for a model given as a file (kind:PATH) or a class"),
    ({"model": "mlp", "normalize": "mean=0.5,std=0.2"}, "--normalize: only for a model given as a file"),
    ({"model": "mlp", "trust": "a.B"}, "--trust: only for a model given as a file"),
    ({"model": "cnn-smal"}, "--model: unknown model 'cnn-smal'; did you mean 'cnn-small'?"),
    ({"model": "torchscrpt:net.pt"}, "--model: unknown model kind 'torchscrpt' in 'torchscrpt:net.pt'; did you mean "
                                     "'torchscript'?"),
    ({"model": "onnx:missing.onnx"}, "--model: onnx:missing.onnx: no such file"),
    ({"model": "pkg.nets:Net", "model_args": ("hidden",)}, "--model-arg: expected key=value, got 'hidden'"),
    ({"model": "pkg.nets:Net", "model_args": ("1x=2",)}, "--model-arg: expected key=value, got '1x=2'"),
    ({"model": "pkg.nets:Net", "model_args": ("h=1", "h=2")}, "--model-arg: 'h' given twice"),
    ({"model": "pkg.nets:Net", "normalize": "mean=0.5"}, "--normalize: expected both mean=… and std=…"),
    ({"model": "pkg.nets:Net", "normalize": "mean=0.5,std=0"}, "--normalize: every std must be > 0"),
    ({"model": "pkg.nets:Net", "trust": "a.B"}, "--trust: only for a scikit-learn model (sklearn:PATH.skops)"),
])
def test_bad_model_spec_names_the_option(tmp_path, monkeypatch, given, message):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as raised:
        parse_model_option(*options(**given))
    assert str(raised.value).startswith(message), raised.value


@pytest.mark.parametrize(("text", "value"), [("3", 3), ("-2", -2), ("0.5", 0.5), ("1e-3", 1e-3), ("true", True),
                                             ("False", False), ("relu", "relu"), ("", "")])
def test_model_arg_values_are_literals(text, value):
    assert literal(text) == value and type(literal(text)) is type(value)


def test_model_args_as_one_text_and_none():
    assert parse_model_args("hidden=16", "--model-arg") == (("hidden", 16),)
    assert parse_model_args((), "--model-arg") == () and parse_model_args(None, "--model-arg") == ()


# --- defenses ---------------------------------------------------------------------------------------------------------

def defenses(**given) -> list[str]:
    get, where = options(**given)
    _, source = parse_model_option(get, where)
    return [spec.label for spec in parse_defenses(get, where, source)]


def test_default_defenses_by_model_kind(tmp_path):
    assert defenses(model="mlp") == ["standard", "pgd-at"]
    assert defenses(model=f"torchscript:{model_file(tmp_path)}") == ["pretrained"]
    assert defenses(model="pkg.nets:Net") == ["standard", "pgd-at"]  # an architecture: trained here
    assert defenses(model="pkg.nets:Net", weights=model_file(tmp_path, "w.pt")) == ["pretrained"]


def test_name_labels_the_one_row(tmp_path):
    assert defenses(model=f"onnx:{model_file(tmp_path)}", name=" ours-v2 ") == ["ours-v2"]
    assert defenses(model="mlp", defenses="pgd-at:eps=0.05", name="mine") == ["mine"]


@pytest.mark.parametrize(("given", "message"), [
    ({"model": "mlp", "defenses": "pretrained"}, "--defense: defense 'pretrained' scores a trained model as it is, "
                                                 "but 'mlp' is an untrained architecture"),
    ({"model": "pkg.nets:Net", "defenses": "pretrained"}, "but 'pkg.nets:Net' is an untrained architecture"),
    ({"model": "torchscript:{file}", "defenses": "pgd-at"}, "--defense: torchscript:{file} is a trained model, "
                                                            "scored as it is (defense 'pretrained')"),
    ({"model": "pkg.nets:Net", "weights": "{file}", "defenses": "standard,pretrained"}, "is a trained model"),
    ({"model": "mlp", "defenses": "standard,pgd-at", "name": "mine"}, "--name: labels one defense's row, but 2 "
                                                                       "defenses are given"),
    ({"model": "mlp", "defenses": "standard", "name": " "}, "--name: is empty"),
])
def test_defenses_that_do_not_fit_the_model_are_refused(tmp_path, given, message):
    file = model_file(tmp_path)
    with pytest.raises(ConfigError) as raised:
        defenses(**{key: value.format(file=file) for key, value in given.items()})
    assert message.format(file=file) in str(raised.value), raised.value


# --- attacks ----------------------------------------------------------------------------------------------------------

ONNX = ModelFile(kind="onnx", location="net.onnx")  # capabilities() does not read an ONNX file


def labels(value: str, model: ModelFile | None, *, norm: str = "inf", where: str = "--attack") -> list[str]:
    return [spec.label for spec in parse_attacks(value, where, norm, model)]


def test_the_default_suite_keeps_the_attacks_the_model_can_take(logistic):
    default = "attack (default)"
    assert labels("suite:default", None, where=default) == list(DEFAULT_SUITE)
    assert labels("suite:default", ModelFile(kind="torchscript", location="m.pt"), where=default) == list(DEFAULT_SUITE)
    assert labels("suite:default", ONNX, where=default) == ["square", "noise"]  # no gradients
    assert labels("suite:default", logistic, where=default) == ["fgsm", "pgd", "square", "noise"]  # not torch
    assert labels("suite:black-box", ONNX) == ["square", "hopskipjump", "noise"]


def test_named_attacks_the_model_cannot_take_are_refused_naming_why(logistic):
    with pytest.raises(ConfigError) as raised:
        labels("square,fgsm", ONNX)
    assert str(raised.value) == ("--attack: attack 'fgsm' needs input gradients, but onnx:net.onnx runs in "
                                 "onnxruntime, a black box; attacks that need only outputs: hopskipjump, noise, square")
    with pytest.raises(ConfigError) as raised:
        labels("fgsm,apgd-ce:restarts=2", logistic)
    assert str(raised.value) == (f"--attack: attack 'apgd-ce(restarts=2)' runs only on a PyTorch model (ART's "
                                 f"implementation), but sklearn:{logistic.location} (LogisticRegression) runs in "
                                 f"scikit-learn, not PyTorch")
    assert labels("fgsm,cw-linf,hopskipjump", logistic) == ["fgsm", "cw-linf", "hopskipjump"]


@pytest.mark.parametrize(("value", "norm", "message"), [
    ("cw-l2", "inf", "--attack: attack 'cw-l2' supports L2, not the run's Linf (--norm)"),
    ("cw-linf", "2", "--attack: attack 'cw-linf' supports Linf, not the run's L2 (--norm)"),
    ("suite:fast", "inf", "--attack: unknown suite 'fast'"),
    ("fgsn", "inf", "--attack: unknown attack 'fgsn'; did you mean 'fgsm'?"),
])
def test_attacks_for_another_norm_or_unknown_are_refused(value, norm, message):
    with pytest.raises(ConfigError) as raised:
        labels(value, None, norm=norm)
    assert str(raised.value).startswith(message), raised.value


@pytest.mark.parametrize("name", ATTACKS.names())
def test_attack_refusal_follows_the_attacks_tags(name):
    attack = ATTACKS.get(name)
    assert attack_refusal(name, Capabilities(gradients=True, torch=True, reason="")) is None
    black_box = attack_refusal(name, Capabilities(gradients=False, torch=False, reason="it is a black box"))
    assert (black_box is None) == (not attack.needs_grad and not getattr(attack, "torch_only", False))
    if black_box is not None:
        assert "it is a black box" in black_box
    not_torch = attack_refusal(name, Capabilities(gradients=True, torch=False, reason="it runs in scikit-learn"))
    assert (not_torch is None) == (not getattr(attack, "torch_only", False))
    if not_torch is not None:
        assert not_torch.startswith("runs only on a PyTorch model") and "it runs in scikit-learn" in not_torch
