"""Schedules counted in optimizer steps (He et al. 2015, sec. 4.2: lr 0.1, divided by 10 at 32k and 48k iterations,
stop at 64k): the milestones multiplier, ``max_steps`` ending a run mid-epoch with the right totals, the
training config's round trip, and a test split apart from val reported once at the end."""

from __future__ import annotations

import json

import pytest
import torch

from resnet_lab.data.types import DataConfig, Dataset, hold_out_val
from resnet_lab.train.config import TrainConfig
from resnet_lab.train.engine import Trainer
from resnet_lab.train.optim import lr_lambda, total_steps

from .conftest import TINY, make_data
from .test_engine import Recorder

PAPER = TrainConfig(epochs=1, batch_size=128, lr=0.1, momentum=0.9, nesterov=False, weight_decay=1e-4,
                    schedule="step", milestones=(32_000, 48_000), max_steps=64_000)


def test_the_papers_milestones_divide_the_lr_by_ten_at_32k_and_48k():
    f = lr_lambda(PAPER, steps_per_epoch=351)  # 45,000 / 128: the epochs do not matter, only the steps
    assert f(0) == 1.0 and f(31_999) == 1.0
    assert f(32_000) == pytest.approx(0.1) and f(47_999) == pytest.approx(0.1)
    assert f(48_000) == pytest.approx(0.01) and f(63_999) == pytest.approx(0.01)
    assert total_steps(PAPER, 351) == 64_000


def test_without_milestones_the_step_schedule_keeps_its_epochs():
    cfg = TrainConfig(epochs=10, schedule="step", step_every_epochs=3)
    f = lr_lambda(cfg, steps_per_epoch=10)
    assert [f(s) for s in (29, 30, 60)] == pytest.approx([1.0, 0.1, 0.01])


def test_max_steps_sets_the_length_of_onecycle_and_cosine():
    for schedule in ("onecycle", "cosine"):
        f = lr_lambda(TrainConfig(epochs=1, schedule=schedule, max_steps=100), steps_per_epoch=10)
        assert f(99) < 0.01 and max(f(s) for s in range(100)) == pytest.approx(1.0, abs=0.02)


def test_max_steps_stops_mid_epoch_and_overrides_epochs_both_ways():
    data = make_data(n_train=96)  # batch 16: 6 steps an epoch
    cfg = TrainConfig(epochs=5, batch_size=16, lr=0.05, log_every=4, eval_points=0, device="cpu", max_steps=9)
    t, rec, results = _train(cfg, data)
    assert t.total_steps == 9 and t.steps_per_epoch == 6
    assert [r.status for r in results] == ["done"] and results[0].steps == 9
    assert rec.starts == [9]  # the progress total the job shows
    assert max(step for _, step, _, _ in rec.logs) == 9  # the last step is logged
    assert [(step, round(epoch, 3)) for _, step, epoch, _ in rec.evals] == [(6, 1.0), (9, 1.5)]
    t, rec, results = _train(cfg.replace(epochs=1, max_steps=14), data)  # more steps than the epochs hold
    assert results[0].steps == 14 and rec.starts == [14] and rec.evals[-1][1] == 14


def test_a_stop_request_still_stops_a_max_steps_run():
    cfg = TrainConfig(epochs=1, batch_size=16, lr=0.05, log_every=1, eval_points=0, device="cpu", max_steps=50)
    rec = _Recorder(stop_after=3)
    t = Trainer([TINY], make_data(), cfg, rec)
    rec.trainer = t
    results = t.run()
    assert results[0].status == "stopped" and results[0].steps == 3
    assert not [m for _, _, _, m in rec.logs if "test/acc" in m]


def test_a_test_split_apart_from_val_is_evaluated_once_at_the_end():
    data = make_data(n_train=96, n_val=48)
    test_data = make_data(n_val=30, seed=1)
    data = Dataset(**{**{f: getattr(data, f) for f in ("x_train", "y_train", "x_val", "y_val", "class_names", "mean",
                                                       "std", "in_channels")},
                      "x_test": test_data.x_val, "y_test": test_data.y_val})
    cfg = TrainConfig(epochs=2, batch_size=16, lr=0.05, log_every=3, eval_points=0, device="cpu")
    t, rec, results = _train(cfg, data)
    tests = [(step, m) for _, step, _, m in rec.logs if "test/acc" in m]
    assert len(tests) == 1 and tests[0][0] == 12
    assert set(tests[0][1]) == {"test/loss", "test/acc"} and 0.0 <= tests[0][1]["test/acc"] <= 1.0
    assert results[0].last["test/acc"] == tests[0][1]["test/acc"]
    assert t.evaluate(t.members[0].model) != {"val/loss": tests[0][1]["test/loss"], "val/acc": tests[0][1]["test/acc"]}


def test_hold_out_val_carves_a_stratified_val_and_keeps_the_old_val_as_test():
    data = make_data(n_train=90, n_val=30)
    out = hold_out_val(data, 0.1, seed=0)
    assert (len(out.y_train), len(out.y_val), len(out.y_test)) == (81, 9, 30)
    assert torch.equal(out.x_test, data.x_val) and torch.equal(out.y_test, data.y_val)
    assert torch.bincount(out.y_val).tolist() == [3, 3, 3]  # stratified
    pool = {tuple(x.flatten().tolist()[:4]) for x in data.x_train}
    assert {tuple(x.flatten().tolist()[:4]) for x in out.x_val} <= pool  # val comes from the training images
    assert torch.equal(hold_out_val(data, 0.1, seed=0).y_val, out.y_val)  # the same seed, the same split
    with pytest.raises(ValueError, match="x_test and y_test"):
        Dataset(**{**{f: getattr(data, f) for f in ("x_train", "y_train", "x_val", "y_val", "class_names", "mean",
                                                    "std", "in_channels")}, "x_test": data.x_val})


def test_train_config_round_trips_with_steps_and_old_configs_load():
    stored = json.loads(json.dumps(PAPER.to_dict()))
    assert stored["milestones"] == [32_000, 48_000] and stored["max_steps"] == 64_000
    assert TrainConfig.from_dict(stored) == PAPER
    old = TrainConfig().to_dict()
    del old["milestones"], old["max_steps"]
    assert TrainConfig.from_dict(old) == TrainConfig()
    # a job using neither has the fingerprint it had before they existed
    assert "milestones" not in TrainConfig().fingerprint_dict() and "max_steps" not in TrainConfig().fingerprint_dict()
    assert PAPER.fingerprint_dict()["milestones"] == [32_000, 48_000]
    assert PAPER.schedule_steps == "64,000 steps, lr ÷10 at steps 32,000 and 48,000"


@pytest.mark.parametrize("bad, message", [
    (dict(max_steps=0), "max_steps"), (dict(max_steps=1.5), "max_steps"),
    (dict(schedule="step", milestones=(48_000, 32_000)), "ascending"),
    (dict(schedule="step", milestones=(5, 5)), "ascending"),
    (dict(schedule="step", milestones="32000"), "list"),
    (dict(schedule="step", milestones=(0,)), "milestone"),
    (dict(schedule="onecycle", milestones=(10,)), "step schedule only"),
])
def test_bad_step_settings_are_refused_clearly(bad, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**bad)


def test_holdout_val_is_stored_only_when_set():
    assert "holdout_val" not in DataConfig(name="cifar10").to_dict()
    cfg = DataConfig(name="cifar10", val_fraction=0.1, holdout_val=True)
    assert DataConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(ValueError, match="holdout_val"):
        DataConfig(holdout_val=1)


class _Recorder(Recorder):
    def __init__(self, stop_after=None):
        super().__init__(stop_after)
        self.starts = []

    def on_start(self, idx, total_steps, layer_names):
        self.starts.append(total_steps)


def _train(cfg, data):
    rec = _Recorder()
    t = Trainer([TINY], data, cfg, rec)
    rec.trainer = t
    return t, rec, t.run()
