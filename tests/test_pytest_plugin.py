"""The ``robustness`` fixture as a team would use it in its own test suite (a real pytest run in a subprocess), and
what it refuses."""

import copy
import dataclasses

import numpy as np
import pytest
import torch

from benchmark.api import DataBundle
from benchmark.errors import BenchError, ConfigError, DataError
from benchmark.pytest_plugin import Robustness

USER_TESTS = r'''
import torch

import benchmark as bench
from benchmark.api import RunContext
from benchmark.plan import load_dataset


def trained():
    data = load_dataset("synthetic")
    torch.manual_seed(0)
    model = bench.MODELS.get("mlp")(data.input_shape, data.nb_classes)
    return bench.DEFENSES.get("standard")(epochs=15).fit(model, data, RunContext(seed=0)), data


def test_model_is_robust_enough(robustness, benchmark):
    model, data = trained()
    result = robustness.evaluate(model, data, attack="pgd", eps=0.1)
    assert isinstance(result, bench.Result)  # benchmark.evaluate's result, as it returns it
    assert "| pretrained | python:Sequential | 1 (0) |" in str(result)  # its one-row board
    assert 0.5 < result.clean_accuracy <= 1.0
    assert 0.0 <= result.robust_accuracy < result.clean_accuracy
    several = robustness.evaluate(model, (data.x_test, data.y_test), attack="suite:quick", eps=[0.05, 0.2])
    assert several.robust_accuracy <= several.accuracy[0.05]
    assert set(several.per_attack) == {"fgsm", "pgd"} and several.per_attack_kind == "cumulative"
    assert several.per_attack["pgd"] == several.accuracy  # cumulative: after the last attack, the worst case
    alone = robustness.evaluate(model, data, attack="suite:quick", eps=[0.05, 0.2], survivors="per-attack")
    assert alone.per_attack_kind == "standalone" and alone.accuracy == several.accuracy
    assert all(p.requires_grad for p in model.parameters())  # the user's model is left as it was
    benchmark(lambda: None)  # pytest-benchmark's fixture still works beside it


def test_demanding_threshold_fails(robustness):
    model, data = trained()
    assert robustness.evaluate(model, "synthetic", attack="pgd", eps=0.3).robust_accuracy >= 0.99
'''


def test_the_old_batch_size_argument_is_accepted_and_ignored(request, trained_mlp, synthetic):
    model, data = trained_mlp, synthetic
    robustness = Robustness(request.node)
    plain = robustness.evaluate(model, data, attack="pgd", eps=0.1, n=40)
    with pytest.warns(DeprecationWarning, match=r"batch_size=\.\.\.\) is ignored"):
        old_style = robustness.evaluate(model, data, attack="pgd", eps=0.1, n=40, batch_size=64)
    assert old_style.accuracy == plain.accuracy


@pytest.mark.slow  # a pytest run in a subprocess that trains a model: 3-4.5 s
def test_robustness_fixture_in_a_users_suite(pytester):
    pytester.makepyfile(test_user=USER_TESTS)
    junit = pytester.path / "report.xml"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--junitxml={junit}", "--benchmark-disable")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*robustness*", "*test_model_is_robust_enough: pgd (Linf, n=80): ε=0: *ε=0.1: *"])
    report = junit.read_text()
    assert '<property name="robustness"' in report and "robust_accuracy" in report


# --- the fixture checks what it is given, as ``DataBundle`` does (``Robustness.evaluate`` called directly) ---------

class NaNLogits(torch.nn.Module):
    """A model whose logits turn NaN on the last test sample only (a single batch check would miss it)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.inner(x)
        return torch.where((x.flatten(1).sum(1) == self.last_sum)[:, None], torch.nan, logits)


def _nan_model(model, x):
    wrapped = NaNLogits(model)
    wrapped.last_sum = torch.from_numpy(x[-1:]).flatten(1).sum(1)
    return wrapped


def _more_than_one_batch(x, y):
    """The test split made longer than the 256 samples the model's output is checked on at a time, its last sample
    unique (a sample of it halved)."""
    return np.concatenate([x, x, x, x[:40] * 0.5]), np.concatenate([y, y, y, y[:40]])


def _nan_in_the_last_batch(m, x, y):
    x, y = _more_than_one_batch(x, y)
    return _nan_model(m, x), x, y


REFUSED = {  # case: (how the (model, x, y) given to the fixture is spoiled, the one-line message expected)
    "x in [0, 255]": (lambda m, x, y: (m, x * 255, y),
                      r"^x_test must hold finite values in \[0, 1\], got values in \[0, 255\]$"),
    "x with NaN": (lambda m, x, y: (m, np.where(np.arange(x.size).reshape(x.shape) == 7, np.nan, x), y),
                   r"^x_test must hold finite values in \[0, 1\], got NaN$"),
    "float labels": (lambda m, x, y: (m, x, y + 0.5),
                     r"^y_test must be a 1-D integer array of class labels, got float64 of shape \(80,\)$"),
    "one-hot labels": (lambda m, x, y: (m, x, np.eye(4, dtype=np.int64)[y]),
                       r"^y_test must be a 1-D integer array .*one-hot\? pass y.argmax\(1\)"),
    "negative labels": (lambda m, x, y: (m, x, y - 1), r"^y_test must hold class labels ≥ 0, got -1$"),
    "more labels than logits": (lambda m, x, y: (m, x, np.where(y == 3, 4, y)),
                                r"^y_test holds label 4, but the number of scores python:Sequential returns is 4 "
                                r"\(labels 0 … 3\)$"),
    "x and y of different lengths": (lambda m, x, y: (m, x, y[:-1]), r"^x_test has 80 samples but y_test has 79$"),
    "1-D x": (lambda m, x, y: (m, x.reshape(-1), y),
              r"^x_test must be a float32 array of shape \(n, C, H, W\) or \(n, d\), got float32 of shape \(2880,\)$"),
    "integer x": (lambda m, x, y: (m, (x > 0.5).astype(np.int64), y), r"^x_test must be a float32 array .*got int64"),
    "x the model cannot take": (lambda m, x, y: (m, np.concatenate([x, x], axis=1), y),
                                r"^python:Sequential failed on x\[0:80\] of shape \(80, 2, 6, 6\): mat1 and mat2"),
    "model returning NaN in its second batch": (
        _nan_in_the_last_batch, r"^python:NaNLogits returned non-finite scores \(NaN or inf\) for x\[256:280\]$"),
    "model returning one score": (lambda m, x, y: (torch.nn.Sequential(m, torch.nn.Linear(4, 1)), x, y),
                                  r"^python:Sequential must return scores of shape \(batch, classes ≥ 2\).*"
                                  r"got \(80, 1\) for x\[0:80\]"),
    "not a model": (lambda m, x, y: (lambda t: m(t), x, y), r"^model must be a torch.nn.Module"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_the_fixture_refuses_bad_arrays_and_models_in_one_line(case, request, trained_mlp, synthetic):
    spoil, message = REFUSED[case]
    model, x, y = spoil(copy.deepcopy(trained_mlp), synthetic.x_test, synthetic.y_test)
    with pytest.raises(DataError, match=message) as refused:
        Robustness(request.node).evaluate(model, (x, y), attack="fgsm", eps=0.1)
    assert "\n" not in str(refused.value)
    assert isinstance(refused.value, ValueError) and isinstance(refused.value, BenchError)
    assert request.node.user_properties == []


def test_the_class_count_comes_from_the_model_not_the_labels(request, trained_mlp, synthetic):
    """Labels covering 3 of the model's 4 classes: the same numbers as with a bundle that declares 4 classes
    (guessing 3 from the labels made DeepFool ignore a class and C&W fail on a (1,4)/(1,3) broadcast)."""
    keep = synthetic.y_test < 3
    x, y = synthetic.x_test[keep][:24], synthetic.y_test[keep][:24]
    bundle = DataBundle("three-of-four", synthetic.x_train, synthetic.y_train, x, y, nb_classes=4)
    robustness = Robustness(request.node)
    arrays = robustness.evaluate(trained_mlp, (x, y), attack="deepfool,cw-l2", eps=[0.5, 1.0], norm="2")
    declared = robustness.evaluate(trained_mlp, bundle, attack="deepfool,cw-l2", eps=[0.5, 1.0], norm="2")
    assert arrays.per_attack == declared.per_attack and arrays.accuracy == declared.accuracy
    with pytest.raises(DataError, match=r"^python:Sequential returns 4 scores per sample, but nb_classes is 5$"):
        robustness.evaluate(trained_mlp, dataclasses.replace(bundle, nb_classes=5), attack="fgsm")


def test_a_float64_model_and_float64_inputs_run_as_float32(request, trained_mlp, synthetic):
    robustness = Robustness(request.node)
    x, y = synthetic.x_test[:32], synthetic.y_test[:32]
    as_float32 = robustness.evaluate(trained_mlp, (x, y), attack="pgd", eps=[0.1, 0.2])
    model64 = copy.deepcopy(trained_mlp).double()
    as_float64 = robustness.evaluate(model64, (x.astype(np.float64), y.astype(np.int32)), attack="pgd", eps=[0.1, 0.2])
    assert as_float64.accuracy == as_float32.accuracy
    assert all(p.dtype == torch.float64 for p in model64.parameters())  # the user's model is left as it was


@pytest.mark.parametrize(("field", "value", "message"), [
    ("x_test", lambda x: np.full_like(x, np.nan), r"^x_test must hold finite values in \[0, 1\], got NaN$"),
    ("y_train", lambda y: y.astype(np.float32), r"^y_train must be a 1-D integer array of class labels, got float32"),
    ("y_test", lambda y: y + 4, r"^y_test holds label 7, but nb_classes is 4 \(labels 0 … 3\)$"),
    ("nb_classes", lambda k: 1, r"^nb_classes must be an integer ≥ 2, got 1$"),
    ("x_train", lambda x: x[:, :, :3], r"^x_train holds samples of shape \(1, 3, 6\) but x_test of shape \(1, 6, 6\)$"),
])
def test_a_data_bundle_refuses_what_the_fixture_refuses(field, value, message, synthetic):
    with pytest.raises(DataError, match=message):
        dataclasses.replace(synthetic, **{field: value(getattr(synthetic, field))})


@pytest.mark.parametrize(("argument", "value"), [("n", 0), ("n", 2.5), ("n", True)])
def test_counts_must_be_positive_integers(argument, value, request, trained_mlp, synthetic):
    with pytest.raises(ConfigError, match=f"^{argument} must be a positive integer, got {value}$"):
        Robustness(request.node).evaluate(trained_mlp, synthetic, attack="fgsm", **{argument: value})
