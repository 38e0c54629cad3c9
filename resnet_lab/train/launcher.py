"""Launching runs: queue a job, start workers while the device has room (FIFO), find dead workers.

There is no daemon. Whoever touches the queue — the app's live panel, the CLI, and every worker as
it finishes — calls ``pump()``: it marks runs whose worker died as ``interrupted`` and starts the
oldest queued jobs while fewer than the device's limit are running. Claiming a job is one SQLite
``BEGIN IMMEDIATE`` transaction, so two pumps never start the same job.

Background analyses of a run (*tasks*, e.g. a loss landscape) share the mechanism with their own
queue and limits (:func:`task_limits`): ``pump()`` also claims queued tasks and starts one
``python -m resnet_lab.analysis.worker TASK_ID`` each, and ``reap()`` marks running tasks whose worker
is gone as ``interrupted``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from ..data.registry import DataConfig, dataset_info
from ..models.presets import preset_name
from ..spec import ModelSpec
from ..paths import data_root, lab_home
from ..store import Store
from .config import TrainConfig
from .finetune import FinetuneConfig, load_base, plan

HEARTBEAT_S = float(os.environ.get("RESNET_LAB_HEARTBEAT_S", "2.0"))  # worker heartbeat period
STALE_AFTER_S = max(3 * HEARTBEAT_S, 6.0)  # no heartbeat for this long: the worker is gone
START_GRACE_S = 60.0  # a claimed job whose worker has not yet said hello is not stale before this
_children: dict[int, subprocess.Popen] = {}  # workers this process started (polled so none is left a zombie)


def device_limits() -> dict[str, int]:
    """Concurrent jobs per device: RESNET_LAB_MAX_RUNS_CUDA (default 1), RESNET_LAB_MAX_RUNS_CPU (default 1)."""
    return {d: max(1, int(os.environ.get(f"RESNET_LAB_MAX_RUNS_{d.upper()}", "1"))) for d in ("cuda", "cpu")}


def task_limits() -> dict[str, int]:
    """Concurrent tasks per device: RESNET_LAB_MAX_TASKS_CUDA (default 1), RESNET_LAB_MAX_TASKS_CPU (default 1)."""
    return {d: max(1, int(os.environ.get(f"RESNET_LAB_MAX_TASKS_{d.upper()}", "1"))) for d in ("cuda", "cpu")}


def job_device(cfg: TrainConfig) -> str:
    if cfg.device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return cfg.device


def run_dir(run_id: int) -> Path:
    return lab_home() / "runs" / str(run_id)


def fit_spec_to_data(spec: ModelSpec, data: DataConfig) -> ModelSpec:
    """The spec with its input channels and classes set to the dataset's."""
    info = dataset_info(data.name)
    return spec.replace(in_channels=info.in_channels, num_classes=info.num_classes)


def check_data_available(data: DataConfig) -> None:
    """Raise DatasetMissing (a ValueError saying what to put where) before queueing a run that would fail."""
    if dataset_info(data.name).needs_files:
        from ..data.torchvision_sets import check_files

        check_files(data.name, data_root())


def default_name(spec: ModelSpec, data: DataConfig) -> str:
    name = preset_name(spec) or spec.describe().split(" (")[0]
    return f"{name} · {data.name}"


def submit(spec: ModelSpec, data: DataConfig, train: TrainConfig, twin: bool = False, name: str | None = None,
           request_key: str | None = None, store: Store | None = None) -> list[int]:
    """Queue a run (or a run and its plain twin, trained together) and start it if there is room.

    The spec is fitted to the dataset (input channels, classes); a dataset whose files are missing is
    refused here, with what to put where, rather than failing later in the worker. Returns the run ids,
    the job first.
    """
    check_data_available(data)
    store = store or Store()
    chosen = [spec, spec.twin()] if twin else [spec]
    names = [name or default_name(chosen[0], data)] + [default_name(s, data) for s in chosen[1:]]
    rows: list[dict[str, Any]] = [
        {"name": n, "spec": fit_spec_to_data(s, data).to_dict(), "data": data.to_dict(), "train": train.to_dict()}
        for n, s in zip(names, chosen)]
    ids = store.create_job(rows, device=job_device(train), request_key=request_key)
    pump(store)
    return ids


def submit_finetune(ft: FinetuneConfig, data: DataConfig, train: TrainConfig, name: str | None = None,
                    request_key: str | None = None, store: Store | None = None,
                    allow_download: bool = False) -> list[int]:
    """Queue a fine-tuning run. The base (weights file, lab run checkpoint) is checked now, so a missing
    file is a message at once, not a failed run later."""
    check_data_available(data)
    store = store or Store()
    base = load_base(ft, store, allow_download=allow_download)
    info = dataset_info(data.name)
    spec, _ = plan(ft, base, info.num_classes, info.in_channels)
    row = {"name": name or f"{base.label} → {data.name} · {ft.strategy}", "spec": spec.to_dict(),
           "data": data.to_dict(), "train": train.to_dict(), "finetune": ft.to_dict()}
    ids = store.create_job([row], device=job_device(train), request_key=request_key)
    pump(store)
    return ids


def pump(store: Store | None = None) -> list[int]:
    """Reap dead workers, then start queued jobs while there is room. Returns the job ids started."""
    store = store or Store()
    for pid, proc in list(_children.items()):
        if proc.poll() is not None:
            del _children[pid]
    reap(store)
    started = []
    for device, limit in device_limits().items():
        for job_id in store.claim_next(device, limit):
            _spawn(store, job_id)
            started.append(job_id)
    for device, limit in task_limits().items():
        for task_id in store.claim_next_task(device, limit):
            _spawn_task(store, task_id)
    return started


def _hello_by() -> float:
    """The heartbeat stamped on a worker just started. It has START_GRACE_S to beat for the first time
    (importing torch on a busy machine takes a while): until it does, its heartbeat is dated to when the
    reaper's patience runs out."""
    return time.time() + START_GRACE_S - STALE_AFTER_S


def _gone(pid: int | None, heartbeat_at: float | None, now: float) -> str | None:
    """Why a running job's or task's worker counts as gone, or None while it is alive. Claimed with no worker
    started yet (no pid), it has START_GRACE_S; started, the heartbeat timeout (see _hello_by)."""
    if pid is not None and not pid_alive(pid):
        return "its worker process ended unexpectedly"
    if heartbeat_at is not None and now - heartbeat_at > (STALE_AFTER_S if pid is not None else START_GRACE_S):
        return f"its worker sent no heartbeat for {now - heartbeat_at:.0f} s"
    return None


def _spawn(store: Store, job_id: int) -> None:
    d = run_dir(job_id)
    d.mkdir(parents=True, exist_ok=True)
    with open(d / "worker.log", "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "resnet_lab.train.worker", str(job_id)],
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                cwd=Path(__file__).resolve().parents[2])
    _children[proc.pid] = proc
    for run in store.job_runs(job_id):
        store.update(run.id, pid=proc.pid, heartbeat_at=_hello_by())


def _spawn_task(store: Store, task_id: int) -> None:
    """Start the worker of a claimed task (log: the run's folder, ``task-<id>.log``)."""
    task = store.get_task(task_id)
    d = run_dir(task.run_id)
    try:
        d.mkdir(parents=True, exist_ok=True)
        with open(d / f"task-{task_id}.log", "ab") as log:
            proc = subprocess.Popen([sys.executable, "-m", "resnet_lab.analysis.worker", str(task_id)],
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                    cwd=Path(__file__).resolve().parents[2])
    except OSError as e:  # the task must not stay "running" with no worker
        store.set_task_status(task_id, "failed", error=f"Its worker could not be started: {e}", only_if=["running"])
        return
    _children[proc.pid] = proc
    store.update_task(task_id, pid=proc.pid, heartbeat_at=_hello_by())


def pid_alive(pid: int) -> bool:
    """True if the process exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def reap(store: Store, now: float | None = None) -> list[int]:
    """Mark running jobs whose worker is gone (dead pid, or no heartbeat) as ``interrupted``."""
    now = time.time() if now is None else now
    lost = []
    for run in store.runs(statuses=["running"]):
        if run.twin_of is not None:
            continue
        why = _gone(run.pid, run.heartbeat_at, now)
        if why:
            for r in store.job_runs(run.id):
                if store.set_status(r.id, "interrupted", error=f"Interrupted: {why}. Resume continues from the "
                                    "last checkpoint.", only_if=["running"]):
                    lost.append(r.id)
    reap_tasks(store, now)
    return lost


def reap_tasks(store: Store, now: float | None = None) -> list[int]:
    """Mark running tasks whose worker is gone (dead pid, or no heartbeat) as ``interrupted``; returns their ids."""
    now = time.time() if now is None else now
    lost = []
    for task in store.tasks(statuses=["running"]):
        why = _gone(task.pid, task.heartbeat_at, now)
        if why:
            if store.set_task_status(task.id, "interrupted", error=f"Interrupted: {why}. Start it again to "
                                     "recompute.", only_if=["running"]):
                lost.append(task.id)
    return lost


def stop(job_id: int, store: Store | None = None) -> str:
    return (store or Store()).request_stop(job_id)


def stop_task(task_id: int, store: Store | None = None) -> str:
    """Ask a task to stop: a queued one stops at once ("stopped"); a running one ("stopping") saves what it has
    computed after its current evaluation."""
    return (store or Store()).request_task_stop(task_id)


def resume(job_id: int, store: Store | None = None) -> None:
    """Queue a stopped or interrupted job again; its worker continues from the last checkpoint."""
    store = store or Store()
    store.requeue(job_id)
    pump(store)
