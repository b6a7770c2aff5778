"""The typed result record: JSON round trip, and records of the old stored form (version 1) read through the one
upgrade path, with the defaults the record type names for keys older records lack."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sqlite3
from pathlib import Path

import pytest

from benchmark.leaderboard import build_leaderboard, make_row
from benchmark.record import RECORD_VERSION, AttackRun, Record, upgrade
from benchmark.store import Store
from benchmark.validity import Probes
from tests.test_store import record

#: A record as harness 0.2.0 stored it (schema version 1): synthetic, mlp, standard, seed 0, 40 test samples,
#: attacks fgsm, pgd, cw-linf (minimal-norm) and noise.
V1 = json.loads((Path(__file__).parent / "data" / "record-v1.json").read_text())
#: The keys version 1 gained after its first records, while its version number stayed 1.
V1_LATER_KEYS = ("attack_sample_runs", "attack_tags", "attack_errors", "median_distance", "flags", "probes",
                 "probe_seconds", "data_fingerprint", "survivors", "attack_order")
#: What harness 0.2.0 copied from a record into each leaderboard row, unchanged.
V1_ROW_FIELDS = ("defense", "defense_name", "defense_params", "model", "seed", "clean_accuracy", "robust_accuracy",
                 "per_attack", "train_seconds", "eval_seconds", "train_grad_evals", "attack_seconds",
                 "attack_grad_evals", "attack_queries", "attack_sample_runs", "attack_tags", "attack_errors",
                 "median_distance", "flags", "probes", "device", "batch_size", "n_test", "quick", "train_cached")


def oldest_v1() -> dict:
    """``V1`` without the keys added later: the shape of the first stored records."""
    data = {key: value for key, value in V1.items() if key not in V1_LATER_KEYS}
    data["samples"] = {key: value for key, value in V1["samples"].items() if key != "distances"}
    return data


def test_record_round_trips_through_json():
    original = record(flags=("gradient_masking",), probes=Probes(chance=0.3, bad_gradient_share=0.5),
                      runs={"pgd": AttackRun(seconds=1.0, grad_evals=2, queries=3, tags={"needs_grad": True},
                                             accuracy={"0": 0.9, "0.1": 0.4}, broken_at=(1, 2, 2, 0)),
                            "cw-linf": AttackRun(seconds=1.0, grad_evals=2, queries=3, median_distance=0.05,
                                                 broken_at=(1, 1, 2, 0), distances=(0.05, 0.04, None, 0.0))})
    text = original.to_text()
    assert Record.from_json(json.loads(text)) == original
    assert list(Record.from_json(json.loads(text)).runs) == ["pgd", "cw-linf"]  # the order they ran in
    assert json.loads(text)["schema_version"] == RECORD_VERSION and ": " not in text and ", " not in text


def test_a_version_1_record_is_upgraded_with_everything_the_leaderboard_showed():
    upgraded = Record.from_json(V1)
    assert list(upgraded.runs) == V1["attack_order"]
    assert upgraded.correct == tuple(V1["samples"]["correct"])
    for name, run in upgraded.runs.items():
        assert run.broken_at == tuple(V1["samples"]["broken_at"][name])
        assert run.accuracy == V1["per_attack"][name] and run.seconds == V1["attack_seconds"][name]
    assert upgraded.runs["cw-linf"].distances == tuple(V1["samples"]["distances"]["cw-linf"])
    assert upgraded.runs["fgsm"].distances is None
    assert upgraded.probes == Probes(**V1["probes"]) and upgraded.survivors == V1["survivors"] == "shared"
    row = json.loads(json.dumps(make_row(upgraded)))
    later = {"probes": {**V1["probes"], "probability_share": None}}  # a probe added after version 1: not run then
    assert {field: row[field] for field in V1_ROW_FIELDS} == {field: later.get(field, V1[field])
                                                              for field in V1_ROW_FIELDS}
    assert Record.from_json(upgraded.to_json()) == upgraded  # and it is stored in the current form from then on


def test_the_oldest_version_1_record_takes_the_record_types_defaults():
    upgraded = Record.from_json(oldest_v1())
    assert upgraded.survivors == "per-attack"  # the only mode there was: its per-attack numbers are standalone
    assert (upgraded.flags, upgraded.probes, upgraded.probe_seconds, upgraded.data_fingerprint) == ((), Probes(), 0.0,
                                                                                                    None)
    assert list(upgraded.runs) == list(V1["attack_seconds"])  # no attack_order: the order the costs were written in
    assert all(run.sample_runs == 0 and run.tags == {} and run.distances is None for run in upgraded.runs.values())
    board = build_leaderboard([upgraded])
    assert board.per_attack_kind == "standalone" and board.rows[0]["robust_accuracy"] == V1["robust_accuracy"]


def test_upgrade_refuses_what_it_cannot_read():
    with pytest.raises(ValueError, match="schema version 99"):
        upgrade({**V1, "schema_version": 99})
    with pytest.raises(ValueError, match="clean_accuracy"):
        Record.from_json({key: value for key, value in V1.items() if key != "clean_accuracy"})


def store_raw(out: Path, data: dict, *, version: int) -> None:
    """Write ``data`` into the store at ``out`` as an older harness did: its JSON as it is, the store's version."""
    Store(out).close()
    text = json.dumps(data)
    with sqlite3.connect(out / "bench.db") as db:
        db.execute("INSERT INTO results (job_hash, train_hash, dataset, model, defense, seed, norm, clean_accuracy, "
                   "train_seconds, eval_seconds, device, created_at, record, checksum) "
                   "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                   (data["job_hash"], data["train_hash"], data["dataset"], data["model"], data["defense"],
                    data["seed"], data["norm"], data["clean_accuracy"], data["train_seconds"], data["eval_seconds"],
                    data["device"], data["created_at"], text, hashlib.sha256(text.encode()).hexdigest()))
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))


def test_a_store_of_version_1_reads_upgraded_records_and_rises_when_written(tmp_path):
    store_raw(tmp_path, oldest_v1(), version=1)
    with Store(tmp_path) as store:
        assert store.schema_version == 1  # reading changes nothing on disk
        (read,) = store.records()
        assert read == Record.from_json(oldest_v1()) and store.has(V1["job_hash"])
        store.put(dataclasses.replace(read, job_hash="new"))
        assert store.schema_version == RECORD_VERSION
        assert [r.job_hash for r in store.records()] == [V1["job_hash"], "new"]


def test_an_unreadable_record_is_reported_and_left_out(tmp_path, caplog):
    store_raw(tmp_path, {**V1, "schema_version": 7}, version=1)
    with Store(tmp_path) as store:
        assert store.records() == [] and not store.has(V1["job_hash"])  # so its job runs again
    assert "is unreadable (record schema version 7" in caplog.text and "recomputed" in caplog.text
