"""The lab's database: connection, transactions, and the versioned schema with its migrations.

By default one SQLite file, ``$RESNET_LAB_HOME/runs.db``; with ``RESNET_LAB_DB=postgresql://...`` a PostgreSQL
database that several servers share (:mod:`.dialect`: how the same statements run there). What follows is said of
SQLite; PostgreSQL keeps the same rules with its own means (the version in a table, a write lock per transaction).

Many processes write (one worker per job, each a few times a second at most) and many read (every
open browser tab polls). WAL lets readers run beside one writer; the busy timeout makes a writer wait
for another instead of failing with "database is locked"; every write is one short transaction.

The schema carries its version in ``PRAGMA user_version``. Opening a database upgrades it in place,
in one transaction, through every step in :data:`MIGRATIONS`; a database written by a newer lab is
refused (:class:`SchemaTooNew`) before anything in it is touched. Paths to files in the lab home
(checkpoints, results) are stored relative to the home (the database's folder), so a home copied or
restored elsewhere keeps working; :meth:`Database.rel` and :meth:`Database.abs` convert.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sqlite3
from contextlib import contextmanager
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterator

from . import dialect

BUSY_TIMEOUT_MS = 30_000
DB_RETRY_ENV = "RESNET_LAB_DB_RETRY_S"  # how long a PostgreSQL store tries to reach its server again after a break
DB_RETRY_S = 30.0
SCHEMA_VERSION = 7
"""1: the unversioned layout (runs with ``twin_of``, a separate ``tasks`` table, absolute paths);
2: one ``jobs`` table for every kind of background work (a training job may span several devices:
``world_size`` processes, its ``slot`` one per process), runs linked to their job and partner, paths
relative to the lab home, learned speeds for queue estimates;
3: owners (every job and run has one; what a lab made before is the machine's, ``local``), the time a
job joined the queue (``queued_at``: moved to the back = queued again now, ``at_back`` set), a job's settings
fingerprint (the same job finished earlier is offered instead of training a copy), the class's ``people``, and
``turns``: which owner had a job started last on each kind of device (fair turns between owners);
4: ``datasets``: who uploaded each imported dataset and the upload's size (before, in each dataset's own
``.lab.json`` file: the migration reads them into the table);
5: ``challenges`` (a class's challenges opened from a form or a file) and ``challenge_entries`` (a student's run
submitted to one, with its public and private scores on the hidden split);
6: a job's ``host``: the machine (and Ray node) its worker said hello from, so a lab whose workers run on several
machines judges a worker by its heartbeat, not by a pid of another machine, and shows where each job runs;
7: ``model_speeds``: each model preset's measured training images/s, batch-1 latency and batch-64 images/s, kept per
device (by its name) and preset (:mod:`.model_speeds`)."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    params_json TEXT NOT NULL,
    status TEXT NOT NULL,
    device TEXT NOT NULL,
    slot TEXT,
    run_id INTEGER REFERENCES runs(id) ON DELETE CASCADE,
    origin TEXT,
    request_key TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    heartbeat_at REAL,
    pid INTEGER,
    host TEXT,
    error TEXT,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    progress INTEGER NOT NULL DEFAULT 0,
    total INTEGER,
    unit TEXT NOT NULL DEFAULT 'steps',
    result_path TEXT,
    resumes INTEGER NOT NULL DEFAULT 0,
    work_json TEXT,
    estimate_s REAL,
    world_size INTEGER NOT NULL DEFAULT 1,
    owner TEXT NOT NULL DEFAULT 'local',
    owner_name TEXT NOT NULL DEFAULT '',
    queued_at REAL,
    fingerprint TEXT,
    at_back INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, device, id);
CREATE INDEX IF NOT EXISTS jobs_request ON jobs(request_key, created_at);
CREATE INDEX IF NOT EXISTS jobs_run ON jobs(run_id, kind, id);
CREATE INDEX IF NOT EXISTS jobs_owner ON jobs(owner, status);
CREATE INDEX IF NOT EXISTS jobs_fingerprint ON jobs(fingerprint, status);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id INTEGER REFERENCES jobs(id) ON DELETE SET NULL,
    partner_id INTEGER,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    spec_json TEXT NOT NULL,
    data_json TEXT NOT NULL,
    train_json TEXT NOT NULL,
    finetune_json TEXT,
    device TEXT NOT NULL,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    error TEXT,
    step INTEGER NOT NULL DEFAULT 0,
    total_steps INTEGER,
    best_json TEXT,
    last_json TEXT,
    ckpt_best TEXT,
    ckpt_last TEXT,
    owner TEXT NOT NULL DEFAULT 'local'
);
CREATE INDEX IF NOT EXISTS runs_job ON runs(job_id, id);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status, id);
CREATE TABLE IF NOT EXISTS metrics (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    epoch REAL NOT NULL,
    key TEXT NOT NULL,
    value REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS metrics_run_key ON metrics(run_id, key, step);
CREATE TABLE IF NOT EXISTS grad_norms (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    step INTEGER NOT NULL,
    norms_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS grad_norms_run ON grad_norms(run_id, step);
CREATE TABLE IF NOT EXISTS run_layers (
    run_id INTEGER PRIMARY KEY REFERENCES runs(id) ON DELETE CASCADE,
    names_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS experiments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    params_json TEXT NOT NULL,
    job_ids_json TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS people (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    last_seen REAL
);
CREATE TABLE IF NOT EXISTS turns (
    device TEXT NOT NULL,
    owner TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (device, owner)
);
CREATE TABLE IF NOT EXISTS datasets (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL DEFAULT 'local',
    owner_name TEXT NOT NULL DEFAULT '',
    upload_bytes INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS challenges (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    definition_json TEXT NOT NULL,
    owner TEXT NOT NULL DEFAULT 'local',
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS challenge_entries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    challenge_id TEXT NOT NULL,
    run_id INTEGER NOT NULL,
    job_id INTEGER,
    owner TEXT NOT NULL,
    owner_name TEXT NOT NULL DEFAULT '',
    day TEXT NOT NULL,
    submitted_at REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued',
    public_score REAL,
    private_score REAL,
    scored_at REAL,
    error TEXT,
    params INTEGER,
    epochs INTEGER,
    skip INTEGER,
    UNIQUE (challenge_id, run_id)
);
CREATE TABLE IF NOT EXISTS speeds (
    device TEXT NOT NULL,
    key TEXT NOT NULL,
    seconds_per_unit REAL NOT NULL,
    samples INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (device, key)
);
CREATE TABLE IF NOT EXISTS model_speeds (
    device_name TEXT NOT NULL,
    preset TEXT NOT NULL,
    device TEXT NOT NULL,
    train_images_per_s REAL NOT NULL,
    latency_ms REAL NOT NULL,
    images_per_s REAL NOT NULL,
    batch INTEGER NOT NULL,
    infer_batch INTEGER NOT NULL,
    image_size INTEGER NOT NULL,
    detail_json TEXT NOT NULL,
    job_id INTEGER,
    measured_at REAL NOT NULL,
    PRIMARY KEY (device_name, preset)
);
"""


class SchemaTooNew(RuntimeError):
    """The database was written by a newer ResNet Lab; it is left exactly as it is."""


def _statements(sql: str) -> list[str]:
    return [s for s in (part.strip() for part in sql.split(";")) if s]


def home_relative(path: str | None, home: Path) -> str | None:
    """A path to store: relative (POSIX) when it lies in ``home``; else as given."""
    if not path:
        return path
    p = Path(path)
    if not p.is_absolute():
        return PurePosixPath(*p.parts).as_posix()
    try:
        return PurePosixPath(*p.resolve().relative_to(home.resolve()).parts).as_posix()
    except ValueError:
        pass
    try:
        return PurePosixPath(*p.relative_to(home).parts).as_posix()
    except ValueError:
        return str(p)


def _moved_home_relative(path: str | None, home: Path) -> str | None:
    """For the migration: an absolute path written by an older lab, maybe in a home that has moved since.
    A path under this home, or with a ``runs/<id>/...`` tail (where the lab keeps its files), becomes
    relative; anything else is kept as it was."""
    rel = home_relative(path, home)
    if not rel or not Path(rel).is_absolute():
        return rel
    parts = Path(rel).parts
    for i in range(len(parts) - 2, 0, -1):
        if parts[i] == "runs" and parts[i + 1].isdigit():
            return PurePosixPath(*parts[i:]).as_posix()
    return rel


def _dialect(con: Any) -> str:
    """The dialect of a migration's connection: "sqlite" (a ``sqlite3.Connection``) or "postgresql"."""
    return getattr(con, "dialect", "sqlite")


def _columns(con: Any, table: str) -> set[str]:
    """The column names of ``table``, on either dialect."""
    if _dialect(con) == "sqlite":
        return {r[1] for r in con.execute(f"PRAGMA table_info({table})")}
    return {r[0] for r in con.execute("SELECT column_name FROM information_schema.columns"
                                      " WHERE table_schema=current_schema() AND table_name=?", (table,))}


def _v1_to_v2(con: sqlite3.Connection, home: Path) -> None:
    """Runs and tasks -> one jobs table; ``twin_of`` -> ``job_id`` + ``partner_id``; paths relative to the home.

    A training job keeps its id (the id of its first run, as before), so experiments that list job ids
    stay valid; tasks become ``landscape`` (or their kind of) jobs with new ids after them.
    """
    if _dialect(con) != "sqlite":
        raise RuntimeError("a schema-1 lab exists only as a SQLite file: open it with SQLite (it upgrades), then "
                           "`python -m resnet_lab store copy` it into PostgreSQL")
    con.create_function("lab_rel", 1, lambda p: _moved_home_relative(p, home), deterministic=True)
    cols = {r[1] for r in con.execute("PRAGMA table_info(runs)")}
    if "finetune_json" not in cols:  # a database made before fine-tuning existed
        con.execute("ALTER TABLE runs ADD COLUMN finetune_json TEXT")
    # The 12-step way (sqlite.org/lang_altertable.html): build the new table beside the old one, copy, drop the
    # old one, rename the new one. Renaming the *old* table would rewrite the children's foreign keys to it.
    runs_ddl = next(s for s in _statements(SCHEMA) if s.startswith("CREATE TABLE IF NOT EXISTS runs "))
    con.execute(runs_ddl.replace("CREATE TABLE IF NOT EXISTS runs ", "CREATE TABLE runs_v2 ", 1))
    for stmt in _statements(SCHEMA):
        if not stmt.startswith(("CREATE INDEX", "CREATE TABLE IF NOT EXISTS runs ")):
            con.execute(stmt)
    con.execute(
        "INSERT INTO jobs(id, kind, name, params_json, status, device, slot, request_key, created_at, started_at,"
        " finished_at, heartbeat_at, pid, error, stop_requested, progress, total, unit, resumes)"
        " SELECT id, CASE WHEN finetune_json IS NULL THEN 'train' ELSE 'finetune' END, name, '{}',"
        " CASE status WHEN 'diverged' THEN 'done' ELSE status END, device,"
        " CASE WHEN status='running' THEN device END, request_key, created_at, started_at, finished_at,"
        " heartbeat_at, pid, error, stop_requested, step, total_steps, 'steps', resumes"
        " FROM runs WHERE twin_of IS NULL ORDER BY id")
    con.execute(
        "INSERT INTO runs_v2(id, job_id, partner_id, name, status, spec_json, data_json, train_json, finetune_json,"
        " device, created_at, started_at, finished_at, error, step, total_steps, best_json, last_json, ckpt_best,"
        " ckpt_last)"
        " SELECT r.id, COALESCE(r.twin_of, r.id),"
        " CASE WHEN r.twin_of IS NOT NULL THEN r.twin_of"
        "      ELSE (SELECT MIN(t.id) FROM runs t WHERE t.twin_of = r.id) END,"
        " r.name, r.status, r.spec_json, r.data_json, r.train_json, r.finetune_json, r.device, r.created_at,"
        " r.started_at, r.finished_at, r.error, r.step, r.total_steps, r.best_json, r.last_json,"
        " lab_rel(r.ckpt_best), lab_rel(r.ckpt_last) FROM runs r ORDER BY r.id")
    if con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='tasks'").fetchone():
        con.execute(
            "INSERT INTO jobs(kind, name, params_json, status, device, slot, run_id, request_key, created_at,"
            " started_at, finished_at, heartbeat_at, pid, error, stop_requested, progress, total, unit,"
            " result_path)"
            " SELECT t.kind, t.kind || ' of run ' || t.run_id, t.params_json, t.status, t.device,"
            " CASE WHEN t.status='running' THEN t.device END, t.run_id, t.request_key, t.created_at,"
            " t.started_at, t.finished_at, t.heartbeat_at, t.pid, t.error, t.stop_requested, t.progress,"
            " t.total, 'evaluations', lab_rel(t.result_path) FROM tasks t ORDER BY t.id")
        con.execute("DROP TABLE tasks")
    con.execute("DROP INDEX IF EXISTS runs_status")
    con.execute("DROP INDEX IF EXISTS runs_request")
    con.execute("DROP TABLE runs")
    con.execute("ALTER TABLE runs_v2 RENAME TO runs")
    for stmt in _statements(SCHEMA):
        if stmt.startswith("CREATE INDEX"):
            con.execute(stmt)


def _v2_to_v3(con: sqlite3.Connection, home: Path) -> None:
    """Owners, queue times, fingerprints, people and turns. Everything made before belongs to the machine
    (``local``); a job joined the queue when it was created; nobody has had a turn yet."""
    for table, column, ddl in (
            ("jobs", "owner", "TEXT NOT NULL DEFAULT 'local'"), ("jobs", "owner_name", "TEXT NOT NULL DEFAULT ''"),
            ("jobs", "queued_at", "REAL"), ("jobs", "fingerprint", "TEXT"),
            ("jobs", "at_back", "INTEGER NOT NULL DEFAULT 0"), ("runs", "owner", "TEXT NOT NULL DEFAULT 'local'")):
        if column not in _columns(con, table):
            con.execute(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}")
    con.execute("UPDATE jobs SET queued_at=created_at WHERE queued_at IS NULL")
    for stmt in _statements(SCHEMA):
        if stmt.startswith(("CREATE TABLE IF NOT EXISTS people", "CREATE TABLE IF NOT EXISTS turns", "CREATE INDEX")):
            con.execute(stmt)


DATASET_NAME = re.compile(r"[a-z0-9_-]{1,40}")  # a dataset folder's name (resnet_lab.data.types.NAME_PATTERN)
OLD_DATASET_RECORD = ".lab.json"  # where the schema-3 lab kept a dataset's owner, in the dataset's folder


def _file_bytes(folder: Path) -> int:
    """The bytes of a dataset's files, as the schema-3 lab counted a dataset without a recorded upload size (the
    lab's own record and caches left out, links not followed)."""
    total = 0
    for dirpath, _dirs, names in os.walk(folder, followlinks=False):
        for n in names:
            p = Path(dirpath) / n
            if p.parent == folder and (n == OLD_DATASET_RECORD or n.startswith(".cache_")):
                continue
            with contextlib.suppress(OSError):
                if not p.is_symlink():
                    total += p.stat().st_size
    return total


def _old_dataset_owners(home: Path) -> Iterator[tuple[str, str, str, int, float]]:
    """(name, owner, owner name, upload bytes, time) of every dataset in ``home/datasets`` whose ``.lab.json`` names
    an owner; one without (placed by hand, or a damaged record) stays the machine's and needs no row."""
    base = home / "datasets"
    if not base.is_dir():
        return
    for folder in sorted(base.iterdir()):
        if not DATASET_NAME.fullmatch(folder.name) or folder.is_symlink() or not folder.is_dir():
            continue
        record = folder / OLD_DATASET_RECORD
        try:
            raw = json.loads(record.read_text())
            when = record.stat().st_mtime
        except (OSError, ValueError):
            continue
        owner = raw.get("owner") if isinstance(raw, dict) else None
        if not isinstance(owner, str) or not owner:
            continue
        name = raw.get("owner_name")
        size = raw.get("upload_bytes")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            size = _file_bytes(folder)
        yield folder.name, owner, name if isinstance(name, str) else "", size, when


def _v3_to_v4(con: sqlite3.Connection, home: Path) -> None:
    """Datasets' owners move into the store: each imported dataset's ``.lab.json`` in ``home/datasets`` is read
    into ``datasets`` (its files are left as they are)."""
    for stmt in _statements(SCHEMA):
        if stmt.startswith("CREATE TABLE IF NOT EXISTS datasets"):
            con.execute(stmt)
    rows = list(_old_dataset_owners(home))
    if rows:
        con.executemany("INSERT INTO datasets(name, owner, owner_name, upload_bytes, created_at)"
                        " VALUES (?, ?, ?, ?, ?) ON CONFLICT(name) DO NOTHING", rows)


def _v4_to_v5(con: sqlite3.Connection, home: Path) -> None:
    """Challenges and their entries: two new tables (an entry's challenge and run are unique together, which also
    indexes the entries by challenge); nothing else changes."""
    for stmt in _statements(SCHEMA):
        if stmt.startswith("CREATE TABLE IF NOT EXISTS challenge"):
            con.execute(stmt)


def _v5_to_v6(con: Any, home: Path) -> None:
    """A job's ``host`` (where its worker runs): a new column, empty for the jobs of before (their workers ran
    on this machine). A database coming from schema 1 has it already (its jobs table was made by this SCHEMA)."""
    if "host" not in _columns(con, "jobs"):
        con.execute("ALTER TABLE jobs ADD COLUMN host TEXT")


def _v6_to_v7(con: Any, home: Path) -> None:
    """Model speeds measured per device: one new table (its key, device name and preset, indexes it by device);
    nothing else changes. Written in SQLite's types, which PostgreSQL's connection translates (:func:`.dialect.ddl`)."""
    for stmt in _statements(SCHEMA):
        if stmt.startswith("CREATE TABLE IF NOT EXISTS model_speeds"):
            con.execute(stmt)


MIGRATIONS: dict[int, Callable[[Any, Path], None]] = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4,
                                                      4: _v4_to_v5, 5: _v5_to_v6, 6: _v6_to_v7}
"""version -> the step that upgrades a database of that version to the next one. A step gets the transaction's
connection (SQLite's, or PostgreSQL's :class:`.dialect.Connection`: ``_dialect(con)`` tells) and the lab home; it
writes portable SQL (``ALTER TABLE ... ADD COLUMN`` and ``CREATE TABLE`` in SQLite's types are translated), and
``_columns`` reads a table's columns on both."""


class Database:
    """One connection to the lab's database (open one per process, or per thread): the SQLite file ``path``, or,
    given a ``url`` (``postgresql://...``), a PostgreSQL database whose lab home (where stored paths are relative
    to) is ``home``. Both dialects take the same statements (:mod:`.dialect` translates for PostgreSQL)."""

    def __init__(self, path: str | Path | None = None, *, url: str | None = None,
                 home: str | Path | None = None) -> None:
        if (path is None) == (url is None):
            raise ValueError("a database is a SQLite file (path) or a PostgreSQL URL (url), exactly one")
        self.url = url
        self.con: Any
        if url is not None:
            if not dialect.is_url(url):
                raise ValueError(f"not a PostgreSQL URL (postgresql://...): {dialect.shown_url(url)!r}")
            if home is None:
                raise ValueError("a PostgreSQL store needs its lab home (where checkpoints live)")
            self.dialect = "postgresql"
            self.path = None
            self.home = Path(home)
            self.where = dialect.shown_url(url)
            import psycopg

            self.integrity_error: type[Exception] = psycopg.IntegrityError
            self.con = dialect.Connection(url, dialect.identity_tables(SCHEMA), BUSY_TIMEOUT_MS,
                                          retry_s=float(os.environ.get(DB_RETRY_ENV) or DB_RETRY_S))
        else:
            self.dialect = "sqlite"
            self.path = Path(path)  # type: ignore[arg-type]
            self.home = self.path.parent
            self.where = str(self.path)
            self.integrity_error = sqlite3.IntegrityError
            self.home.mkdir(parents=True, exist_ok=True)
            self.con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                       check_same_thread=False)
            self.con.row_factory = sqlite3.Row
            self.con.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        try:
            self._check_not_newer()
            if self.dialect == "sqlite":
                self.con.execute("PRAGMA journal_mode=WAL")
                self.con.execute("PRAGMA synchronous=NORMAL")
            self._upgrade()
            if self.dialect == "sqlite":
                self.con.execute("PRAGMA foreign_keys=ON")
        except BaseException:
            self.con.close()
            raise

    @property
    def location(self) -> str | Path:
        """What opens this database again: the SQLite file's path, or the PostgreSQL URL."""
        return self.url if self.url is not None else self.path  # type: ignore[return-value]

    def _stored_version(self) -> int:
        """The version written in the database (0: none)."""
        if self.dialect == "sqlite":
            return int(self.con.execute("PRAGMA user_version").fetchone()[0])
        if self.con.execute("SELECT to_regclass(?)", (dialect.VERSION_TABLE,)).fetchone()[0] is None:
            return 0
        row = self.con.execute(f"SELECT version FROM {dialect.VERSION_TABLE}").fetchone()
        return 0 if row is None else int(row[0])

    def _has_table(self, name: str) -> bool:
        if self.dialect == "sqlite":
            return self.con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                                    (name,)).fetchone() is not None
        return self.con.execute("SELECT to_regclass(?)", (name,)).fetchone()[0] is not None

    def _version(self) -> int:
        version = self._stored_version()
        if version == 0 and self._has_table("runs"):
            if self.dialect == "postgresql":
                raise RuntimeError(f"{self.where} holds a runs table but no ResNet Lab schema version: not a lab's "
                                   "database (or one damaged); nothing was changed")
            return 1  # the unversioned layout
        return version

    def _check_not_newer(self) -> None:
        version = self._version()
        if version > SCHEMA_VERSION:
            raise SchemaTooNew(
                f"The lab's database {self.where} was written by a newer ResNet Lab (schema version {version}); "
                f"this one reads versions up to {SCHEMA_VERSION}. It was left unchanged: upgrade ResNet Lab, or set "
                "RESNET_LAB_HOME (or RESNET_LAB_DB) to another lab.")

    def _upgrade(self) -> None:
        """Create a new database, or bring an older one up to SCHEMA_VERSION, in one transaction.
        On SQLite foreign keys are off meanwhile (a table rebuilt must not cascade into its children) and are
        checked before the commit; PostgreSQL's migrations rebuild no table and keep their keys checked."""
        if self._stored_version() == SCHEMA_VERSION:
            return
        if self.dialect == "sqlite":
            self.con.execute("PRAGMA foreign_keys=OFF")
        with self.tx() as con:
            version = self._version()  # again, under the write lock: another process may have upgraded it
            if version > SCHEMA_VERSION:
                raise SchemaTooNew(f"{self.where} was upgraded to schema {version} by a newer ResNet Lab meanwhile")
            if version == SCHEMA_VERSION:
                return
            if version == 0:
                statements = _statements(SCHEMA)
                for stmt in statements if self.dialect == "sqlite" else dialect.schema_statements(statements):
                    con.execute(stmt)
            else:
                while version < SCHEMA_VERSION:
                    MIGRATIONS[version](con, self.home)
                    version += 1
                if self.dialect == "sqlite":
                    bad = con.execute("PRAGMA foreign_key_check").fetchall()
                    if bad:
                        raise RuntimeError(f"upgrading {self.where} would break {len(bad)} references; nothing was "
                                           "changed")
            if self.dialect == "sqlite":
                con.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            else:
                con.execute(f"CREATE TABLE IF NOT EXISTS {dialect.VERSION_TABLE} (version BIGINT NOT NULL)")
                con.execute(f"DELETE FROM {dialect.VERSION_TABLE}")
                con.execute(f"INSERT INTO {dialect.VERSION_TABLE}(version) VALUES (?)", (SCHEMA_VERSION,))

    def close(self) -> None:
        self.con.close()

    @contextmanager
    def tx(self, exclusive: bool = True) -> Iterator[Any]:
        """One write transaction, taken up front so it never fails half-way on a lock: SQLite's BEGIN IMMEDIATE
        (one writer at a time, whatever ``exclusive`` says).

        On PostgreSQL an ``exclusive`` transaction (the default) keeps that rule with a transaction-scoped advisory
        lock taken before anything is read, so what it reads, checks and writes — an owner, the queue, a dedupe
        key — no other exclusive writer changes meanwhile (READ COMMITTED gives each later statement a snapshot
        taken after the lock). ``exclusive=False`` is for a worker's own frequent writes to its own rows
        (heartbeat, progress, metrics), which read nothing they decide on: they take only their rows' locks, so
        twenty workers' beats never queue behind one another's round trips to the server (the store's test of 20
        writers and 50 readers took 139 s with every write exclusive, 21 s so, on a busy 2-core machine)."""
        if self.dialect == "postgresql" and not exclusive:
            self.con.execute("BEGIN")
        else:
            self.con.execute("BEGIN IMMEDIATE" if self.dialect == "sqlite" else dialect.BEGIN_WRITE)
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def rel(self, path: str | Path | None) -> str | None:
        """A path as stored: relative to the lab home when it lies inside it."""
        return home_relative(str(path), self.home) if path else None

    def abs(self, stored: str | None) -> str | None:
        """A stored path as a usable one: resolved against the lab home where it is relative."""
        if not stored:
            return None
        p = Path(stored)
        return str(p if p.is_absolute() else self.home / p)
