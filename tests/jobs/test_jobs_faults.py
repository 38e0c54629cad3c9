"""Faults the classroom server survives, each through as much real code as possible: a checkpoint write that
fails half-way (a full disk), the GPU running out of memory in a training step, and a fine-tuning worker killed.

The first two run a real worker process (``worker.main``, the harness every job runs in) started from a
``python -c`` wrapper that replaces one function before the worker starts — the write inside the checkpoint
writer, or the model's forward — so the fault is injected without a test-only hook in the lab's code. The
training handler, engine, checkpoint writer, store and the pump at the worker's exit are all the real ones.
"""

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from resnet_lab.jobs.turns import claim
from resnet_lab import ModelSpec, jobs
from resnet_lab.data.registry import DataConfig
from resnet_lab.identity import MACHINE
from resnet_lab.jobs.handlers import registered
from resnet_lab.paths import run_dir
from resnet_lab.models import checkpoint
from resnet_lab.train import launcher
from resnet_lab.models.checkpoint import (CheckpointNotSaved, load_checkpoint, load_train_state, read_manifest,
                                         save_checkpoint)
from resnet_lab.train.config import TrainConfig
from resnet_lab.train.finetune import FinetuneConfig
from tests.helpers.homes import seed, worker_store
from tests.helpers.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
TINY = ModelSpec(stem="cifar", depths=(1, 1), widths=(4, 8), shortcut="A", num_classes=3, in_channels=3)
DIGITS = DataConfig(name="digits", image_size=8, train_subset=256, augment=False)  # 4 steps of 64 per epoch
QUICK = TrainConfig(epochs=1, batch_size=64, lr=0.05, log_every=2, grad_norm_every=2, device="cpu")

KILL_TESTED = {"train": "tests/jobs/test_jobs_processes.py", "landscape": "tests/jobs/test_jobs_processes.py",
               "interpolation": "tests/jobs/test_jobs_processes.py", "finetune": "tests/jobs/test_jobs_faults.py",
               "download": "tests/downloads/test_download_processes.py",
               "challenge": "tests/experiments/test_challenge_scoring.py",
               "speed": "tests/experiments/test_speed_processes.py"}
"""Every kind of job, and where its worker is SIGKILLed, found interrupted and resumed."""


@pytest.fixture
def store(lab_home, monkeypatch):
    """A store in this test's lab home; workers beat every 0.5 s, take one job at a time on the cpu, and none
    outlives the test."""
    yield from worker_store(monkeypatch, jobs_per_cpu=1)


def queue_train(store, train=QUICK, twin=False, name=None):
    """Queue a training job without starting it (no pump): (job id, run ids)."""
    rows = launcher.training_rows(TINY, DIGITS, train, twin=twin, name=name)
    return store.jobs.create("train", rows[0]["name"], "cpu", then=seed(runs=rows, partners=twin))


def run_worker_with(wrapper: str, *args) -> subprocess.CompletedProcess:
    """Run ``wrapper`` (Python source that patches, then calls ``worker.main``) as a worker process would run."""
    proc = subprocess.run([sys.executable, "-c", wrapper, *map(str, args)], cwd=ROOT, env=os.environ.copy(),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    return proc


def digest(folder: Path, pattern: str) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob(pattern))}


# --- a checkpoint write fails half-way ---------------------------------------------------------------------

@pytest.mark.parametrize("failing", ["last.safetensors", "last.state.pt", "last.json"])
def test_a_checkpoint_save_that_fails_half_way_leaves_the_previous_one_as_it_was(tmp_path, monkeypatch, failing):
    """Whichever of the three files the disk fills up on, the previous checkpoint keeps all three files byte for
    byte (weights, training state and manifest still belong together), loads, and no temporary file is left."""
    from resnet_lab import build_model

    folder = tmp_path / "run"
    model = build_model(TINY)
    save_checkpoint(folder, "last", model, {"spec": TINY.to_dict(), "step": 4}, {"step": 4})
    before = digest(folder, "*")
    assert set(before) == {"last.safetensors", "last.state.pt", "last.json"}
    old_weight = model.conv1.weight.detach().clone()
    with torch.no_grad():
        model.conv1.weight.add_(1.0)  # the model trained on: a later save would change every file
    real_write = checkpoint._write

    def full_disk(path, data):
        if Path(path).name.startswith(f".{failing}."):
            Path(path).write_bytes(data[: len(data) // 2])  # part of it reached the disk, then the disk was full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(path, data)

    monkeypatch.setattr(checkpoint, "_write", full_disk)
    with pytest.raises(CheckpointNotSaved) as caught:
        save_checkpoint(folder, "last", model, {"spec": TINY.to_dict(), "step": 8}, {"step": 8})
    assert caught.value.errno == errno.ENOSPC and caught.value.directory == folder and caught.value.tag == "last"
    assert digest(folder, "*") == before and not list(folder.glob(".*"))  # nothing half-written is left
    ckpt = load_checkpoint(folder / "last.json")
    state, _ = load_train_state(folder / "last.json")
    assert ckpt.meta["step"] == state["step"] == 4 and torch.equal(ckpt.model.conv1.weight, old_weight)


FULL_DISK_WORKER = r"""
import errno, hashlib, json, os, sys
from pathlib import Path
from resnet_lab.jobs import worker
from resnet_lab.models import checkpoint

job_id, fail_on, snapshot = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
real_write = checkpoint._write
saves = 0

def full_disk(path, data):
    global saves
    path = Path(path)
    if path.name.startswith(".last.safetensors."):  # the first file of a "last" save: a new save begins
        saves += 1
        if saves == fail_on:  # the previous "last", as it is before this save touches anything
            snapshot.write_text(json.dumps({p.name: hashlib.sha256(p.read_bytes()).hexdigest()
                                            for p in sorted(path.parent.glob("last.*"))}))
    if saves == fail_on and path.name.startswith(".last.state.pt."):  # the weights are written: now the disk is full
        path.write_bytes(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    real_write(path, data)

checkpoint._write = full_disk
sys.exit(worker.main([job_id]))
"""


def test_a_full_disk_while_saving_fails_the_run_with_the_reason_and_keeps_its_last_checkpoint(store, tmp_path):
    job, (rid,) = queue_train(store, QUICK.replace(epochs=3))
    assert claim(store, {"cpu": 1}) == [(job, "cpu")]
    snapshot = tmp_path / "previous_last.json"
    out = run_worker_with(FULL_DISK_WORKER, job, 2, snapshot).stdout  # the save at the end of epoch 2 fails

    done, run = store.jobs.get(job), store.runs.get(rid)
    assert done.status == "failed" and run.status == "failed", (done.status, done.error, out[-2000:])
    assert done.error == run.error == (
        f"No space left on device while saving the checkpoint of run #{rid} ({run.name}) in {run_dir(rid)}: "
        "free some disk space, then resume it: it continues from its previous checkpoint (step 4), which is intact.")
    assert "OSError: [Errno 28] No space left on device" in out  # the job's log keeps the original error
    folder = run_dir(rid)
    assert digest(folder, "last.*") == json.loads(snapshot.read_text())  # byte for byte what epoch 1 saved
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    ckpt = load_checkpoint(run.ckpt_last)
    state, _ = load_train_state(run.ckpt_last)
    assert ckpt.meta["step"] == state["step"] == 4 and ckpt.meta["run_id"] == rid
    assert read_manifest(run.ckpt_best)["step"] >= 1  # "best" was saved before, and is left alone


# --- the GPU runs out of memory ----------------------------------------------------------------------------

OUT_OF_MEMORY_WORKER = r"""
import json, sys, weakref
from pathlib import Path
import torch
from resnet_lab.jobs import worker
from resnet_lab.train import engine

job_id, report = sys.argv[1], Path(sys.argv[2])
models = weakref.WeakSet()
built, steps = [0], [0]
real_build, real_logits, real_pump = engine.build_model, engine.full_logits, worker.pump

def build_model(spec):
    model = real_build(spec)
    models.add(model)
    built[0] += 1
    return model

def full_logits(model, x):
    if model.training:
        steps[0] += 1
        if steps[0] == 3:  # the second step of the ResNet: it has trained a little, then the GPU is full
            raise torch.cuda.OutOfMemoryError(
                "CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 139.80 GiB of which "
                "1.21 GiB is free.")
    return real_logits(model, x)

def pump(store=None, *args, **kwargs):  # the worker's last act: start the next job; what does it still hold?
    report.write_text(json.dumps({"built": built[0], "alive": len(models)}))
    return real_pump(store, *args, **kwargs)

engine.build_model, engine.full_logits, worker.pump = build_model, full_logits, pump
sys.exit(worker.main([job_id]))
"""


def test_out_of_gpu_memory_fails_the_job_with_what_to_change_and_the_next_job_starts(store, tmp_path):
    first, ids = queue_train(store, QUICK.replace(epochs=2), twin=True)
    second, (next_run,) = queue_train(store, name="the next student's run")
    assert claim(store, {"cpu": 1}) == [(first, "cpu")]  # one lane: the second job waits its turn
    report = tmp_path / "at_pump.json"
    out = run_worker_with(OUT_OF_MEMORY_WORKER, first, report).stdout

    failed = store.jobs.get(first)
    assert failed.status == "failed", (failed.error, out[-2000:])
    resnet = store.runs.get(ids[0])
    assert failed.error == (
        f"Out of GPU memory: run #{ids[0]} ({ModelSpec.from_dict(resnet.spec).describe().split(' (')[0]} with its "
        "plain twin) at batch size 64 and 8×8 px images did not fit on cpu. Lower the batch size or image size, or "
        "wait for the GPU to be free, then start it again.")
    assert [store.runs.get(i).status for i in ids] == ["failed", "failed"]
    assert all(store.runs.get(i).error == failed.error for i in ids)
    assert "OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 GiB" in out  # torch's words, in the log
    assert json.loads(report.read_text()) == {"built": 2, "alive": 0}  # both models let go before the next job

    # nobody here pumps: the worker that failed started the next job as it ended
    wait_for(lambda: not store.jobs.get(second).active, what="the next job, started by the failed job's worker")
    nxt = store.jobs.get(second)
    assert nxt.status == "done" and store.runs.get(next_run).status == "done", nxt.error
    assert nxt.started_at >= failed.finished_at  # it waited for the lane, and got it when the failed job ended


def test_out_of_gpu_memory_says_who_else_was_using_the_gpu(store):
    from resnet_lab.jobs.handlers import JobContext
    from resnet_lab.train.handler import out_of_memory_message

    mine, (rid,) = queue_train(store)
    queue_train(store, name="a classmate's run")
    assert len(claim(store, {"cpu": 2})) == 2
    ctx = JobContext(job=store.jobs.get(mine), store=store, device="cpu", progress=lambda *_: None)
    assert f"run #{rid} (" in out_of_memory_message(ctx)
    assert "did not fit on cpu; another job was using it. Lower the batch size" in out_of_memory_message(ctx)


def test_a_failed_job_says_why_in_words():
    from resnet_lab.jobs.handlers import JobFailed
    from resnet_lab.jobs.worker import failure_message

    said = "Out of GPU memory: run #3 (ResNet-20) ..."
    assert failure_message(JobFailed(said), "train", "cuda:0") == said
    assert failure_message(ValueError("bad size"), "landscape", "cpu") == "ValueError: bad size"
    assert failure_message(torch.cuda.OutOfMemoryError("CUDA out of memory."), "landscape", "cuda:1") == (
        "The GPU (cuda:1) ran out of memory during this landscape job: wait for the GPU to be free (other jobs on it "
        "hold memory), or ask for less at once, then start it again.")


# --- a killed worker, for every kind of job -----------------------------------------------------------------

def test_every_kind_of_job_has_a_kill_and_resume_test():
    assert set(registered()) == set(KILL_TESTED), "a new kind of job needs its SIGKILL -> interrupted -> resume test"
    for kind, path in KILL_TESTED.items():
        text = (ROOT / path).read_text()
        assert "SIGKILL" in text and kind in text, (kind, path)


def test_a_killed_finetune_worker_is_interrupted_then_resumes_from_its_checkpoint(private_trained_home):
    store, ids = private_trained_home
    train = QUICK.replace(epochs=400, log_every=1)
    (rid,) = launcher.submit_finetune(FinetuneConfig(source=f"run:{ids[0]}", strategy="full"), DIGITS, train,
                                      store=store)
    job = store.runs.get(rid).job_id
    assert store.jobs.get(job).kind == "finetune"

    def under_way():
        j = store.jobs.get(job)
        return j.status == "running" and j.progress >= 3 and store.runs.get(rid).ckpt_last is not None

    wait_for(under_way, store=store, what="the fine-tuning job under way")
    os.kill(store.jobs.get(job).pid, signal.SIGKILL)
    wait_for(lambda: store.jobs.get(job).status == "interrupted", timeout=30, store=store, what="interrupted")
    killed = store.jobs.get(job)
    assert "Resume continues from the last checkpoint" in killed.error
    assert store.runs.get(rid).status == "interrupted"
    saved = load_checkpoint(store.runs.get(rid).ckpt_last).meta["step"]
    assert saved >= 4

    jobs.resume(job, store, by=MACHINE)
    wait_for(lambda: store.jobs.get(job).status == "running" and store.jobs.get(job).progress > saved + 2,
             store=store, what="the resumed fine-tuning job to go on")
    assert store.jobs.get(job).resumes == 1 and store.runs.get(rid).status == "running"
    assert jobs.stop(job, store, by=MACHINE) == "stopping"
    wait_for(lambda: store.jobs.get(job).status == "stopped", store=store, what="stopped")
    run = store.runs.get(rid)
    steps = [s for s, _, _ in store.runs.metrics(rid, ["train/loss"])["train/loss"]]
    assert steps == sorted(set(steps)) and run.step > saved  # no step logged twice across the kill and the resume
    assert run.finetune["source"] == f"run:{ids[0]}" and load_checkpoint(run.ckpt_last).meta["step"] > saved
