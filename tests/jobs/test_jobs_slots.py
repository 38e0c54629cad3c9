"""Device slots from (fake) device lists and settings; a worker sees only its own GPU."""

import pytest

from resnet_lab.jobs import slots
from tests.helpers.homes import seed


@pytest.fixture(autouse=True)
def _clean(monkeypatch):
    for name in ("RESNET_LAB_JOBS_PER_GPU", "RESNET_LAB_JOBS_PER_CPU", "RESNET_LAB_GPUS", "RESNET_LAB_GPU_COUNT",
                 "RESNET_LAB_CUDA_DEVICES", "CUDA_VISIBLE_DEVICES", "RESNET_LAB_DOWNLOADS_AT_ONCE", "OMP_WAIT_POLICY"):
        monkeypatch.delenv(name, raising=False)


def test_one_cpu_slot_two_per_gpu_and_two_downloads_by_default():
    assert slots.capacity(gpus=0) == {"cpu": 1, "net": 2}
    assert slots.capacity(gpus=2) == {"cpu": 1, "cuda:0": 2, "cuda:1": 2, "net": 2}


def test_settings_change_the_slots(monkeypatch):
    monkeypatch.setenv("RESNET_LAB_JOBS_PER_GPU", "4")
    monkeypatch.setenv("RESNET_LAB_JOBS_PER_CPU", "2")
    monkeypatch.setenv("RESNET_LAB_DOWNLOADS_AT_ONCE", "5")
    assert slots.capacity(gpus=1) == {"cpu": 2, "cuda:0": 4, "net": 5}
    monkeypatch.setenv("RESNET_LAB_JOBS_PER_GPU", "0")
    with pytest.raises(ValueError, match="RESNET_LAB_JOBS_PER_GPU must be at least 1"):
        slots.capacity(gpus=1)
    monkeypatch.setenv("RESNET_LAB_JOBS_PER_GPU", "two")
    with pytest.raises(ValueError, match="whole number"):
        slots.capacity(gpus=1)


def test_the_gpu_count_is_what_is_visible_capped_by_the_setting(monkeypatch):
    monkeypatch.setattr(slots, "_torch_gpus", lambda: 4)
    assert slots.gpu_count() == 4 and list(slots.capacity()) == ["cpu", "cuda:0", "cuda:1", "cuda:2", "cuda:3", "net"]
    monkeypatch.setenv("RESNET_LAB_GPUS", "1")
    assert slots.gpu_count() == 1 and slots.default_device() == "cuda"
    monkeypatch.setenv("RESNET_LAB_GPUS", "0")
    assert slots.default_device() == "cpu"
    with pytest.raises(ValueError, match="no GPU"):
        slots.resolve_device("cuda")


def test_devices_resolve_and_bad_ones_are_refused(monkeypatch):
    monkeypatch.setattr(slots, "_torch_gpus", lambda: 0)
    assert slots.resolve_device("auto") == "cpu" and slots.resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="no GPU"):
        slots.resolve_device("cuda")
    with pytest.raises(ValueError, match="unknown device"):
        slots.resolve_device("tpu")


def test_a_worker_sees_only_its_gpu_and_knows_the_machine_for_its_own_pump(monkeypatch):
    monkeypatch.setattr(slots, "_torch_gpus", lambda: 2)
    assert slots.worker_env("cuda:1")["CUDA_VISIBLE_DEVICES"] == "1"
    assert slots.worker_env("cpu")["CUDA_VISIBLE_DEVICES"] == ""
    # started on GPUs 2 and 3 of a bigger machine: slot cuda:1 is GPU 3
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    env = slots.worker_env("cuda:1")
    assert env == {"CUDA_VISIBLE_DEVICES": "3", "RESNET_LAB_GPU_COUNT": "2", "RESNET_LAB_CUDA_DEVICES": "2,3",
                   "OMP_WAIT_POLICY": "PASSIVE"}  # threads that wait sleep: the cores are shared
    # inside that worker (it sees one GPU, or none on the CPU slot): the queue still has both GPU slots
    for key, value in {**slots.worker_env("cpu"), "CUDA_VISIBLE_DEVICES": ""}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(slots, "_torch_gpus", lambda: 0)
    assert list(slots.capacity()) == ["cpu", "cuda:0", "cuda:1", "net"]
    assert slots.worker_env("cuda:0")["CUDA_VISIBLE_DEVICES"] == "2"


def test_a_job_lands_on_the_slot_the_pump_gives_it_with_that_gpu_visible(lab_home, monkeypatch):
    """The pump claims onto the fake slots and starts each worker with its slot's CUDA_VISIBLE_DEVICES."""
    from resnet_lab import jobs
    from resnet_lab.jobs import scheduler
    from resnet_lab.store import Store

    started = []

    class FakeProc:
        pid = 424242

        def poll(self):
            return None

    monkeypatch.setattr(scheduler.subprocess, "Popen",
                        lambda args, **kw: started.append((args[-1], kw["env"]["CUDA_VISIBLE_DEVICES"])) or FakeProc())
    monkeypatch.setattr(scheduler, "pid_alive", lambda pid: True)
    store = Store()
    row = {"name": "r", "spec": {}, "data": {}, "train": {}}
    ids = [store.jobs.create("train", f"j{i}", "cuda", then=seed(runs=[row]))[0]
           for i in range(5)]
    assert jobs.pump(store, capacity={"cpu": 1, "cuda:0": 2, "cuda:1": 2}) == ids[:4]
    assert started == [(str(ids[0]), "0"), (str(ids[1]), "1"), (str(ids[2]), "0"), (str(ids[3]), "1")]
    assert [store.jobs.get(j).slot for j in ids] == ["cuda:0", "cuda:1", "cuda:0", "cuda:1", None]
    assert store.jobs.get(ids[4]).status == "queued"
    scheduler._children.clear()
