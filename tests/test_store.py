import json
import os
import sqlite3

import pytest
import torch

import benchmark as bench
from benchmark.errors import BenchError
from benchmark.record import AttackRun, Environment, Record
from benchmark.store import SCHEMA_VERSION, CheckpointInfo, Store


def record(job_hash="j1", defense="standard", **fields) -> Record:
    """A small record of a job that trained ``defense`` on synthetic data (mlp, 1×6×6, 4 classes)."""
    values = dict(
        job_hash=job_hash, train_hash="t1", dataset="synthetic", model="mlp", defense=defense, defense_name=defense,
        defense_params={}, seed=0, norm="inf", eps=(0.0, 0.1), attacks={"fgsm": {}}, quick=True, n_test=4,
        input_shape=(1, 6, 6), nb_classes=4, clean_accuracy=0.9, robust_accuracy={"0": 0.9, "0.1": 0.5},
        correct=(1, 1, 1, 0), runs={"fgsm": AttackRun(seconds=0.5, grad_evals=4, queries=8, broken_at=(1, 2, 1, 0))},
        train_seconds=1.0, train_grad_evals=10, train_cached=False, eval_seconds=2.0, device="cpu", batch_size=128,
        environment=Environment(git_sha=None), created_at="2026-01-01T00:00:00",
    )
    return Record(**{**values, **fields})


def test_put_and_read_back(tmp_path):
    with Store(tmp_path) as store:
        assert not store.has("j1")
        store.put(record())
        store.put(record("j2", "pgd-at"))
        assert store.has("j1")
        assert store.records() == [record(), record("j2", "pgd-at")]  # typed, equal field by field
        assert [r.job_hash for r in store.records(["j2", "missing", "j1"])] == ["j2", "j1"]
    db = sqlite3.connect(tmp_path / "bench.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    assert db.execute("SELECT clean_accuracy, typeof(clean_accuracy) FROM results WHERE job_hash='j1'").fetchone() \
        == (0.9, "real")
    text = db.execute("SELECT record FROM results WHERE job_hash='j2'").fetchone()[0]
    assert json.loads(text)["defense"] == "pgd-at" and json.loads(text)["schema_version"] == SCHEMA_VERSION
    assert '"broken_at":[1,2,1,0]' in text  # per-sample arrays stay compact


class FailingMetaUpdate:
    """A connection whose ``UPDATE meta`` fails (as a full disk would), everything else passed through."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def execute(self, sql: str, *args):
        if sql.startswith("UPDATE meta"):
            raise sqlite3.OperationalError("disk I/O error")
        return self.db.execute(sql, *args)

    def __getattr__(self, name: str):
        return getattr(self.db, name)


def test_a_write_failing_inside_the_transaction_is_rolled_back(tmp_path, monkeypatch):
    """``put`` inserts the record, then raises the schema version; when the second statement fails, the first is
    rolled back: no record, the old version, and a later ``put`` succeeds."""
    with Store(tmp_path) as store:
        store.put(record())
        with store.transaction():  # a store last written by an older harness: put raises its version
            store.db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION - 1),))
        connection = store.db
        monkeypatch.setattr(store, "db", FailingMetaUpdate(connection))
        with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
            store.put(record("j2"))
        monkeypatch.setattr(store, "db", connection)
        assert not connection.in_transaction
        assert [r.job_hash for r in store.records()] == ["j1"]
        assert store.schema_version == SCHEMA_VERSION - 1
        store.put(record("j2"))
        assert [r.job_hash for r in store.records()] == ["j1", "j2"] and store.schema_version == SCHEMA_VERSION


def test_newer_schema_is_refused(tmp_path):
    Store(tmp_path).close()
    db = sqlite3.connect(tmp_path / "bench.db")
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(BenchError, match="schema version 99"):
        Store(tmp_path)


def test_not_a_database_is_a_clear_error(tmp_path):
    (tmp_path / "bench.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(BenchError, match="cannot use results store"):
        Store(tmp_path)


def test_checkpoint_roundtrip_and_corruption(tmp_path, caplog):
    model = bench.MODELS.get("mlp")((1, 6, 6), 4)
    with Store(tmp_path) as store:
        info = CheckpointInfo(train_seconds=1.5, train_grad_evals=10, test_correct=(1, 0, 1))
        path = store.save_checkpoint("t1", model, info)
        fresh = bench.MODELS.get("mlp")((1, 6, 6), 4)
        assert store.load_checkpoint("t1", fresh) == info
        for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True):
            assert torch.equal(a, b)
        store.put(record())
        loaded = bench.load_model(tmp_path, defense="standard")
        assert isinstance(loaded, torch.nn.Module) and not loaded.training
        for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
            assert torch.equal(a, b)
        path.write_bytes(path.read_bytes()[:100])  # truncated
        assert store.load_checkpoint("t1", fresh) is None
        assert "corrupted" in caplog.text
        assert store.load_checkpoint("unknown", fresh) is None
    with pytest.raises(BenchError, match="no stored result for defense 'nope'"):
        bench.load_model(tmp_path, defense="nope")


@pytest.mark.parametrize(
    ("stored", "info"),
    [
        ('{"train_seconds": 2.5, "train_grad_evals": 7}', CheckpointInfo(train_seconds=2.5, train_grad_evals=7)),
        ('{"train_seconds": 2.5, "train_grad_evals": 7, "test_correct": [1, 0]}',
         CheckpointInfo(train_seconds=2.5, train_grad_evals=7, test_correct=(1, 0))),
    ],
    ids=["before-test-correct", "with-test-correct"],
)
def test_checkpoint_info_is_stored_as_before_and_old_checkpoints_still_load(tmp_path, stored, info):
    """The ``info`` column keeps its JSON object (what earlier harnesses wrote and later ones read), both ways."""
    model = bench.MODELS.get("mlp")((1, 6, 6), 4)
    with Store(tmp_path) as store:
        store.save_checkpoint("t1", model, info)
        assert json.loads(store.db.execute("SELECT info FROM checkpoints").fetchone()[0]) == json.loads(stored)
        with store.transaction():
            store.db.execute("UPDATE checkpoints SET info = ?", (stored,))
        assert store.load_checkpoint("t1", bench.MODELS.get("mlp")((1, 6, 6), 4)) == info


def test_a_checkpoint_is_never_written_through_a_planted_symlink(tmp_path):
    """Symlinks planted at the checkpoint's file and at the name of the temporary file earlier harnesses used are
    replaced or left alone, never followed; no temporary file is left behind."""
    model = bench.MODELS.get("mlp")((1, 6, 6), 4)
    victims = tmp_path / "victims"
    victims.mkdir()
    (tmp_path / "out" / "checkpoints").mkdir(parents=True)
    planted = [tmp_path / "out" / "checkpoints" / name for name in ("t1.pt", f"t1.{os.getpid()}.partial")]
    for index, link in enumerate(planted):
        (victims / str(index)).write_text("precious")
        link.symlink_to(victims / str(index))
    with Store(tmp_path / "out") as store:
        path = store.save_checkpoint("t1", model, CheckpointInfo(train_seconds=1.0, train_grad_evals=1))
        assert store.load_checkpoint("t1", bench.MODELS.get("mlp")((1, 6, 6), 4)) is not None
    assert [victim.read_text() for victim in sorted(victims.iterdir())] == ["precious", "precious"]
    assert path == planted[0] and path.is_file() and not path.is_symlink()
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(link.name for link in planted)


def test_a_symlinked_checkpoint_directory_is_refused_in_one_line(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "checkpoints").symlink_to(elsewhere)
    model = bench.MODELS.get("mlp")((1, 6, 6), 4)
    with Store(tmp_path / "out") as store, \
            pytest.raises(BenchError, match=r"checkpoints is a symlink: refusing to write checkpoints through it$"):
        store.save_checkpoint("t1", model, CheckpointInfo(train_seconds=1.0, train_grad_evals=1))
    assert list(elsewhere.iterdir()) == []


def test_tampered_record_is_left_out_and_reported(tmp_path, caplog):
    with Store(tmp_path) as store:
        store.put(record())
        store.put(record("j2", "pgd-at"))
        with store.transaction():
            store.db.execute("UPDATE results SET record = replace(record, '0.9', '0.1') WHERE job_hash = 'j2'")
        assert not store.has("j2") and store.has("j1")
        assert [r.job_hash for r in store.records()] == ["j1"]
        assert "stored result of job j2 is corrupted" in caplog.text
        store.put(record("j2", "pgd-at"))  # recomputed: replaced in place
        assert store.has("j2")


def test_concurrent_writers_lose_nothing(tmp_path):
    """Several processes committing into one store at once: every row arrives, the database stays sound."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        pool.starmap(write_many, [(str(tmp_path), writer) for writer in range(4)])
    with Store(tmp_path) as store:
        assert len(store.records()) == 4 * 25
        assert store.db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def write_many(out: str, writer: int) -> None:
    with Store(out) as store:
        for i in range(25):
            store.put(record(f"w{writer}-{i}"))


def test_dataset_facts_are_recorded_per_source_and_checked_by_the_runner(tmp_path, monkeypatch):
    import dataclasses

    import benchmark.plan as plan_module
    from benchmark.config import build_config
    from benchmark.runner import run_job

    with Store(tmp_path) as store:
        facts = plan_module.data_facts("digits", store)
        assert (facts.fingerprint, facts.n_test) == (plan_module.load_dataset("digits").fingerprint(), 360)

        def no_loading(name):
            raise AssertionError(f"{name} was loaded again")

        monkeypatch.setattr(plan_module, "load_dataset", no_loading)
        assert plan_module.data_facts("digits", store) == facts  # a re-run plans without the data
        with pytest.raises(AssertionError, match="loaded again"):
            plan_module.data_facts("digits", store, fresh=True)
        with pytest.raises(AssertionError, match="loaded again"):  # no source(): loaded every time
            plan_module.data_facts("synthetic", store)
        monkeypatch.undo()
        # a recorded fingerprint that no longer matches the data: the job refuses to run, in one clear line
        config = build_config(None, {"dataset": "synthetic", "model": "mlp", "defenses": "standard:epochs=1",
                                     "attacks": "fgsm", "out": str(tmp_path)})
        (job,) = plan_module.plan(config)
        stale = dataclasses.replace(job, data_fingerprint="0" * 16)
        with pytest.raises(BenchError, match="holds other data than when this run was planned.*--fresh"):
            run_job(stale, store)


def plant_checkpoint(store: Store, train_hash: str, content) -> None:
    """Replace the checkpoint of ``train_hash`` with ``content`` and record the new file's checksum, so the checksum
    matches and only the content is wrong."""
    from benchmark.store import sha256_file

    path = store.root / store.db.execute("SELECT file FROM checkpoints WHERE train_hash = ?",
                                         (train_hash,)).fetchone()[0]
    torch.save(content, path)
    with store.transaction():
        store.db.execute("UPDATE checkpoints SET sha256 = ? WHERE train_hash = ?", (sha256_file(path), train_hash))


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ([torch.zeros(3)], "it holds a list, not a state dict"),
        ({"weight": torch.zeros(3)}, "not a state dict of this model: missing keys"),
        ("shape", "is not a tensor of shape"),
    ],
)
def test_checkpoint_that_is_not_a_state_dict_is_reported_in_one_line_and_not_loaded(tmp_path, caplog, content,
                                                                                     reason):
    model = bench.MODELS.get("mlp")((1, 6, 6), 4)
    with Store(tmp_path) as store:
        store.save_checkpoint("t1", model, CheckpointInfo(train_seconds=1.0, train_grad_evals=1))
        if content == "shape":  # the right keys, one tensor of the wrong shape
            content = {key: value[..., :1] if index == 0 else value
                       for index, (key, value) in enumerate(model.state_dict().items())}
        plant_checkpoint(store, "t1", content)
        fresh = bench.MODELS.get("mlp")((1, 6, 6), 4)
        before = {key: value.clone() for key, value in fresh.state_dict().items()}
        assert store.load_checkpoint("t1", fresh) is None
    (warning,) = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert reason in warning and "retraining" in warning and "\n" not in warning
    assert all(torch.equal(before[key], value) for key, value in fresh.state_dict().items())  # nothing half-loaded


def test_job_with_a_checkpoint_that_is_not_a_state_dict_retrains_to_the_same_numbers(tmp_path, caplog):
    from benchmark.config import build_config
    from benchmark.plan import plan
    from benchmark.runner import run_job

    config = build_config(None, {"dataset": "synthetic", "model": "mlp", "defenses": "standard:epochs=2",
                                 "attacks": "fgsm", "out": str(tmp_path), "device": "cpu", "n_test": "40"})
    (job,) = plan(config)
    with Store(tmp_path) as store:
        first = run_job(job, store)
        plant_checkpoint(store, job.train_hash, [torch.zeros(2), torch.ones(2)])  # torch.save of a list
        again = run_job(job, store)
    assert "holds a list, not a state dict" in caplog.text and "retraining" in caplog.text
    assert not again.train_cached
    assert (again.clean_accuracy, again.robust_accuracy, again.correct) == \
        (first.clean_accuracy, first.robust_accuracy, first.correct)


@pytest.fixture
def negating_defense():
    """A defense whose test-time wrapper negates the logits: what the attacks see differs from the trained network."""
    from dataclasses import dataclass

    from defenses.standard import Standard

    class Negate(torch.nn.Module):
        def forward(self, x):
            return -x

    @dataclass(frozen=True)
    class Negating(Standard):
        """Standard training; at test time the logits are negated."""

        def inference_model(self, model):
            return torch.nn.Sequential(model, Negate())

    bench.DEFENSES.add("negating", Negating)
    yield "negating"
    bench.DEFENSES.remove("negating")


def test_load_model_returns_what_the_attacks_saw(tmp_path, negating_defense):
    from benchmark.config import build_config
    from benchmark.executors import run_jobs
    from benchmark.plan import load_dataset, plan

    config = build_config(None, {"dataset": "synthetic", "model": "mlp", "defenses": f"{negating_defense}:epochs=4",
                                 "attacks": "fgsm", "out": str(tmp_path), "device": "cpu"})
    run_jobs(plan(config), config.out, executor="inline")  # the defense is registered in this process only
    with Store(tmp_path) as store:
        (stored,) = store.records()
    data = load_dataset("synthetic")

    def accuracy(model) -> float:
        with torch.no_grad():
            return float((model(torch.from_numpy(data.x_test)).argmax(1).numpy() == data.y_test).mean())

    seen = bench.load_model(tmp_path, defense=stored.defense)
    raw = bench.load_model(tmp_path, defense=stored.defense, raw=True)
    assert isinstance(seen, torch.nn.Sequential) and not seen.training and not raw.training
    assert accuracy(seen) == stored.clean_accuracy  # the attacked model, whose clean accuracy the record holds
    assert accuracy(raw) != stored.clean_accuracy  # the network alone answers otherwise


def _open_store(path, barrier, results) -> None:
    barrier.wait()  # every process opens the new store at the same moment
    try:
        with Store(path):
            results.put("ok")
    except Exception as exc:  # noqa: BLE001 -- reported to the parent
        results.put(str(exc))


def test_processes_opening_a_new_store_at_once_all_succeed(tmp_path):
    """SQLite answers "database is locked" at once, without its busy timeout, to a process switching a new file to
    WAL while another has it open (seen: 2 of 90 opens failed before the retry)."""
    import multiprocessing

    outcomes = []
    for trial in range(8):
        barrier, results = multiprocessing.Barrier(6), multiprocessing.Queue()
        workers = [multiprocessing.Process(target=_open_store, args=(tmp_path / str(trial), barrier, results))
                   for _ in range(6)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=120)
        outcomes += [results.get(timeout=10) for _ in workers]
    assert outcomes == ["ok"] * len(outcomes)
