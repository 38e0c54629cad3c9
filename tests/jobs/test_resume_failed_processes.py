"""A training job that failed after its first checkpoint (the disk full while saving the second) resumes from that
checkpoint by the ordinary Resume and finishes with every number of an uninterrupted run with the same settings:
real worker processes, the real handler, engine, checkpoint writer and store; the fault is injected by a
``python -c`` wrapper that replaces the checkpoint writer's file write before the worker starts (as
tests/jobs/test_jobs_faults.py does), so the lab's code has no test-only hook."""

import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from resnet_lab import ModelSpec, jobs
from resnet_lab.data.registry import DataConfig
from resnet_lab.identity import MACHINE
from resnet_lab.jobs.turns import claim
from resnet_lab.train import launcher
from resnet_lab.train.config import TrainConfig
from tests.helpers.homes import seed, worker_store
from tests.helpers.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
TINY = ModelSpec(stem="cifar", depths=(1, 1), widths=(4, 8), shortcut="A", num_classes=3, in_channels=3)
DIGITS = DataConfig(name="digits", image_size=8, train_subset=256, augment=True)  # 4 steps of 64 an epoch
SETTINGS = TrainConfig(epochs=3, batch_size=64, lr=0.05, log_every=2, grad_norm_every=3, eval_points=0, device="cpu",
                       seed=3)  # validation at epoch ends only
TIMING = {"images_per_s", "compile_s", "train_s"}  # how fast, not what

FULL_DISK_ON_SECOND_SAVE = r"""
import errno, os, sys
from pathlib import Path
from resnet_lab.jobs import worker
from resnet_lab.models import checkpoint

real_write, saves = checkpoint._write, [0]

def full_disk(path, data):
    if Path(path).name.startswith(".last.safetensors."):  # a "last" save begins
        saves[0] += 1
    if saves[0] == 2:  # the end of epoch 2: the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    real_write(path, data)

checkpoint._write = full_disk
sys.exit(worker.main([sys.argv[1]]))
"""


@pytest.fixture
def store(lab_home, monkeypatch):
    yield from worker_store(monkeypatch, jobs_per_cpu=2)


def everything(store, run_id):
    """Every number a run logged (timings left out), its gradient norms, and its summary."""
    run = store.runs.get(run_id)
    metrics = {k: v for k, v in store.runs.metrics(run_id).items() if k not in TIMING}
    return metrics, store.runs.grad_norms(run_id), run.step, run.best, run.last


def test_a_job_failed_on_a_full_disk_resumes_from_its_checkpoint_and_ends_as_an_unbroken_run(store):
    rows = launcher.training_rows(TINY, DIGITS, SETTINGS)
    broken, (rid,) = store.jobs.create("train", "broken", "cpu", then=seed(runs=rows))
    whole, (wid,) = store.jobs.create("train", "whole", "cpu", then=seed(runs=rows))
    assert claim(store, {"cpu": 2}) == [(broken, "cpu"), (whole, "cpu")]
    jobs.spawn(store, whole, "cpu")  # the uninterrupted run, in its own worker meanwhile
    proc = subprocess.run([sys.executable, "-c", FULL_DISK_ON_SECOND_SAVE, str(broken)], cwd=ROOT,
                          env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=120)
    failed = store.jobs.get(broken)
    assert failed.status == "failed" and store.runs.get(rid).status == "failed", proc.stdout[-3000:]
    assert failed.error.endswith("then resume it: it continues from its previous checkpoint (step 4), which is intact.")
    assert store.runs.metrics(rid)["train/loss"][-1][0] == 8  # it had logged epoch 2 before the save failed

    jobs.resume(broken, store, by=MACHINE)  # the Resume of a stopped job: the CLI's `resume` and the card call it
    wait_for(lambda: {store.jobs.get(j).status for j in (broken, whole)} == {"done"}, timeout=120, store=store,
             what="the resumed and the unbroken job done")
    assert store.jobs.get(broken).resumes == 1 and store.runs.get(rid).status == "done"
    resumed, unbroken = everything(store, rid), everything(store, wid)
    assert resumed[2] == 12 and len(resumed[0]["train/loss"]) == 6 and "test/acc" not in resumed[0]
    # every loss, accuracy, lr and gradient norm, the steps, and the best and last evaluations
    for key in sorted(unbroken[0]):
        assert resumed[0].get(key) == unbroken[0][key], key
    assert resumed[1:] == unbroken[1:] and set(resumed[0]) == set(unbroken[0])
    pids = [store.jobs.get(j).pid for j in (broken, whole)]
    wait_for(lambda: not any(jobs.pid_alive(p) for p in pids), store=store, what="the workers gone")
