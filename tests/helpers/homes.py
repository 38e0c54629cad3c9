"""Lab homes with finished runs for the tests: a tiny ResNet and its plain twin trained on ``shapes`` by a real
worker process (a few seconds), private copies of such a home, and no worker left behind in one."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

TRAINED_SPEC = dict(stem="cifar", depths=(1, 1, 1), widths=(8, 16, 32), shortcut="A")
EVERY = 3  # steps between kept weights: 600 images / 64 = 9 steps an epoch, 18 in all -> 7 snapshots
ROOT = Path(__file__).resolve().parents[2]


def train_tiny_job(home: Path, keep_weights_every: int = 0, name: str = "tiny") -> list[int]:
    """Train one job in ``home`` with a real worker process: a tiny ResNet and its plain twin on ``shapes``
    (2 epochs), named ``name`` and ``name plain``, keeping the weights every ``keep_weights_every`` steps when
    not 0 (a training path, for the landscape tests). Returns [resnet run id, plain run id]."""
    from resnet_lab import ModelSpec, jobs
    from resnet_lab.data.registry import DataConfig
    from resnet_lab.store import Store
    from resnet_lab.train.config import TrainConfig
    from resnet_lab.train.launcher import fit_spec_to_data

    old = os.environ.get("RESNET_LAB_HOME")
    os.environ["RESNET_LAB_HOME"] = str(home)
    try:
        spec = ModelSpec(**TRAINED_SPEC)
        data = DataConfig(name="shapes", image_size=32, train_subset=600, augment=False)
        train = TrainConfig(epochs=2, batch_size=64, lr=0.05, device="cpu", keep_weights_every=keep_weights_every)
        store = Store()
        rows = [{"name": n, "spec": fit_spec_to_data(s, data).to_dict(), "data": data.to_dict(),
                 "train": train.to_dict()} for n, s in ((name, spec), (f"{name} plain", spec.twin()))]
        job, ids = store.jobs.create("train", name, "cpu", then=seed(runs=rows, partners=True))
        assert jobs.turns.claim(store, {"cpu": 1}) == [(job, "cpu")]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, "-m", "resnet_lab.jobs.worker", str(job)], check=True, env=env, timeout=600)
        assert [r.status for r in store.runs.of_job(job)] == ["done", "done"]
        store.close()
    finally:
        if old is None:
            os.environ.pop("RESNET_LAB_HOME", None)
        else:
            os.environ["RESNET_LAB_HOME"] = old
    return ids


def seed(runs: Sequence[Mapping[str, Any]] = (), *, partners: bool = False,
         run_id: int | None = None) -> Callable[[Any, int, float], list[int]]:
    """A ``then=`` for :meth:`resnet_lab.store.jobs.JobStore.create` that writes a job's records the way its kind's
    ``on_submit`` does (:func:`resnet_lab.train.handler.add_runs`), in the transaction that queues the job: ``runs``
    (rows for :meth:`~resnet_lab.store.runs.RunStore.add_to_job`, on the job's device and for its owner; the first
    two each other's twin with ``partners``) and ``run_id``, the run an analysis job studies. Returns the runs' ids."""
    from resnet_lab.store.jobs import JobStore
    from resnet_lab.store.runs import RunStore

    def then(con: Any, job_id: int, created_at: float) -> list[int]:
        if run_id is not None:
            JobStore.set_run(con, job_id, run_id)
        if not runs:
            return []
        device, owner = con.execute("SELECT device, owner FROM jobs WHERE id=?", (job_id,)).fetchone()
        return RunStore.add_to_job(con, job_id, runs, device, owner, created_at, partners)

    return then


def train_keeping_weights(home: Path, every: int = EVERY) -> list[int]:
    """:func:`train_tiny_job` named ``kept``, keeping the weights every ``every`` steps."""
    return train_tiny_job(home, keep_weights_every=every, name="kept")


def private_home(src: Path, dst: Path) -> None:
    """Copy a lab home's database and run folders into ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(src / "runs.db") as a, sqlite3.connect(dst / "runs.db") as b:
        a.backup(b)
    shutil.copytree(src / "runs", dst / "runs")


def _worker_of(pid: int, job_id: int, home: Path) -> bool:
    """Whether process ``pid`` is the worker of job ``job_id`` in lab home ``home`` (a stored pid may have been
    reused by any other process since: never signal one that is not)."""
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        env = dict(v.split(b"=", 1) for v in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0") if b"=" in v)
    except OSError:
        return False
    return b"resnet_lab.jobs.worker" in cmd and str(job_id).encode() in cmd and \
        env.get(b"RESNET_LAB_HOME", b"").decode(errors="replace") == str(home)


def kill_workers(store, grace_s: float = 10.0) -> None:
    """Leave no worker of this home's jobs behind: a worker records its job's end a moment before it exits, so
    each gets ``grace_s`` to go, then is killed."""
    import time

    from resnet_lab.paths import lab_home

    home = lab_home()
    ours = [(j.pid, j.id) for j in store.jobs.list(limit=1000) if j.pid and _worker_of(j.pid, j.id, home)]
    deadline = time.time() + grace_s
    while any(_worker_of(pid, jid, home) for pid, jid in ours) and time.time() < deadline:
        time.sleep(0.05)
    for pid, jid in ours:
        if _worker_of(pid, jid, home):
            os.kill(pid, signal.SIGKILL)


def worker_store(monkeypatch, jobs_per_cpu: int | None = None, heartbeat_s: float = 0.5):
    """A store in the test's lab home for tests that start workers (a fixture body: ``yield from``): workers beat
    every ``heartbeat_s``, ``jobs_per_cpu`` share the cpu slot (None: the lab's default); any still running at the
    end is SIGKILLed."""
    from resnet_lab import jobs
    from resnet_lab.store import Store

    monkeypatch.setenv("RESNET_LAB_HEARTBEAT_S", str(heartbeat_s))
    if jobs_per_cpu is not None:
        monkeypatch.setenv("RESNET_LAB_JOBS_PER_CPU", str(jobs_per_cpu))
    s = Store()
    yield s
    for job in s.jobs.list(statuses=["running"]):
        if job.pid and jobs.pid_alive(job.pid):
            os.kill(job.pid, signal.SIGKILL)
    s.close()
