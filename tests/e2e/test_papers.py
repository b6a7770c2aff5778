"""The paper settings of ``leaderboards/configs/`` (README "Papers"): each file builds into the setting it names, its
dry run through the real CLI plans one job per defense on format-exact generated files and writes nothing, and
``preact-resnet18`` trains for an epoch on a generated CIFAR-10 set and is scored with ``suite:aa-standard``."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tomllib

from benchmark.config import build_config, load_toml
from benchmark.data import dataset_instance
from benchmark.leaderboard import AA_STANDARD, AA_STANDARD_NOTE
from benchmark.recipes import RecipeOverrides
from tests.test_vision_data import write_cifar10, write_idx_dataset

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "leaderboards" / "configs"
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
#: file → (dataset, model, norm, the defenses' row labels, n_test).
SETTINGS = {
    "mnist-linf.toml": ("mnist", "lenet-madry", "inf", ["standard", "pgd-at", "trades"], None),
    "cifar10-linf.toml": ("cifar10", "preact-resnet18", "inf", ["standard", "pgd-at", "fgsm-at", "trades"], 1000),
    "cifar10-l2.toml": ("cifar10", "preact-resnet18", "2", ["standard", "pgd-at", "trades"], 1000),
}
#: The adversarial trainings each setting's papers use: (defense, field) → value (benchmark/recipes.py's PAPERS).
TRAINING = {"mnist": {("pgd-at", "eps"): 0.3, ("pgd-at", "steps"): 40, ("pgd-at", "step"): 0.01},
            "cifar10": {("pgd-at", "eps"): 8 / 255, ("pgd-at", "steps"): 10, ("trades", "beta"): 6.0}}


def write_dataset(name: str, root: Path) -> None:
    """A few format-exact files of ``name`` under ``root`` (64 train and 16 test images for CIFAR-10)."""
    if name == "mnist":
        write_idx_dataset(root, n=(20, 8))
    else:
        write_cifar10(root, counts=(13, 13, 13, 13, 12, 16))


def bench(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "benchmark", *args], capture_output=True, text=True, cwd=cwd,
                          env=ENV, timeout=900)


def test_the_configs_are_the_ones_listed():
    """Every config is a paper setting listed here, or the privacy setting (tests/e2e/test_privacy.py)."""
    assert sorted(path.name for path in CONFIGS.glob("*.toml")) == sorted([*SETTINGS, "privacy-digits.toml"])


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_each_config_builds_into_its_paper_setting(name, tmp_path):
    """No CUDA-only option (amp) is in the files: they build on CPU, and ``--device cuda`` is the user's choice."""
    dataset, model, norm, defenses, n_test = SETTINGS[name]
    config = build_config(load_toml(CONFIGS / name), {"out": tmp_path / "out", "device": "cpu"})
    assert (config.dataset, config.model, config.norm, config.n_test) == (dataset, model, norm, n_test)
    assert [spec.label for spec in config.defenses] == defenses
    assert tuple(spec.label for spec in config.attacks) == AA_STANDARD
    assert config.eps == pytest.approx(dataset_instance(dataset).default_eps[norm])  # the literature's grid
    papers = RecipeOverrides(dataset, {})  # the files keep the papers' recipes: they override none of them
    for spec, recipe in zip(config.defenses, config.recipes, strict=True):
        assert {key: getattr(recipe, key) for key in papers.fields_for(spec.name)} == papers.fields_for(spec.name)
    params = {spec.name: dict(spec.params) for spec in config.defenses}
    for (defense, key), value in TRAINING[dataset].items():
        assert params[defense][key] == pytest.approx(value), (defense, key)


def tree(where: Path) -> dict[str, bytes | None]:
    return {str(path.relative_to(where)): path.read_bytes() if path.is_file() else None
            for path in sorted(where.rglob("*"))}


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_each_config_dry_runs_one_job_per_defense_and_writes_nothing(name, tmp_path):
    """On a few generated images: ``--n-test 8`` (the generated test sets are smaller than the files' 1,000)."""
    dataset, _, _, defenses, _ = SETTINGS[name]
    write_dataset(dataset, tmp_path / "data")
    before = tree(tmp_path)
    result = bench("evaluate", "--config", str(CONFIGS / name), "--data-dir", "data", "--dataset",
                   f"{dataset}:unverified=true", "--n-test", "8", "--device", "cpu", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines[:-1]] == defenses
    assert all(line.split()[1:] == ["seed", "0", "to", "run"] for line in lines[:-1])
    assert lines[-1].endswith("(dry run: nothing trained, attacked or written)")
    assert "UNVERIFIED" not in result.stdout and "reading it unverified" in result.stderr
    assert tree(tmp_path) == before


@pytest.mark.heavy
def test_preact_resnet18_trains_an_epoch_on_cifar_files_and_is_scored_by_aa_standard(tmp_path):
    """The whole path on CPU: CIFAR-10 binary files → one epoch of ``standard`` (the paper recipe, epochs and batch
    cut) → ``suite:aa-standard`` on 8 test images at the headline ε 8/255 only (each survivor costs APGD-T's 900
    gradients and Square's 5,000 queries per ε). Measured: 162 s on one CPU thread (2 shared cores), most of it
    APGD-T and Square on the one sample the near-chance model got right (measured again: 118 s, of which APGD-T 40 s
    and Square 67 s). The floor is the survivor's 900 gradients and 5,000 single-image forward passes of a ResNet-18
    on CPU, not the harness; hence ``heavy`` (``pytest --heavy``)."""
    write_dataset("cifar10", tmp_path / "data")
    started = time.monotonic()
    result = bench("evaluate", "--data-dir", "data", "--dataset", "cifar10:unverified=true", "--model",
                   "preact-resnet18", "--defense", "standard", "--recipe", "epochs=1,batch_size=32", "--attack",
                   "suite:aa-standard", "--eps", str(8 / 255), "--n-test", "8", "--device", "cpu", cwd=tmp_path)
    print(f"bench evaluate took {time.monotonic() - started:.1f} s")
    assert result.returncode == 0, result.stderr
    board = json.loads((tmp_path / "bench-results" / "leaderboard.json").read_text(encoding="utf-8"))
    (row,) = board["rows"]
    assert (row["defense"], row["model"], row["n_test"]) == ("standard", "preact-resnet18", 8)
    assert tuple(row["per_attack"]) == AA_STANDARD and board["eps"] == pytest.approx([0, 8 / 255])
    assert AA_STANDARD_NOTE in (tmp_path / "bench-results" / "leaderboard.md").read_text(encoding="utf-8")
    source = row["provenance"]["data_source"]
    assert source.startswith("cifar10 UNVERIFIED: ")
    for path in sorted((tmp_path / "data" / "cifar-10-batches-bin").iterdir()):
        assert f"cifar-10-batches-bin/{path.name} sha1:{hashlib.sha1(path.read_bytes()).hexdigest()}" in source


def test_the_readme_shows_the_cifar10_linf_file_as_it_is():
    """README "Papers" prints cifar10-linf.toml's table (tests/e2e/test_readme.py builds it): it must be the file's."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    papers = readme.split("\n## Papers\n", 1)[1].split("\n## ", 1)[0]
    block = papers.split("```toml\n", 1)[1].split("```", 1)[0]
    assert tomllib.loads(block) == tomllib.loads((CONFIGS / "cifar10-linf.toml").read_text(encoding="utf-8"))
