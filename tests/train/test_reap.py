"""The reaper, for training jobs and analysis tasks alike: a worker still starting up gets the start-up grace;
one that has beaten gets the short timeout."""

import os
import time

from resnet_lab.store import Store
from resnet_lab.train import launcher


class _StandIn:
    """Looks like a worker process that is alive (it is this test's own pid) and never beats."""

    pid = os.getpid()

    def poll(self):
        return 0  # lets a later pump() forget it


def test_a_starting_worker_gets_the_grace_then_the_heartbeat_timeout(lab_home, monkeypatch):
    store = Store()
    job = {"name": "r", "spec": {}, "data": {}, "train": {}}
    ids = store.create_job([job, {**job, "name": "twin"}], "cpu")
    assert store.claim_next("cpu", 1) == [ids[0]]
    monkeypatch.setattr(launcher.subprocess, "Popen", lambda *a, **k: _StandIn())
    launcher._spawn(store, ids[0])
    t0 = time.time()
    # importing torch can take longer than the heartbeat timeout on a busy machine: not reaped yet
    assert launcher.reap(store, now=t0 + launcher.STALE_AFTER_S + 5) == []
    assert all(r.status == "running" for r in store.job_runs(ids[0]))
    # a worker that never says hello is reaped once the start-up grace is over
    assert sorted(launcher.reap(store, now=t0 + launcher.START_GRACE_S + 2)) == ids
    assert all(r.status == "interrupted" for r in store.job_runs(ids[0]))


def test_after_its_first_beat_a_silent_worker_is_reaped_after_the_short_timeout(lab_home, monkeypatch):
    store = Store()
    ids = store.create_job([{"name": "r", "spec": {}, "data": {}, "train": {}}], "cpu")
    store.claim_next("cpu", 1)
    monkeypatch.setattr(launcher.subprocess, "Popen", lambda *a, **k: _StandIn())
    launcher._spawn(store, ids[0])
    store.heartbeat(ids)  # the worker said hello
    t0 = time.time()
    assert launcher.reap(store, now=t0 + 1) == []
    assert launcher.reap(store, now=t0 + launcher.STALE_AFTER_S + 2) == ids


def test_a_starting_task_worker_gets_the_same_grace_then_the_same_timeout(lab_home, monkeypatch):
    store = Store()
    ids = store.create_job([{"name": "r", "spec": {}, "data": {}, "train": {}}], "cpu")
    starting, beating = (store.create_task("landscape", ids[0], {}, "cpu") for _ in range(2))
    assert store.claim_next_task("cpu", 2) == [starting, beating]
    monkeypatch.setattr(launcher.subprocess, "Popen", lambda *a, **k: _StandIn())
    launcher._spawn_task(store, starting)
    launcher._spawn_task(store, beating)
    store.update_task(beating, heartbeat_at=time.time())  # this one said hello
    t0 = time.time()
    assert launcher.reap_tasks(store, now=t0 + launcher.STALE_AFTER_S + 5) == [beating]
    assert store.get_task(starting).status == "running"
    assert launcher.reap_tasks(store, now=t0 + launcher.START_GRACE_S + 2) == [starting]
    assert "no heartbeat" in store.get_task(starting).error
