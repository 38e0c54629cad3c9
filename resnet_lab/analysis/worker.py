"""The task worker: ``python -m resnet_lab.analysis.worker TASK_ID`` computes one background analysis.

A task (e.g. a loss landscape) is an analysis of a finished run that takes too long for a page: the
launcher claims it (status ``running``) and starts this process, as it does training workers. The worker
records its pid, beats a heartbeat from a side thread (which also watches for a stop request), writes
progress to the store a few times a second at most, and ends the task with a status and a message:

- ``done``: the result file is written and its path recorded;
- ``stopped`` (a stop request or SIGTERM): what was computed so far is saved, and the message says what;
- ``failed``: any exception, as "TypeName: message" (the traceback goes to the task's log).

Whatever happens, it finally pumps the queue so the next queued task or job starts.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Sequence

from ..store import Store
from ..train.launcher import HEARTBEAT_S, pump
from .landscape import KIND as LANDSCAPE, TaskOutcome, run_landscape_task

PROGRESS_EVERY_S = 0.3  # at most this often a progress write (plus the last one)
Handler = Callable[[Any, Store, Callable[[int, int], None], Callable[[], bool]], TaskOutcome]
HANDLERS: dict[str, Handler] = {LANDSCAPE: run_landscape_task}  # task kind -> what computes it


class Progress:
    """Progress writes to the store, throttled: the first, then at most every PROGRESS_EVERY_S, and
    (``flush``) the last."""

    def __init__(self, store: Store, task_id: int) -> None:
        self.store, self.task_id = store, task_id
        self.last_write = -float("inf")
        self.pending: tuple[int, int] | None = None

    def __call__(self, done: int, total: int) -> None:
        self.pending = (done, total)
        if time.monotonic() - self.last_write >= PROGRESS_EVERY_S:
            self.flush()

    def flush(self) -> None:
        if self.pending is not None:
            done, total = self.pending
            self.store.update_task(self.task_id, progress=done, total=total)
            self.pending = None
            self.last_write = time.monotonic()


def _heartbeat(db: Path, task_id: int, stop_event: threading.Event, done: threading.Event) -> None:
    store = Store(db)  # its own connection: one per thread
    try:
        while not done.wait(HEARTBEAT_S):
            store.update_task(task_id, heartbeat_at=time.time())
            if store.get_task(task_id).stop_requested:
                stop_event.set()
    finally:
        store.close()


def run_task(task_id: int, store: Store | None = None) -> str:
    """Compute a claimed (``running``) task to its end; returns its final status."""
    store = store or Store()
    task = store.get_task(task_id)
    if task.status != "running":
        print(f"task {task_id} is {task.status}, not running: nothing to do", file=sys.stderr)
        return task.status
    store.update_task(task_id, pid=os.getpid(), heartbeat_at=time.time())
    stop_event, done = threading.Event(), threading.Event()
    if task.stop_requested:
        stop_event.set()
    signal.signal(signal.SIGTERM, lambda *_: stop_event.set())
    beat = threading.Thread(target=_heartbeat, args=(store.path, task_id, stop_event, done), daemon=True)
    beat.start()
    progress = Progress(store, task_id)
    try:
        handler = HANDLERS.get(task.kind)
        if handler is None:
            raise ValueError(f"unknown task kind {task.kind!r}; known: {', '.join(HANDLERS)}")
        outcome = handler(task, store, progress, stop_event.is_set)
        progress.flush()
        store.update_task(task_id, progress=outcome.progress, total=outcome.total,
                          result_path=str(outcome.result_path) if outcome.result_path else None)
        store.set_task_status(task_id, "stopped" if outcome.stopped else "done", error=outcome.message,
                              only_if=["running"])
    except Exception as e:  # every failure ends the task visibly, with its reason
        traceback.print_exc()
        progress.flush()
        store.set_task_status(task_id, "failed", error=f"{type(e).__name__}: {e}", only_if=["running"])
    finally:
        done.set()
        beat.join(timeout=5)
    return store.get_task(task_id).status


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m resnet_lab.analysis.worker TASK_ID", file=sys.stderr)
        return 2
    store = Store()
    try:
        run_task(int(args[0]), store)
    except KeyError as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 2
    finally:
        pump(store)  # hand the device to the next queued task or job
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
