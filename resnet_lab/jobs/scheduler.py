"""Starting jobs on free device slots and noticing workers that are gone.

There is no daemon. Whoever touches the queue — a page's live panel, the CLI, and every worker as it
finishes — calls :func:`pump`: it marks jobs whose worker died as ``interrupted`` and starts queued
jobs while their kind of device has a free slot (:mod:`resnet_lab.jobs.slots`). Claiming is one
SQLite ``BEGIN IMMEDIATE`` transaction, so two pumps never start the same job. Each job runs in its
own process, ``python -m resnet_lab.jobs.worker JOB_ID``, whatever its kind. A job of ``world_size``
N > 1 (of a kind that runs as a group) takes N slots and runs as one group of N such processes started by torchrun
(``python -m torch.distributed.run --nproc_per_node N ... -m resnet_lab.jobs.worker JOB_ID``); its rank 0
is the job's worker as far as the store knows (pid, host, heartbeat, final status). Where the worker runs is the
launcher's business (:mod:`.launch`): a process of this machine by default, a Ray cluster's node when
``RESNET_LAB_RAY`` is set; the reaper then trusts a pid only for a worker that ran on this machine.

Owners take fair turns (:func:`resnet_lab.jobs.turns.turn_order`), within the class's caps
(:func:`queue_caps`): so many jobs waiting or running per owner, checked when one is queued
(:class:`QueueFull`), and so many running per owner, checked when jobs are started. Stopping, resuming,
moving and deleting name who asks (``by``); the store refuses anyone but the owner or a teacher. A stopped or
interrupted job resumes; a failed one too where its kind finds what it saved intact (:func:`resume_refusal`).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

from ..identity import MACHINE, Identity, require
from ..store import RESUMABLE, Job, QueueFull, Store
from ..store.jobs import queue_full_message
from . import handlers, launch, slots, turns
from .handlers import Created, JobKind

HEARTBEAT_S = float(os.environ.get("RESNET_LAB_HEARTBEAT_S", "2.0"))  # worker heartbeat period
STALE_AFTER_S = max(3 * HEARTBEAT_S, 6.0)  # no heartbeat for this long: the worker is gone
START_GRACE_S = 60.0  # a claimed job whose worker has not yet said hello is not stale before this
_children: dict[int, subprocess.Popen] = launch._children  # local workers this process started (polled: no zombie)
FROM_SETTINGS: Literal["settings"] = "settings"  # a cap argument's default: the class's settings decide


_last_caps: tuple[int | None, int | None] = (None, None)  # the caps of the last settings file that could be read
_last_uncapped: turns.Uncapped = turns.machine_only  # who those caps do not hold, by the same file


def queue_caps() -> tuple[int | None, int | None]:
    """(jobs one owner may have waiting or running, jobs one owner may have running) for this class, from
    :func:`resnet_lab.classroom.settings.load_settings` (None: no cap; no settings file: no caps).

    A settings file broken while the lab runs (a teacher saving a typo) must not stop the queue: the caps
    last read stay in force, and the pages show the file's error to the teacher."""
    from ..classroom.settings import SettingsError, load_settings  # here: read (and cached) when asked for

    global _last_caps, _last_uncapped
    try:
        settings = load_settings()
    except SettingsError:
        return _last_caps
    caps = settings.queue
    _last_caps = (caps.max_queued_per_owner, caps.max_running_per_owner)
    _last_uncapped = settings.is_teacher_owner
    return _last_caps


def uncapped_owners() -> turns.Uncapped:
    """Whose jobs the class's cap on running jobs does not hold, as a function of a job's owner key: the
    teachers (:meth:`resnet_lab.classroom.settings.ClassSettings.is_teacher_owner`: the machine, the teacher's
    token, listed logins) by the settings :func:`queue_caps` read last (a broken file keeps the last good ones)."""
    queue_caps()
    return _last_uncapped


def check_room(store: Store, owner: Identity, wanted: int = 1,
               max_queued_per_owner: int | None | Literal["settings"] = FROM_SETTINGS) -> None:
    """Refuse (:class:`QueueFull`) before queueing ``wanted`` jobs at once (an experiment's) that would take
    ``owner`` past the class's cap on jobs waiting or running. Teachers and the machine are not capped."""
    cap = queue_caps()[0] if max_queued_per_owner == FROM_SETTINGS else max_queued_per_owner
    if cap is None or owner.teacher:
        return
    active = store.jobs.active_count(owner.owner)
    if active + wanted > cap:
        raise QueueFull(queue_full_message(active, cap, wanted))


@dataclass(frozen=True)
class JobRequest:
    """One job to queue, of any kind (what :func:`submit` takes).

    ``device`` is "auto", "cpu" or "cuda" (refused when there is no GPU). ``params``: the job's settings, stored
    with it and read by its handler. ``payload``: what the kind's ``on_submit`` writes with the job (training:
    its runs); the queue does not read it. ``work`` = {"key", "units"} names what the job computes and how much
    of it, so its duration can be estimated from the speed learned on earlier jobs of the same key
    (``estimate_s``, when given, is used instead). ``world_size``: processes it runs on, one per device (kinds
    that are ``group`` only). ``owner``: who queues it (theirs to stop, resume and delete); ``fingerprint``: its
    settings, to find the same job finished earlier; ``origin``: what launched it (say, an experiment).
    ``request_key`` (say, a browser session and the settings): the same request again while its job is active,
    or within the store's dedupe window, is that job. An owner who already has ``max_queued_per_owner`` jobs
    waiting or running (default: the class's settings) is refused with :class:`QueueFull`; a teacher, and the
    machine, are not. ``start``: start it at once if its device has room.
    """

    kind: JobKind
    name: str
    device: str = "auto"
    params: Mapping[str, Any] = field(default_factory=dict)
    payload: Any = None
    owner: Identity = MACHINE
    origin: str | None = None
    request_key: str | None = None
    work: Mapping[str, Any] | None = None
    estimate_s: float | None = None
    world_size: int = 1
    fingerprint: str | None = None
    start: bool = True
    max_queued_per_owner: int | None | Literal["settings"] = FROM_SETTINGS


def submit(store: Store, request: JobRequest) -> tuple[int, list[int]]:
    """Queue a job of any kind and start it if its device has room; returns (job id, the ids of the records its
    kind wrote with it: a training job's runs). A request that repeats an active one (``request_key``) returns
    that job. World sizes a kind cannot run, or the lab could never place, are refused here."""
    kind = request.kind
    where = kind.device or slots.resolve_device(request.device)
    cap = queue_caps()[0] if request.max_queued_per_owner == FROM_SETTINGS else request.max_queued_per_owner
    if request.world_size != 1 and not kind.group:
        raise ValueError(f"a {kind.name} job runs in one process; world_size > 1 is for kinds that run as a group")
    slots.check_world_size(where, request.world_size)
    estimate_s, work = request.estimate_s, request.work
    if estimate_s is None and work and work.get("key"):
        per = store.jobs.speed(where, str(work["key"]))
        estimate_s = per * float(work.get("units", 0)) if per is not None else None
    hook = None
    if kind.on_submit is not None:
        on_submit = kind.on_submit

        def hook(con: Any, job_id: int, now: float) -> list[int]:
            return on_submit(con, Created(job_id, where, now, request))
    job_id, ids = store.jobs.create(kind.name, request.name, where, params=request.params, origin=request.origin,
                                    request_key=request.request_key, work=work, estimate_s=estimate_s,
                                    unit=kind.unit, world_size=request.world_size, owner=request.owner,
                                    fingerprint=request.fingerprint, max_active_per_owner=cap, then=hook)
    if request.start:
        pump(store)
    return job_id, ids


def pump(store: Store | None = None, capacity: Mapping[str, int] | None = None,
         max_running_per_owner: int | None | Literal["settings"] = FROM_SETTINGS) -> list[int]:
    """Reap dead workers, then start queued jobs on free slots, owners taking turns, none past
    ``max_running_per_owner`` running jobs (default: the class's settings; a teacher's jobs are not held by it,
    :func:`uncapped_owners`). Returns the job ids started."""
    store = store or Store()
    cap = queue_caps()[1] if max_running_per_owner == FROM_SETTINGS else max_running_per_owner
    for pid, proc in list(_children.items()):
        if proc.poll() is not None:
            del _children[pid]
    reap(store)
    started = []
    for job_id, slot in turns.claim(store, capacity if capacity is not None else launch.launcher().capacity(), cap,
                                    uncapped_owners()):
        spawn(store, job_id, slot)
        started.append(job_id)
    return started


def _hello_by() -> float:
    """The heartbeat stamped on a worker just started. It has START_GRACE_S to beat for the first time
    (importing torch on a busy machine takes a while): until it does, its heartbeat is dated to when the
    reaper's patience runs out."""
    return time.time() + START_GRACE_S - STALE_AFTER_S


def free_port() -> int:
    """A TCP port free on this machine now (for a group's rendezvous; the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker_command(job_id: int, processes: int = 1) -> list[str]:
    """The command that runs a job: its worker, or for several processes torchrun starting that many workers
    on this machine (no restarts: a lost rank ends the group, and the job is resumed from its checkpoint)."""
    worker = ["-m", "resnet_lab.jobs.worker", str(job_id)]
    if processes == 1:
        return [sys.executable, *worker]
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(processes),
            "--master_addr", "127.0.0.1", "--master_port", str(free_port()), "--max_restarts", "0", *worker]


def spawn(store: Store, job_id: int, slot: str) -> None:
    """Start the worker of a claimed job on ``slot`` (its log: ``$RESNET_LAB_HOME/jobs/<id>/worker.log``); a job
    on several slots ("cuda:0,cuda:1") as one torchrun group, one process per slot. The configured launcher
    (:func:`resnet_lab.jobs.launch.launcher`) decides where: here, or on a Ray cluster's node."""
    launch.launcher().spawn(store, job_id, slot, worker_command(job_id, len(slot.split(","))))


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


def gone(pid: int | None, heartbeat_at: float | None, now: float, host: str | None = None) -> str | None:
    """Why a running job's worker counts as gone, or None while it is alive. Claimed with no worker started
    yet (no pid), it has START_GRACE_S; started, the heartbeat timeout (see _hello_by). Its pid is looked at only
    when it ran on this machine (``host``: where it said hello; a worker on another node is judged by its heartbeat).
    """
    if pid is not None and launch.ran_here(host) and not pid_alive(pid):
        return "its worker process ended unexpectedly"
    if heartbeat_at is not None and now - heartbeat_at > (STALE_AFTER_S if pid is not None else START_GRACE_S):
        return f"its worker sent no heartbeat for {now - heartbeat_at:.0f} s"
    return None


def reap(store: Store, now: float | None = None) -> list[int]:
    """Mark running jobs whose worker is gone (dead pid here, no heartbeat, or lost by the cluster engine) as
    ``interrupted``, with their runs; returns those jobs' ids, newest first. A job the cluster's node refused (it
    cannot see the lab home) fails with that reason."""
    now = time.time() if now is None else now
    lost = []
    engine = launch.launcher()
    for job in store.jobs.list(statuses=["running"]):
        refused = engine.refusal(job)
        if refused:  # the node picked for it could not run it: said in its words, not as a lost worker
            store.jobs.finish(job.id, "failed", error=refused)
            continue
        why = gone(job.pid, job.heartbeat_at, now, job.host) or engine.lost(job)
        if why:
            then = "Resume continues from the last checkpoint." if _resumable(job.kind) \
                else "Start it again to recompute."
            if store.jobs.finish(job.id, "interrupted", error=f"Interrupted: {why}. {then}"):
                lost.append(job.id)
    return lost


def _resumable(kind: str) -> bool:
    """Whether jobs of ``kind`` continue where they were when resumed (an unknown kind: no)."""
    found = handlers.registered().get(kind)
    return found is not None and found.resumable


def stop(job_id: int, store: Store | None = None, *, by: Identity) -> str:
    """Ask a job to stop: a queued one stops at once ("stopped"); a running one ("stopping") finishes its
    step — a training job writes a checkpoint, an analysis keeps what it computed. Only its owner or a
    teacher may (:class:`resnet_lab.identity.NotAllowed`)."""
    return (store or Store()).jobs.stop(job_id, by=by)


def resumes_after_failure(kind: str) -> bool:
    """Whether a failed job of ``kind`` may resume (when its kind finds what it saved intact), not only start again."""
    found = handlers.registered().get(kind)
    return found is not None and found.resumable and found.after_failure is not None


def resume_refusal(job: Job, store: Store) -> str | None:
    """Why ``job`` cannot be resumed now, in words, or None when it can: a stopped or interrupted job can; a failed
    one when its kind resumes failed jobs and finds what it saved intact (training: the last checkpoint of every
    run, read back and checked against its model; :attr:`JobKind.after_failure`); nothing else."""
    if job.status in RESUMABLE:
        return None
    if job.status != "failed":
        return f"job {job.id} is {job.status}; only stopped, interrupted or failed jobs resume"
    kind = handlers.registered().get(job.kind)
    if kind is None or not kind.resumable or kind.after_failure is None:
        return f"job {job.id} failed, and a failed {job.kind} job does not resume: start it again"
    why = kind.after_failure(store, job)
    return None if why is None else f"job {job.id} failed and cannot resume: {why}"


def resume(job_id: int, store: Store | None = None, *, by: Identity) -> None:
    """Queue a stopped or interrupted job again (training continues from its last checkpoint), or a failed one whose
    kind finds what it saved intact (:func:`resume_refusal`; ValueError with the reason otherwise). Only its owner
    or a teacher may."""
    store = store or Store()
    job = store.jobs.get(job_id)
    require(by, job.owner, "resume", f"job {job_id}", job.owner_name)  # before saying anything about it
    why = resume_refusal(job, store)
    if why is not None:
        raise ValueError(why)
    store.jobs.requeue(job_id, by=by, failed=job.status == "failed")
    pump(store)


def move_to_back(job_id: int, store: Store | None = None, *, by: Identity) -> None:
    """Move a queued job to the back: it starts after every job waiting now. Only its owner or a teacher may."""
    store = store or Store()
    store.jobs.move_to_back(job_id, by=by)
    pump(store)


def delete(job_id: int, store: Store | None = None, *, by: Identity) -> None:
    """Delete a finished job with the records written with it (runs) and the jobs that study those (their files
    stay on disk: the code that wrote them deletes them). Only its owner or a teacher may."""
    (store or Store()).jobs.delete(job_id, by=by)
