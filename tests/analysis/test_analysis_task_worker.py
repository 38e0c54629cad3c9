"""Background tasks: a landscape computed by a real worker process, stop requests (queued and running),
dead workers reaped as interrupted, failures recorded with their reason, and the launcher's task limits."""

import math
import subprocess
import sys
import time

import pytest
import torch
import torch.nn.functional as F

from resnet_lab.analysis import worker
from resnet_lab.analysis.landscape import (KIND, LandscapeParams, load_result, submit_landscape, task_device,
                                           training_batches)
from resnet_lab.analysis.subject import from_run
from resnet_lab.data.registry import load_dataset
from resnet_lab.train import launcher


@pytest.fixture
def home(private_trained_home):
    """(store, [resnet id, plain id]) in a private copy of the trained home (see tests/conftest.py)."""
    return private_trained_home


def wait_task(store, task_id, until=lambda t: not t.active, timeout=120.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        launcher.pump(store)
        task = store.get_task(task_id)
        if until(task):
            return task
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} still {store.get_task(task_id).status} after {timeout} s")


def test_a_worker_process_computes_both_surfaces_and_stores_them_with_the_run(home):
    store, ids = home
    params = LandscapeParams(dims=2, steps=3, span=1.0, batches=1, batch_size=32, seed=1)
    task_id = submit_landscape(ids[0], params, twin=True, store=store)
    assert store.get_task(task_id).status == "running"  # pump claimed it and started a worker
    task = wait_task(store, task_id)
    assert task.status == "done", task.error
    assert task.progress == task.total == 2 * 9
    assert task.params["runs"] == ids and task.device == task_device()
    path = launcher.run_dir(ids[0]) / f"landscape-{task_id}.json"
    assert task.result_path == str(path) and path.is_file()
    assert (launcher.run_dir(ids[0]) / f"task-{task_id}.log").is_file()
    result = load_result(path)
    assert result.task_id == task_id and result.params == params and result.complete
    assert [s.run_id for s in result.surfaces] == ids and [s.skip for s in result.surfaces] == [True, False]
    # the centre is each model's own loss on the same 32 training images, computed here independently
    for surface, rid in zip(result.surfaces, ids):
        subject = from_run(store.get(rid))
        (x, y), = training_batches(subject, load_dataset(subject.data), params)
        with torch.no_grad():
            expected = F.cross_entropy(subject.model(x), y).item()
        tol = 1e-5 if task.device == "cpu" else 1e-2  # CUDA convolutions may use TF32
        assert surface.images == 32 and math.isclose(surface.center_loss, expected, rel_tol=tol)
        assert torch.isfinite(surface.grid()).all() and surface.grid().max() > surface.center_loss


def test_stopping_a_running_task_keeps_the_partial_result(home):
    store, ids = home
    params = LandscapeParams(dims=2, steps=51, span=1.0, batches=1, batch_size=8)  # 5,202 evaluations: minutes
    task_id = submit_landscape(ids[0], params, store=store)
    wait_task(store, task_id, until=lambda t: t.progress > 0 or not t.active)
    assert launcher.stop_task(task_id, store) == "stopping"
    task = wait_task(store, task_id, timeout=60)
    assert task.status == "stopped", task.error
    assert "partial result is saved" in task.error and 0 < task.progress < task.total
    result = load_result(task.result_path)
    assert not result.complete and result.surfaces[0].run_id == ids[0]
    evaluated = sum(int(torch.isfinite(s.grid()).sum()) for s in result.surfaces)
    assert evaluated == task.progress  # every evaluation the store counted is in the file


def test_a_queued_task_stops_at_once_and_is_never_started(home):
    store, ids = home
    task_id = store.create_task(KIND, ids[0], {"runs": ids, **LandscapeParams(steps=3).to_dict()}, "cpu")
    assert launcher.stop_task(task_id, store) == "stopped"
    launcher.pump(store)
    task = store.get_task(task_id)
    assert task.status == "stopped" and task.pid is None and task.finished_at is not None
    assert launcher.stop_task(task_id, store) == "stopped"  # asking again changes nothing


def test_a_task_whose_worker_died_or_fell_silent_is_reaped_as_interrupted(home):
    store, ids = home
    params = {"runs": ids, **LandscapeParams(steps=3).to_dict()}
    dead, silent, starting, fine = (store.create_task(KIND, ids[0], params, "cpu") for _ in range(4))
    assert store.claim_next_task("cpu", 5) == [dead, silent, starting, fine]  # running, but no worker started
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()  # its pid is now free: a dead worker
    now, me = time.time(), launcher.os.getpid()
    store.update_task(dead, pid=proc.pid)
    store.update_task(silent, pid=me, started_at=now - 200, heartbeat_at=now - 100)  # beat once, then nothing
    # spawned 10 s ago and still importing torch: its heartbeat is dated to the end of the start-up grace
    store.update_task(starting, pid=me, started_at=now - 10,
                      heartbeat_at=now - 10 + launcher.START_GRACE_S - launcher.STALE_AFTER_S)
    store.update_task(fine, pid=me, started_at=now - 10, heartbeat_at=now)
    assert launcher.reap_tasks(store) == [silent, dead]  # newest first, as store.tasks lists them
    assert store.get_task(dead).status == "interrupted" and "ended unexpectedly" in store.get_task(dead).error
    assert store.get_task(silent).status == "interrupted" and "no heartbeat for 100 s" in store.get_task(silent).error
    assert store.get_task(starting).status == store.get_task(fine).status == "running"
    store.update_task(starting, started_at=now - 100,  # spawned 100 s ago, never said hello
                      heartbeat_at=now - 100 + launcher.START_GRACE_S - launcher.STALE_AFTER_S)
    store.update_task(fine, heartbeat_at=now - 100)
    launcher.reap(store)  # the runs' reaper reaps tasks too
    assert store.get_task(starting).status == store.get_task(fine).status == "interrupted"


def test_a_failing_task_is_marked_failed_with_its_reason(home, monkeypatch):
    store, ids = home
    monkeypatch.setattr(worker.signal, "signal", lambda *a: None)  # in-process: leave pytest's handlers alone
    bad = store.create_task(KIND, ids[0], {"runs": ids, **{**LandscapeParams(steps=3).to_dict(), "steps": 4}}, "cpu")
    odd = store.create_task("no-such-kind", ids[0], {}, "cpu")
    assert store.claim_next_task("cpu", 5) == [bad, odd]
    assert worker.run_task(bad, store) == "failed"
    assert store.get_task(bad).error == \
        "ValueError: steps=4 must be odd so that the trained weights (0) are on the grid"
    assert worker.run_task(odd, store) == "failed"
    assert "unknown task kind 'no-such-kind'" in store.get_task(odd).error
    assert store.get_task(bad).pid == launcher.os.getpid()  # the worker recorded itself
    assert worker.run_task(bad, store) == "failed"  # not running any more: left alone
    assert worker.main(["x"]) == 2


def test_submit_refuses_what_would_fail_later(home):
    store, ids = home
    with pytest.raises(KeyError, match="no run with id 999"):
        submit_landscape(999, LandscapeParams(), store=store)
    run = store.get(ids[0])
    row = {"name": "alone", "spec": run.spec, "data": run.data, "train": run.train}
    (alone,) = store.create_job([row], device="cpu")
    store.set_status(alone, "done")
    with pytest.raises(ValueError, match=f"run {alone} has no checkpoint yet"):
        submit_landscape(alone, LandscapeParams(), twin=False, store=store)
    store.update(alone, ckpt_best=run.ckpt_best)
    with pytest.raises(ValueError, match=f"run {alone} has no twin"):
        submit_landscape(alone, LandscapeParams(), twin=True, store=store)
    with pytest.raises(ValueError, match="LandscapeParams"):
        submit_landscape(ids[0], {"steps": 3}, store=store)
    assert store.tasks() == []


def test_task_limits_come_from_the_environment(monkeypatch):
    assert launcher.task_limits() == {"cuda": 1, "cpu": 1}
    monkeypatch.setenv("RESNET_LAB_MAX_TASKS_CPU", "3")
    monkeypatch.setenv("RESNET_LAB_MAX_TASKS_CUDA", "0")
    assert launcher.task_limits() == {"cuda": 1, "cpu": 3}
