"""Training on several processes — DistributedDataParallel started by torchrun through the job system — on the
CPU with gloo and two processes (RESNET_LAB_JOBS_PER_CPU=2: the cpu slot has two lanes).

What "the same run on two devices" must mean, and the tolerance: a job of world_size 2 and one of world_size 1
with the same settings and global batch end with the same weights, BatchNorm statistics included, within
``ATOL`` = 1e-5 (absolute, on values of order 0.01..1). That is float rounding: the one-process run computes
each BatchNorm's statistics in one pass over 64 images, the pair sums two halves (GlobalBatchNorm2d) and DDP
averages two half-batch gradients; after 12 SGD steps the largest difference seen is about 2e-7. With DDP's
default per-rank BatchNorm statistics instead, the same comparison differs by about 1e-2 — so the tolerance
tells the global-batch semantics from the per-rank ones. Augmentation is on (pad-crop): each rank augments
the whole global batch with the shared generator and keeps its half, so it draws what one process draws.
"""

import contextlib
import os
import signal
from pathlib import Path

import pytest
import torch

from resnet_lab import build_model, jobs
from resnet_lab.data.registry import DataConfig
from resnet_lab.jobs import scheduler
from resnet_lab.identity import MACHINE
from resnet_lab.store import Store
from resnet_lab.train import distributed, launcher
from resnet_lab.models.checkpoint import load_checkpoint
from resnet_lab.train.config import TrainConfig
from resnet_lab.train.batches import ImageBatches
from tests.helpers import waiting
from tests.helpers.homes import seed

from .conftest import TINY, make_data

ATOL = 1e-5
DIGITS = DataConfig(name="digits", image_size=8, train_subset=256, augment=True)
SHORT = TrainConfig(epochs=3, batch_size=64, lr=0.05, log_every=2, grad_norm_every=2, eval_points=0, device="cpu")


def wait_for(predicate, store, timeout=180.0, what="condition"):
    """:func:`tests.helpers.waiting.wait_for`, pumping ``store``; a wait that runs out shows the jobs and logs."""
    waiting.wait_for(predicate, timeout, store, what, explain=lambda: f"the jobs: {jobs_and_logs(store)}")


def jobs_and_logs(store) -> str:
    """Every job's status and error, and the end of its workers' log: what a failed wait shows."""
    from resnet_lab.paths import job_dir

    out = []
    for job in store.jobs.list():
        log = job_dir(job.id) / "worker.log"
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        out.append(f"\njob {job.id} {job.status} progress {job.progress} error {job.error!r}\n{tail}")
    return "".join(out)


def children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (from /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue  # a process that ended while we looked
    return out


def group_of(rank0_pid: int) -> list[int]:
    """Every worker of rank 0's group: the children of its torchrun agent (rank 0 itself included)."""
    agent = int(Path(f"/proc/{rank0_pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    return children(agent)


@pytest.fixture
def store(lab_home, monkeypatch):
    monkeypatch.setenv("RESNET_LAB_JOBS_PER_CPU", "2")
    monkeypatch.setenv("RESNET_LAB_HEARTBEAT_S", "0.5")
    s = Store()
    yield s
    for proc in list(scheduler._children.values()):  # leave no torchrun agent and none of its workers behind
        if proc.poll() is None:  # still our child: its pid is its own, not a reused one
            for pid in children(proc.pid):
                with contextlib.suppress(ProcessLookupError):  # it may have ended since it was listed
                    os.kill(pid, signal.SIGKILL)
            proc.kill()
            proc.wait(timeout=30)
    s.close()


def finished(store, run_ids):
    return all(not store.runs.get(i).active for i in run_ids)


# --- in one process ---------------------------------------------------------------------------------------

def test_the_ranks_shares_of_an_augmented_batch_are_the_one_process_batch():
    data = make_data(n_train=32)
    idx = torch.randperm(32)[:16]
    whole = ImageBatches(data, torch.device("cpu"), True, torch.Generator().manual_seed(3)).train(idx)
    parts = [ImageBatches(data, torch.device("cpu"), True, torch.Generator().manual_seed(3),
                          share=distributed.share(16, distributed.Group(r, 4, r, "gloo"))).train(idx)
             for r in range(4)]
    assert torch.equal(torch.cat([x for x, _ in parts]), whole[0]) and torch.equal(torch.cat([y for _, y in parts]),
                                                                                   whole[1])
    with pytest.raises(ValueError, match="does not split evenly over 3"):
        distributed.share(16, distributed.Group(0, 3, 0, "gloo"))


def test_global_batchnorm_alone_is_plain_batchnorm_and_keeps_the_same_parameters():
    torch.manual_seed(0)
    net = build_model(TINY)
    weight = net.bn1.weight
    converted = distributed.global_batchnorm(net, cuda=False)
    assert isinstance(converted.bn1, distributed.GlobalBatchNorm2d) and converted.bn1.weight is weight
    torch.manual_seed(0)
    ref = build_model(TINY)
    x = torch.rand(8, 3, 8, 8)
    assert torch.equal(converted(x), ref(x))  # no group: BatchNorm2d's own forward, running stats alike
    assert set(converted.state_dict()) == set(ref.state_dict())


# --- through the job system, two processes ------------------------------------------------------------------

@pytest.mark.slow
def test_two_processes_end_with_one_process_weights_and_metrics_recorded_once(store):
    one = launcher.submit(TINY, DIGITS, SHORT, twin=True, store=store)
    two = launcher.submit(TINY, DIGITS, SHORT, twin=True, store=store, world_size=2)
    wait_for(lambda: finished(store, one + two), store, what="both jobs")
    job = store.jobs.get(store.runs.get(two[0]).job_id)
    assert job.status == "done" and job.world_size == 2 and job.slots == ["cpu", "cpu"], job.error
    for a, b in zip(one, two):
        ra, rb = store.runs.get(a), store.runs.get(b)
        assert ra.status == rb.status == "done" and rb.step == ra.step == 12
        ca, cb = load_checkpoint(ra.ckpt_last), load_checkpoint(rb.ckpt_last)
        assert cb.meta["world_size"] == 2 and cb.meta["step"] == 12
        sa, sb = ca.model.state_dict(), cb.model.state_dict()
        assert set(sa) == set(sb)
        for key in sa:
            torch.testing.assert_close(sb[key], sa[key], rtol=0, atol=ATOL, msg=lambda m, k=key: f"{k}: {m}")
        # recorded once, by rank 0, and of the global batch: the one-process run's numbers at the same steps
        ma, mb = store.runs.metrics(a), store.runs.metrics(b)
        for key in ("train/loss", "train/acc", "val/loss", "val/acc"):
            steps = [s for s, _, _ in mb[key]]
            assert steps == sorted(set(steps)) == [s for s, _, _ in ma[key]], key
            assert [v for _, _, v in mb[key]] == pytest.approx([v for _, _, v in ma[key]], abs=ATOL), key
        assert [s for s, _, _ in mb["train/loss"]] == [2, 4, 6, 8, 10, 12] and len(mb["val/acc"]) == 3
        _, norm_steps, _ = store.runs.grad_norms(b)
        assert norm_steps == sorted(set(norm_steps))


@pytest.mark.slow
def test_a_killed_rank_interrupts_the_job_and_resume_and_stops_carry_the_whole_group(store):
    long = SHORT.replace(epochs=60, log_every=1)  # 240 steps: long enough to kill, stop and resume it twice
    (run_id,) = launcher.submit(TINY, DIGITS, long, store=store, world_size=2)
    job_id = store.runs.get(run_id).job_id

    def under_way(after=0):
        job, run = store.jobs.get(job_id), store.runs.get(run_id)
        return job.status == "running" and job.progress > after + 4 and run.ckpt_last is not None \
            and load_checkpoint(run.ckpt_last).meta["step"] > after

    wait_for(under_way, store, what="the group under way")
    rank0 = store.jobs.get(job_id).pid
    group = group_of(rank0)
    assert len(group) == 2 and rank0 in group
    (rank1,) = [p for p in group if p != rank0]
    os.kill(rank1, signal.SIGKILL)
    wait_for(lambda: store.jobs.get(job_id).status == "interrupted", store, timeout=60, what="interrupted")
    job = store.jobs.get(job_id)
    assert "Interrupted" in job.error and "Resume" in job.error, jobs_and_logs(store)
    assert store.runs.get(run_id).status == "interrupted"
    wait_for(lambda: not any(jobs.pid_alive(p) for p in group), store, timeout=60, what="the whole group to end")
    saved = load_checkpoint(store.runs.get(run_id).ckpt_last).meta["step"]

    jobs.resume(job_id, store, by=MACHINE)  # every rank loads the last checkpoint
    wait_for(lambda: under_way(saved), store, what="the resumed group to go on")
    assert jobs.stop(job_id, store, by=MACHINE) == "stopping"  # seen by rank 0, agreed on by both at the next log point
    wait_for(lambda: store.jobs.get(job_id).status == "stopped", store, timeout=60, what="stopped")
    run = store.runs.get(run_id)
    assert run.status == "stopped" and load_checkpoint(run.ckpt_last).meta["step"] == run.step > saved, \
        jobs_and_logs(store)

    jobs.resume(job_id, store, by=MACHINE)
    wait_for(lambda: under_way(run.step), store, what="the group to go on again")
    os.kill(store.jobs.get(job_id).pid, signal.SIGTERM)  # a SIGTERM to rank 0 is a stop for the whole group
    wait_for(lambda: store.jobs.get(job_id).status == "stopped", store, timeout=60, what="stopped by SIGTERM")
    run = store.runs.get(run_id)
    assert run.status == "stopped" and load_checkpoint(run.ckpt_last).meta["step"] == run.step, jobs_and_logs(store)

    jobs.resume(job_id, store, by=MACHINE)
    wait_for(lambda: finished(store, [run_id]), store, what="the job to finish")
    run = store.runs.get(run_id)
    assert run.status == "done" and run.step == run.total_steps == 240, jobs_and_logs(store)
    assert store.jobs.get(job_id).status == "done" and store.jobs.get(job_id).resumes == 3
    steps = [s for s, _, _ in store.runs.metrics(run_id, ["train/loss"])["train/loss"]]
    assert steps == list(range(1, 241)), steps  # every step logged once across a kill, two stops and three resumes


@pytest.mark.slow
def test_an_error_of_every_rank_fails_the_group_job_with_its_reason(store):
    # cifar10's files are absent: every rank fails the same way, and the job says why (failed, not interrupted)
    from resnet_lab import PRESETS

    job, (run_id,) = store.jobs.create("train", "no data", "cpu", world_size=2, then=seed(runs=[{
        "name": "no data", "spec": PRESETS["resnet20"].to_dict(), "data": DataConfig(name="cifar10").to_dict(),
        "train": SHORT.to_dict()}]))
    wait_for(lambda: finished(store, [run_id]), store, what="the job to end")
    assert store.jobs.get(job).status == "failed" and "DatasetMissing" in store.jobs.get(job).error
