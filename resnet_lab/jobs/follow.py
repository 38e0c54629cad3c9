"""Follow jobs until they end, for the command line: pump the queue, report now and then, and on
Ctrl-C ask them to stop gracefully and wait for that."""

from __future__ import annotations

import sys
import time
from typing import Callable, Sequence

from ..identity import MACHINE, Identity
from ..store import Job, Store
from .scheduler import pump, stop

POLL_S = 0.5  # seconds between store polls
REPORT_EVERY_S = 5.0  # seconds between progress reports


def follow(store: Store, job_ids: Sequence[int], report: Callable[[list[Job]], None] | None = None,
           poll_s: float = POLL_S, report_every_s: float = REPORT_EVERY_S,
           stopping_text: str = "stopping (finishing the current step)…", by: Identity = MACHINE) -> list[Job]:
    """Block until every job in ``job_ids`` has ended; returns them as they ended. ``report(jobs)`` is
    called at most every ``report_every_s`` while they run (the CLI's progress lines). Ctrl-C stops them
    as ``by`` (the command line acts as the machine)."""
    last = 0.0
    try:
        while True:
            jobs = [store.jobs.get(j) for j in job_ids]
            if not any(j.active for j in jobs):
                break
            pump(store)
            if report is not None and time.monotonic() - last > report_every_s:
                last = time.monotonic()
                report(jobs)
            time.sleep(poll_s)
    except KeyboardInterrupt:
        for j in job_ids:
            stop(j, store, by=by)
        print(stopping_text, file=sys.stderr, flush=True)
        while any(store.jobs.get(j).active for j in job_ids):
            pump(store)
            time.sleep(poll_s)
    return [store.jobs.get(j) for j in job_ids]
