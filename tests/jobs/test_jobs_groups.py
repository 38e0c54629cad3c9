"""Jobs that run as a group of processes (world_size > 1): placement on several slots, first come first served,
the torchrun command and each group's CUDA_VISIBLE_DEVICES, refusals at submission, and queue forecasts."""

import sys

import pytest

from resnet_lab import jobs
from resnet_lab.experiments.landscape import LANDSCAPE_JOB
from resnet_lab.jobs import JobRequest
from resnet_lab.jobs import eta, scheduler, slots
from resnet_lab.jobs.turns import claim
from resnet_lab.jobs.turns import place
from resnet_lab.jobs.worker import group_lost
from resnet_lab.store import Store
from resnet_lab.train.handler import TRAIN, TrainingRuns
from tests.helpers.homes import seed

GPUS = {"cpu": 2, "cuda:0": 1, "cuda:1": 1, "cuda:2": 1}


def run(name="r"):
    return {"name": name, "spec": {"stem": "cifar"}, "data": {"name": "digits"}, "train": {"epochs": 1}}


def train_job(name, device, **request):
    """A request for a training job of one run."""
    return JobRequest(TRAIN, name, device, payload=TrainingRuns((run(),)), **request)


@pytest.fixture
def s(tmp_path):
    return Store(tmp_path / "runs.db")


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    for name in ("RESNET_LAB_JOBS_PER_GPU", "RESNET_LAB_JOBS_PER_CPU", "RESNET_LAB_GPUS", "RESNET_LAB_GPU_COUNT",
                 "RESNET_LAB_CUDA_DEVICES", "CUDA_VISIBLE_DEVICES"):
        monkeypatch.delenv(name, raising=False)


def test_place_takes_different_gpus_but_lanes_of_the_one_cpu_slot():
    free = {"cpu": 2, "cuda:0": 1, "cuda:1": 2, "cuda:2": 0}
    assert place("cuda", 2, GPUS, free) == ["cuda:1", "cuda:0"]  # the roomiest first, never one GPU twice
    assert place("cuda", 3, GPUS, free) is None  # cuda:2 is full: only two GPUs have room
    assert place("cpu", 2, GPUS, free) == ["cpu", "cpu"]
    assert place("cpu", 3, GPUS, free) is None
    assert place("cuda", 1, GPUS, free) == ["cuda:1"]


def test_a_group_job_takes_its_lanes_and_a_later_small_job_does_not_overtake_it(s):
    first = s.jobs.create("train", "one", "cpu", then=seed(runs=[run()]))[0]
    group = s.jobs.create("train", "two", "cpu", then=seed(runs=[run()]), world_size=2)[0]
    small = s.jobs.create("train", "small", "cpu", then=seed(runs=[run()]))[0]
    gpu = s.jobs.create("train", "gpu", "cuda", then=seed(runs=[run()]), world_size=2)[0]
    assert claim(s, GPUS) == [(first, "cpu"), (gpu, "cuda:0,cuda:1")]  # "small" waits behind the group
    assert s.jobs.get(gpu).slots == ["cuda:0", "cuda:1"] and s.jobs.get(gpu).world_size == 2
    assert s.runs.of_job(gpu)[0].device == "cuda:0,cuda:1"
    assert s.jobs.running_per_slot() == {"cpu": 1, "cuda:0": 1, "cuda:1": 1}
    s.jobs.finish(first, "done")
    assert claim(s, GPUS) == [(group, "cpu,cpu")]
    assert s.jobs.running_per_slot()["cpu"] == 2 and claim(s, GPUS) == []
    s.jobs.finish(group, "done")
    assert claim(s, GPUS) == [(small, "cpu")]


def test_world_size_is_checked_at_submission(lab_home, monkeypatch):
    monkeypatch.setattr(slots, "_torch_gpus", lambda: 2)
    store = Store()
    with pytest.raises(ValueError, match="needs 3 GPUs; the lab has 2"):
        jobs.submit(store, train_job("x", "cuda", world_size=3, start=False))
    with pytest.raises(ValueError, match="RESNET_LAB_JOBS_PER_CPU"):
        jobs.submit(store, train_job("x", "cpu", world_size=2, start=False))
    with pytest.raises(ValueError, match="runs in one process"):
        jobs.submit(store, JobRequest(LANDSCAPE_JOB, "x", "cpu", world_size=2, start=False))
    with pytest.raises(ValueError, match="at least 1"):
        store.jobs.create("train", "x", "cpu", then=seed(runs=[run()]), world_size=0)
    monkeypatch.setenv("RESNET_LAB_JOBS_PER_CPU", "2")
    job, _ = jobs.submit(store, train_job("x", "cpu", world_size=2, start=False))
    assert store.jobs.get(job).world_size == 2
    assert store.jobs.get(jobs.submit(store, train_job("y", "cpu", start=False))[0]).world_size == 1


def test_a_group_is_started_by_torchrun_and_sees_its_gpus_in_order(monkeypatch):
    monkeypatch.setattr(slots, "_torch_gpus", lambda: 4)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    assert slots.worker_env("cuda:1,cuda:3")["CUDA_VISIBLE_DEVICES"] == "5,7"
    assert slots.worker_env("cpu,cpu")["CUDA_VISIBLE_DEVICES"] == ""
    assert scheduler.worker_command(12) == [sys.executable, "-m", "resnet_lab.jobs.worker", "12"]
    cmd = scheduler.worker_command(12, 2)
    assert cmd[:3] == [sys.executable, "-m", "torch.distributed.run"] and cmd[-3:] == ["-m", "resnet_lab.jobs.worker",
                                                                                     "12"]
    assert cmd[cmd.index("--nproc_per_node") + 1] == "2" and cmd[cmd.index("--max_restarts") + 1] == "0"
    assert 0 < int(cmd[cmd.index("--master_port") + 1]) < 65536


def test_the_pump_spawns_a_group_with_one_command(lab_home, monkeypatch):
    started = []

    class FakeProc:
        pid = 434343

        def poll(self):
            return None

    monkeypatch.setattr(scheduler.subprocess, "Popen",
                        lambda args, **kw: started.append((args, kw["env"]["CUDA_VISIBLE_DEVICES"])) or FakeProc())
    monkeypatch.setattr(scheduler, "pid_alive", lambda pid: True)
    store = Store()
    job = store.jobs.create("train", "g", "cuda", then=seed(runs=[run()]), world_size=2)[0]
    assert jobs.pump(store, capacity={"cpu": 1, "cuda:0": 2, "cuda:1": 2}) == [job]
    (args, visible), = started
    assert "torch.distributed.run" in args and visible == "0,1" and store.jobs.get(job).pid == 434343
    scheduler._children.clear()


def test_a_forecast_holds_every_lane_of_a_group(s):
    a = s.jobs.create("train", "a", "cpu", then=seed(runs=[run()]), estimate_s=100.0, world_size=2)[0]
    b = s.jobs.create("train", "b", "cpu", then=seed(runs=[run()]), estimate_s=50.0)[0]
    c = s.jobs.create("train", "c", "cpu", then=seed(runs=[run()]), estimate_s=10.0)[0]
    assert claim(s, {"cpu": 3}) == [(a, "cpu,cpu"), (b, "cpu")]
    s.jobs.started(a, 1, 0.0)
    f = eta.forecast(s, capacity={"cpu": 3}, now=0.0)
    # c waits for a lane; b's frees first (50 s), and a pair for a new group of two only when a ends (100 s)
    assert f[c].start_in_s == pytest.approx(50.0, abs=1.0)
    g = eta.forecast(s, capacity={"cpu": 3}, now=0.0, new={"device": "cpu", "estimate_s": 5.0, "world_size": 2})
    assert g[None].start_in_s == pytest.approx(100.0, abs=1.0)


def test_lost_group_errors_are_told_from_failures():
    assert group_lost(RuntimeError("[gloo/transport/tcp/pair.cc:545] Read error: Connection reset by peer"))
    assert not group_lost(ValueError("the dataset is missing"))  # rank 0's own failure: the job fails

    class DistBackendError(RuntimeError):
        pass

    assert group_lost(DistBackendError("NCCL communicator was aborted"))
