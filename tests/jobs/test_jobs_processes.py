"""Real worker processes of the one job system against a real database file, for a training job, a loss
landscape job and an interpolation job alike: SIGKILL -> interrupted -> resume, a graceful stop, first come first
served on one slot, and thirty pollers that never disturb a job."""

import dataclasses
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from resnet_lab import ModelSpec, jobs
from resnet_lab.analysis.landscape import InterpolationParams, LandscapeParams
from resnet_lab.data.registry import DataConfig
from resnet_lab.experiments.landscape import load_result, submit_interpolation, submit_landscape
from resnet_lab.identity import MACHINE
from resnet_lab.store import Store
from resnet_lab.train import launcher
from resnet_lab.models.checkpoint import load_checkpoint
from resnet_lab.train.config import TrainConfig
from tests.helpers.waiting import wait_for

TINY = ModelSpec(stem="cifar", depths=(1, 1), widths=(4, 8), shortcut="A", num_classes=3, in_channels=3)
DIGITS = DataConfig(name="digits", image_size=8, train_subset=256, augment=False)
QUICK = TrainConfig(epochs=1, batch_size=64, lr=0.05, log_every=2, grad_norm_every=2, device="cpu")
LONG_SLICE = LandscapeParams(dims=2, steps=31, batches=2, batch_size=64)  # ~2,000 evaluations: seconds
LONG_LINE = InterpolationParams(resolution=50, extend=1.0, batches=8, batch_size=32)  # ~600 evaluations: seconds


def long_job(kind, store, ids):
    """A job that runs for a while: 400 epochs of a tiny net on digits, a 31×31 landscape of a twin pair, or the
    line from each twin's initial weights to its trained ones at 301 points."""
    if kind == "train":
        run_id = launcher.submit(TINY, DIGITS, QUICK.replace(epochs=400, log_every=1), store=store)[0]
        return store.runs.get(run_id).job_id
    if kind == "interpolation":
        return submit_interpolation(ids[0], LONG_LINE, twin=True, store=store)
    return submit_landscape(ids[0], LONG_SLICE, twin=True, store=store)


def under_way(kind, store, job_id):
    job = store.jobs.get(job_id)
    if job.status != "running" or job.progress < 3:
        return False
    return kind != "train" or all(r.ckpt_last for r in store.runs.of_job(job_id))


@pytest.mark.parametrize("kind", ["train", "landscape", "interpolation"])
def test_sigkill_is_detected_as_interrupted_and_resume_goes_on(private_trained_home, kind):
    store, ids = private_trained_home
    job = long_job(kind, store, ids)
    wait_for(lambda: under_way(kind, store, job), store=store, what="the job under way")
    os.kill(store.jobs.get(job).pid, signal.SIGKILL)
    killed = time.time()
    wait_for(lambda: store.jobs.get(job).status == "interrupted", store=store, timeout=15, what="interrupted")
    assert time.time() - killed < 10 and "Interrupted" in store.jobs.get(job).error
    assert all(r.status == "interrupted" for r in store.runs.of_job(job))
    saved = load_checkpoint(store.runs.of_job(job)[0].ckpt_last).meta["step"] if kind == "train" else 0

    jobs.resume(job, store, by=MACHINE)
    wait_for(lambda: store.jobs.get(job).status == "running" and store.jobs.get(job).progress > saved + 2, store=store,
             what="the resumed job to go on")
    assert store.jobs.get(job).resumes == 1
    jobs.stop(job, store, by=MACHINE)
    wait_for(lambda: store.jobs.get(job).status == "stopped", store=store, what="stopped")
    if kind == "train":
        (run,) = store.runs.of_job(job)
        steps = [s for s, _, _ in store.runs.metrics(run.id, ["train/loss"])["train/loss"]]
        assert steps == sorted(set(steps)) and run.step > saved  # no step logged twice across crash and resume


@pytest.mark.parametrize("kind", ["train", "landscape"])
def test_stop_is_graceful_and_keeps_what_was_done(private_trained_home, kind):
    store, ids = private_trained_home
    job = long_job(kind, store, ids)
    wait_for(lambda: under_way(kind, store, job), store=store, what="the job under way")
    assert jobs.stop(job, store, by=MACHINE) == "stopping"
    wait_for(lambda: store.jobs.get(job).status == "stopped", store=store, what="stopped")
    done = store.jobs.get(job)
    if kind == "train":
        ckpt = load_checkpoint(store.runs.of_job(job)[0].ckpt_last)
        assert ckpt.meta["step"] >= 3 and ckpt.spec.in_channels == 1 and len(ckpt.class_names) == 10
    else:
        result = load_result(done.result_path)
        assert not result.complete and "partial result is saved" in done.error
        assert Path(done.result_path).parent == Path(os.environ["RESNET_LAB_HOME"]) / "runs" / str(ids[0])


def test_jobs_of_every_kind_take_turns_first_come_first_served_on_one_slot(private_trained_home, monkeypatch):
    store, ids = private_trained_home
    monkeypatch.setenv("RESNET_LAB_JOBS_PER_CPU", "1")
    order: list[int] = []
    errors: list[BaseException] = []
    slice_ = LandscapeParams(dims=1, steps=3, batches=1, batch_size=32)

    def submit(i):
        try:
            mine = Store()
            if i % 2:
                order.append(submit_landscape(ids[0], dataclasses.replace(slice_, seed=i), twin=False, store=mine))
            else:
                rid = launcher.submit(TINY, DIGITS, QUICK.replace(seed=i), name=f"job{i}", store=mine)[0]
                order.append(mine.runs.get(rid).job_id)
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(order) == 4
    running_at_once = []

    def all_done():
        js = [store.jobs.get(j) for j in order]
        running_at_once.append(sum(j.status == "running" for j in js))
        return not any(j.active for j in js)

    wait_for(all_done, store=store, timeout=300, what="four jobs")
    done = sorted((store.jobs.get(j) for j in order), key=lambda j: j.id)
    assert [j.status for j in done] == ["done"] * 4, [(j.kind, j.status, j.error) for j in done]
    assert {j.kind for j in done} == {"train", "landscape"}
    assert max(running_at_once) <= 1
    for a, b in zip(done, done[1:]):
        assert a.started_at <= b.started_at and a.finished_at <= b.started_at + 0.5  # in order, one at a time
    assert not any("locked" in (j.error or "") for j in done)


@pytest.mark.parametrize("kind", ["train", "landscape"])
def test_thirty_pollers_never_disturb_a_job_or_see_a_locked_database(private_trained_home, kind):
    """What 30 browsers watching do to the store: poll jobs, runs and metrics (and pump) while a worker writes."""
    store, ids = private_trained_home
    if kind == "train":
        rid = launcher.submit(TINY, DIGITS, QUICK.replace(epochs=4, log_every=1), twin=True, store=store)[0]
        job = store.runs.get(rid).job_id
    else:
        job = submit_landscape(ids[0], LandscapeParams(dims=2, steps=7, batches=1, batch_size=64), store=store)
    errors: list[BaseException] = []
    done = threading.Event()

    def poller():
        mine = Store()
        try:
            while not done.is_set():
                jobs.pump(mine)
                mine.jobs.get(job)
                for run in mine.runs.of_job(job) or [mine.runs.get(ids[0])]:
                    mine.runs.metrics(run.id, max_points=400)
                time.sleep(0.05)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=poller) for _ in range(30)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: not store.jobs.get(job).active, store=store, timeout=180, what="the watched job")
    finally:
        done.set()
        for t in threads:
            t.join()
    assert not errors, errors[:3]
    assert store.jobs.get(job).status == "done", store.jobs.get(job).error
    assert all(r.status == "done" for r in store.runs.of_job(job))


def test_a_job_of_an_unknown_kind_fails_with_the_reason(private_trained_home):
    store, ids = private_trained_home
    job = store.jobs.create("no-such-kind", "odd", "cpu")[0]
    jobs.pump(store)
    wait_for(lambda: not store.jobs.get(job).active, store=store, what="the odd job")
    assert store.jobs.get(job).status == "failed" and "unknown job kind 'no-such-kind'" in store.jobs.get(job).error
    assert (Path(os.environ["RESNET_LAB_HOME"]) / "jobs" / str(job) / "worker.log").is_file()
