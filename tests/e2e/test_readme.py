"""The READMEs' examples, run as written (project standard: "a test runs the README's examples as written").

Every fenced block of ``README.md`` and ``leaderboards/README.md`` is run or listed in ``SKIP`` with a reason, and
``test_every_example_is_run_or_skipped`` fails on a block that is neither, so a new example cannot slip by:

* ``bash`` lines (and a ``yaml`` workflow's ``run: bench …`` steps) starting with ``bench evaluate`` or
  ``bench check`` run with ``--dry-run`` appended, in a directory holding only a link to ``leaderboards/`` (so
  baseline paths resolve) and the user's files the examples name (``OWN_FILES``: ``model.pt``, ``data.npz``,
  ``my_pkg/nets.py``, made once per module by ``own_files``); nothing may appear in it or change. Other ``bench``
  lines run against a small real store in ``./bench-results`` (made once per module). Placeholders and names the
  store lacks go through ``SUBSTITUTIONS``. The three lines of "Score your own model" also run for real.
* Plain blocks of ``$ bench …`` lines are transcripts: each command must print exactly the lines below it.
* ``python`` blocks run in a subprocess with the stand-ins ``PYTHON_EXAMPLES`` names for the user's own things.
* ``toml`` blocks: a ``[evaluate]`` table is built by ``benchmark.config``; entry points must name the registries'
  groups.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

import benchmark
from benchmark.api import RunContext
from benchmark.config import build_config, load_toml, reference_defenses
from benchmark.plan import load_dataset

ROOT = Path(__file__).resolve().parents[2]
DOCS = ("README.md", "leaderboards/README.md")
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}

#: (document, language, start of the block's first line) → why the test does not run it.
SKIP = {
    ("README.md", "bash", 'pip install -e ".[dev]"'): "installs the package; the suite runs in that environment",
    ("README.md", "", "digits · L∞ · worst case"): "output of the 27 s default run; "
                                                    "tests/e2e/test_cli.py::test_default_run_ranks_pgd_at_far_ahead "
                                                    "runs that command",
    ("README.md", "bash", "pytest                   # what CI runs"): "runs this test suite itself",
    ("README.md", "bash", "pytest tests/benchmarks"): "the benchmarks: minutes, measured in their own run",
    ("leaderboards/README.md", "", "{"): "an annotated schema, not JSON",
    ("README.md", "bash", "bash leaderboards/regenerate-privacy.sh"): "regenerates the committed privacy leaderboard "
                                                                       "(minutes); tests/e2e/test_privacy.py runs a "
                                                                       "reduced version of its config",
    ("README.md", "bash", "bench data fetch cifar10"): "downloads CIFAR-10 and needs a GPU; tests/e2e/test_papers.py "
                                                       "dry-runs each config on generated files",
}

#: Text in a ``bench`` line → what the test runs instead: placeholders, and stores the small store stands in for.
SUBSTITUTIONS = {
    "<every defense that trains>": ",".join(reference_defenses()),
    "<results-dir>": "bench-results",
    "<tmp>": "report",
    "results-main/": "bench-results/",
    "results-pr/": "bench-results/",
}

#: Defenses of the small store: the README's `bench compare pgd-at standard` and `load_model(defense="pgd-at")`.
STORE_RUN = ["evaluate", "--quick", "--dataset", "synthetic", "--model", "mlp", "--defense", "standard,pgd-at",
             "--attack", "fgsm", "--device", "cpu"]

#: Start of a python block's first line → the test that runs it with its stand-ins.
PYTHON_EXAMPLES = {
    "# test_robustness.py in your project": "test_pytest_plugin_example_passes_on_a_robust_model",
    "import benchmark": "test_load_model_example_returns_the_stored_model",
    "from dataclasses import dataclass": "test_plugin_example_registers_a_defense",
    "# my_pkg/nets.py": "test_evaluate_and_check_examples_dry_run",  # as my_pkg/nets.py: the dry run builds it
    "import numpy as np": "test_evaluate_example_prints_the_row",
    "# leaderboards/baselines/ours-model.pt": "test_ours_model_recipe_rebuilds_the_committed_model",
}

#: The user's files the "Score your own model" examples name, relative to where they run (see ``own_files``).
OWN_FILES = ("model.pt", "data.npz", "my_pkg/nets.py")


@dataclass(frozen=True)
class Block:
    doc: str
    line: int  # of the opening fence
    lang: str
    text: str

    @property
    def first(self) -> str:
        return next((line.strip() for line in self.text.splitlines() if line.strip()), "")

    def key(self, table) -> tuple[str, str, str] | None:
        """The key of ``table`` (SKIP) naming this block, if any."""
        return next((k for k in table if k[:2] == (self.doc, self.lang) and self.first.startswith(k[2])), None)


def blocks(doc: str) -> list[Block]:
    found, fence = [], None
    for number, line in enumerate((ROOT / doc).read_text(encoding="utf-8").splitlines(), start=1):
        if fence is None and line.startswith("```"):
            fence, lang, body = number, line[3:].strip(), []
        elif fence is not None and line.startswith("```"):
            found.append(Block(doc, fence, lang, "\n".join(body)))
            fence = None
        elif fence is not None:
            body.append(line)
    assert fence is None, f"{doc}:{fence}: unclosed code block"
    return found


BLOCKS = [block for doc in DOCS for block in blocks(doc)]


def bench_lines(block: Block) -> list[str]:
    """The ``bench`` commands of a bash block (one a line, comments dropped) or of a workflow's ``run:`` steps."""
    lines = [line.strip() for line in block.text.splitlines()]
    if block.lang == "yaml":
        lines = [line.split("run:", 1)[1].strip() for line in lines if re.match(r"-?\s*run:\s*bench ", line)]
    return [line for line in lines if line and not line.startswith("#")]


def commands(kinds: tuple[str, ...]) -> list:
    """``pytest.param(argv)`` for every ``bench`` line of a bash or yaml block whose subcommand is in ``kinds``
    (``None`` in ``kinds``: every other subcommand), substitutions applied."""
    params = []
    for block in BLOCKS:
        if block.lang not in ("bash", "yaml") or block.key(SKIP):
            continue
        for line in bench_lines(block):
            label = f"{block.doc}:{block.line} {' '.join(shlex.split(line, comments=True))}"
            for old, new in SUBSTITUTIONS.items():
                line = line.replace(old, new)
            argv = shlex.split(line, comments=True)
            if argv[1] in kinds or (None in kinds and argv[1] not in ("evaluate", "check")):
                params.append(pytest.param(argv, id=label))
    return params


def bench(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    assert argv[0] == "bench", argv
    return subprocess.run([sys.executable, "-m", "benchmark", *argv[1:]], capture_output=True, text=True, cwd=cwd,
                          env={**ENV, **env}, timeout=300)


def test_every_example_is_run_or_skipped():
    """Each block is run by a test below or named in SKIP; each SKIP and SUBSTITUTIONS entry is still needed."""
    python_firsts = {block.first for block in BLOCKS if block.lang == "python"}
    for block in BLOCKS:
        where = f"{block.doc}:{block.line}"
        if block.key(SKIP):
            continue
        if block.lang == "bash":
            lines = [line for line in block.text.splitlines() if line.strip()]
            assert bench_lines(block) and all(line.startswith("bench ") for line in lines), \
                f"{where}: a bash block with lines other than bench commands: run it here or add it to SKIP"
        elif block.lang == "yaml":
            assert bench_lines(block), f"{where}: a workflow without bench steps: add it to SKIP"
        elif block.lang == "python":
            assert any(block.first.startswith(start) for start in PYTHON_EXAMPLES), \
                f"{where}: a new python example: add a test and a PYTHON_EXAMPLES entry, or add it to SKIP"
        elif block.lang == "toml":
            assert "[evaluate]" in block.text or "[project.entry-points." in block.text, f"{where}: unknown toml"
        else:
            assert block.lang == "" and block.first.startswith("$ bench "), \
                f"{where}: a {block.lang or 'plain'} block no test runs: run it here or add it to SKIP"
    assert all(sum(block.key(SKIP) == key for block in BLOCKS) == 1 for key in SKIP), "a SKIP entry matches no block"
    assert all(any(start and first.startswith(start) for first in python_firsts) for start in PYTHON_EXAMPLES)
    assert all(callable(globals().get(name)) for name in PYTHON_EXAMPLES.values()), "a python example has no test"
    texts = [line for block in BLOCKS if block.lang in ("bash", "yaml") for line in bench_lines(block)]
    for old in SUBSTITUTIONS:
        assert any(old in line for line in texts), f"SUBSTITUTIONS[{old!r}] is used by no README line"
    for line in texts:
        for placeholder in re.findall(r"<[^>]+>", line):
            assert placeholder in SUBSTITUTIONS, f"{line!r}: no substitution for {placeholder}"


def tree(where: Path) -> dict[str, bytes | None]:
    """Every path under ``where`` (links not followed) → its bytes (None for a directory or a link)."""
    return {str(path.relative_to(where)): path.read_bytes() if path.is_file() and not path.is_symlink() else None
            for path in sorted(where.rglob("*"))}


@pytest.mark.parametrize("argv", commands(("evaluate", "check")))
def test_evaluate_and_check_examples_dry_run(argv, tmp_path, own_files):
    shutil.copytree(own_files, tmp_path, dirs_exist_ok=True)
    (tmp_path / "leaderboards").symlink_to(ROOT / "leaderboards", target_is_directory=True)
    before = tree(tmp_path)
    # no __pycache__ for my_pkg: the Python import system's writing, not the dry run's
    result = bench([*argv, "--dry-run"], tmp_path, PYTHONDONTWRITEBYTECODE="1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith("(dry run: nothing trained, attacked or written)"), result.stdout
    assert tree(tmp_path) == before  # a dry run writes nothing


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A directory holding ``bench-results``, a small real store of a tiny evaluation."""
    site = tmp_path_factory.mktemp("site")
    result = bench(["bench", *STORE_RUN], site)
    assert result.returncode == 0, result.stderr
    return site


@pytest.fixture(scope="module")
def own_files(tmp_path_factory) -> Path:
    """A directory with the files "Score your own model" names (``OWN_FILES``), as a user would have them:
    ``model.pt``, made by leaderboards/README.md's recipe for ``ours-model.pt`` (a TorchScript MLP trained for a
    second on digits); ``data.npz``, digits as float32 (n, 1, 8, 8) with a train split; ``my_pkg/nets.py``, the
    section's listing as written."""
    where = tmp_path_factory.mktemp("own")
    (where / "leaderboards" / "baselines").mkdir(parents=True)
    result = run_python(block_for("test_ours_model_recipe_rebuilds_the_committed_model").text, where, "example.py")
    assert result.returncode == 0, result.stderr
    (where / "leaderboards" / "baselines" / "ours-model.pt").rename(where / "model.pt")
    shutil.rmtree(where / "leaderboards")
    (where / "example.py").unlink()
    data = load_dataset("digits")
    np.savez_compressed(where / "data.npz", x_train=data.x_train, y_train=data.y_train, x_test=data.x_test,
                        y_test=data.y_test)
    (where / "my_pkg").mkdir()
    (where / "my_pkg" / "nets.py").write_text(block_for("test_evaluate_and_check_examples_dry_run").text,
                                              encoding="utf-8")
    assert sorted(path for path, content in tree(where).items() if content is not None) == sorted(OWN_FILES)
    return where


def own_section_block() -> Block:
    """The three lines from ``model.pt`` and ``data.npz`` to a leaderboard."""
    (block,) = [block for block in BLOCKS if block.doc == "README.md" and block.lang == "bash"
                and "--dataset npz:data.npz" in block.first and "bench leaderboard" in block.text]
    return block


@pytest.mark.slow
def test_own_model_lines_give_a_leaderboard(own_files, tmp_path):
    """The section's three lines, run for real as written: the board holds the user's model and the reference
    rows trained on the user's data, and the page is written."""
    shutil.copytree(own_files, tmp_path, dirs_exist_ok=True)
    for line in bench_lines(own_section_block()):
        result = bench(shlex.split(line, comments=True), tmp_path)
        assert result.returncode == 0, f"{line}: {result.stderr}"
    assert "<table" in (tmp_path / "board.html").read_text(encoding="utf-8")
    board = json.loads(bench(["bench", "leaderboard", "--format", "json"], tmp_path).stdout)
    rows = {(row["defense"], row["model"]) for row in board["rows"]}
    assert rows == {("pretrained", "torchscript:model.pt"), ("standard", "mlp"), ("pgd-at", "mlp")}
    assert board["dataset"] == "npz:data.npz" and board["eps"] == [0.0, 0.01, 0.03, 0.05, 0.1]


@pytest.mark.slow
def test_committed_own_model_baseline_passes_its_check(tmp_path):
    """leaderboards/baselines/ours.json was made from the ours-model.pt committed beside it: re-scoring that file
    reproduces the baseline (the workflow's own-model job)."""
    (tmp_path / "leaderboards").symlink_to(ROOT / "leaderboards", target_is_directory=True)
    result = bench(["bench", "check", "--baseline", "leaderboards/baselines/ours.json"], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(unchanged)" in result.stdout and "OK: no regression" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("argv", commands((None,)))
def test_report_examples_run_on_a_small_store(argv, site):
    result = bench(argv, site)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip(), "printed nothing"


def transcripts() -> list:
    params = []
    for block in BLOCKS:
        if block.lang == "" and not block.key(SKIP):
            for chunk in re.split(r"^\$ ", block.text, flags=re.MULTILINE)[1:]:
                command, *expected = chunk.splitlines()
                params.append(pytest.param(command, expected, id=f"{block.doc}:{block.line} {command}"))
    return params


@pytest.mark.parametrize(("command", "expected"), transcripts())
def test_transcripts_print_what_they_show(command, expected, tmp_path):
    argv = shlex.split(command)
    result = bench([*argv, "--dry-run"] if argv[1] in ("evaluate", "check") else argv, tmp_path)
    assert (result.stdout + result.stderr).splitlines() == expected
    assert list(tmp_path.iterdir()) == []


def block_for(test_name: str) -> Block:
    start = next(start for start, name in PYTHON_EXAMPLES.items() if name == test_name)
    (block,) = [block for block in BLOCKS if block.lang == "python" and block.first.startswith(start)]
    return block


def run_python(code: str, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    (cwd / "example.py").write_text(code, encoding="utf-8")
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=ENV, timeout=300)


#: Stand-in for the user's ``my_project``: an MLP on 8×8 digits (logits out).
MY_PROJECT = '''
import torch


class MyNet(torch.nn.Sequential):
    def __init__(self):
        super().__init__(torch.nn.Flatten(), torch.nn.Linear(64, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
'''


@pytest.mark.slow
def test_pytest_plugin_example_passes_on_a_robust_model(tmp_path):
    """The example test file, run by pytest as written. Stand-ins: ``my_project.MyNet`` (an MLP) and
    ``my_model.pt``, its weights after the harness's own PGD-AT on digits (80 epochs, about 3 s), which meet
    the example's thresholds (clean ≥ 0.95, robust ≥ 0.80 against PGD at ε 0.1)."""
    block = block_for("test_pytest_plugin_example_passes_on_a_robust_model")
    (tmp_path / "my_project.py").write_text(MY_PROJECT, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("my_project", tmp_path / "my_project.py")
    my_project = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(my_project)
    torch.manual_seed(0)
    model = benchmark.DEFENSES.get("pgd-at")(epochs=80).fit(my_project.MyNet(), load_dataset("digits"),
                                                             RunContext(seed=0))
    torch.save(model.state_dict(), tmp_path / "my_model.pt")
    (tmp_path / "test_robustness.py").write_text(block.text, encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--junitxml=junit.xml",
                             "test_robustness.py"], capture_output=True, text=True, cwd=tmp_path, env=ENV, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    assert '<property name="robustness"' in (tmp_path / "junit.xml").read_text(encoding="utf-8")


@pytest.mark.slow
def test_evaluate_example_prints_the_row(own_files, tmp_path):
    """Run as written next to ``model.pt`` and ``data.npz``: it prints the one-row board, whose clean accuracy is the
    model's own on ``x_test``."""
    shutil.copytree(own_files, tmp_path, dirs_exist_ok=True)
    result = run_python(block_for("test_evaluate_example_prints_the_row").text, tmp_path, "example.py")
    assert result.returncode == 0, result.stderr
    data = np.load(tmp_path / "data.npz")
    with torch.no_grad():
        predicted = torch.jit.load(str(tmp_path / "model.pt"))(torch.from_numpy(data["x_test"])).argmax(1).numpy()
    clean = 100 * float((predicted == data["y_test"]).mean())
    row = f"| 1 | pretrained | torchscript:model.pt | 1 (0) | {clean:.1f} |"
    assert any(line.startswith(row) for line in result.stdout.splitlines()), result.stdout
    assert not list(tmp_path.glob("bench-results*"))  # nothing written without out=


def test_ours_model_recipe_rebuilds_the_committed_model(own_files):
    """The recipe (run by ``own_files``, its output renamed model.pt) makes the committed ours-model.pt again:
    the same predictions on digits' test split (the file's bytes differ: TorchScript stores a random id)."""
    data = load_dataset("digits")
    x = torch.from_numpy(data.x_test)
    committed = ROOT / "leaderboards" / "baselines" / "ours-model.pt"
    with torch.no_grad():
        rebuilt = torch.jit.load(str(own_files / "model.pt"))(x).argmax(1)
        assert (rebuilt == torch.jit.load(str(committed))(x).argmax(1)).float().mean() >= 0.99
    assert committed.stat().st_size < 100_000


@pytest.mark.slow
def test_load_model_example_returns_the_stored_model(site):
    """Runs in the directory of the small store, whose ``bench-results`` holds ``pgd-at``."""
    code = block_for("test_load_model_example_returns_the_stored_model").text
    check = "\nimport torch\nassert isinstance(model, torch.nn.Module) and not model.training\nprint('ok')\n"
    result = run_python(code + check, site, "example.py")
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr


def test_plugin_example_registers_a_defense(tmp_path):
    """As written (``MyPreprocessing`` is only named inside a method the example does not call)."""
    code = block_for("test_plugin_example_registers_a_defense").text
    check = ("\nfrom benchmark.config import build_config\n"
             "assert DEFENSES.get('my-defense') is MyDefense\n"
             "config = build_config(None, {'defenses': 'my-defense:epochs=3', 'out': 'out'}, create_out=False)\n"
             "print(config.defenses[0].label)\n")
    result = run_python(code + check, tmp_path, "example.py")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "my-defense(epochs=3)"


@pytest.mark.parametrize("block", [pytest.param(b, id=f"{b.doc}:{b.line}") for b in BLOCKS if b.lang == "toml"])
def test_toml_examples(block, tmp_path):
    """A config table builds with ``benchmark.config`` as ``--config`` would; entry points name real groups."""
    path = tmp_path / "example.toml"
    path.write_text(block.text, encoding="utf-8")
    if "[evaluate]" in block.text:
        config = build_config(load_toml(path), None, file_label=str(path), create_out=False)
        assert config.defenses and config.attacks and config.seeds
        return
    groups = {registry.group for registry in (benchmark.DEFENSES, benchmark.ATTACKS, benchmark.DATASETS,
                                               benchmark.MODELS)}
    entry_points = load_toml(path)["project"]["entry-points"]  # no [evaluate] table: the whole document
    assert entry_points and set(entry_points) <= groups
    for targets in entry_points.values():
        assert all(re.fullmatch(r"[\w.]+:\w+", target) for target in targets.values())

