"""``benchmark.evaluate``: one call from a trained model (a module or a file spec) and test arrays to a ``Result``,
writing nothing unless ``out=`` is given."""

from __future__ import annotations

import hashlib
import os
import tempfile

import numpy as np
import pytest
import torch

import benchmark
from benchmark.errors import ConfigError, DataError
from benchmark.record import eps_key
from benchmark.store import Store
from tests import own_models

N = 40
EPS = [0.05, 0.1]


@pytest.fixture(scope="module")
def net():
    return own_models.train_mlp(steps=150)


@pytest.fixture(scope="module")
def arrays():
    _, _, x_test, y_test = own_models.digits()
    return x_test, y_test


@pytest.fixture(scope="module")
def result(net, arrays):
    return benchmark.evaluate(net, *arrays, attacks="fgsm,pgd", eps=EPS, n=N)


def per_sample(record) -> tuple:
    return record.correct, {name: run.broken_at for name, run in record.runs.items()}


def test_result_is_consistent_with_its_record(result, arrays):
    record = result.record
    assert isinstance(result, benchmark.Result)
    assert result.eps == tuple(EPS) and result.n == N == len(record.correct) and result.norm == "inf"
    assert result.attacks == ("fgsm", "pgd") and result.per_attack_kind == "cumulative"
    assert result.accuracy[0] == result.clean_accuracy == np.mean(record.correct)
    assert record.correct == tuple(int(c) for c in np.asarray(record.correct) == 1)
    worst = np.min([run.broken_at for run in record.runs.values()], axis=0)  # per sample, the first ε that broke it
    for k, eps in enumerate(record.eps):
        assert result.accuracy[eps] == pytest.approx(np.mean(worst > k)) == record.robust_accuracy[eps_key(eps)]
    assert result.robust_accuracy == result.accuracy[EPS[-1]] < result.clean_accuracy
    assert result.per_attack["pgd"] == result.accuracy  # cumulative: after the last attack, the worst case
    assert result.grad_evals == sum(run.grad_evals for run in record.runs.values()) > 0
    assert result.seconds == record.eval_seconds + record.probe_seconds
    assert (record.defense, record.train_seconds, record.model) == ("pretrained", None, "python:Sequential")
    assert record.model_source.spec == "python:Sequential" and len(record.model_source.sha256) == 64
    assert result.to_dict()["robust_accuracy"] == {f"{e:g}": a for e, a in result.accuracy.items()}


def test_str_is_the_markdown_table(result):
    text = str(result)
    assert text == result.table("md") and text != result.table("json")
    row = next(line for line in text.splitlines() if line.startswith("| 1 |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[1:3] == ["pretrained", "python:Sequential"]
    assert cells[4] == f"{100 * result.clean_accuracy:.1f}" and cells[6] == f"{100 * result.robust_accuracy:.1f}"


def test_writes_nothing_without_out_and_a_store_with_it(net, arrays, tmp_path, monkeypatch):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # what tempfile would write to
    quiet = benchmark.evaluate(net, *arrays, attacks="fgsm", eps=0.1, n=20)
    assert os.listdir(cwd) == [] and os.listdir(tmp_path / "tmp") == []

    kept = benchmark.evaluate(net, *arrays, attacks="fgsm", eps=0.1, n=20, out="results")
    assert per_sample(kept.record) == per_sample(quiet.record)
    with Store(cwd / "results", create=False) as store:
        assert store.records() == [kept.record]
    assert (cwd / "results" / "leaderboard.md").read_text() == str(kept)
    assert (cwd / "results" / "leaderboard.json").exists()


def test_a_file_spec_scores_what_its_module_scores(net, arrays, result, tmp_path):
    spec = own_models.save_torchscript(net, tmp_path / "net.pt")
    from_file = benchmark.evaluate(spec, *arrays, attacks="fgsm,pgd", eps=EPS, n=N)
    assert per_sample(from_file.record) == per_sample(result.record)
    source = from_file.record.model_source
    assert source.spec == spec == from_file.record.model
    assert source.sha256 == hashlib.sha256((tmp_path / "net.pt").read_bytes()).hexdigest()


def test_uint8_inputs_are_scaled(net, arrays):
    x, y = arrays
    as_bytes = np.round(x * 255).astype(np.uint8)
    scaled = benchmark.evaluate(net, as_bytes, y, attacks="fgsm", eps=0.1, n=N)
    exact = benchmark.evaluate(net, as_bytes.astype(np.float32) / 255, y, attacks="fgsm", eps=0.1, n=N)
    assert per_sample(scaled.record) == per_sample(exact.record)


def test_probability_outputs_flag_fires_for_a_softmax_model_only(net, arrays):
    softmax = own_models.mlp(softmax=True)
    softmax.load_state_dict(net.state_dict())
    flagged = benchmark.evaluate(softmax.eval(), *arrays, attacks="fgsm", eps=0.1, n=N)
    plain = benchmark.evaluate(net, *arrays, attacks="fgsm", eps=0.1, n=N)
    assert "probability_outputs" in flagged.flags and flagged.record.probes.probability_share == 1.0
    assert "probability_outputs" not in plain.flags and plain.record.probes.probability_share == 0.0
    assert flagged.record.correct == plain.record.correct  # same predictions: only the outputs' form differs


def test_the_callers_model_is_left_as_it_was(arrays):
    model = own_models.mlp().train().double()
    before = {key: value.clone() for key, value in model.state_dict().items()}
    benchmark.evaluate(model, *arrays, attacks="fgsm", eps=0.1, n=10)  # attacks a float32 copy in eval mode
    assert model.training and all(value.dtype == torch.float64 for value in model.state_dict().values())
    assert all(torch.equal(model.state_dict()[key], value) for key, value in before.items())


@pytest.mark.parametrize(("change", "error", "message"), [
    (lambda x, y: {"x_test": x[:10], "y_test": y[:9]}, DataError, "x_test has 10 samples but y_test has 9"),
    (lambda x, y: {"x_test": np.where(x > 0.5, np.nan, x)}, DataError, "x_test must hold finite values"),
    (lambda x, y: {"x_test": x * 2}, DataError, "x_test must hold finite values in [0, 1], got values in [0, 2]"),
    (lambda x, y: {"y_test": y + 1}, DataError, "y_test holds label 10"),
    (lambda x, y: {"y_test": y - 1}, DataError, "y_test must hold class labels ≥ 0"),
    (lambda x, y: {"y_test": np.eye(10)[y]}, DataError, "y_test must be a 1-D integer array"),
    (lambda x, y: {"x_test": x[:, :, :4, :4]}, DataError, "python:Sequential failed on x[0:20] of shape (20, 1, 4, 4)"),
    (lambda x, y: {"model": object()}, DataError, "model must be a torch.nn.Module"),
    (lambda x, y: {"nb_classes": 12}, DataError, "returns 10 scores per sample, but nb_classes is 12"),
    (lambda x, y: {"n": 0}, ConfigError, "n must be a positive integer"),
    (lambda x, y: {"norm": "1"}, ConfigError, "norm: must be one of inf, 2"),
    (lambda x, y: {"eps": -0.1}, ConfigError, "eps: ε must be a finite number ≥ 0"),
    (lambda x, y: {"attacks": "fgsn"}, ConfigError, "attacks: unknown attack 'fgsn'; did you mean 'fgsm'?"),
    (lambda x, y: {"attacks": "cw-l2"}, ConfigError, "attacks: attack 'cw-l2' supports L2, not the run's Linf"),
    (lambda x, y: {"survivors": "all"}, ConfigError, "survivors: must be one of shared, per-attack"),
    (lambda x, y: {"name": " "}, ConfigError, "name: is empty"),
    (lambda x, y: {"normalize": "mean=0.5"}, ConfigError, "normalize: expected both mean=… and std=…"),
    (lambda x, y: {"model": "torchscrpt:net.pt"}, ConfigError, "unknown model kind 'torchscrpt'"),
    (lambda x, y: {"model": "torchscript:missing.pt"}, ConfigError, "torchscript:missing.pt: no such file"),
])
def test_bad_input_raises_naming_the_argument(net, arrays, tmp_path, monkeypatch, change, error, message):
    monkeypatch.chdir(tmp_path)
    x, y = arrays
    args = {"model": net, "x_test": x, "y_test": y, "attacks": "fgsm", "eps": 0.1, "n": 20, **change(x, y)}
    with pytest.raises(error) as raised:
        benchmark.evaluate(args.pop("model"), args.pop("x_test"), args.pop("y_test"), **args, out="results")
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert os.listdir(tmp_path) == []  # refused before anything was written


def test_a_torchscript_module_scores_as_the_module_it_was_scripted_from(net, arrays, result):
    scripted = torch.jit.script(net)
    again = benchmark.evaluate(scripted, *arrays, attacks="fgsm,pgd", eps=EPS, n=N)
    assert per_sample(again.record) == per_sample(result.record)
    assert all(p.requires_grad for p in scripted.parameters())  # the caller's module is not frozen


def test_the_default_suite_leaves_out_attacks_for_images_on_flat_features(net, arrays):
    x, y = arrays
    flat = torch.nn.Sequential(torch.nn.Unflatten(1, (1, 8, 8)), net)
    result = benchmark.evaluate(flat, x.reshape(len(x), -1), y, eps=[0.1], n=N)
    assert "square" not in result.attacks and {"fgsm", "pgd", "noise"} <= set(result.attacks)
    with pytest.raises(DataError, match="'square' runs only on images"):
        benchmark.evaluate(flat, x.reshape(len(x), -1), y, attacks="fgsm,square", eps=[0.1], n=N)


def test_different_weights_and_names_are_different_jobs(net, arrays, tmp_path):
    other = own_models.train_mlp(steps=20)
    first = benchmark.evaluate(net, *arrays, attacks="fgsm", eps=[0.1], n=N, out=tmp_path)
    second = benchmark.evaluate(other, *arrays, attacks="fgsm", eps=[0.1], n=N, out=tmp_path)
    named = benchmark.evaluate(net, *arrays, attacks="fgsm", eps=[0.1], n=N, out=tmp_path, name="ours")
    hashes = {r.record.job_hash for r in (first, second, named)}
    assert len(hashes) == 3 and first.record.model_source.sha256 != second.record.model_source.sha256
    with Store(tmp_path) as store:
        assert {r.job_hash for r in store.records()} == hashes  # none overwrote another


def test_a_registry_name_or_an_architecture_without_weights_is_refused(arrays, tmp_path):
    with pytest.raises(ConfigError, match=r"^model: 'cnn-small' is a registry architecture"):
        benchmark.evaluate("cnn-small", *arrays)
    with pytest.raises(ConfigError, match=r"only for a model given as a file spec"):
        benchmark.evaluate(torch.nn.Linear(64, 10), *arrays, weights="w.pt")


def test_a_class_with_weights_and_arguments_from_python(net, arrays, tmp_path, result, monkeypatch):
    (tmp_path / "onepkg.py").write_text("import torch\n\n\nclass Net(torch.nn.Sequential):\n"
                                        "    def __init__(self, hidden=8):\n"
                                        "        super().__init__(torch.nn.Flatten(), torch.nn.Linear(64, hidden),\n"
                                        "                         torch.nn.ReLU(), torch.nn.Linear(hidden, 10))\n")
    hidden = net[1].out_features
    torch.save(net.state_dict(), tmp_path / "w.pt")
    monkeypatch.chdir(tmp_path)
    again = benchmark.evaluate("onepkg:Net", *arrays, attacks="fgsm,pgd", eps=EPS, n=N, weights="w.pt",
                               model_args={"hidden": hidden})
    assert per_sample(again.record) == per_sample(result.record)
