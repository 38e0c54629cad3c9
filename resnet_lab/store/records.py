"""The store's records: a run (a trained model), a job (background work of any kind), an experiment."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any, Callable

from ..spec import kind_of

JOB_STATUSES = ("queued", "running", "done", "stopped", "failed", "interrupted")
STATUSES = (*JOB_STATUSES, "diverged")  # a run can also end diverged (its loss went to NaN/inf)
ACTIVE = ("queued", "running")
FINISHED = ("done", "stopped", "failed", "diverged", "interrupted")
RESUMABLE = ("stopped", "interrupted")


@dataclass(frozen=True)
class Run:
    """A model trained by a job, with its settings, metrics summary and checkpoints."""

    id: int
    job_id: int | None  # the job that trains it (None once that job's record is gone)
    partner_id: int | None  # its twin: the plain net of a ResNet, or the ResNet of a plain net
    name: str
    status: str  # one of STATUSES
    spec: dict[str, Any]
    data: dict[str, Any]
    train: dict[str, Any]
    finetune: dict[str, Any]  # fine-tuning settings ({} for a run trained as built)
    device: str  # the slot it trains on (cpu, cuda:0, ...), or the device asked for while queued
    created_at: float
    started_at: float | None
    finished_at: float | None
    error: str | None
    step: int  # optimizer steps done
    total_steps: int | None
    best: dict[str, Any]  # metrics at the best validation accuracy
    last: dict[str, Any]  # metrics at the last evaluation
    ckpt_best: str | None  # absolute paths (stored relative to the lab home)
    ckpt_last: str | None
    owner: str = "local"  # who made it (see resnet_lab.identity): only they or a teacher may change it

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def kind(self) -> str:
        """'ResNet' or 'plain' (a spec without skip connections)."""
        return kind_of(bool(self.spec.get("skip", True)))

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at or (time.time() if self.status == "running" else self.started_at)
        return max(0.0, end - self.started_at)


@dataclass(frozen=True)
class Job:
    """One piece of background work: queued, placed on a device slot, run by its own worker process."""

    id: int
    kind: str  # what the worker does: "train", "finetune", "landscape", ... (see jobs.handlers)
    name: str
    params: dict[str, Any]  # the kind's request
    status: str  # one of JOB_STATUSES
    device: str  # the kind of device asked for: "cpu" or "cuda"
    slot: str | None  # where it runs or ran: "cpu", "cuda:0", ...; one per process: "cuda:0,cuda:1", "cpu,cpu"
    run_id: int | None  # the run an analysis job studies (None for training jobs, which own runs)
    origin: str | None  # what launched it when not a page of its own kind, e.g. "degradation"
    created_at: float
    started_at: float | None
    finished_at: float | None
    heartbeat_at: float | None
    pid: int | None
    error: str | None
    stop_requested: bool
    progress: int  # units done
    total: int | None  # units in all, once known
    unit: str  # what progress counts: "steps", "evaluations", ...
    result_path: str | None  # absolute path of its result file, if it writes one
    resumes: int
    work: dict[str, Any]  # {"key": what it computes, "units": how much}: for learned speeds and ETAs
    estimate_s: float | None  # estimated seconds of work, when known at queueing
    world_size: int = 1  # processes (devices) it runs on: >1 is one DDP group started by torchrun
    owner: str = "local"  # who queued it (see resnet_lab.identity): only they or a teacher may change it
    owner_name: str = ""  # their display name when it was queued (untrusted text)
    queued_at: float | None = None  # when it joined the queue last (created, resumed, or moved to the back)
    fingerprint: str | None = None  # its settings (model, data, training, seed): the same job has the same one
    at_back: bool = False  # moved to the back while queued: it starts after every job waiting at that time
    host: str | None = None  # where its worker runs or ran: the machine's name (and "ray:NODE" under Ray)

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def slots(self) -> list[str]:
        """The slot of each of its processes, rank 0 first ([] while queued)."""
        return self.slot.split(",") if self.slot else []

    @property
    def fraction(self) -> float:
        return min(1.0, self.progress / self.total) if self.total else 0.0


@dataclass(frozen=True)
class Experiment:
    """A named group of jobs launched together (e.g. the degradation experiment's two twin jobs)."""

    id: int
    kind: str  # e.g. "degradation"
    name: str
    params: dict[str, Any]
    job_ids: list[int]
    created_at: float


def _loads(text: str | None) -> dict[str, Any]:
    return json.loads(text) if text else {}


def run_from_row(row: sqlite3.Row, abspath: Callable[[str | None], str | None]) -> Run:
    return Run(
        id=row["id"], job_id=row["job_id"], partner_id=row["partner_id"], name=row["name"], status=row["status"],
        spec=json.loads(row["spec_json"]), data=json.loads(row["data_json"]), train=json.loads(row["train_json"]),
        finetune=_loads(row["finetune_json"]), device=row["device"], created_at=row["created_at"],
        started_at=row["started_at"], finished_at=row["finished_at"], error=row["error"], step=row["step"],
        total_steps=row["total_steps"], best=_loads(row["best_json"]), last=_loads(row["last_json"]),
        ckpt_best=abspath(row["ckpt_best"]), ckpt_last=abspath(row["ckpt_last"]), owner=row["owner"])


def job_from_row(row: sqlite3.Row, abspath: Callable[[str | None], str | None]) -> Job:
    return Job(
        id=row["id"], kind=row["kind"], name=row["name"], params=_loads(row["params_json"]), status=row["status"],
        device=row["device"], slot=row["slot"], run_id=row["run_id"], origin=row["origin"],
        created_at=row["created_at"], started_at=row["started_at"], finished_at=row["finished_at"],
        heartbeat_at=row["heartbeat_at"], pid=row["pid"], error=row["error"],
        stop_requested=bool(row["stop_requested"]), progress=row["progress"], total=row["total"], unit=row["unit"],
        result_path=abspath(row["result_path"]), resumes=row["resumes"], work=_loads(row["work_json"]),
        estimate_s=row["estimate_s"], world_size=row["world_size"], owner=row["owner"], owner_name=row["owner_name"],
        queued_at=row["queued_at"], fingerprint=row["fingerprint"], at_back=bool(row["at_back"]),
        host=row["host"])


def experiment_from_row(row: sqlite3.Row) -> Experiment:
    return Experiment(id=row["id"], kind=row["kind"], name=row["name"], params=json.loads(row["params_json"]),
                      job_ids=json.loads(row["job_ids_json"]), created_at=row["created_at"])


def placeholders(values: Any) -> str:
    """The ``?`` marks of an ``IN (...)`` list for ``values``; ``NULL`` (matches nothing) for none: SQLite takes
    ``IN ()``, PostgreSQL refuses it. (For ``IN`` only: ``NOT IN (NULL)`` is never true.)"""
    return ",".join("?" * len(values)) if len(values) else "NULL"
