"""Real worker processes against a real database file."""

import os
import signal
import threading
import time

import pytest

from resnet_lab import PRESETS
from resnet_lab.data.registry import DataConfig
from resnet_lab.store import Store
from resnet_lab.train import launcher
from resnet_lab.train.checkpoint import load_checkpoint
from resnet_lab.train.config import TrainConfig

from .conftest import TINY

DIGITS = DataConfig(name="digits", image_size=8, train_subset=256, augment=False)
QUICK = TrainConfig(epochs=1, batch_size=64, lr=0.05, log_every=2, grad_norm_every=2, device="cpu")


def wait_for(predicate, timeout=120.0, store=None, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if store is not None:
            launcher.pump(store)
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def store(lab_home, monkeypatch):
    monkeypatch.setenv("RESNET_LAB_HEARTBEAT_S", "0.5")
    s = Store()
    yield s
    for run in s.runs(statuses=["running"]):  # leave no worker behind
        if run.pid and launcher.pid_alive(run.pid):
            os.kill(run.pid, signal.SIGKILL)


def test_twin_job_runs_in_one_worker_and_records_both(store):
    ids = launcher.submit(TINY, DIGITS, QUICK, twin=True, store=store)
    wait_for(lambda: all(store.get(i).status == "done" for i in ids), store=store, what="both runs done")
    resnet, plain = (store.get(i) for i in ids)
    assert plain.twin_of == resnet.id and resnet.pid == plain.pid
    assert resnet.spec["in_channels"] == 1 and resnet.spec["num_classes"] == 10  # fitted to digits
    assert plain.spec["skip"] is False and resnet.step == resnet.total_steps == 4
    for r in (resnet, plain):
        assert "val/acc" in r.best and load_checkpoint(r.ckpt_best).spec.skip == r.spec["skip"]
        m = store.metrics(r.id)
        assert {"train/loss", "train/acc", "lr", "images_per_s", "val/loss", "val/acc"} <= set(m)
    names, steps, norms = store.grad_norms(resnet.id)
    assert names[0] == "conv1" and steps == [0, 2] and len(norms[0]) == len(names)


def test_sigkill_is_detected_as_interrupted_and_resume_finishes(store):
    cfg = QUICK.replace(epochs=400, log_every=1)
    job = launcher.submit(TINY, DIGITS, cfg, store=store)[0]
    wait_for(lambda: store.get(job).ckpt_last is not None and store.get(job).step > 0, store=store,
             what="a first checkpoint")
    pid = store.get(job).pid
    os.kill(pid, signal.SIGKILL)
    killed = time.time()
    wait_for(lambda: store.get(job).status == "interrupted", timeout=4 * 0.5 + 10, store=store, what="interrupted")
    run = store.get(job)
    assert time.time() - killed < 10 and "Interrupted" in run.error and run.ckpt_last
    saved_step = load_checkpoint(run.ckpt_last).meta["step"]

    launcher.resume(job, store)
    wait_for(lambda: store.get(job).status == "running" and store.get(job).step > saved_step, store=store,
             what="the resumed run to step on")
    assert store.get(job).resumes == 1
    launcher.stop(job, store)
    wait_for(lambda: store.get(job).status == "stopped", store=store, what="stopped")
    steps = [s for s, _, _ in store.metrics(job, ["train/loss"])["train/loss"]]
    assert steps == sorted(set(steps))  # no step logged twice across the crash and the resume


def test_stop_is_graceful_and_leaves_a_loadable_checkpoint(store):
    job = launcher.submit(TINY, DIGITS, QUICK.replace(epochs=400, log_every=1), store=store)[0]
    wait_for(lambda: store.get(job).step > 3, store=store, what="some steps")
    assert launcher.stop(job, store) == "stopping"
    wait_for(lambda: store.get(job).status == "stopped", store=store, what="stopped")
    run = store.get(job)
    ckpt = load_checkpoint(run.ckpt_last)
    assert ckpt.meta["step"] > 3 and ckpt.spec.in_channels == 1 and len(ckpt.class_names) == 10


def test_six_jobs_at_once_with_a_limit_of_one_all_finish_in_order(store, monkeypatch):
    monkeypatch.setenv("RESNET_LAB_MAX_RUNS_CPU", "1")
    ids: list[int] = []
    errors: list[BaseException] = []

    def submit(i):
        try:
            mine = Store()
            ids.extend(launcher.submit(TINY, DIGITS, QUICK.replace(seed=i), name=f"job{i}", store=mine))
        except BaseException as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(ids) == 6
    running_at_once = []

    def all_done():
        runs = [store.get(i) for i in ids]
        running_at_once.append(sum(r.status == "running" for r in runs))
        return all(r.status not in ("queued", "running") for r in runs)

    wait_for(all_done, timeout=300, store=store, what="six runs")
    runs = sorted((store.get(i) for i in ids), key=lambda r: r.id)
    assert [r.status for r in runs] == ["done"] * 6, [(r.status, r.error) for r in runs]
    assert max(running_at_once) <= 1
    for a, b in zip(runs, runs[1:]):
        assert a.started_at <= b.started_at and a.finished_at <= b.started_at + 0.5  # FIFO, one at a time
    assert not any("locked" in (r.error or "") for r in runs)


def test_a_failing_worker_marks_the_run_failed_with_the_reason(store, lab_home):
    # cifar10 files are absent: the worker must say what to put where, not crash silently
    ids = store.create_job([{"name": "no data", "spec": PRESETS["resnet20"].to_dict(),
                             "data": DataConfig(name="cifar10").to_dict(), "train": QUICK.to_dict()}], "cpu")
    launcher.pump(store)
    wait_for(lambda: store.get(ids[0]).status == "failed", store=store, what="failed")
    err = store.get(ids[0]).error
    assert "DatasetMissing" in err and "cifar-10-batches-py" in err


def test_missing_data_is_refused_before_queueing(lab_home):
    with pytest.raises(ValueError, match="CIFAR-10 is not in"):
        launcher.check_data_available(DataConfig(name="cifar10"))


@pytest.mark.slow
def test_resnet20_learns_shapes_clearly_above_chance_with_its_twin_recorded(store):
    data = DataConfig(name="shapes", image_size=24, train_subset=1500, seed=0)
    ids = launcher.submit(PRESETS["resnet20"], data, TrainConfig(epochs=4, batch_size=64, device="cpu"),
                          twin=True, store=store)
    wait_for(lambda: all(store.get(i).status == "done" for i in ids), timeout=400, store=store, what="training")
    resnet, plain = (store.get(i) for i in ids)
    chance = 1 / 6
    print(f"\nshapes 24px, 1500 images, 4 epochs: resnet20 val acc {resnet.best['val/acc']:.3f}, "
          f"plain20 val acc {plain.best['val/acc']:.3f} (chance {chance:.3f})")
    assert resnet.best["val/acc"] > 2 * chance
    assert plain.twin_of == resnet.id and "val/acc" in plain.best


def test_thirty_pollers_never_disturb_a_run_or_see_a_locked_database(store):
    """What 30 browsers watching do to the store: poll runs and metrics (and pump) while a worker writes."""
    job = launcher.submit(TINY, DIGITS, QUICK.replace(epochs=6, log_every=1), twin=True, store=store)[0]
    errors: list[BaseException] = []
    done = threading.Event()

    def poller():
        mine = Store()
        try:
            while not done.is_set():
                launcher.pump(mine)
                for run in mine.job_runs(job):
                    mine.metrics(run.id, max_points=400)
                time.sleep(0.05)
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=poller) for _ in range(30)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: not store.get(job).active, timeout=180, what="the watched run")
    finally:
        done.set()
        for t in threads:
            t.join()
    assert not errors, errors[:3]
    assert [r.status for r in store.job_runs(job)] == ["done", "done"]


def test_a_shapes_run_fine_tuned_on_digits_with_each_strategy_records_runs_with_curves(store):
    from resnet_lab.train.finetune import FinetuneConfig

    shapes = DataConfig(name="shapes", image_size=16, train_subset=300, seed=0)
    base = launcher.submit(TINY, shapes, QUICK.replace(epochs=2), store=store)[0]
    wait_for(lambda: store.get(base).status == "done", store=store, what="the shapes run")
    digits = DataConfig(name="digits", image_size=16, train_subset=300)
    ids = []
    for strategy in ("linear", "last:1", "full"):
        ids += launcher.submit_finetune(FinetuneConfig(source=f"run:{base}", strategy=strategy), digits,
                                        QUICK.replace(epochs=2), store=store)
    wait_for(lambda: all(store.get(i).status == "done" for i in ids), timeout=300, store=store, what="fine-tunes")
    for i in ids:
        run = store.get(i)
        curves = store.metrics(i)
        assert len(curves["train/loss"]) >= 2 and len(curves["val/acc"]) == 2, run.name
        assert run.spec["num_classes"] == 10 and run.spec["in_channels"] == 3  # head swapped, digits shown as RGB
        assert run.finetune["source"] == f"run:{base}"
        print(f"\n{run.name}: best val acc {run.best['val/acc']:.3f}")
    linear = load_checkpoint(store.get(ids[0]).ckpt_last)
    shapes_model = load_checkpoint(store.get(base).ckpt_best)
    import torch
    assert torch.equal(linear.model.layer1[0].conv1.weight, shapes_model.model.layer1[0].conv1.weight)
