"""The run registry: one SQLite file (WAL mode, busy timeout) shared by workers, the app and the CLI.

Many processes write (one worker per run, each a few times a second at most) and many read (every
open browser tab polls). WAL lets readers run beside one writer; the busy timeout makes a writer wait
for another instead of failing with "database is locked"; every write is one short transaction.

Twin runs: "Train with plain twin" creates two rows in one *job*. The ResNet's row is the job
(``twin_of`` NULL) and the plain twin's row points at it with ``twin_of``. One worker trains both.
"""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from .paths import lab_home

STATUSES = ("queued", "running", "done", "stopped", "failed", "diverged", "interrupted")
ACTIVE = ("queued", "running")
FINISHED = ("done", "stopped", "failed", "diverged", "interrupted")
BUSY_TIMEOUT_MS = 30_000
DEDUPE_WINDOW_S = 5.0  # the same launch request from one browser session within this window is one run

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    twin_of INTEGER REFERENCES runs(id) ON DELETE CASCADE,
    spec_json TEXT NOT NULL,
    data_json TEXT NOT NULL,
    train_json TEXT NOT NULL,
    device TEXT NOT NULL,
    request_key TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    heartbeat_at REAL,
    pid INTEGER,
    error TEXT,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    step INTEGER NOT NULL DEFAULT 0,
    total_steps INTEGER,
    best_json TEXT,
    last_json TEXT,
    ckpt_best TEXT,
    ckpt_last TEXT,
    resumes INTEGER NOT NULL DEFAULT 0,
    finetune_json TEXT
);
CREATE INDEX IF NOT EXISTS runs_status ON runs(status, device, id);
CREATE INDEX IF NOT EXISTS runs_request ON runs(request_key, created_at);
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
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    params_json TEXT NOT NULL,
    status TEXT NOT NULL,
    device TEXT NOT NULL,
    request_key TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    heartbeat_at REAL,
    pid INTEGER,
    error TEXT,
    stop_requested INTEGER NOT NULL DEFAULT 0,
    progress INTEGER NOT NULL DEFAULT 0,
    total INTEGER,
    result_path TEXT
);
CREATE INDEX IF NOT EXISTS tasks_status ON tasks(status, device, id);
CREATE INDEX IF NOT EXISTS tasks_run ON tasks(run_id, kind, id);
CREATE TABLE IF NOT EXISTS experiments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    params_json TEXT NOT NULL,
    job_ids_json TEXT NOT NULL,
    created_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Run:
    id: int
    name: str
    status: str
    twin_of: int | None
    spec: dict[str, Any]
    data: dict[str, Any]
    train: dict[str, Any]
    device: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    heartbeat_at: float | None
    pid: int | None
    error: str | None
    stop_requested: bool
    step: int
    total_steps: int | None
    best: dict[str, Any]
    last: dict[str, Any]
    ckpt_best: str | None
    ckpt_last: str | None
    resumes: int
    finetune: dict[str, Any]  # fine-tuning settings ({} for a run trained as built)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or (self.heartbeat_at if self.status != "running" else time.time())
        return max(0.0, (end or self.started_at) - self.started_at)


def _run_from_row(row: sqlite3.Row) -> Run:
    return Run(
        id=row["id"], name=row["name"], status=row["status"], twin_of=row["twin_of"],
        spec=json.loads(row["spec_json"]), data=json.loads(row["data_json"]), train=json.loads(row["train_json"]),
        device=row["device"], created_at=row["created_at"], started_at=row["started_at"],
        finished_at=row["finished_at"], heartbeat_at=row["heartbeat_at"], pid=row["pid"], error=row["error"],
        stop_requested=bool(row["stop_requested"]), step=row["step"], total_steps=row["total_steps"],
        best=json.loads(row["best_json"] or "{}"), last=json.loads(row["last_json"] or "{}"),
        ckpt_best=row["ckpt_best"], ckpt_last=row["ckpt_last"], resumes=row["resumes"],
        finetune=json.loads(row["finetune_json"] or "{}"),
    )


@dataclass(frozen=True)
class Task:
    """A background analysis of a run (e.g. a loss landscape): queued, run by its own worker, results on disk."""

    id: int
    kind: str  # what it computes, e.g. "landscape"
    run_id: int  # the run it studies (its results live in that run's folder)
    params: dict[str, Any]
    status: str  # one of TASK_STATUSES
    device: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    heartbeat_at: float | None
    pid: int | None
    error: str | None
    stop_requested: bool
    progress: int  # units done (e.g. loss evaluations)
    total: int | None  # units in all, once known
    result_path: str | None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def fraction(self) -> float:
        return min(1.0, self.progress / self.total) if self.total else 0.0


def _task_from_row(row: sqlite3.Row) -> Task:
    return Task(
        id=row["id"], kind=row["kind"], run_id=row["run_id"], params=json.loads(row["params_json"]),
        status=row["status"], device=row["device"], created_at=row["created_at"], started_at=row["started_at"],
        finished_at=row["finished_at"], heartbeat_at=row["heartbeat_at"], pid=row["pid"], error=row["error"],
        stop_requested=bool(row["stop_requested"]), progress=row["progress"], total=row["total"],
        result_path=row["result_path"])


@dataclass(frozen=True)
class Experiment:
    """A named group of jobs launched together (e.g. the degradation experiment's four runs)."""

    id: int
    kind: str  # e.g. "degradation"
    name: str
    params: dict[str, Any]
    job_ids: list[int]
    created_at: float


class Store:
    """Thin, process-safe access to the run database. Open one per process (or per thread)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else lab_home() / "runs.db"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                    check_same_thread=False)
        self._con.row_factory = sqlite3.Row
        self._con.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self._con.execute("PRAGMA journal_mode=WAL")
        self._con.execute("PRAGMA synchronous=NORMAL")
        self._con.execute("PRAGMA foreign_keys=ON")
        with self.tx():
            for stmt in filter(str.strip, SCHEMA.split(";")):
                self._con.execute(stmt)
            columns = {r["name"] for r in self._con.execute("PRAGMA table_info(runs)")}
            if "finetune_json" not in columns:  # a database made before fine-tuning existed
                self._con.execute("ALTER TABLE runs ADD COLUMN finetune_json TEXT")

    def close(self) -> None:
        self._con.close()

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken up front (BEGIN IMMEDIATE) so it never fails half-way on a lock."""
        self._con.execute("BEGIN IMMEDIATE")
        try:
            yield self._con
        except BaseException:
            self._con.execute("ROLLBACK")
            raise
        self._con.execute("COMMIT")

    # --- runs -----------------------------------------------------------------------------

    def create_job(self, runs: Sequence[dict[str, Any]], device: str, request_key: str | None = None) -> list[int]:
        """Queue one job: a run, or a run and its twins (the first row is the job).

        Each item holds ``name``, ``spec``, ``data``, ``train``. With a ``request_key`` (say, a browser
        session and the launch settings), a second identical request within DEDUPE_WINDOW_S returns the
        first job's ids instead of queueing again: a double-click makes one run.
        """
        if not runs:
            raise ValueError("a job needs at least one run")
        now = time.time()
        with self.tx() as con:
            if request_key is not None:
                row = con.execute(
                    "SELECT id FROM runs WHERE request_key=? AND twin_of IS NULL AND created_at>? ORDER BY id DESC",
                    (request_key, now - DEDUPE_WINDOW_S)).fetchone()
                if row is not None:
                    twins = con.execute("SELECT id FROM runs WHERE twin_of=? ORDER BY id", (row["id"],)).fetchall()
                    return [row["id"], *[t["id"] for t in twins]]
            ids: list[int] = []
            for i, r in enumerate(runs):
                cur = con.execute(
                    "INSERT INTO runs(name, status, twin_of, spec_json, data_json, train_json, device, request_key,"
                    " created_at, finetune_json) VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?)",
                    (r["name"], ids[0] if i else None, json.dumps(r["spec"]), json.dumps(r["data"]),
                     json.dumps(r["train"]), device, request_key if i == 0 else None, now,
                     json.dumps(r["finetune"]) if r.get("finetune") else None))
                ids.append(int(cur.lastrowid))
            return ids

    def get(self, run_id: int) -> Run:
        row = self._con.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(f"no run with id {run_id}")
        return _run_from_row(row)

    def runs(self, statuses: Iterable[str] | None = None, limit: int = 500) -> list[Run]:
        """Runs, newest first."""
        if statuses is None:
            rows = self._con.execute("SELECT * FROM runs ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        else:
            st = tuple(statuses)
            rows = self._con.execute(
                f"SELECT * FROM runs WHERE status IN ({','.join('?' * len(st))}) ORDER BY id DESC LIMIT ?",
                (*st, limit)).fetchall()
        return [_run_from_row(r) for r in rows]

    def job_runs(self, job_id: int) -> list[Run]:
        """The job's own run and its twins, in creation order."""
        rows = self._con.execute("SELECT * FROM runs WHERE id=? OR twin_of=? ORDER BY id", (job_id, job_id)).fetchall()
        return [_run_from_row(r) for r in rows]

    def update(self, run_id: int, **fields: Any) -> None:
        """Set columns of one run (``best``/``last`` dicts are stored as JSON)."""
        cols, vals = [], []
        for key, value in fields.items():
            if key in ("best", "last"):
                key, value = key + "_json", json.dumps(value)
            if key not in _UPDATABLE:
                raise ValueError(f"cannot update column {key!r}")
            cols.append(f"{key}=?")
            vals.append(value)
        with self.tx() as con:
            con.execute(f"UPDATE runs SET {', '.join(cols)} WHERE id=?", (*vals, run_id))

    def set_status(self, run_id: int, status: str, error: str | None = None, only_if: Sequence[str] | None = None) -> bool:
        """Move a run to ``status`` (optionally only from the given statuses). Returns whether it moved."""
        return self._set_status("runs", run_id, status, error, only_if)

    def _set_status(self, table: str, row_id: int, status: str, error: str | None,
                    only_if: Sequence[str] | None) -> bool:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        finished = time.time() if status in FINISHED else None
        with self.tx() as con:
            sql = f"UPDATE {table} SET status=?, error=COALESCE(?, error), finished_at=? WHERE id=?"
            args: list[Any] = [status, error, finished, row_id]
            if only_if:
                sql += f" AND status IN ({','.join('?' * len(only_if))})"
                args += list(only_if)
            return con.execute(sql, args).rowcount > 0

    def request_stop(self, job_id: int) -> str:
        """Ask a job to stop: a queued job stops at once, a running one finishes its step and checkpoints."""
        with self.tx() as con:
            rows = con.execute("SELECT id, status FROM runs WHERE id=? OR twin_of=?", (job_id, job_id)).fetchall()
            if not rows:
                raise KeyError(f"no run with id {job_id}")
            status = {r["id"]: r["status"] for r in rows}[job_id]
            if status == "queued":
                con.execute("UPDATE runs SET status='stopped', finished_at=? WHERE (id=? OR twin_of=?) AND status='queued'",
                            (time.time(), job_id, job_id))
                return "stopped"
            if status == "running":
                con.execute("UPDATE runs SET stop_requested=1 WHERE id=? OR twin_of=?", (job_id, job_id))
                return "stopping"
            return status

    def stop_requested(self, job_id: int) -> bool:
        row = self._con.execute("SELECT stop_requested FROM runs WHERE id=?", (job_id,)).fetchone()
        return bool(row and row["stop_requested"])

    def heartbeat(self, run_ids: Sequence[int], step: int | None = None) -> None:
        now = time.time()
        with self.tx() as con:
            for rid in run_ids:
                if step is None:
                    con.execute("UPDATE runs SET heartbeat_at=? WHERE id=?", (now, rid))
                else:
                    con.execute("UPDATE runs SET heartbeat_at=?, step=? WHERE id=?", (now, step, rid))

    def delete(self, job_id: int) -> None:
        """Delete a finished run (and its twins) with its metrics. Active runs must be stopped first."""
        with self.tx() as con:
            rows = con.execute("SELECT id, status FROM runs WHERE id=? OR twin_of=?", (job_id, job_id)).fetchall()
            if any(r["status"] in ACTIVE for r in rows):
                raise ValueError(f"run {job_id} is still {rows[0]['status']}; stop it first")
            ids = [r["id"] for r in rows]
            for table in ("metrics", "grad_norms", "run_layers", "tasks"):
                con.execute(f"DELETE FROM {table} WHERE run_id IN ({','.join('?' * len(ids))})", ids)
            con.execute(f"DELETE FROM runs WHERE id IN ({','.join('?' * len(ids))})", ids)

    # --- the queue ----------------------------------------------------------------------------

    def claim_next(self, device: str, limit: int) -> list[int]:
        """Atomically move queued jobs to ``running`` while fewer than ``limit`` run on ``device`` (FIFO)."""
        now = time.time()
        if self._con.execute("SELECT 1 FROM runs WHERE status='queued' AND device=? LIMIT 1", (device,)).fetchone() \
                is None:
            return []  # the common case (many pages polling, nothing queued) takes no write lock
        with self.tx() as con:
            running = con.execute("SELECT COUNT(*) FROM runs WHERE status='running' AND device=? AND twin_of IS NULL",
                                  (device,)).fetchone()[0]
            free = max(0, limit - running)
            if not free:
                return []
            ids = [r["id"] for r in con.execute(
                "SELECT id FROM runs WHERE status='queued' AND device=? AND twin_of IS NULL ORDER BY id LIMIT ?",
                (device, free))]
            for rid in ids:
                con.execute("UPDATE runs SET status='running', heartbeat_at=?, started_at=COALESCE(started_at, ?),"
                            " stop_requested=0, pid=NULL WHERE (id=? OR twin_of=?) AND status='queued'",
                            (now, now, rid, rid))
            return ids

    def requeue(self, job_id: int) -> None:
        """Put an interrupted or stopped job back in the queue to resume from its last checkpoint."""
        with self.tx() as con:
            rows = con.execute("SELECT status FROM runs WHERE id=? AND twin_of IS NULL", (job_id,)).fetchone()
            if rows is None:
                raise KeyError(f"no job with id {job_id}")
            if rows["status"] not in ("interrupted", "stopped"):
                raise ValueError(f"run {job_id} is {rows['status']}; only stopped or interrupted runs resume")
            con.execute("UPDATE runs SET status='queued', finished_at=NULL, error=NULL, stop_requested=0,"
                        " resumes=resumes+1 WHERE (id=? OR twin_of=?) AND status IN ('interrupted','stopped')",
                        (job_id, job_id))

    # --- metrics ----------------------------------------------------------------------------------

    def add_metrics(self, rows: Iterable[tuple[int, int, float, str, float]]) -> None:
        """Append (run_id, step, epoch, key, value) rows in one transaction."""
        rows = list(rows)
        if rows:
            with self.tx() as con:
                con.executemany("INSERT INTO metrics(run_id, step, epoch, key, value) VALUES (?, ?, ?, ?, ?)", rows)

    def metrics(self, run_id: int, keys: Sequence[str] | None = None, max_points: int | None = None,
                ) -> dict[str, list[tuple[int, float, float]]]:
        """{key: [(step, epoch, value), ...]} ordered by step; each series decimated to ``max_points``."""
        if keys:
            rows = self._con.execute(
                f"SELECT key, step, epoch, value FROM metrics WHERE run_id=? AND key IN ({','.join('?' * len(keys))})"
                " ORDER BY key, step", (run_id, *keys)).fetchall()
        else:
            rows = self._con.execute("SELECT key, step, epoch, value FROM metrics WHERE run_id=? ORDER BY key, step",
                                     (run_id,)).fetchall()
        out: dict[str, list[tuple[int, float, float]]] = {}
        for r in rows:
            out.setdefault(r["key"], []).append((r["step"], r["epoch"], r["value"]))
        if max_points:
            out = {k: decimate(v, max_points) for k, v in out.items()}
        return out

    def truncate_metrics(self, run_id: int, after_step: int) -> None:
        """Forget metrics logged after ``after_step`` (a resumed run replays those steps)."""
        with self.tx() as con:
            con.execute("DELETE FROM metrics WHERE run_id=? AND step>?", (run_id, after_step))
            con.execute("DELETE FROM grad_norms WHERE run_id=? AND step>=?", (run_id, after_step))

    def set_layer_names(self, run_id: int, names: Sequence[str]) -> None:
        with self.tx() as con:
            con.execute("INSERT OR REPLACE INTO run_layers(run_id, names_json) VALUES (?, ?)",
                        (run_id, json.dumps(list(names))))

    def add_grad_norms(self, rows: Iterable[tuple[int, int, Sequence[float]]]) -> None:
        rows = [(rid, step, json.dumps([float(v) for v in norms])) for rid, step, norms in rows]
        if rows:
            with self.tx() as con:
                con.executemany("INSERT INTO grad_norms(run_id, step, norms_json) VALUES (?, ?, ?)", rows)

    def grad_norms(self, run_id: int) -> tuple[list[str], list[int], list[list[float]]]:
        """(layer names, steps, norms per step) logged during training."""
        row = self._con.execute("SELECT names_json FROM run_layers WHERE run_id=?", (run_id,)).fetchone()
        names = json.loads(row["names_json"]) if row else []
        rows = self._con.execute("SELECT step, norms_json FROM grad_norms WHERE run_id=? ORDER BY step",
                                 (run_id,)).fetchall()
        return names, [r["step"] for r in rows], [json.loads(r["norms_json"]) for r in rows]


    # --- background tasks (analyses of a run) -------------------------------------------------------

    def create_task(self, kind: str, run_id: int, params: dict[str, Any], device: str,
                    request_key: str | None = None) -> int:
        """Queue a task; with a ``request_key``, the same request within DEDUPE_WINDOW_S returns the first task."""
        now = time.time()
        with self.tx() as con:
            if con.execute("SELECT 1 FROM runs WHERE id=?", (run_id,)).fetchone() is None:
                raise KeyError(f"no run with id {run_id}")
            if request_key is not None:
                row = con.execute("SELECT id FROM tasks WHERE request_key=? AND created_at>? ORDER BY id DESC",
                                  (request_key, now - DEDUPE_WINDOW_S)).fetchone()
                if row is not None:
                    return int(row["id"])
            cur = con.execute(
                "INSERT INTO tasks(kind, run_id, params_json, status, device, request_key, created_at)"
                " VALUES (?, ?, ?, 'queued', ?, ?, ?)", (kind, run_id, json.dumps(params), device, request_key, now))
            return int(cur.lastrowid)

    def get_task(self, task_id: int) -> Task:
        row = self._con.execute("SELECT * FROM tasks WHERE id=?", (task_id,)).fetchone()
        if row is None:
            raise KeyError(f"no task with id {task_id}")
        return _task_from_row(row)

    def tasks(self, kind: str | None = None, run_id: int | None = None, statuses: Iterable[str] | None = None,
              limit: int = 200) -> list[Task]:
        """Tasks, newest first, optionally of one kind, about one run, in some statuses."""
        where, args = [], []
        if kind is not None:
            where.append("kind=?")
            args.append(kind)
        if run_id is not None:
            where.append("run_id=?")
            args.append(run_id)
        if statuses is not None:
            st = tuple(statuses)
            where.append(f"status IN ({','.join('?' * len(st))})")
            args += list(st)
        sql = "SELECT * FROM tasks" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id DESC LIMIT ?"
        return [_task_from_row(r) for r in self._con.execute(sql, (*args, limit)).fetchall()]

    def update_task(self, task_id: int, **fields: Any) -> None:
        cols, vals = [], []
        for key, value in fields.items():
            if key not in _TASK_UPDATABLE:
                raise ValueError(f"cannot update task column {key!r}")
            cols.append(f"{key}=?")
            vals.append(value)
        with self.tx() as con:
            con.execute(f"UPDATE tasks SET {', '.join(cols)} WHERE id=?", (*vals, task_id))

    def set_task_status(self, task_id: int, status: str, error: str | None = None,
                        only_if: Sequence[str] | None = None) -> bool:
        return self._set_status("tasks", task_id, status, error, only_if)

    def request_task_stop(self, task_id: int) -> str:
        """A queued task stops at once; a running one is asked to stop after its current evaluation."""
        with self.tx() as con:
            row = con.execute("SELECT status FROM tasks WHERE id=?", (task_id,)).fetchone()
            if row is None:
                raise KeyError(f"no task with id {task_id}")
            if row["status"] == "queued":
                con.execute("UPDATE tasks SET status='stopped', finished_at=? WHERE id=?", (time.time(), task_id))
                return "stopped"
            if row["status"] == "running":
                con.execute("UPDATE tasks SET stop_requested=1 WHERE id=?", (task_id,))
                return "stopping"
            return row["status"]

    def claim_next_task(self, device: str, limit: int) -> list[int]:
        """Atomically move queued tasks to ``running`` while fewer than ``limit`` run on ``device`` (FIFO)."""
        if self._con.execute("SELECT 1 FROM tasks WHERE status='queued' AND device=? LIMIT 1", (device,)).fetchone() \
                is None:
            return []
        now = time.time()
        with self.tx() as con:
            running = con.execute("SELECT COUNT(*) FROM tasks WHERE status='running' AND device=?",
                                  (device,)).fetchone()[0]
            free = max(0, limit - running)
            ids = [r["id"] for r in con.execute(
                "SELECT id FROM tasks WHERE status='queued' AND device=? ORDER BY id LIMIT ?", (device, free))] \
                if free else []
            for tid in ids:
                con.execute("UPDATE tasks SET status='running', heartbeat_at=?, started_at=?, pid=NULL"
                            " WHERE id=? AND status='queued'", (now, now, tid))
            return ids

    # --- experiments (groups of jobs) ---------------------------------------------------------------

    def create_experiment(self, kind: str, name: str, params: dict[str, Any], job_ids: Sequence[int]) -> int:
        """Group jobs into an experiment. The same kind over the same jobs (in the same order) is one experiment:
        asking again — a second process racing the first included — returns the first one's id."""
        jobs_json = json.dumps([int(j) for j in job_ids])
        with self.tx() as con:
            row = con.execute("SELECT id FROM experiments WHERE kind=? AND job_ids_json=? ORDER BY id LIMIT 1",
                              (kind, jobs_json)).fetchone()
            if row is not None:
                return int(row["id"])
            cur = con.execute("INSERT INTO experiments(kind, name, params_json, job_ids_json, created_at)"
                              " VALUES (?, ?, ?, ?, ?)",
                              (kind, name, json.dumps(params), jobs_json, time.time()))
            return int(cur.lastrowid)

    def experiment(self, experiment_id: int) -> Experiment:
        row = self._con.execute("SELECT * FROM experiments WHERE id=?", (experiment_id,)).fetchone()
        if row is None:
            raise KeyError(f"no experiment with id {experiment_id}")
        return _experiment_from_row(row)

    def experiments(self, kind: str | None = None, limit: int = 100) -> list[Experiment]:
        """Experiments, newest first."""
        if kind is None:
            rows = self._con.execute("SELECT * FROM experiments ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        else:
            rows = self._con.execute("SELECT * FROM experiments WHERE kind=? ORDER BY id DESC LIMIT ?",
                                     (kind, limit)).fetchall()
        return [_experiment_from_row(r) for r in rows]


def _experiment_from_row(row: sqlite3.Row) -> Experiment:
    return Experiment(id=row["id"], kind=row["kind"], name=row["name"], params=json.loads(row["params_json"]),
                      job_ids=json.loads(row["job_ids_json"]), created_at=row["created_at"])


_TASK_UPDATABLE = {"status", "started_at", "finished_at", "heartbeat_at", "pid", "error", "progress", "total",
                   "result_path", "device"}

_UPDATABLE = {"name", "status", "started_at", "finished_at", "heartbeat_at", "pid", "error", "step", "total_steps",
              "best_json", "last_json", "ckpt_best", "ckpt_last", "device"}


def decimate(points: list, max_points: int) -> list:
    """Keep at most ``max_points`` evenly spread points, always including the first and the last."""
    n = len(points)
    if n <= max_points or max_points < 2:
        return points
    stride = (n - 1) / (max_points - 1)
    return [points[round(i * stride)] for i in range(max_points)]
