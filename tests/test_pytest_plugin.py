"""The ``robustness`` fixture as a team would use it in its own test suite (a real pytest run in a subprocess)."""

USER_TESTS = '''
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


def test_robustness_fixture_in_a_users_suite(pytester):
    pytester.makepyfile(test_user=USER_TESTS)
    junit = pytester.path / "report.xml"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--junitxml={junit}", "--benchmark-disable")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*robustness*", "*test_model_is_robust_enough: pgd (Linf, n=80): ε=0: *ε=0.1: *"])
    report = junit.read_text()
    assert '<property name="robustness"' in report and "robust_accuracy" in report
