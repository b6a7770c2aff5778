"""The privacy options of a run (``benchmark/privacy_inputs.py``): --privacy, --mia-samples, --n-train are checked
before any work, change the hashes only when given, and a job trains on the first --n-train samples only."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from benchmark.cli import main
from benchmark.config import build_config
from benchmark.errors import BenchError
from benchmark.plan import plan
from benchmark.privacy_inputs import preflight_privacy


def config(tmp_path, **overrides):
    return build_config({}, {"out": str(tmp_path / "out"), "device": "cpu", "quick": True, **overrides},
                        create_out=False)


def test_without_privacy_options_the_hashes_are_those_of_before(tmp_path):
    """The options are absent from the hashes unless given: every stored result and checkpoint stays valid."""
    (plain,) = plan(config(tmp_path, defenses="standard"))
    (same,) = plan(config(tmp_path, defenses="standard", privacy=""))
    assert (plain.train_hash, plain.job_hash) == (same.train_hash, same.job_hash)
    (fewer,) = plan(config(tmp_path, defenses="standard", n_train="200"))
    assert fewer.train_hash != plain.train_hash  # another model: trained on 200 samples
    (attacked,) = plan(config(tmp_path, defenses="standard", privacy="mia-rule"))
    assert attacked.train_hash == plain.train_hash and attacked.job_hash != plain.job_hash  # same model, more scores
    (more,) = plan(config(tmp_path, defenses="standard", privacy="mia-rule", mia_samples="100"))
    assert more.job_hash != attacked.job_hash


def test_privacy_attacks_parse_with_parameters_and_suggest_names(tmp_path):
    built = config(tmp_path, defenses="standard,fedavg", privacy="mia-rule,gradient-inversion")
    assert [spec.name for spec in built.privacy] == ["mia-rule", "gradient-inversion"]
    with pytest.raises(BenchError, match=r"--privacy: unknown privacy attack 'mia-rul'; did you mean 'mia-rule'"):
        config(tmp_path, privacy="mia-rul")


@pytest.mark.parametrize(("overrides", "message"), [
    ({"privacy": "gradient-inversion"},
     r"--privacy: 'gradient-inversion' reconstructs a federated client's images .* no defense of the run is "
     r"federated \(standard, pgd-at\); add one of .*fedavg"),
    ({"defenses": "fedavg", "privacy": "gradient-inversion,gradient-inversion:victims=1"},
     r"--privacy: one gradient inversion per run, got gradient-inversion, gradient-inversion\(victims=1\)"),
    ({"mia_samples": "1"}, r"--mia-samples: must be an int in \[2, "),
    ({"n_train": "0"}, r"--n-train: must be an int in \[1, "),
])
def test_bad_privacy_options_are_refused_naming_the_option(tmp_path, overrides, message):
    with pytest.raises(BenchError, match=message):
        config(tmp_path, **overrides)


@pytest.mark.parametrize(("overrides", "message"), [
    ({"n_train": "5000"}, r"--n-train: 5000 is more than the 1437 training samples of digits"),
    ({"privacy": "mia-rule", "n_train": "200", "mia_samples": "1300"}, r"--mia-samples: 1300 .*200"),
    ({"privacy": "mia-rule", "mia_samples": "400"}, r"--mia-samples: 400 .*1437.*360"),
])
def test_a_split_larger_than_the_data_is_refused_before_any_work(tmp_path, overrides, message):
    with pytest.raises(BenchError, match=message):
        preflight_privacy(config(tmp_path, **overrides))


def test_the_cli_refuses_a_split_larger_than_the_data_in_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["evaluate", "--privacy", "mia-rule", "--mia-samples", "400", "--quick",
                                       "--device", "cpu", "--out", str(out)])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("bench: error: --mia-samples: 400") and not (out / "bench.db").exists()


def test_a_private_defense_on_a_batchnorm_model_is_refused_naming_the_fix(tmp_path, monkeypatch):
    (tmp_path / "bnnet.py").write_text(
        "import torch.nn as nn\n"
        "class Net(nn.Sequential):\n"
        "    def __init__(self):\n"
        "        super().__init__(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),\n"
        "                         nn.Linear(512, 10))\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    for defense in ("dp-sgd", "dp-fedavg"):
        result = CliRunner().invoke(main, ["evaluate", "--model", "bnnet:Net", "--defense", defense, "--quick",
                                           "--device", "cpu", "--out", str(tmp_path / "out")])
        assert result.exit_code == 2, result.output
        (line,) = result.output.strip().splitlines()
        assert line.startswith(f"bench: error: --defense: {defense}: Opacus refuses BatchNorm2d")
        assert "norm=group" in line
    assert not (tmp_path / "out" / "bench.db").exists()


@pytest.mark.parametrize(("defense", "message"), [
    ("dp-sgd:target_epsilon=0", r"target_epsilon must be"),
    ("dp-sgd:delta=1", r"delta must be"),
    ("dp-sgd:batch_size=5000", r"batch_size=5000 is more than the 1437 training samples"),
])
def test_bad_private_parameters_are_refused_before_any_work(tmp_path, defense, message):
    result = CliRunner().invoke(main, ["evaluate", "--defense", defense, "--quick", "--device", "cpu", "--out",
                                       str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith("bench: error: --defense: dp-sgd") and re.search(message, line), line
