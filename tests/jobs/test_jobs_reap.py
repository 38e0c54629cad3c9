"""One rule for "the worker is gone", for a training job and an analysis job alike: a worker still starting
gets the start-up grace; one that has beaten gets the short timeout; a dead pid is gone at once."""

import os
import subprocess
import sys
import time

import pytest

from resnet_lab import jobs
from resnet_lab.identity import MACHINE
from resnet_lab.jobs import scheduler
from resnet_lab.jobs.turns import claim
from resnet_lab.store import Store
from tests.helpers.homes import seed


class _StandIn:
    """Looks like a worker process that is alive (it is this test's own pid) and never beats."""

    pid = os.getpid()

    def poll(self):
        return 0  # lets a later pump() forget it


def make_job(store, kind):
    runs = [{"name": "r", "spec": {}, "data": {}, "train": {}}, {"name": "twin", "spec": {}, "data": {}, "train": {}}]
    if kind == "train":
        return store.jobs.create("train", "t", "cpu", then=seed(runs=runs, partners=True))
    rid = store.jobs.create("train", "t", "cpu", then=seed(runs=runs[:1]))[1][0]
    store.jobs.stop(store.runs.get(rid).job_id, by=MACHINE)
    return store.jobs.create("landscape", "l", "cpu", then=seed(run_id=rid))[0], []


@pytest.mark.parametrize("kind", ["train", "landscape"])
def test_a_starting_worker_gets_the_grace_then_the_heartbeat_timeout(lab_home, monkeypatch, kind):
    store = Store()
    job, runs = make_job(store, kind)
    assert claim(store, {"cpu": 1}) == [(job, "cpu")]
    monkeypatch.setattr(scheduler.subprocess, "Popen", lambda *a, **k: _StandIn())
    scheduler.spawn(store, job, "cpu")
    t0 = time.time()
    # importing torch can take longer than the heartbeat timeout on a busy machine: not reaped yet
    assert jobs.reap(store, now=t0 + jobs.STALE_AFTER_S + 5) == []
    assert store.jobs.get(job).status == "running"
    # a worker that never says hello is reaped once the start-up grace is over
    assert jobs.reap(store, now=t0 + jobs.START_GRACE_S + 2) == [job]
    assert store.jobs.get(job).status == "interrupted" and "no heartbeat" in store.jobs.get(job).error
    assert all(store.runs.get(r).status == "interrupted" for r in runs)


@pytest.mark.parametrize("kind", ["train", "landscape"])
def test_after_its_first_beat_a_silent_worker_is_reaped_after_the_short_timeout(lab_home, monkeypatch, kind):
    store = Store()
    job, _ = make_job(store, kind)
    claim(store, {"cpu": 1})
    monkeypatch.setattr(scheduler.subprocess, "Popen", lambda *a, **k: _StandIn())
    scheduler.spawn(store, job, "cpu")
    store.jobs.beat(job)  # the worker said hello
    t0 = time.time()
    assert jobs.reap(store, now=t0 + 1) == []
    assert jobs.reap(store, now=t0 + jobs.STALE_AFTER_S + 2) == [job]


@pytest.mark.parametrize("kind", ["train", "landscape"])
def test_a_dead_worker_is_gone_at_once_and_says_how_to_go_on(lab_home, kind):
    store = Store()
    job, _ = make_job(store, kind)
    claim(store, {"cpu": 1})
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    store.jobs.started(job, proc.pid, time.time())
    assert jobs.reap(store) == [job]
    error = store.jobs.get(job).error
    assert "ended unexpectedly" in error
    assert ("Resume continues from the last checkpoint" in error) == (kind == "train")


def test_a_worker_that_cannot_start_fails_its_job_with_the_reason(lab_home, monkeypatch):
    store = Store()
    job, _ = make_job(store, "landscape")
    claim(store, {"cpu": 1})

    def refuse(*a, **k):
        raise OSError("no more processes")

    monkeypatch.setattr(scheduler.subprocess, "Popen", refuse)
    scheduler.spawn(store, job, "cpu")
    assert store.jobs.get(job).status == "failed" and "could not be started: no more processes" in \
        store.jobs.get(job).error
