"""Results store: one SQLite database (``bench.db``) and one checkpoint file per trained model in the output directory.

* ``results``: one row per finished job, written in a single transaction when the job ends, so a killed run loses
  only the job in flight. Scalars are real columns; nested results (per-ε, per-attack, per-sample) are JSON.
* ``checkpoints``: trained models by ``train_hash``, with the file's SHA-256 and what training recorded
  (``CheckpointInfo``, as JSON); a file that no longer matches is reported and retrained, never loaded; so is one
  that matches but does not hold a state dict of the model. Files are written atomically through
  ``benchmark.fileio`` (never through a symlink), into a ``checkpoints`` directory that must not be a symlink.
* ``parts``: the sweep results of the shards of a job split with ``--shards`` (``benchmark.shards``), until they are
  merged into its record.
* ``datasets``: each dataset's fingerprint and test size per source (see ``benchmark.plan.data_facts``), so a
  re-run can plan without loading the data.
* ``meta``: the newest record schema version the store holds (``benchmark.record``): a harness refuses a store of a
  newer version. Older records stay as written and are upgraded each time they are read
  (``benchmark.record.upgrade``); the version rises when a current record is stored.

WAL journaling and a busy timeout let several processes write one store at once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.errors import BenchError
from benchmark.fileio import make_directory, write_bytes
from benchmark.privacy import DPGuarantee
from benchmark.record import RECORD_VERSION, Record

logger = logging.getLogger(__name__)

SCHEMA_VERSION = RECORD_VERSION
DB_NAME = "bench.db"
CHECKPOINT_DIR = "checkpoints"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    job_hash TEXT PRIMARY KEY,
    train_hash TEXT NOT NULL,
    dataset TEXT NOT NULL,
    model TEXT NOT NULL,
    defense TEXT NOT NULL,
    seed INTEGER NOT NULL,
    norm TEXT NOT NULL,
    clean_accuracy REAL NOT NULL,
    train_seconds REAL NOT NULL,
    eval_seconds REAL NOT NULL,
    device TEXT NOT NULL,
    git_sha TEXT,
    created_at TEXT NOT NULL,
    record TEXT NOT NULL,
    checksum TEXT
);
CREATE INDEX IF NOT EXISTS results_by_board ON results (dataset, norm, model);
CREATE TABLE IF NOT EXISTS datasets (
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    n_test INTEGER NOT NULL,
    PRIMARY KEY (name, source)
);
CREATE TABLE IF NOT EXISTS checkpoints (
    train_hash TEXT PRIMARY KEY,
    file TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    info TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS parts (
    job_hash TEXT NOT NULL,
    shard INTEGER NOT NULL,
    shards INTEGER NOT NULL,
    part TEXT NOT NULL,
    PRIMARY KEY (job_hash, shard, shards)
);
"""


RESULT_COLUMNS = ("job_hash", "train_hash", "dataset", "model", "defense", "seed", "norm", "clean_accuracy",
                  "train_seconds", "eval_seconds", "device", "git_sha", "created_at", "record", "checksum")


@dataclass(frozen=True, kw_only=True)
class CheckpointInfo:
    """What training recorded with a checkpoint: its cost, and per test sample whether the trained model classified
    it correctly (None in checkpoints stored before it was recorded)."""

    train_seconds: float | None  # None: not trained here (a model from a file)
    train_grad_evals: int
    test_correct: tuple[int, ...] | None = None
    early_stop_epoch: int | None = None  # the epoch whose weights early stopping kept (``benchmark.recipes``)
    dp: DPGuarantee | None = None  # a differentially private defense's guarantee (``benchmark.privacy``)

    def to_json(self) -> dict[str, Any]:
        """The stored form: a JSON object with these keys (``test_correct``, ``early_stop_epoch`` and ``dp`` left out
        when None)."""
        fields: dict[str, Any] = {"train_seconds": self.train_seconds, "train_grad_evals": self.train_grad_evals}
        if self.early_stop_epoch is not None:
            fields["early_stop_epoch"] = self.early_stop_epoch
        if self.dp is not None:
            fields["dp"] = dataclasses.asdict(self.dp)
        return fields if self.test_correct is None else {**fields, "test_correct": list(self.test_correct)}

    @classmethod
    def from_json(cls, fields: dict[str, Any]) -> CheckpointInfo:
        """Read the stored form (every version written so far)."""
        correct = fields.get("test_correct")
        return cls(train_seconds=float(fields["train_seconds"]), train_grad_evals=int(fields["train_grad_evals"]),
                   test_correct=None if correct is None else tuple(int(c) for c in correct),
                   early_stop_epoch=fields.get("early_stop_epoch"),
                   dp=None if fields.get("dp") is None else DPGuarantee.from_json(fields["dp"]))


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Store:
    def __init__(self, out: str | os.PathLike, *, create: bool = True, read_only: bool = False) -> None:
        """The store in ``out``, created unless ``create=False``. ``read_only=True`` (a dry run) works on a copy in
        memory of the store (an empty one if there is none): nothing on disk is created or changed."""
        self.root = Path(out)
        self.path = self.root / DB_NAME
        if not create and not self.path.exists():
            raise BenchError(f"no results store at {self.path}")
        if not read_only:
            self.root.mkdir(parents=True, exist_ok=True)
        try:
            self.db = memory_copy(self.path) if read_only else sqlite3.connect(self.path, timeout=60.0,
                                                                               isolation_level=None)
            self.db.execute("PRAGMA busy_timeout = 60000")
            retry_when_locked(self._prepare)
        except sqlite3.DatabaseError as exc:
            raise BenchError(f"cannot use results store {self.path}: {exc}") from None

    def _prepare(self) -> None:
        """WAL journaling, the tables, and the schema version check."""
        if self.db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            self.db.execute("PRAGMA journal_mode = WAL")
        self.db.executescript(_SCHEMA)
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(results)")}
        if "checksum" not in columns:  # stores written before records were checksummed
            try:
                self.db.execute("ALTER TABLE results ADD COLUMN checksum TEXT")
            except sqlite3.OperationalError:  # another process added it first
                pass
        self._check_version()

    def _check_version(self) -> None:
        """Refuse a store written by a newer harness; mark a new one current."""
        with self.transaction():
            found = self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if found is None:
                self.db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(found[0]) > SCHEMA_VERSION:
                raise BenchError(f"{self.path} has schema version {found[0]}; this harness reads up to "
                                 f"{SCHEMA_VERSION}: upgrade defense-bench")

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()[0])

    def transaction(self) -> _Transaction:
        return _Transaction(self.db)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # datasets ---------------------------------------------------------------------------------------------------
    def dataset_facts(self, name: str, source: str) -> tuple[str, int] | None:
        """(fingerprint, test size) recorded for dataset ``name`` loaded from ``source``, if any."""
        row = self.db.execute("SELECT fingerprint, n_test FROM datasets WHERE name = ? AND source = ?",
                              (name, source)).fetchone()
        return None if row is None else (str(row[0]), int(row[1]))

    def put_dataset_facts(self, name: str, source: str, fingerprint: str, n_test: int) -> None:
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO datasets VALUES (?, ?, ?, ?)", (name, source, fingerprint, n_test))

    # parts of sharded jobs ----------------------------------------------------------------------------------------
    def has_part(self, job_hash: str, shard: int, shards: int) -> bool:
        return self.part(job_hash, shard, shards) is not None

    def part(self, job_hash: str, shard: int, shards: int) -> str | None:
        row = self.db.execute("SELECT part FROM parts WHERE job_hash = ? AND shard = ? AND shards = ?",
                              (job_hash, shard, shards)).fetchone()
        return None if row is None else str(row[0])

    def put_part(self, job_hash: str, shard: int, shards: int, part: str) -> None:
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO parts VALUES (?, ?, ?, ?)", (job_hash, shard, shards, part))

    def put_merged(self, record: Record) -> None:
        """Store the record of a sharded job, then drop its parts (left over only if killed in between: harmless)."""
        self.put(record)
        self.drop_parts(record.job_hash)

    def drop_parts(self, job_hash: str) -> None:
        with self.transaction():
            self.db.execute("DELETE FROM parts WHERE job_hash = ?", (job_hash,))

    # results ----------------------------------------------------------------------------------------------------
    def has(self, job_hash: str) -> bool:
        """Whether a valid record of ``job_hash`` is stored (a record that fails its checksum is not)."""
        return job_hash in self.stored([job_hash])

    def stored(self, job_hashes: list[str]) -> set[str]:
        """Those of ``job_hashes`` with a valid record: intact and readable (see ``records``), in one query."""
        return {record.job_hash for record in self.records(job_hashes)}

    def put(self, record: Record) -> None:
        """Store one finished job's record in one transaction (replacing an older record of the same job)."""
        text = record.to_text()
        row = (
            record.job_hash, record.train_hash, record.dataset, record.model, record.defense, record.seed,
            record.norm, record.clean_accuracy, record.train_seconds or 0.0, record.eval_seconds, record.device,
            record.environment.git_sha, record.created_at, text, hashlib.sha256(text.encode()).hexdigest(),
        )
        with self.transaction():
            self.db.execute(f"INSERT OR REPLACE INTO results ({', '.join(RESULT_COLUMNS)}) "
                            f"VALUES ({', '.join('?' * len(RESULT_COLUMNS))})", row)
            self.db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version' AND CAST(value AS INTEGER) < ?",
                            (str(SCHEMA_VERSION), SCHEMA_VERSION))

    def _rows(self, job_hashes: list[str] | None) -> list[tuple[str, str, str | None]]:
        if job_hashes is None:
            return self.db.execute("SELECT job_hash, record, checksum FROM results ORDER BY created_at, rowid"
                                   ).fetchall()
        marks = ",".join("?" * len(job_hashes))
        return self.db.execute(f"SELECT job_hash, record, checksum FROM results WHERE job_hash IN ({marks})",
                               job_hashes).fetchall()

    def records(self, job_hashes: list[str] | None = None) -> list[Record]:
        """Stored records, oldest first (only those of ``job_hashes`` when given, in that order), older versions
        upgraded. A record whose checksum does not match, or that cannot be read, is reported and left out, so its
        job runs again."""
        found = {}
        for job_hash, text, checksum in self._rows(job_hashes):
            if not _intact(job_hash, text, checksum):
                continue
            try:
                found[job_hash] = Record.from_json(json.loads(text))
            except ValueError as exc:  # json.JSONDecodeError included
                logger.warning("stored result of job %s is unreadable (%s): it will be recomputed", job_hash,
                               " ".join(str(exc).split()))
        order = list(found) if job_hashes is None else job_hashes
        return [found[h] for h in order if h in found]

    # checkpoints ------------------------------------------------------------------------------------------------
    def save_checkpoint(self, train_hash: str, model, info: CheckpointInfo) -> Path:
        """Save ``model``'s state dict atomically (``benchmark.fileio.write_bytes``: a temporary file of an
        unpredictable name, renamed over the target, never written through a symlink) and record its checksum."""
        import torch

        buffer = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
        path = write_bytes(self.checkpoint_directory() / f"{train_hash}.pt", buffer.getvalue())
        with self.transaction():
            self.db.execute("INSERT OR REPLACE INTO checkpoints VALUES (?,?,?,?)",
                            (train_hash, str(path.relative_to(self.root)), sha256_file(path),
                             json.dumps(info.to_json())))
        return path

    def checkpoint_directory(self) -> Path:
        """``checkpoints`` in the store's directory, created if needed; refused if it is a symlink (checkpoints
        would land wherever it points)."""
        directory = self.root / CHECKPOINT_DIR
        if directory.is_symlink():
            raise BenchError(f"{directory} is a symlink: refusing to write checkpoints through it")
        return make_directory(directory, "")

    def load_checkpoint(self, train_hash: str, model) -> CheckpointInfo | None:
        """Load the checkpoint of ``train_hash`` into ``model`` and return what training recorded with it; None if
        there is none or it is unusable (reported)."""
        import torch

        row = self.db.execute("SELECT file, sha256, info FROM checkpoints WHERE train_hash = ?",
                              (train_hash,)).fetchone()
        if row is None:
            return None
        path = self.root / row[0]
        if not path.exists() or sha256_file(path) != row[1]:
            logger.warning("checkpoint %s is missing or corrupted (checksum mismatch): retraining", path)
            return None
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # whatever stops torch from reading it, the file is unusable: say so, retrain
            logger.warning("checkpoint %s is corrupted (cannot be read safely: %s): retraining", path,
                           " ".join(str(exc).split())[:200])
            return None
        problem = state_dict_problem(state, model)
        if problem is not None:
            logger.warning("checkpoint %s is corrupted (%s): retraining", path, problem)
            return None
        model.load_state_dict(state)
        return CheckpointInfo.from_json(json.loads(row[2]))


#: Seconds ``retry_when_locked`` keeps trying, and its first pause (doubled each time, at most 1 s).
LOCK_PATIENCE = 60.0
LOCK_PAUSE = 0.05


def retry_when_locked(step) -> None:
    """``step()``, tried again while SQLite answers "database is locked" without waiting for the busy timeout: it
    does so when two processes open a new store at once (switching it to WAL needs the file to itself) and when a
    read would have to become a write; any other error, or the lock held past ``LOCK_PATIENCE``, is raised."""
    import time

    deadline, pause = time.monotonic() + LOCK_PATIENCE, LOCK_PAUSE
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            logger.debug("results store locked by another process; trying again in %.2f s", pause)
            time.sleep(pause)
            pause = min(1.0, 2 * pause)


def state_dict_problem(state: Any, model) -> str | None:
    """Why ``state`` cannot be loaded into ``model`` (checked before loading, so a failed load changes nothing);
    None when it is a state dict of the model: the same keys, each a tensor of the same shape."""
    import torch

    if not isinstance(state, dict):
        return f"it holds a {type(state).__name__}, not a state dict"
    expected = model.state_dict()
    if set(state) != set(expected):
        missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        return f"not a state dict of this model: missing keys {missing[:3]}, unexpected keys {unexpected[:3]}"
    for key, tensor in expected.items():
        if not isinstance(state[key], torch.Tensor) or state[key].shape != tensor.shape:
            return f"not a state dict of this model: {key!r} is not a tensor of shape {tuple(tensor.shape)}"
    return None


def memory_copy(path: Path) -> sqlite3.Connection:
    """A copy in memory of the database at ``path`` (empty if there is none), read without writing anything beside
    it: as immutable when it has no WAL journal (every commit is then in the file), else through its journal."""
    copy = sqlite3.connect(":memory:", isolation_level=None)
    if not path.exists():
        return copy
    mode = "mode=ro" if path.with_name(path.name + "-wal").exists() else "immutable=1"
    source = sqlite3.connect(f"{path.resolve().as_uri()}?{mode}", uri=True, timeout=60.0)
    try:
        source.backup(copy)
    finally:
        source.close()
    return copy


def _intact(job_hash: str, text: str, checksum: str | None) -> bool:
    """Whether a stored record matches its checksum (records written before checksums pass); reports a mismatch."""
    if checksum is None or hashlib.sha256(text.encode()).hexdigest() == checksum:
        return True
    logger.warning("stored result of job %s is corrupted (checksum mismatch): it will be recomputed", job_hash)
    return False


class _Transaction:
    """``BEGIN IMMEDIATE`` … ``COMMIT`` (``ROLLBACK`` on error): one writer at a time, nothing half-written."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
