"""Same settings, same numbers across processes: two training jobs with the same model, data, settings and seed,
each run by its own real worker process through the queue (as two students' jobs are), record the same curve —
every logged number of both runs, the ResNet's and its twin's, to the last bit. (That another seed gives another
curve, so this comparison can fail, is tests/train/test_reproducibility.py's.)"""

from resnet_lab import jobs
from resnet_lab.data.registry import DataConfig
from resnet_lab.train import launcher
from resnet_lab.train.config import TrainConfig
from tests.helpers.waiting import wait_for

from .conftest import TINY

DIGITS = DataConfig(name="digits", image_size=8, train_subset=256, augment=True)  # pad-crop and flip drawn too
SETTINGS = TrainConfig(epochs=2, batch_size=64, lr=0.05, log_every=2, grad_norm_every=3, eval_points=3, seed=7,
                       device="cpu")
TIMING = {"images_per_s", "compile_s", "train_s"}  # how fast, not what: the only logged numbers that may differ


def curve(store, run_id):
    """Every number the run logged: each metric's (step, epoch, value) rows, and the gradient norms by step."""
    metrics = {k: rows for k, rows in store.runs.metrics(run_id).items() if k not in TIMING}
    return metrics, store.runs.grad_norms(run_id)


def test_two_workers_with_the_same_settings_and_seed_record_the_same_curve_to_the_last_bit(store, monkeypatch):
    monkeypatch.setenv("RESNET_LAB_JOBS_PER_CPU", "2")  # both at once, each in its own process
    first = launcher.submit(TINY, DIGITS, SETTINGS, twin=True, store=store)
    second = launcher.submit(TINY, DIGITS, SETTINGS, twin=True, store=store)
    ids = first + second
    wait_for(lambda: all(store.runs.get(i).status == "done" for i in ids), timeout=120, store=store,
             what="both jobs done")
    job_ids = {store.runs.get(i).job_id for i in ids}
    pids = {store.jobs.get(j).pid for j in job_ids}
    assert len(job_ids) == 2 and len(pids) == 2 and None not in pids  # two workers, not one process twice
    for a, b in zip(first, second):  # the ResNet with the ResNet, the plain twin with the plain twin
        (metrics_a, norms_a), (metrics_b, norms_b) = curve(store, a), curve(store, b)
        assert {"train/loss", "train/acc", "lr", "val/loss", "val/acc"} <= set(metrics_a)
        assert len(metrics_a["train/loss"]) == 4 and len(norms_a[1]) == 3  # logs at every 2nd of 8 steps; norms at 0, 3, 6
        assert metrics_b == metrics_a
        assert norms_b == norms_a
    assert curve(store, first[0]) != curve(store, first[1])  # the twins' curves differ: the comparison can fail
    wait_for(lambda: not any(jobs.pid_alive(p) for p in pids), store=store, what="the workers gone")
