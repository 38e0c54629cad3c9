"""The jobs table: every kind of background work in one queue.

A job is created with the runs it will train (none for an analysis), claimed onto a device slot in one
``BEGIN IMMEDIATE`` transaction (so two pumps never start it twice), beats a heartbeat while its worker
lives, and ends with a status. A job's status moves its active runs with it — claimed: running; stopped
while queued: stopped; lost: interrupted; resumed: queued — while a run's own final status (done,
diverged, stopped) is set by the worker that trains it. Placing, spawning and reaping live in
:mod:`resnet_lab.jobs`; this module is the SQL.
"""

from __future__ import annotations

import json
import time
from typing import Any, Iterable, Mapping, Sequence

from ..identity import MACHINE, Identity
from .db import Database
from .records import ACTIVE, FINISHED, JOB_STATUSES, RESUMABLE, Job, job_from_row, placeholders

DEDUPE_WINDOW_S = 5.0  # the same launch request from one browser session within this window is one job
_UPDATABLE = {"name", "progress", "total", "unit", "result_path", "error", "estimate_s"}


def slot_class(slot: str) -> str:
    """The kind of device a slot is: "cuda:1" -> "cuda", "cpu" -> "cpu"; of a job's slots ("cuda:0,cuda:1"),
    the first's."""
    return slot.split(",", 1)[0].split(":", 1)[0]


def place(kind: str, n: int, capacity: Mapping[str, int], free: Mapping[str, int]) -> list[str] | None:
    """Where a job of ``n`` processes on ``kind`` of device would run now: one slot per process, or None.

    One process goes to the slot of its kind with the most room (the lowest-numbered on a tie). Several
    processes of one GPU job take that many *different* GPUs (one device per rank, as NCCL requires),
    the roomiest first; on the CPU they take that many lanes of the cpu slot.
    """
    order = list(capacity)
    room = sorted((s for s in capacity if slot_class(s) == kind and free[s] > 0),
                  key=lambda s: (-free[s], order.index(s)))
    if kind == "cuda" or n == 1:
        return room[:n] if len(room) >= n else None
    return [room[0]] * n if room and free[room[0]] >= n else None


def lanes_in_use(slots: Iterable[str | None]) -> dict[str, int]:
    """{slot: processes on it} for the ``slot`` values of running jobs (each may list several)."""
    used: dict[str, int] = {}
    for text in slots:
        for slot in (text or "").split(","):
            if slot:
                used[slot] = used.get(slot, 0) + 1
    return used


class JobStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _job(self, row: Any) -> Job:
        return job_from_row(row, self.db.abs)

    # --- create and read ---------------------------------------------------------------------------

    def create(self, kind: str, name: str, device: str, *, params: Mapping[str, Any] | None = None,
               runs: Sequence[Mapping[str, Any]] = (), partners: bool = False, run_id: int | None = None,
               origin: str | None = None, request_key: str | None = None, work: Mapping[str, Any] | None = None,
               estimate_s: float | None = None, unit: str = "steps", world_size: int = 1,
               owner: Identity = MACHINE, fingerprint: str | None = None) -> tuple[int, list[int]]:
        """Queue a job; returns (job id, the ids of the runs created with it).

        Each item of ``runs`` holds ``name``, ``spec``, ``data``, ``train`` (and optionally ``finetune``);
        with ``partners`` the first two are each other's twin. ``run_id``: the run an analysis studies.
        With a ``request_key`` (say, a browser session and the launch settings), a second identical request
        within DEDUPE_WINDOW_S returns the first job instead of queueing again: a double-click is one job.
        ``world_size``: processes it runs on, each on its own slot (a DDP training job: several GPUs).
        ``owner``: who queues it (the job and its runs are theirs); ``fingerprint``: its settings, to find the
        same job finished earlier.
        """
        if device not in ("cpu", "cuda"):
            raise ValueError(f"device must be 'cpu' or 'cuda', got {device!r}")
        if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
            raise ValueError(f"world_size must be a whole number of at least 1, got {world_size!r}")
        if partners and len(runs) < 2:
            raise ValueError("twins need two runs")
        now = time.time()
        with self.db.tx() as con:
            if request_key is not None:
                row = con.execute("SELECT id FROM jobs WHERE request_key=? AND created_at>? ORDER BY id DESC",
                                  (request_key, now - DEDUPE_WINDOW_S)).fetchone()
                if row is not None:
                    ids = [r["id"] for r in con.execute("SELECT id FROM runs WHERE job_id=? ORDER BY id",
                                                        (row["id"],))]
                    return int(row["id"]), ids
            if run_id is not None and con.execute("SELECT 1 FROM runs WHERE id=?", (run_id,)).fetchone() is None:
                raise KeyError(f"no run with id {run_id}")
            job_id = int(con.execute(
                "INSERT INTO jobs(kind, name, params_json, status, device, run_id, origin, request_key, created_at,"
                " work_json, estimate_s, unit, world_size, owner, owner_name, queued_at, fingerprint)"
                " VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (kind, name, json.dumps(dict(params or {})), device, run_id, origin, request_key, now,
                 json.dumps(dict(work)) if work else None, estimate_s, unit, world_size, owner.owner, owner.name, now,
                 fingerprint)).lastrowid)
            ids: list[int] = []
            for r in runs:
                ids.append(int(con.execute(
                    "INSERT INTO runs(job_id, name, status, spec_json, data_json, train_json, finetune_json, device,"
                    " created_at, owner) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)",
                    (job_id, r["name"], json.dumps(r["spec"]), json.dumps(r["data"]), json.dumps(r["train"]),
                     json.dumps(r["finetune"]) if r.get("finetune") else None, device, now, owner.owner)).lastrowid))
            if partners:
                con.execute("UPDATE runs SET partner_id=? WHERE id=?", (ids[1], ids[0]))
                con.execute("UPDATE runs SET partner_id=? WHERE id=?", (ids[0], ids[1]))
            return job_id, ids

    def get(self, job_id: int) -> Job:
        row = self.db.con.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(f"no job with id {job_id}")
        return self._job(row)

    def list(self, kinds: Iterable[str] | None = None, statuses: Iterable[str] | None = None,
             run_ids: Iterable[int] | None = None, device: str | None = None, oldest_first: bool = False,
             limit: int = 500) -> list[Job]:
        """Jobs (newest first, or oldest first), optionally of some kinds, in some statuses, about some runs,
        asking for one kind of device."""
        where, args = [], []
        for column, values in (("kind", kinds), ("status", statuses), ("run_id", run_ids)):
            if values is not None:
                values = tuple(values)
                where.append(f"{column} IN ({placeholders(values)})")
                args += list(values)
        if device is not None:
            where.append("device=?")
            args.append(device)
        sql = ("SELECT * FROM jobs" + (f" WHERE {' AND '.join(where)}" if where else "")
               + f" ORDER BY id {'ASC' if oldest_first else 'DESC'} LIMIT ?")
        return [self._job(r) for r in self.db.con.execute(sql, (*args, limit)).fetchall()]

    def of_run(self, run_id: int) -> Job | None:
        """The job that trains (or trained) a run."""
        row = self.db.con.execute("SELECT j.* FROM jobs j JOIN runs r ON r.job_id=j.id WHERE r.id=?",
                                  (run_id,)).fetchone()
        return self._job(row) if row is not None else None

    def update(self, job_id: int, **fields: Any) -> None:
        cols, vals = [], []
        for key, value in fields.items():
            if key not in _UPDATABLE:
                raise ValueError(f"cannot update job column {key!r}")
            if key == "result_path":
                value = self.db.rel(value)
            cols.append(f"{key}=?")
            vals.append(value)
        with self.db.tx() as con:
            con.execute(f"UPDATE jobs SET {', '.join(cols)} WHERE id=?", (*vals, job_id))

    # --- the queue -----------------------------------------------------------------------------------

    def claim(self, capacity: Mapping[str, int]) -> list[tuple[int, str]]:
        """Atomically start queued jobs on free slots; returns [(job id, slot)] in queue order.

        ``capacity`` maps each slot ("cpu", "cuda:0", ...) to how many processes may run on it at once. Jobs
        are taken first come, first served and placed by :func:`place`: a job of ``world_size`` N takes N
        lanes, its ``slot`` then lists one slot per process ("cuda:0,cuda:2", "cpu,cpu"). A job that does not
        fit waits, and so does every job behind it for the same kind of device (a small job never overtakes
        a big one that waits for its GPUs); a job for another kind of device may start.
        """
        if self.db.con.execute("SELECT 1 FROM jobs WHERE status='queued' LIMIT 1").fetchone() is None:
            return []  # the common case (many pages polling, nothing queued) takes no write lock
        now = time.time()
        started: list[tuple[int, str]] = []
        with self.db.tx() as con:
            used = lanes_in_use(r["slot"] for r in con.execute("SELECT slot FROM jobs WHERE status='running'"))
            free = {slot: capacity[slot] - used.get(slot, 0) for slot in capacity}
            waiting: set[str] = set()  # kinds of device with a job waiting: those behind it wait too
            for row in con.execute("SELECT id, device, world_size FROM jobs WHERE status='queued' ORDER BY id"
                                   ).fetchall():
                chosen = None if row["device"] in waiting else place(row["device"], row["world_size"], capacity,
                                                                     free)
                if chosen is None:
                    waiting.add(row["device"])
                    if not any(v > 0 for v in free.values()):
                        break
                    continue
                for s in chosen:
                    free[s] -= 1
                slot = ",".join(chosen)
                con.execute("UPDATE jobs SET status='running', slot=?, heartbeat_at=?, started_at=COALESCE(started_at,"
                            " ?), stop_requested=0, pid=NULL WHERE id=? AND status='queued'",
                            (slot, now, now, row["id"]))
                con.execute("UPDATE runs SET status='running', device=?, started_at=COALESCE(started_at, ?)"
                            " WHERE job_id=? AND status='queued'", (slot, now, row["id"]))
                started.append((int(row["id"]), slot))
        return started

    def running_per_slot(self) -> dict[str, int]:
        """{slot: processes of running jobs on it} (a job of several processes counts once on each of its slots)."""
        return lanes_in_use(r["slot"] for r in self.db.con.execute("SELECT slot FROM jobs WHERE status='running'"))

    def started(self, job_id: int, pid: int, heartbeat_at: float) -> None:
        """Record the worker process of a claimed job."""
        with self.db.tx() as con:
            con.execute("UPDATE jobs SET pid=?, heartbeat_at=? WHERE id=?", (pid, heartbeat_at, job_id))

    def beat(self, job_id: int) -> bool:
        """The worker is alive; returns whether it has been asked to stop."""
        with self.db.tx() as con:
            con.execute("UPDATE jobs SET heartbeat_at=? WHERE id=?", (time.time(), job_id))
            row = con.execute("SELECT stop_requested FROM jobs WHERE id=?", (job_id,)).fetchone()
        return bool(row and row["stop_requested"])

    def set_progress(self, job_id: int, done: int, total: int | None) -> None:
        with self.db.tx() as con:
            con.execute("UPDATE jobs SET progress=?, total=COALESCE(?, total) WHERE id=?", (done, total, job_id))

    def finish(self, job_id: int, status: str, error: str | None = None, only_if: Sequence[str] = ("running",),
               result_path: str | None = None) -> bool:
        """End a job (only from the statuses in ``only_if``); its runs still queued or running end with it.
        Returns whether it moved."""
        if status not in JOB_STATUSES:
            raise ValueError(f"unknown job status {status!r}")
        finished = time.time() if status in FINISHED else None
        with self.db.tx() as con:
            moved = con.execute(
                f"UPDATE jobs SET status=?, error=COALESCE(?, error), finished_at=?,"
                f" result_path=COALESCE(?, result_path) WHERE id=? AND status IN ({placeholders(only_if)})",
                (status, error, finished, self.db.rel(result_path), job_id, *only_if)).rowcount > 0
            if moved:
                con.execute("UPDATE runs SET status=?, error=COALESCE(?, error), finished_at=? WHERE job_id=? AND"
                            " status IN ('queued', 'running')", (status, error, finished, job_id))
            return moved

    def stop(self, job_id: int) -> str:
        """Ask a job to stop: a queued job stops at once ("stopped"); a running one is asked ("stopping")
        and finishes its current step or evaluation first. Anything else is left as it is."""
        with self.db.tx() as con:
            row = con.execute("SELECT status FROM jobs WHERE id=?", (job_id,)).fetchone()
            if row is None:
                raise KeyError(f"no job with id {job_id}")
            if row["status"] == "queued":
                now = time.time()
                con.execute("UPDATE jobs SET status='stopped', finished_at=? WHERE id=?", (now, job_id))
                con.execute("UPDATE runs SET status='stopped', finished_at=? WHERE job_id=? AND status='queued'",
                            (now, job_id))
                return "stopped"
            if row["status"] == "running":
                con.execute("UPDATE jobs SET stop_requested=1 WHERE id=?", (job_id,))
                return "stopping"
            return row["status"]

    def requeue(self, job_id: int) -> None:
        """Put a stopped or interrupted job back in the queue (a training job resumes from its last checkpoint);
        runs that ended otherwise (done, diverged) stay as they are."""
        with self.db.tx() as con:
            row = con.execute("SELECT status FROM jobs WHERE id=?", (job_id,)).fetchone()
            if row is None:
                raise KeyError(f"no job with id {job_id}")
            if row["status"] not in RESUMABLE:
                raise ValueError(f"job {job_id} is {row['status']}; only stopped or interrupted jobs resume")
            con.execute("UPDATE jobs SET status='queued', finished_at=NULL, error=NULL, stop_requested=0, pid=NULL,"
                        " resumes=resumes+1, queued_at=? WHERE id=?", (time.time(), job_id))
            con.execute(f"UPDATE runs SET status='queued', finished_at=NULL, error=NULL WHERE job_id=? AND status IN"
                        f" ({placeholders(RESUMABLE)})", (job_id, *RESUMABLE))

    def delete(self, job_id: int) -> None:
        """Delete a finished job with its runs, their metrics and the analysis jobs about them."""
        with self.db.tx() as con:
            row = con.execute("SELECT status FROM jobs WHERE id=?", (job_id,)).fetchone()
            if row is None:
                raise KeyError(f"no job with id {job_id}")
            ids = [r["id"] for r in con.execute("SELECT id FROM runs WHERE job_id=?", (job_id,))]
            active = con.execute(
                f"SELECT id, status FROM jobs WHERE (id=? OR run_id IN ({placeholders(ids)})) AND status IN"
                f" ({placeholders(ACTIVE)})", (job_id, *ids, *ACTIVE)).fetchone()
            if active is not None:
                raise ValueError(f"job {active['id']} is still {active['status']}; stop it first")
            if ids:
                marks = placeholders(ids)
                for table in ("metrics", "grad_norms", "run_layers"):
                    con.execute(f"DELETE FROM {table} WHERE run_id IN ({marks})", ids)
                con.execute(f"DELETE FROM jobs WHERE run_id IN ({marks})", ids)
                con.execute(f"UPDATE runs SET partner_id=NULL WHERE partner_id IN ({marks})", ids)
                con.execute(f"DELETE FROM runs WHERE id IN ({marks})", ids)
            con.execute("DELETE FROM jobs WHERE id=?", (job_id,))

    # --- learned speeds ------------------------------------------------------------------------------

    def learn_speed(self, device: str, key: str, seconds: float, units: float) -> None:
        """Fold one finished job's measured seconds per unit of work (say, per training image) into the
        figure for (device kind, key): a running mean over the last few jobs."""
        if not key or units <= 0 or seconds <= 0:
            return
        per = seconds / units
        with self.db.tx() as con:
            row = con.execute("SELECT seconds_per_unit, samples FROM speeds WHERE device=? AND key=?",
                              (device, key)).fetchone()
            if row is None:
                con.execute("INSERT INTO speeds(device, key, seconds_per_unit, samples, updated_at)"
                            " VALUES (?, ?, ?, 1, ?)", (device, key, per, time.time()))
            else:
                n = min(row["samples"], 4)  # weigh recent jobs more: the mean of about the last five
                con.execute("UPDATE speeds SET seconds_per_unit=?, samples=samples+1, updated_at=? WHERE device=?"
                            " AND key=?", ((row["seconds_per_unit"] * n + per) / (n + 1), time.time(), device, key))

    def speed(self, device: str, key: str) -> float | None:
        """Learned seconds per unit of work for (device kind, key), or None before any job taught it."""
        row = self.db.con.execute("SELECT seconds_per_unit FROM speeds WHERE device=? AND key=?",
                                  (device, key)).fetchone()
        return float(row["seconds_per_unit"]) if row else None
