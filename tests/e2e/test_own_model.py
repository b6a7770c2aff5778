"""Your model, your data, through ``bench`` as a user runs it: a small MLP trained on digits in the test, saved in each
form ``--model`` takes, scores sample for sample what the same weights score through ``benchmark.evaluate``;
scikit-learn models get rows; the CI gate catches a weaker model file; every bad input is one line and exit 2."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pytest
import torch

import benchmark
from benchmark.record import Record
from benchmark.store import Store
from tests import own_models
from tests.e2e.test_cli import rows

N = 60
EPS = [0.05, 0.1]
RUN = ["--device", "cpu", "--n-test", str(N), "--eps", ",".join(map(str, EPS))]
GRADIENT = "fgsm,pgd,noise"  # for the torch forms: white-box attacks, and a random one (its per-sample keys)
BLACK_BOX = "square:queries=100,hopskipjump:steps=2,max_eval=50,init_eval=10,noise"


def bench(*args: str, cwd: Path | None = None, path: Path | None = None) -> subprocess.CompletedProcess:
    """``python -m benchmark ARGS`` (with ``path`` on ``PYTHONPATH``, for a user's package)."""
    env = own_models.pythonpath(path) if path else None
    return subprocess.run([sys.executable, "-m", "benchmark", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600)


def stored(out: Path) -> Record:
    with Store(out, create=False) as store:
        (record,) = store.records()
    return record


def per_sample(record: Record) -> tuple:
    """What each sample scored: correct at ε = 0, and per attack the first ε that broke it."""
    return record.correct, {name: run.broken_at for name, run in record.runs.items()}


def attack(label: str) -> str:
    """The attack's name in its row label: ``square(queries=100)`` → ``square``."""
    return label.partition("(")[0]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class User:
    """A user's trained model and data, in ``root``; each form saved on first use."""

    root: Path
    net: torch.nn.Sequential
    outs: dict[tuple[str, str], Path] = field(default_factory=dict)

    @cached_property
    def data(self) -> Path:
        return own_models.write_digits(self.root / "digits.npz")

    @cached_property
    def forms(self) -> dict[str, list[str]]:
        """The ``--model`` arguments of each form of ``net``."""
        spec, weights = own_models.save_class(self.net, self.root)
        return {"torchscript": ["--model", own_models.save_torchscript(self.net, self.root / "net.pt")],
                "export": ["--model", own_models.save_export(self.net, self.root / "net.pt2")],
                "class": ["--model", spec, "--weights", weights],
                "keras": ["--model", own_models.save_keras(self.net, self.root / "net.keras")],
                "onnx": ["--model", own_models.save_onnx(self.net, self.root / "net.onnx")]}

    def run(self, form: str, attacks: str) -> Path:
        """The results directory of ``bench evaluate`` on ``form`` with ``attacks`` (run once per module)."""
        out = self.root / f"out-{form}-{len(self.outs)}"
        if (form, attacks) not in self.outs:
            result = bench("evaluate", *self.forms[form], "--dataset", f"npz:{self.data}", "--attack", attacks, *RUN,
                           "--out", str(out), path=self.root)
            assert result.returncode == 0, result.stderr
            self.outs[form, attacks] = out
        return self.outs[form, attacks]

    def reference(self, attacks: str) -> Record:
        """The same weights and attacks through the built-in path: ``benchmark.evaluate`` on the torch module."""
        _, _, x_test, y_test = own_models.digits()
        return benchmark.evaluate(self.net, x_test, y_test, attacks=attacks, eps=EPS, n=N, seed=0).record


@pytest.fixture(scope="module")
def user(tmp_path_factory) -> User:
    return User(tmp_path_factory.mktemp("user"), own_models.train_mlp())


@pytest.fixture(scope="module")
def references(user) -> dict[str, Record]:
    refs = {attacks: user.reference(attacks) for attacks in (GRADIENT, BLACK_BOX)}
    for record in refs.values():  # the comparison means something: some samples fall, some stand
        worst = np.min([run.broken_at for run in record.runs.values()], axis=0)
        assert np.any((worst > 0) & (worst < len(record.eps))) and np.any(worst == len(record.eps))
    return refs


@pytest.fixture(scope="module")
def kept_store(user) -> Path:
    """A results store holding one row, which no bad input may touch."""
    return user.run("torchscript", GRADIENT)


# --- Done when: each form scores what the same weights score through the built-in path --------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("form", ["torchscript", "export", "class", "keras"])
def test_torch_forms_score_exactly_the_built_in_results(user, references, form):
    record = stored(user.run(form, GRADIENT))
    assert per_sample(record) == per_sample(references[GRADIENT])
    assert (record.defense, record.train_seconds, record.n_test) == ("pretrained", None, N)
    spec = user.forms[form][1]
    assert record.model_source.spec == spec and record.model == spec
    if form == "class":  # every source file of the package (each after its path), then the weights
        files = [*sorted((user.root / "mypkg").rglob("*.py"), key=str), Path(user.forms["class"][3])]
        assert record.model_source.weights == str(files[-1])
        names = [f"{f.relative_to(user.root)}\0".encode() for f in files[:-1]] + [b""]  # paths within the project
        content = b"".join(name + f.read_bytes() for name, f in zip(names, files, strict=True))
    else:
        content = Path(spec.partition(":")[2]).read_bytes()
    assert record.model_source.sha256 == hashlib.sha256(content).hexdigest()
    assert record.data_source == f"sha256:{sha256(user.data)}"


@pytest.mark.slow
def test_onnx_scores_the_built_in_results_but_for_float_noise(user, references):
    import onnxruntime

    record, reference = stored(user.run("onnx", BLACK_BOX)), references[BLACK_BOX]
    assert set(record.runs) == set(reference.runs) and set(map(attack, record.runs)) == {"square", "hopskipjump",
                                                                                          "noise"}
    assert all(run.grad_evals == 0 and run.error is None for run in record.runs.values())
    x = own_models.digits()[2][:N]
    session = onnxruntime.InferenceSession(user.forms["onnx"][1].partition(":")[2])
    onnx_logits = session.run(None, {"x": x})[0]
    with torch.no_grad():
        torch_logits = user.net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(onnx_logits, torch_logits, atol=1e-4)
    exact = (onnx_logits == torch_logits).all(axis=1)
    differ = {i for i in range(N) if record.correct[i] != reference.correct[i]
              or any(record.runs[a].broken_at[i] != reference.runs[a].broken_at[i] for a in record.runs)}
    assert not differ & set(np.flatnonzero(exact)), "a sample with bit-identical clean logits scored differently"
    assert len(differ) <= N // 10, f"{len(differ)} of {N} samples differ"


# --- Done when: scikit-learn models saved with skops get rows ---------------------------------------------------------

@pytest.fixture(scope="module")
def sklearn_files(user) -> dict[str, Path]:
    import skops.io
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    x_train, y_train, _, _ = own_models.digits()
    flat = x_train.reshape(len(x_train), -1)
    estimators = {"lr": LogisticRegression(max_iter=200), "rf": RandomForestClassifier(10, max_depth=8,
                                                                                       random_state=0)}
    files = {}
    for name, estimator in estimators.items():
        files[name] = user.root / f"{name}.skops"
        skops.io.dump(estimator.fit(flat, y_train), files[name])
    return files


@pytest.mark.slow
@pytest.mark.parametrize(("name", "attacks", "trust"), [
    ("lr", "fgsm,cw-linf:steps=5," + BLACK_BOX, []),
    ("rf", BLACK_BOX, ["--trust", "sklearn.tree._tree.Tree"]),
])
def test_sklearn_models_get_rows(user, sklearn_files, name, attacks, trust, tmp_path):
    import skops.io

    result = bench("evaluate", "--model", f"sklearn:{sklearn_files[name]}", *trust, "--dataset", f"npz:{user.data}",
                   "--attack", attacks, *RUN, "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    record = stored(tmp_path)
    estimator = skops.io.load(sklearn_files[name], trusted=trust[1:])
    _, _, x_test, y_test = own_models.digits()
    assert record.correct == tuple(int(c) for c in estimator.predict(x_test[:N].reshape(N, -1)) == y_test[:N])
    assert record.input_shape == (1, 8, 8) and record.defense == "pretrained"
    white_box = {"fgsm", "cw-linf"} if name == "lr" else set()
    assert set(map(attack, record.runs)) == white_box | {"square", "hopskipjump", "noise"}
    for label, run in record.runs.items():
        assert run.error is None and (run.grad_evals > 0) == (attack(label) in white_box)
    assert record.runs["square(queries=100)"].queries > 0
    assert record.probes.unstable_share == 0.0 and record.probes.chance == max(np.bincount(y_test[:N])) / N
    assert "randomized" not in record.flags and record.model_source.trust == tuple(trust[1:])


def test_gradient_attack_on_a_random_forest_is_refused_before_any_work(user, sklearn_files, tmp_path):
    result = bench("evaluate", "--model", f"sklearn:{sklearn_files['rf']}", "--trust", "sklearn.tree._tree.Tree",
                   "--dataset", f"npz:{user.data}", "--attack", "square,fgsm", *RUN, "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "attack 'fgsm' needs input gradients" in result.stderr
    assert "RandomForestClassifier" in result.stderr and "hopskipjump, noise, square" in result.stderr
    assert not (tmp_path / "out" / "bench.db").exists()


# --- Done when: the CI gate catches a weaker model file at the same path ----------------------------------------------

@pytest.mark.slow
def test_check_gates_the_model_file_at_the_baselines_path(user, tmp_path):
    shutil.copy(user.data, tmp_path / "data.npz")
    own_models.save_torchscript(user.net, tmp_path / "model.pt")
    made = bench("evaluate", "--model", "torchscript:model.pt", "--dataset", "npz:data.npz", "--attack", "fgsm,pgd",
                 *RUN, "--out", "out", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    shutil.copy(tmp_path / "out" / "leaderboard.json", tmp_path / "baseline.json")

    same = bench("check", "--baseline", "baseline.json", "--out", "out", cwd=tmp_path)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "OK: no regression" in same.stdout and "1 jobs: 0 to run, 1 cached" in same.stdout
    digest = sha256(tmp_path / "model.pt")
    assert f"SHA-256 {digest[:16]}… (unchanged)" in same.stdout

    own_models.save_torchscript(own_models.train_mlp(steps=3), tmp_path / "model.pt")  # a weaker model, same path
    weaker = bench("check", "--baseline", "baseline.json", "--out", "out", cwd=tmp_path)
    assert weaker.returncode == 1, weaker.stdout + weaker.stderr
    assert "1 jobs: 1 to run, 0 cached" in weaker.stdout  # the stored result of the old file is not reused
    assert "REGRESSION" in weaker.stdout and "FAIL:" in weaker.stdout
    now = sha256(tmp_path / "model.pt")
    assert now != digest and f"SHA-256 {now[:16]}… (baseline {digest[:16]}…)" in weaker.stdout


# --- Your architecture, our defenses ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_defenses_train_the_users_class_and_cache_it(tmp_path):
    own_models.write_package(tmp_path)
    data = own_models.write_digits(tmp_path / "train.npz", train=True)
    args = ["evaluate", "--model", "mypkg.nets:Net", "--model-arg", "hidden=16", "--defense", "standard,pgd-at",
            "--quick", "--dataset", f"npz:{data}", "--attack", "fgsm", *RUN, "--out", str(tmp_path / "out")]
    first = bench(*args, path=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "2 jobs: 2 to run, 0 cached" in first.stdout
    with Store(tmp_path / "out", create=False) as store:
        records = store.records()
    assert sorted(r.defense for r in records) == ["pgd-at", "standard"]
    for record in records:
        assert record.train_seconds > 0 and not record.train_cached and record.train_grad_evals > 0
        assert (record.model_source.spec, record.model_source.args) == ("mypkg.nets:Net", {"hidden": 16})
    with own_models.importable(tmp_path):
        trained = benchmark.load_model(str(tmp_path / "out"), defense="standard", raw=True)
    assert trained[1].out_features == 16  # --model-arg reached the constructor

    again = bench(*args, path=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "2 jobs: 0 to run, 2 cached" in again.stdout
    assert rows(tmp_path / "out") == [(r.job_hash, r.defense, r.clean_accuracy)
                                      for r in sorted(records, key=lambda r: r.job_hash)]


# --- Bad input: one line, exit 2, before any work, nothing stored touched -------------------------------------------

def full_pickle(user: User, tmp_path: Path) -> Path:
    """A ``.pt`` that only full unpickling loads, and that creates ``tmp_path/unpickled`` if it is ever unpickled."""
    path = tmp_path / "full.pt"
    torch.save({"model": user.net, "trap": Trap(tmp_path / "unpickled")}, path)
    return path


class Trap:
    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def npz(tmp_path: Path, **arrays) -> str:
    return f"npz:{own_models.write_digits(tmp_path / 'bad.npz', **arrays)}"


def digits_x():
    return own_models.digits()[2]


def digits_y():
    return own_models.digits()[3]


def unreadable(tmp_path: Path) -> str:
    path = tmp_path / "locked.pt"
    path.write_bytes(b"x")
    path.chmod(0)
    return f"torchscript:{path}"


def bad(case: str, make, message: str, *marks) -> object:
    """A bad input: ``make(user, tmp_path)`` → the options (``--model`` and ``--dataset`` default to the user's
    TorchScript model and digits), and what the one line must say."""
    return pytest.param(make, message, id=case, marks=marks)


SMALL = ",layout=nchw"  # (n, 1, 4, 4) data: a 1 at both ends, so the layout is given
BAD_INPUTS = [
    bad("missing file", lambda u, t: ["--model", f"torchscript:{t / 'nope.pt'}"], "nope.pt: no such file"),
    bad("missing data", lambda u, t: ["--dataset", f"npz:{t / 'nope.npz'}"], "nope.npz: no such file"),
    bad("directory", lambda u, t: ["--model", f"onnx:{t}"], "is a directory, not a file"),
    bad("unreadable", lambda u, t: ["--model", unreadable(t)], "not readable",
        pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")),
    bad("full pickle as torchscript", lambda u, t: ["--model", f"torchscript:{full_pickle(u, t)}"],
        "full.pt is a torch.save pickle, not a TorchScript file (not loaded)"),
    bad("full pickle as weights", lambda u, t: ["--model", "mypkg.nets:Net", "--weights", str(full_pickle(u, t))],
        "--weights: " + "{t}/full.pt is a full pickle"),
    bad("not torchscript", lambda u, t: ["--model", f"torchscript:{u.data}"], "is not a TorchScript file"),
    bad("wrong class count", lambda u, t: ["--model", own_models.save_torchscript(own_models.mlp(classes=12),
                                                                                t / "m12.pt")],
        "returns 12 scores per sample, but the data has 10 classes (labels 0 … 9)"),
    bad("labels beyond the outputs", lambda u, t: ["--dataset", npz(t, y_test=np.minimum(digits_y() + 1, 10))],
        "returns 10 scores per sample, but the data has 11 classes (labels 0 … 10)"),
    bad("wrong input shape", lambda u, t: ["--model", "mypkg.nets:Net", "--weights", u.forms["class"][3],
                                           "--dataset", npz(t, x_test=digits_x()[:, :, :4, :4]) + SMALL],
        "mypkg.nets:Net failed on x[0:60] of shape (60, 1, 4, 4): mat1 and mat2 shapes cannot be multiplied"),
    bad("wrong input shape, torchscript", lambda u, t: ["--dataset", npz(t, x_test=digits_x()[:, :, :4, :4]) + SMALL],
        "mat1 and mat2 shapes cannot be multiplied"),
    bad("nan inputs", lambda u, t: ["--dataset", npz(t, x_test=np.where(np.arange(64).reshape(1, 1, 8, 8) == 5,
                                                                         np.nan, digits_x()))],
        "bad.npz: x_test must hold finite values in [0, 1], got NaN"),
    bad("inf inputs", lambda u, t: ["--dataset", npz(t, x_test=digits_x() + np.inf)],
        "bad.npz: x_test must hold finite values in [0, 1], got values in [inf, inf]"),
    bad("label beyond classes=", lambda u, t: ["--dataset", npz(t, y_test=np.minimum(digits_y() + 1, 10))
                                               + ",classes=10"], "bad.npz: y_test holds label 10, but classes is 10"),
    bad("negative label", lambda u, t: ["--dataset", npz(t, y_test=digits_y() - 1)],
        "bad.npz: y_test must hold class labels ≥ 0, got -1"),
    bad("length mismatch", lambda u, t: ["--dataset", npz(t, y_test=digits_y()[:-1])],
        "bad.npz: x_test has 360 samples but y_test has 359"),
    bad("values outside [0, 1]", lambda u, t: ["--dataset", npz(t, x_test=digits_x() * 2)],
        "bad.npz: x_test must hold finite values in [0, 1], got values in [0, 2]"),
    bad("npz without y_test", lambda u, t: ["--dataset", npz(t, y_test=None)], "bad.npz: no 'y_test' (found: x_test)"),
    bad("unknown kind", lambda u, t: ["--model", f"torchscrpt:{t / 'm.pt'}"],
        "--model: unknown model kind 'torchscrpt'", ),
    bad("untrusted skops", lambda u, t: ["--model", f"sklearn:{u.root / 'rf.skops'}", "--attack", "square"],
        "--trust: sklearn:{u}/rf.skops holds types that skops does not trust by default: sklearn.tree._tree.Tree"),
    bad("pretrained registry model", lambda u, t: ["--model", "mlp", "--defense", "pretrained"],
        "--defense: defense 'pretrained' scores a trained model as it is, but 'mlp' is an untrained architecture"),
    bad("training a model file", lambda u, t: ["--defense", "pgd-at"], "is a trained model, scored as it is"),
    bad("name with two defenses", lambda u, t: ["--model", "mypkg.nets:Net", "--defense", "standard,pgd-at",
                                                "--name", "mine"], "--name: labels one defense's row, but 2"),
    bad("training without a train split", lambda u, t: ["--model", "mypkg.nets:Net", "--defense", "standard"],
        "has no train split (x_train, y_train), which defense 'standard' needs"),
]


@pytest.mark.parametrize(("make", "message"), BAD_INPUTS)
def test_bad_input_is_one_line_exit_2_and_stores_nothing(user, sklearn_files, kept_store, tmp_path, make, message):
    args = make(user, tmp_path)
    defaults = {"--model": user.forms["torchscript"][1], "--dataset": f"npz:{user.data}", "--attack": "fgsm"}
    for option, value in defaults.items():
        if option not in args:
            args += [option, value]
    before = rows(kept_store)
    result = bench("evaluate", *args, *RUN, "--out", str(kept_store), path=user.root)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    message = message.format(t=tmp_path, u=user.root)
    assert len(lines) == 1 and lines[0].startswith("bench: error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr
    assert rows(kept_store) == before
    assert not (tmp_path / "unpickled").exists()
