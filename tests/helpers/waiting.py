"""Waiting on a condition, a job or runs, with the job queue pumped meanwhile (reap dead workers, start queued
jobs): the loops the process tests share. A wait that runs out raises AssertionError naming what it waited for;
the time limits are generous ceilings for a slow 2-core machine, never timings asserted."""

from __future__ import annotations

import time
from collections.abc import Callable

POLL_S = 0.2


def wait_for(predicate: Callable[[], object], timeout: float = 120.0, store=None, what: str = "condition",
             explain: Callable[[], str] | None = None, poll: float = POLL_S) -> None:
    """Poll ``predicate`` until it is true. With a ``store``, pump the job queue before each look (a test of who
    starts the next job passes none). ``explain()``, when given, is added to the message of a wait that ran out."""
    from resnet_lab import jobs

    deadline = time.time() + timeout
    while time.time() < deadline:
        if store is not None:
            jobs.pump(store)
        if predicate():
            return
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}" + (f"; {explain()}" if explain else ""))


def wait_job(store, job_id: int, until: Callable = lambda job: not job.active, timeout: float = 120.0):
    """Pump the queue until job ``job_id`` satisfies ``until`` (by default: it ended); returns the job."""
    found = []

    def reached() -> bool:
        found[:] = [store.jobs.get(job_id)]
        return bool(until(found[0]))

    wait_for(reached, timeout, store, f"job {job_id}", explain=lambda: f"it is {store.jobs.get(job_id).status}",
             poll=0.1)
    return found[0]


def wait_done(store, job_id: int, timeout: float = 300.0):
    """Pump the queue until job ``job_id`` ended, and assert it ended done; returns the job."""
    job = wait_job(store, job_id, timeout=timeout)
    assert job.status == "done", job.error
    return job


def wait_runs_ended(store, run_ids, timeout: float = 300.0) -> None:
    """Pump the queue until none of the runs ``run_ids`` is active any more (done, failed or stopped)."""
    wait_for(lambda: all(not store.runs.get(i).active for i in run_ids), timeout, store, f"runs {list(run_ids)} to end")
