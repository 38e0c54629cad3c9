"""The jobs table: every kind of background work in one queue.

A job is created (its kind writes its own records, such as the runs it trains, in the same transaction),
claimed onto a device slot in one ``BEGIN IMMEDIATE`` transaction (so two pumps never start it twice), beats a
heartbeat while its worker lives, and ends with a status. A job's status moves its active runs with it —
claimed: running; stopped while queued: stopped; lost: interrupted; resumed: queued — while a run's own final
status (done, diverged, stopped) is set by the worker that trains it. Spawning, reaping and the
policy of whose turn it is live in :mod:`resnet_lab.jobs`; this module is the SQL (a claim takes the policy as
a function and applies it inside its transaction).

Every change to a job names who asks (``by``, a :class:`resnet_lab.identity.Identity`); the owner is read
and checked in the same transaction as the change, so a refused request (:class:`NotAllowed`) changes
nothing.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Iterable, Mapping, Sequence

from ..identity import MACHINE, Identity, require
from .db import Database
from .records import ACTIVE, FINISHED, JOB_STATUSES, RESUMABLE, Job, job_from_row, placeholders

DEDUPE_WINDOW_S = 5.0  # the same launch request from one browser session within this window (or while its job
# is still queued or running) is one job
_UPDATABLE = {"name", "progress", "total", "unit", "result_path", "error", "estimate_s"}


Choose = Callable[[list[Job], Mapping[tuple[str, str], int], Mapping[str, int], Mapping[str, int], Mapping[str, int]],
                  list[tuple[Job, list[str]]]]
"""The claim's policy: (queued jobs, turns, capacity, free lanes, running per owner) -> [(job, its slots)]."""


DEVICE_KINDS = ("cpu", "cuda", "net")  # what a job waits for: a CPU lane, a GPU, or (a download) the network


def slot_class(slot: str) -> str:
    """The kind of device a slot is: "cuda:1" -> "cuda", "cpu" -> "cpu"; of a job's slots ("cuda:0,cuda:1"),
    the first's."""
    return slot.split(",", 1)[0].split(":", 1)[0]


class QueueFull(ValueError):
    """An owner already has as many jobs waiting or running as the class allows (nothing was queued)."""


def queue_full_message(active: int, cap: int, wanted: int = 1) -> str:
    """What a student is told when their jobs are at the class's cap."""
    jobs = f"{active} job{'s' if active != 1 else ''}"
    if wanted > 1:
        return (f"This needs {wanted} jobs, and you already have {jobs} waiting or running; this class allows {cap} "
                "at a time. Stop one or wait for one to finish.")
    return (f"You already have {jobs} waiting or running; this class allows {cap} at a time. Stop one or wait "
            "for one to finish.")


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
               origin: str | None = None, request_key: str | None = None, work: Mapping[str, Any] | None = None,
               estimate_s: float | None = None, unit: str = "steps", world_size: int = 1,
               owner: Identity = MACHINE, fingerprint: str | None = None, max_active_per_owner: int | None = None,
               then: Callable[[Any, int, float], list[int]] | None = None) -> tuple[int, list[int]]:
        """Queue a job; returns (job id, the ids of the records written with it by ``then``).

        The queue knows no kind of work and none of its records. ``then(con, job_id, created_at)``, when given,
        writes the records of the job's kind on this connection, inside the transaction that inserts the job (a
        failure undoes both), and returns their ids: the queue passes its kind's ``on_submit`` here
        (:func:`resnet_lab.jobs.scheduler.submit`); code that seeds a lab home passes its own, written with the
        same store methods (say, :meth:`resnet_lab.store.runs.RunStore.add_to_job` and :meth:`set_run`).
        With a ``request_key`` (say, a browser session and the launch settings), a second identical request
        returns the first job instead of queueing again while that job is queued or running, or within
        DEDUPE_WINDOW_S of it: a double-click is one job, and so is a click that reaches a loaded server twice
        (a browser resending it seconds later). ``world_size``: processes it runs on, each on its own slot.
        ``owner``: who queues it (the job and its records are theirs); ``fingerprint``: its settings, to find the
        same job finished earlier. ``max_active_per_owner``: the class's cap on one owner's jobs waiting or
        running; a request past it raises :class:`QueueFull` (a teacher, and the machine, are not capped).
        A repeated request (the same ``request_key``) is answered before the cap is counted.
        """
        if device not in DEVICE_KINDS:
            raise ValueError(f"device must be one of {', '.join(DEVICE_KINDS)}, got {device!r}")
        if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
            raise ValueError(f"world_size must be a whole number of at least 1, got {world_size!r}")
        with self.db.tx() as con:
            now = time.time()  # under the write lock: queue times follow the order jobs are created in
            if request_key is not None:
                row = self._requested(con, request_key, now)
                if row is not None:
                    ids = [r["id"] for r in con.execute("SELECT id FROM runs WHERE job_id=? ORDER BY id",
                                                        (row["id"],))]
                    return int(row["id"]), ids
            if max_active_per_owner is not None and not owner.teacher:
                active = self._active_count(con, owner.owner)
                if active >= max_active_per_owner:
                    raise QueueFull(queue_full_message(active, max_active_per_owner))
            job_id = int(con.execute(
                "INSERT INTO jobs(kind, name, params_json, status, device, origin, request_key, created_at,"
                " work_json, estimate_s, unit, world_size, owner, owner_name, queued_at, fingerprint)"
                " VALUES (?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (kind, name, json.dumps(dict(params or {})), device, origin, request_key, now,
                 json.dumps(dict(work)) if work else None, estimate_s, unit, world_size, owner.owner, owner.name, now,
                 fingerprint)).lastrowid)
            return job_id, (list(then(con, job_id, now)) if then is not None else [])

    @staticmethod
    def set_run(con: Any, job_id: int, run_id: int) -> None:
        """Record, on the caller's connection, that job ``job_id`` studies run ``run_id`` (its results are listed
        with that run and deleted with it); KeyError for a run that does not exist."""
        if con.execute("SELECT 1 FROM runs WHERE id=?", (run_id,)).fetchone() is None:
            raise KeyError(f"no run with id {run_id}")
        con.execute("UPDATE jobs SET run_id=? WHERE id=?", (run_id, job_id))

    @staticmethod
    def _requested(con: Any, request_key: str, now: float) -> Any:
        return con.execute("SELECT id FROM jobs WHERE request_key=? AND (created_at>? OR status IN (?, ?))"
                           " ORDER BY id DESC", (request_key, now - DEDUPE_WINDOW_S, *ACTIVE)).fetchone()

    def requested(self, request_key: str) -> int | None:
        """The job a request with this key queued, while it is active or within DEDUPE_WINDOW_S (what repeating
        the request returns), or None."""
        row = self._requested(self.db.con, request_key, time.time())
        return int(row["id"]) if row is not None else None

    def get(self, job_id: int) -> Job:
        row = self.db.con.execute("SELECT * FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(f"no job with id {job_id}")
        return self._job(row)

    def list(self, kinds: Iterable[str] | None = None, statuses: Iterable[str] | None = None,
             run_ids: Iterable[int] | None = None, device: str | None = None, oldest_first: bool = False,
             limit: int = 500, owner: str | None = None) -> list[Job]:
        """Jobs (newest first, or oldest first), optionally of some kinds, in some statuses, about some runs,
        asking for one kind of device, of one owner (an ``Identity.owner`` key)."""
        where, args = [], []
        for column, values in (("kind", kinds), ("status", statuses), ("run_id", run_ids)):
            if values is not None:
                values = tuple(values)
                where.append(f"{column} IN ({placeholders(values)})")
                args += list(values)
        for column, value in (("device", device), ("owner", owner)):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        sql = ("SELECT * FROM jobs" + (f" WHERE {' AND '.join(where)}" if where else "")
               + f" ORDER BY id {'ASC' if oldest_first else 'DESC'} LIMIT ?")
        return [self._job(r) for r in self.db.con.execute(sql, (*args, limit)).fetchall()]

    def of_run(self, run_id: int) -> Job | None:
        """The job that trains (or trained) a run."""
        row = self.db.con.execute("SELECT j.* FROM jobs j JOIN runs r ON r.job_id=j.id WHERE r.id=?",
                                  (run_id,)).fetchone()
        return self._job(row) if row is not None else None

    def done_by_fingerprint(self, fingerprint: str, limit: int = 20) -> list[Job]:
        """Finished (``done``) jobs with these settings, the newest first."""
        rows = self.db.con.execute("SELECT * FROM jobs WHERE fingerprint=? AND status='done'"
                                   " ORDER BY finished_at DESC, id DESC LIMIT ?", (fingerprint, limit)).fetchall()
        return [self._job(r) for r in rows]

    @staticmethod
    def _active_count(con: Any, owner: str) -> int:
        return int(con.execute(f"SELECT COUNT(*) FROM jobs WHERE owner=? AND status IN ({placeholders(ACTIVE)})",
                               (owner, *ACTIVE)).fetchone()[0])

    def active_count(self, owner: str) -> int:
        """How many of ``owner``'s jobs are waiting or running (what the class's queue cap counts)."""
        return self._active_count(self.db.con, owner)

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

    def claim(self, capacity: Mapping[str, int], choose: Choose) -> list[tuple[int, str]]:
        """Atomically start queued jobs on free slots; returns [(job id, slot)] in the order they were taken.

        ``capacity`` maps each slot ("cpu", "cuda:0", ...) to how many processes may run on it at once. Which
        jobs start, and where, is the queue's policy, not the store's: ``choose(queued, turns, capacity, free,
        running)`` is called inside the transaction with the queued jobs, the owners' turns (:meth:`turns`), the
        free lanes per slot and the running jobs per owner, and returns [(job, its slots)] (see
        :func:`resnet_lab.jobs.turns.choose`). A job of N processes takes N lanes; its ``slot`` then lists one
        slot per process ("cuda:0,cuda:2", "cpu,cpu"). Each start is recorded as its owner's latest turn on
        that kind of device.
        """
        if self.db.con.execute("SELECT 1 FROM jobs WHERE status='queued' LIMIT 1").fetchone() is None:
            return []  # the common case (many pages polling, nothing queued) takes no write lock
        now = time.time()
        started: list[tuple[int, str]] = []
        with self.db.tx() as con:
            used = self._lanes(con)
            free = {slot: capacity[slot] - used.get(slot, 0) for slot in capacity}
            running = {r["owner"]: r["n"] for r in con.execute(
                "SELECT owner, COUNT(*) AS n FROM jobs WHERE status='running' GROUP BY owner")}
            turns = self._turns(con)
            queued = [self._job(r) for r in con.execute("SELECT * FROM jobs WHERE status='queued'")]
            seq = max(turns.values(), default=0)
            for job, chosen in choose(queued, turns, capacity, free, running):
                slot = ",".join(chosen)
                con.execute("UPDATE jobs SET status='running', slot=?, heartbeat_at=?, started_at=COALESCE(started_at,"
                            " ?), stop_requested=0, pid=NULL, host=NULL, at_back=0 WHERE id=? AND status='queued'",
                            (slot, now, now, job.id))
                con.execute("UPDATE runs SET status='running', device=?, started_at=COALESCE(started_at, ?)"
                            " WHERE job_id=? AND status='queued'", (slot, now, job.id))
                seq += 1
                con.execute("INSERT INTO turns(device, owner, seq) VALUES (?, ?, ?)"
                            " ON CONFLICT(device, owner) DO UPDATE SET seq=excluded.seq", (job.device, job.owner, seq))
                started.append((int(job.id), slot))
        return started

    @staticmethod
    def _lanes(con: Any) -> dict[str, int]:
        return lanes_in_use(r["slot"] for r in con.execute("SELECT slot FROM jobs WHERE status='running'"))

    @staticmethod
    def _turns(con: Any) -> dict[tuple[str, str], int]:
        return {(r["device"], r["owner"]): int(r["seq"]) for r in con.execute("SELECT device, owner, seq FROM turns")}

    def turns(self) -> dict[tuple[str, str], int]:
        """{(kind of device, owner): a number that grows with every start}: who was served least recently."""
        return self._turns(self.db.con)

    def running_per_slot(self) -> dict[str, int]:
        """{slot: processes of running jobs on it} (a job of several processes counts once on each of its slots)."""
        return self._lanes(self.db.con)

    def started(self, job_id: int, pid: int | None, heartbeat_at: float, host: str | None = None) -> None:
        """Record the worker process of a claimed job (and the machine it runs on, when known)."""
        with self.db.tx(exclusive=False) as con:
            con.execute("UPDATE jobs SET pid=?, heartbeat_at=?, host=COALESCE(?, host) WHERE id=?",
                        (pid, heartbeat_at, host, job_id))

    def beat(self, job_id: int) -> bool:
        """The worker is alive; returns whether it has been asked to stop."""
        with self.db.tx(exclusive=False) as con:
            con.execute("UPDATE jobs SET heartbeat_at=? WHERE id=?", (time.time(), job_id))
            row = con.execute("SELECT stop_requested FROM jobs WHERE id=?", (job_id,)).fetchone()
        return bool(row and row["stop_requested"])

    def set_progress(self, job_id: int, done: int, total: int | None) -> None:
        with self.db.tx(exclusive=False) as con:
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

    def _owned(self, con: Any, job_id: int, by: Identity, action: str) -> Any:
        """The job's row, read under the caller's write lock, after checking that ``by`` may ``action`` it."""
        row = con.execute("SELECT id, status, owner, owner_name FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(f"no job with id {job_id}")
        require(by, row["owner"], action, f"job {job_id}", row["owner_name"])
        return row

    def stop(self, job_id: int, *, by: Identity) -> str:
        """Ask a job to stop: a queued job stops at once ("stopped"); a running one is asked ("stopping")
        and finishes its current step or evaluation first. Anything else is left as it is. Only the job's
        owner or a teacher may (:class:`NotAllowed` otherwise, and nothing changes)."""
        with self.db.tx() as con:
            row = self._owned(con, job_id, by, "stop")
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

    def requeue(self, job_id: int, *, by: Identity, failed: bool = False) -> None:
        """Put a stopped or interrupted job back in the queue (a training job resumes from its last checkpoint):
        it joins the queue now, behind the jobs of its owner already waiting. ``failed``: a failed job too (the
        policy above decided it may: :func:`resnet_lab.jobs.scheduler.resume_refusal`). Runs that ended otherwise
        (done, diverged) stay as they are. Only the job's owner or a teacher may."""
        statuses = (*RESUMABLE, "failed") if failed else RESUMABLE
        with self.db.tx() as con:
            row = self._owned(con, job_id, by, "resume")
            if row["status"] not in statuses:
                raise ValueError(f"job {job_id} is {row['status']}; only stopped or interrupted jobs resume")
            con.execute("UPDATE jobs SET status='queued', finished_at=NULL, error=NULL, stop_requested=0, pid=NULL,"
                        " resumes=resumes+1, queued_at=?, at_back=0 WHERE id=?", (time.time(), job_id))
            con.execute(f"UPDATE runs SET status='queued', finished_at=NULL, error=NULL WHERE job_id=? AND status IN"
                        f" ({placeholders(statuses)})", (job_id, *statuses))

    def move_to_back(self, job_id: int, *, by: Identity) -> None:
        """Move a queued job to the back of the queue: it starts after every job waiting now (of its kind of
        device, whoever owns them), then takes ordinary turns with the jobs queued after the move (see
        :func:`resnet_lab.jobs.turns.turn_order`, rule 4). Only the job's owner or a teacher may; a job not queued
        is refused."""
        with self.db.tx() as con:
            row = self._owned(con, job_id, by, "move")
            if row["status"] != "queued":
                raise ValueError(f"job {job_id} is {row['status']}; only a queued job can be moved to the back")
            con.execute("UPDATE jobs SET queued_at=?, at_back=1 WHERE id=?", (time.time(), job_id))

    def delete(self, job_id: int, *, by: Identity) -> None:
        """Delete a finished job with its runs, their metrics and the analysis jobs about them (whoever queued
        those: they are about runs that go). Only the job's owner or a teacher may: an analysis job about
        someone else's run is its own owner's to delete."""
        with self.db.tx() as con:
            self._owned(con, job_id, by, "delete")
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
