import json
import sqlite3

import pytest
import torch

import benchmark as bench
from benchmark.errors import BenchError
from benchmark.store import SCHEMA_VERSION, Store


def record(job_hash="j1", defense="standard"):
    return {
        "job_hash": job_hash, "train_hash": "t1", "dataset": "synthetic", "model": "mlp", "defense": defense,
        "seed": 0, "norm": "inf", "clean_accuracy": 0.9, "train_seconds": 1.0, "eval_seconds": 2.0, "device": "cpu",
        "environment": {"git_sha": None}, "created_at": "2026-01-01T00:00:00", "robust_accuracy": {"0.1": 0.5},
        "input_shape": [1, 6, 6], "nb_classes": 4,
    }


def test_put_and_read_back(tmp_path):
    with Store(tmp_path) as store:
        assert not store.has("j1")
        store.put(record())
        store.put(record("j2", "pgd-at"))
        assert store.has("j1")
        assert [r["defense"] for r in store.records()] == ["standard", "pgd-at"]
        assert [r["job_hash"] for r in store.records(["j2", "missing", "j1"])] == ["j2", "j1"]
    db = sqlite3.connect(tmp_path / "bench.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(SCHEMA_VERSION)
    assert db.execute("SELECT clean_accuracy, typeof(clean_accuracy) FROM results WHERE job_hash='j1'").fetchone() \
        == (0.9, "real")
    assert json.loads(db.execute("SELECT record FROM results WHERE job_hash='j2'").fetchone()[0])["defense"] == "pgd-at"


def test_failed_write_leaves_store_intact(tmp_path):
    with Store(tmp_path) as store:
        store.put(record())
        broken = record("j2")
        del broken["clean_accuracy"]
        with pytest.raises(KeyError):
            store.put(broken)
        assert [r["job_hash"] for r in store.records()] == ["j1"]


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
        path = store.save_checkpoint("t1", model, {"train_seconds": 1.5, "train_grad_evals": 10})
        fresh = bench.MODELS.get("mlp")((1, 6, 6), 4)
        assert store.load_checkpoint("t1", fresh) == {"train_seconds": 1.5, "train_grad_evals": 10}
        for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True):
            assert torch.equal(a, b)
        store.put(record())
        assert isinstance(bench.load_model(tmp_path, defense="standard"), torch.nn.Module)
        path.write_bytes(path.read_bytes()[:100])  # truncated
        assert store.load_checkpoint("t1", fresh) is None
        assert "corrupted" in caplog.text
        assert store.load_checkpoint("unknown", fresh) is None
    with pytest.raises(BenchError, match="no stored result for defense 'nope'"):
        bench.load_model(tmp_path, defense="nope")


def test_tampered_record_is_left_out_and_reported(tmp_path, caplog):
    with Store(tmp_path) as store:
        store.put(record())
        store.put(record("j2", "pgd-at"))
        with store.transaction():
            store.db.execute("UPDATE results SET record = replace(record, '0.9', '0.1') WHERE job_hash = 'j2'")
        assert not store.has("j2") and store.has("j1")
        assert [r["job_hash"] for r in store.records()] == ["j1"]
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
        assert facts == (plan_module.load_dataset("digits").fingerprint(), 360)

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
