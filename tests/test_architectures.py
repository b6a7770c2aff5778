"""The contract every registered model passes (generated from the registry, like ``test_defenses.py``), and models
with parameters on the command line: ``--model preact-resnet18:norm=group``."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import benchmark as bench
from benchmark.cli import main
from benchmark.config import build_config
from benchmark.errors import ConfigError
from benchmark.inputs import model_builder, parse_model_option
from benchmark.runner import build_network

#: Parameters of each registered model for 10 classes on its input shape (millions), as the papers report them.
PARAMETERS_M = {"cnn-small": 0.151, "mlp": 0.085, "lenet-madry": 3.27, "preact-resnet18": 11.17, "resnet18": 11.17,
                "wrn-28-10": 36.48, "wrn-34-10": 46.16}
DIGITS_SHAPE = (1, 8, 8)  # what a builder without declared input shapes is built for here


def norms(name: str) -> list[str | None]:
    """The ``norm`` choices of a registered model ([None]: it has no such parameter)."""
    table = getattr(bench.MODELS.get(name), "parameter_constraints", {})
    return list(table["norm"].choices) if "norm" in table else [None]


def builder(name: str, norm: str | None):
    plugin = bench.MODELS.get(name)
    if not dataclasses.is_dataclass(plugin):
        return plugin
    return plugin(norm=norm) if norm else plugin()


def input_shape(name: str) -> tuple[int, ...]:
    return tuple(getattr(bench.MODELS.get(name), "input_shapes", (DIGITS_SHAPE,))[0])


CASES = [pytest.param(name, norm, id=f"{name}-{norm}" if norm else name)  # wrn-34-10: under 2 s on one core
         for name in bench.MODELS.names() for norm in norms(name)]


def test_every_model_has_an_expected_size():
    assert set(PARAMETERS_M) == set(bench.MODELS.names())


@pytest.mark.parametrize(("name", "norm"), CASES)
def test_model_contract(name, norm):
    torch.manual_seed(0)
    shape, classes = input_shape(name), 10
    model = builder(name, norm)(shape, classes)
    size = sum(parameter.numel() for parameter in model.parameters())
    assert size == pytest.approx(PARAMETERS_M[name] * 1e6, rel=0.02)
    kinds = {type(module) for module in model.modules()}
    if norm == "group":
        assert torch.nn.GroupNorm in kinds and not any(issubclass(k, torch.nn.modules.batchnorm._BatchNorm)
                                                       for k in kinds)
    elif norm == "batch":
        assert torch.nn.BatchNorm2d in kinds and torch.nn.GroupNorm not in kinds
    model.train()  # one training forward (batch statistics), so that eval mode below has running statistics to use
    model(torch.rand(4, *shape))
    model.eval()
    x = torch.rand(2, *shape, requires_grad=True)
    logits = model(x)
    assert logits.shape == (2, classes) and torch.isfinite(logits).all()
    with torch.no_grad():  # eval mode: the same logits again, and a sample's logits do not depend on its batch
        assert torch.equal(model(x), logits.detach())
        torch.testing.assert_close(model(x[:1]), logits[:1].detach(), rtol=1e-4, atol=1e-5)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1])).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", [name for name in bench.MODELS.names() if getattr(bench.MODELS.get(name),
                                                                                  "input_shapes", ())])
def test_an_architecture_refuses_another_input_shape_naming_both(name):
    shape = input_shape(name)
    other = (3 if shape[0] == 1 else 1, *shape[1:])
    with pytest.raises(ValueError, match=f"takes inputs of shape {'×'.join(map(str, shape))}, not "
                                         f"{'×'.join(map(str, other))}"):
        builder(name, norms(name)[0])(other, 10)


# --- model parameters in the configuration ---------------------------------------------------------------------------

def model_option(model) -> tuple[str, object]:
    return parse_model_option(lambda key: model if key == "model" else None, lambda key: f"--{key}")


@pytest.mark.parametrize(("given", "text"), [
    ("preact-resnet18:norm=group", "preact-resnet18:norm=group"),
    (" preact-resnet18 : norm = group ", "preact-resnet18:norm=group"),
    ("preact-resnet18:norm=batch", "preact-resnet18"),  # the default: the bare name
    ({"name": "wrn-28-10", "norm": "group"}, "wrn-28-10:norm=group"),  # a TOML table
    ("cnn", "cnn-small"),
])
def test_a_registry_model_spec_reads_as_its_canonical_text(given, text):
    assert model_option(given) == (text, None)


def test_a_class_named_after_a_registered_model_stays_a_class():
    _, source = model_option("mlp:Net")  # module "mlp", class Net: no key=value after the colon
    assert (source.kind, source.location) == ("class", "mlp:Net")


@pytest.mark.parametrize(("given", "message"), [
    ("preact-resnet18:norm=bogus", "--model: preact-resnet18: norm must be one of batch, group, got 'bogus'"),
    ("preact-resnet18:nrom=group", "--model: model 'preact-resnet18' has no parameter 'nrom'; did you mean 'norm'?"),
    ("mlp:norm=group", "--model: model 'mlp' has no parameter 'norm'"),
    ("preact-resnet18:norm=group,norm=batch", "--model: preact-resnet18: parameter 'norm' given twice"),
    ("mlp,cnn-small", "--model: one model, got 2: mlp, cnn-small"),
])
def test_bad_model_parameters_are_one_config_error(given, message):
    with pytest.raises(ConfigError) as raised:
        model_option(given)
    assert str(raised.value).startswith(message), raised.value


def test_model_parameters_enter_the_hashes_and_a_model_without_them_hashes_as_before(tmp_path):
    from benchmark.plan import DataFacts, plan

    def train_hash(model: str) -> str:
        config = build_config(None, {"out": str(tmp_path), "dataset": "synthetic", "model": model,
                                     "defenses": "standard"})
        return plan(config, DataFacts("fingerprint", 80))[0].train_hash

    assert train_hash("preact-resnet18:norm=batch") == train_hash("preact-resnet18")
    assert train_hash("preact-resnet18:norm=group") != train_hash("preact-resnet18")
    assert train_hash("cnn") == train_hash("cnn-small")


def test_a_worker_rebuilds_the_model_from_its_text():
    text, _ = model_option("resnet18:norm=group")
    assert model_builder(text) == bench.MODELS.get("resnet18")(norm="group")
    network = build_network(text, None, (3, 32, 32), 10)
    assert any(isinstance(module, torch.nn.GroupNorm) for module in network.modules())
    assert build_network("mlp", None, DIGITS_SHAPE, 10)(torch.rand(1, *DIGITS_SHAPE)).shape == (1, 10)


# --- the command line ------------------------------------------------------------------------------------------------

def evaluate(*args: str, out) -> tuple[int, list[str]]:
    result = CliRunner().invoke(main, ["evaluate", "--device", "cpu", "--out", str(out), *args])
    return result.exit_code, result.stderr.strip().splitlines()


def test_a_bad_norm_is_one_line_naming_the_options(tmp_path):
    code, lines = evaluate("--model", "preact-resnet18:norm=bogus", "--dataset", "synthetic", out=tmp_path / "out")
    assert code == 2 and lines == ["bench: error: --model: preact-resnet18: norm must be one of batch, group, got "
                                   "'bogus'"]
    assert not (tmp_path / "out").exists()


def test_an_architecture_on_data_of_another_shape_is_one_line_naming_both(tmp_path):
    code, lines = evaluate("--model", "lenet-madry", "--dataset", "synthetic", "--dry-run", out=tmp_path / "out")
    assert code == 2 and len(lines) == 1, lines
    assert lines[0].startswith("bench: error: --model: lenet-madry takes inputs of shape 1×28×28, not 1×6×6"), lines
    assert not (tmp_path / "out").exists()


def test_a_dry_run_of_an_architecture_with_parameters_on_data_that_fits(tmp_path):
    rng = np.random.default_rng(0)
    data = tmp_path / "cifar-shaped.npz"
    np.savez(data, x_train=rng.random((8, 3, 32, 32), dtype=np.float32), y_train=np.arange(8) % 4,
             x_test=rng.random((4, 3, 32, 32), dtype=np.float32), y_test=np.arange(4))
    code, lines = evaluate("--model", "preact-resnet18:norm=group", "--dataset", f"npz:{data}", "--defense",
                           "standard", "--dry-run", out=tmp_path / "out")
    assert code == 0, lines
    code, lines = evaluate("--model", "lenet-madry", "--dataset", f"npz:{data}", "--dry-run", out=tmp_path / "out")
    assert code == 2 and "lenet-madry takes inputs of shape 1×28×28, not 3×32×32" in lines[0]
