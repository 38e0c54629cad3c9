"""The one worker harness: ``python -m resnet_lab.jobs.worker JOB_ID`` runs one claimed job of any kind.

It first checks that the lab home it was given is there (a node of a cluster that cannot see the shared home would
otherwise make an empty one: :func:`resnet_lab.jobs.launch.home_refusal`), records its pid and host, beats a
heartbeat from a side thread (which also watches the store's stop flag), turns SIGTERM into a graceful stop,
hands the job to its kind's handler (:mod:`resnet_lab.jobs.handlers`) with a throttled progress channel, and ends
the job with a status and a message:

- ``done``, or ``stopped`` (a stop request or SIGTERM: the handler saved what it had);
- ``failed``: any exception, as "TypeName: message" (the traceback goes to the job's log); a handler's
  :class:`~resnet_lab.jobs.handlers.JobFailed` as its message alone, and the GPU running out of memory as
  what to do about it.

A job that ran start to finish teaches the lab its speed (seconds per unit of ``work``) for later
estimates. Whatever happens, the worker then lets go of what the job held (its objects, the GPU memory
torch keeps cached) and finally pumps the queue so the next queued job starts (under Ray, the job's actor pumps
once the worker has ended: it is connected to the cluster already).

A job run as a group (torchrun started ``world_size`` workers: ``RANK``/``WORLD_SIZE`` in the environment)
has one voice: rank 0 does all of the above; the other ranks run the same handler with a context that
writes nothing (:func:`follow`) and exit non-zero on an error, which makes torchrun end the group. When
rank 0 then sees the group's communication fail (:func:`group_lost`), the job ends ``interrupted``
(resumable), not ``failed``; if rank 0 itself dies, the reaper finds it gone and says the same.
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Sequence

from ..paths import lab_home
from ..store import Store, slot_class
from .handlers import JobContext, JobFailed, handler_for
from .launch import RAY_NODE_ENV, die_with_parent, home_refusal, worker_host
from .scheduler import HEARTBEAT_S, pump

PROGRESS_EVERY_S = 0.3  # at most this often a progress write (plus the last one)


class Progress:
    """Progress writes to the store, throttled: the first, then at most every PROGRESS_EVERY_S, and
    (``flush``) the last."""

    def __init__(self, store: Store, job_id: int) -> None:
        self.store, self.job_id = store, job_id
        self.last_write = -float("inf")
        self.pending: tuple[int, int | None] | None = None

    def __call__(self, done: int, total: int | None = None) -> None:
        self.pending = (int(done), None if total is None else int(total))
        if time.monotonic() - self.last_write >= PROGRESS_EVERY_S:
            self.flush()

    def flush(self) -> None:
        if self.pending is not None:
            self.store.jobs.set_progress(self.job_id, *self.pending)
            self.pending = None
            self.last_write = time.monotonic()


def _heartbeat(db: Path, job_id: int, stop_event: threading.Event, done: threading.Event) -> None:
    store = Store(db)  # its own connection: one per thread
    try:
        while not done.wait(HEARTBEAT_S):
            if store.jobs.beat(job_id):
                stop_event.set()
    finally:
        store.close()


def group_env() -> tuple[int, int]:
    """(rank, world size) of this worker as torchrun set them; (0, 1) for a worker started alone."""
    return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))


def group_lost(error: BaseException) -> bool:
    """Whether an error of a group's rank 0 means another rank is gone: torch.distributed's own errors (a gloo
    or NCCL transport failing: a peer closed its connection). Any other error is rank 0's own, and fails the
    job with its message (the SIGTERM torchrun sends when a worker ends only asks for a stop: it raises nothing).
    """
    kinds = {cls.__name__ for cls in type(error).__mro__}
    text = str(error).lower()
    return bool(kinds & {"DistError", "DistBackendError", "DistNetworkError", "DistStoreError"}) \
        or "gloo" in text or "nccl" in text


def out_of_gpu_memory(error: BaseException) -> bool:
    """Whether ``error`` is torch's "CUDA out of memory" (torch is not imported for this: without it, no GPU)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(error, torch.cuda.OutOfMemoryError)


def failure_message(error: BaseException, kind: str, device: str) -> str:
    """What a failed job's record says: a handler's own words (JobFailed), what to do when the GPU ran out of
    memory (a handler that knows its sizes says it better: see the training handler), else "TypeName: message"."""
    if isinstance(error, JobFailed):
        return str(error)
    if out_of_gpu_memory(error):
        return (f"The GPU ({device}) ran out of memory during this {kind} job: wait for the GPU to be free (other "
                "jobs on it hold memory), or ask for less at once, then start it again.")
    return f"{type(error).__name__}: {error}"


def free_device_memory() -> None:
    """Let go of what the job held before the next one starts: objects reachable only through a failure's
    traceback until now (a failed job's models and optimizer state), and the GPU memory torch keeps cached,
    which goes back to the driver for the next job on this GPU. Nothing to do where torch was never loaded."""
    torch = sys.modules.get("torch")
    if torch is None:
        return
    gc.collect()
    if torch.cuda.is_initialized():
        try:
            torch.cuda.empty_cache()
        except RuntimeError as e:  # a GPU left in an error state by the job: the process's exit frees it all
            print(f"could not hand the GPU's cached memory back: {e}", file=sys.stderr)


def run_job(job_id: int, store: Store | None = None) -> str:
    """Run a claimed (``running``) job to its end; returns its final status. In a group: rank 0's part."""
    store = store or Store()
    job = store.jobs.get(job_id)
    if job.status != "running":
        print(f"job {job_id} is {job.status}, not running: nothing to do", file=sys.stderr)
        return job.status
    _, world = group_env()
    began = time.time()
    store.jobs.started(job_id, os.getpid(), began, host=worker_host())
    ctx = JobContext(job=job, store=store, device=slot_class(job.slot or job.device), progress=Progress(store, job_id),
                     world_size=world)
    if job.stop_requested:
        ctx.stop_event.set()
    signal.signal(signal.SIGTERM, lambda *_: ctx.stop_event.set())
    done = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(store.path, job_id, ctx.stop_event, done), daemon=True)
    beat.start()
    try:
        outcome = handler_for(job.kind)(ctx)
        ctx.progress.flush()
        if outcome.status not in ("done", "stopped"):
            raise ValueError(f"a handler ends a job done or stopped, not {outcome.status!r}")
        store.jobs.finish(job_id, outcome.status, error=outcome.message,
                          result_path=str(outcome.result_path) if outcome.result_path else None)
        if outcome.status == "done" and not job.resumes and job.work.get("key"):
            store.jobs.learn_speed(job.device, str(job.work["key"]), time.time() - began,
                                   float(job.work.get("units", 0)))
    except Exception as e:  # every failure ends the job visibly, with its reason
        traceback.print_exc()
        ctx.progress.flush()
        if world > 1 and group_lost(e):
            store.jobs.finish(job_id, "interrupted", error=(
                f"Interrupted: a process of its group of {world} ended unexpectedly ({type(e).__name__}; the job's "
                "log has each process's output). Resume continues from the last checkpoint."))
        else:
            store.jobs.finish(job_id, "failed", error=failure_message(e, job.kind, job.slot or job.device))
    finally:
        done.set()
        beat.join(timeout=5)
        free_device_memory()  # after the except block: the failure (and what its traceback held) is gone by now
    return store.jobs.get(job_id).status


def follow(job_id: int, rank: int, world: int, store: Store | None = None) -> str:
    """Rank ``rank`` > 0 of a group job: the same handler, with a context that writes nothing (no pid, heartbeat,
    progress or status: rank 0 keeps those). A SIGTERM asks for a stop, which the group agrees on. Errors
    propagate: this process ends, and torchrun ends the group."""
    store = store or Store()
    job = store.jobs.get(job_id)
    if job.status != "running":
        return job.status
    ctx = JobContext(job=job, store=store, device=slot_class(job.slot or job.device), progress=lambda *_: None,
                     rank=rank, world_size=world)
    signal.signal(signal.SIGTERM, lambda *_: ctx.stop_event.set())
    return handler_for(job.kind)(ctx).status


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m resnet_lab.jobs.worker JOB_ID", file=sys.stderr)
        return 2
    refusal = home_refusal(lab_home())
    if refusal is not None:  # opening the store would create an empty lab home here
        print(f"error: {refusal}", file=sys.stderr)
        return 3
    if os.environ.get(RAY_NODE_ENV):
        die_with_parent()  # started by a job's actor (or by torchrun under one): it goes when they go
    store = Store()
    rank, world = group_env()
    if rank > 0:
        try:
            follow(int(args[0]), rank, world, store)
        except Exception:  # this rank is lost: exit non-zero, torchrun ends the group, rank 0 reports it
            traceback.print_exc()
            return 1
        finally:
            store.close()
        return 0
    try:
        run_job(int(args[0]), store)
    except KeyError as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 2
    finally:
        if not os.environ.get(RAY_NODE_ENV):
            pump(store)  # hand the slot to the next queued job (under Ray, the job's actor does)
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
