"""Training jobs in real worker processes against a real database file (what every kind of job shares —
kill, resume, stop, turns, pollers — is tested in tests/jobs/test_jobs_processes.py)."""


import pytest

from resnet_lab import PRESETS, jobs
from resnet_lab.data.registry import DataConfig
from resnet_lab.train import launcher
from resnet_lab.models.checkpoint import load_checkpoint
from resnet_lab.train.config import TrainConfig
from tests.helpers.waiting import wait_for
from tests.helpers.homes import seed

from .conftest import TINY

DIGITS = DataConfig(name="digits", image_size=8, train_subset=256, augment=False)
QUICK = TrainConfig(epochs=1, batch_size=64, lr=0.05, log_every=2, grad_norm_every=2, device="cpu")


def test_twin_job_runs_in_one_worker_and_records_both(store):
    ids = launcher.submit(TINY, DIGITS, QUICK, twin=True, store=store)
    wait_for(lambda: all(store.runs.get(i).status == "done" for i in ids), store=store, what="both runs done")
    resnet, plain = (store.runs.get(i) for i in ids)
    assert plain.partner_id == resnet.id and resnet.partner_id == plain.id and resnet.job_id == plain.job_id
    assert (resnet.kind, plain.kind) == ("ResNet", "plain") and store.jobs.get(resnet.job_id).kind == "train"
    assert resnet.spec["in_channels"] == 1 and resnet.spec["num_classes"] == 10  # fitted to digits
    assert plain.spec["skip"] is False and resnet.step == resnet.total_steps == 4
    for r in (resnet, plain):
        assert "val/acc" in r.best and load_checkpoint(r.ckpt_best).spec.skip == r.spec["skip"]
        m = store.runs.metrics(r.id)
        assert {"train/loss", "train/acc", "lr", "images_per_s", "val/loss", "val/acc"} <= set(m)
    names, steps, norms = store.runs.grad_norms(resnet.id)
    assert names[0] == "conv1" and steps == [0, 2] and len(norms[0]) == len(names)


def test_a_failing_worker_marks_the_run_failed_with_the_reason(store, lab_home):
    # cifar10 files are absent: the worker must say what to put where, not crash silently
    _, ids = store.jobs.create("train", "no data", "cpu", then=seed(runs=[{
        "name": "no data", "spec": PRESETS["resnet20"].to_dict(), "data": DataConfig(name="cifar10").to_dict(),
        "train": QUICK.to_dict()}]))
    jobs.pump(store)
    wait_for(lambda: store.runs.get(ids[0]).status == "failed", store=store, what="failed")
    err = store.runs.get(ids[0]).error
    assert "DatasetMissing" in err and "cifar-10-batches-py" in err


def test_missing_data_is_refused_before_queueing(lab_home):
    with pytest.raises(ValueError, match="CIFAR-10 is not in"):
        launcher.check_data_available(DataConfig(name="cifar10"))


@pytest.mark.slow
def test_resnet20_learns_shapes_clearly_above_chance_with_its_twin_recorded(store):
    data = DataConfig(name="shapes", image_size=24, train_subset=1000, seed=0)
    ids = launcher.submit(PRESETS["resnet20"], data, TrainConfig(epochs=3, batch_size=32, device="cpu"),
                          twin=True, store=store)
    wait_for(lambda: all(store.runs.get(i).status == "done" for i in ids), timeout=400, store=store, what="training")
    resnet, plain = (store.runs.get(i) for i in ids)
    chance = 1 / 6
    print(f"\nshapes 24px, 1000 images, 3 epochs at batch 32: resnet20 val acc {resnet.best['val/acc']:.3f}, "
          f"plain20 val acc {plain.best['val/acc']:.3f} (chance {chance:.3f})")
    assert resnet.best["val/acc"] > 2 * chance
    assert plain.partner_id == resnet.id and "val/acc" in plain.best


def test_a_shapes_run_fine_tuned_on_digits_with_each_strategy_records_runs_with_curves(store):
    from resnet_lab.train.finetune import FinetuneConfig

    shapes = DataConfig(name="shapes", image_size=16, train_subset=300, seed=0)
    base = launcher.submit(TINY, shapes, QUICK.replace(epochs=2), store=store)[0]
    wait_for(lambda: store.runs.get(base).status == "done", store=store, what="the shapes run")
    digits = DataConfig(name="digits", image_size=16, train_subset=300)
    ids = []
    for strategy in ("linear", "last:1", "full"):
        ids += launcher.submit_finetune(FinetuneConfig(source=f"run:{base}", strategy=strategy), digits,
                                        QUICK.replace(epochs=2), store=store)
    wait_for(lambda: all(store.runs.get(i).status == "done" for i in ids), timeout=300, store=store, what="fine-tunes")
    for i in ids:
        run = store.runs.get(i)
        curves = store.runs.metrics(i)
        assert len(curves["train/loss"]) >= 2 and len(curves["val/acc"]) >= 2, run.name
        assert run.spec["num_classes"] == 10 and run.spec["in_channels"] == 3  # head swapped, digits shown as RGB
        assert run.finetune["source"] == f"run:{base}"
        print(f"\n{run.name}: best val acc {run.best['val/acc']:.3f}")
    linear = load_checkpoint(store.runs.get(ids[0]).ckpt_last)
    shapes_model = load_checkpoint(store.runs.get(base).ckpt_best)
    import torch
    assert torch.equal(linear.model.layer1[0].conv1.weight, shapes_model.model.layer1[0].conv1.weight)
