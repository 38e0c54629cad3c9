"""Keeping the weights along the way: the setting (off by default, round trip, old configs, fingerprint), the plan
fitted to the disk budget (thinned, or refused at submit), the files the trainer writes (step 0, every k, the end;
atomic), the Train page's widget and the CLI flag."""

import json

import pytest
import torch
from safetensors.torch import load_file

from resnet_lab.cli import build_parser
from resnet_lab.commands.train import _train_parts
from resnet_lab.data.registry import DataConfig
from resnet_lab.models import PRESETS, build_model
from resnet_lab.models import checkpoint
from resnet_lab.train import launcher, trajectory
from resnet_lab.models.checkpoint import CheckpointNotSaved, load_checkpoint
from resnet_lab.train.config import TrainConfig
from resnet_lab.train.engine import Trainer
from resnet_lab.train.members import Callbacks
from tests.helpers.homes import seed

from .conftest import TINY, make_data

CFG = TrainConfig(epochs=2, batch_size=16, lr=0.05, log_every=1, grad_norm_every=0, eval_points=0, device="cpu")


# --- the setting ---------------------------------------------------------------------------------------------


def test_keeping_weights_is_off_by_default_round_trips_and_old_configs_load():
    assert TrainConfig().keep_weights_every == 0 and TrainConfig().keep_weights_budget_mb == 200.0
    on = CFG.replace(keep_weights_every=7, keep_weights_budget_mb=12.5)
    assert TrainConfig.from_dict(json.loads(json.dumps(on.to_dict()))) == on
    old = TrainConfig().to_dict()
    del old["keep_weights_every"], old["keep_weights_budget_mb"]  # a run stored before the setting existed
    assert TrainConfig.from_dict(old) == TrainConfig()


@pytest.mark.parametrize("bad, field", [
    (dict(keep_weights_every=-1), "keep_weights_every"), (dict(keep_weights_every=2.0), "keep_weights_every"),
    (dict(keep_weights_budget_mb=0.5), "keep_weights_budget_mb"),
    (dict(keep_weights_budget_mb=float("nan")), "keep_weights_budget_mb"),
    (dict(keep_weights_budget_mb=True), "keep_weights_budget_mb"),
])
def test_bad_keep_weights_settings_name_the_field(bad, field):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**bad)


def test_the_fingerprint_counts_the_setting_only_when_it_is_on():
    data = DataConfig(name="shapes", image_size=32, train_subset=600)
    spec = PRESETS["resnet20"]
    off = launcher.fingerprint(spec, data, CFG)
    assert launcher.fingerprint(spec, data, CFG.replace(keep_weights_budget_mb=50.0)) == off  # off: budget moot
    on = launcher.fingerprint(spec, data, CFG.replace(keep_weights_every=10))
    assert on != off
    assert launcher.fingerprint(spec, data, CFG.replace(keep_weights_every=20)) != on
    assert launcher.fingerprint(spec, data, CFG.replace(keep_weights_every=10, keep_weights_budget_mb=50.0)) != on
    # a job that keeps no weights has the fingerprint it had before the setting existed
    assert "keep_weights_every" not in CFG.fingerprint_dict()
    # (nor the step-based schedule's settings, unset here: tests/train/test_schedule_steps.py)
    # (nor deterministic training, off here: tests/train/test_reproducibility.py)
    assert {k: v for k, v in CFG.to_dict().items() if not k.startswith("keep_")
            and k not in ("max_steps", "milestones", "deterministic")} == CFG.fingerprint_dict()


# --- the plan ------------------------------------------------------------------------------------------------


def test_snapshot_count_is_the_start_every_multiple_and_the_end():
    assert trajectory.snapshot_count(20, 5) == 5  # 0, 5, 10, 15, 20
    assert trajectory.snapshot_count(21, 5) == 6  # ... and 21
    assert trajectory.snapshot_count(3, 10) == 2  # 0 and 3
    kept = trajectory.plan(21, 5, 100.0, 1000)
    assert [s for s in range(22) if kept.keeps(s)] == [0, 5, 10, 15, 20, 21]


def test_a_trajectory_over_budget_is_thinned_by_doubling_k_until_it_fits():
    size = 1_000_000  # 1 MB a snapshot
    fits = trajectory.plan(100, 10, 11.0, size)  # 11 snapshots = 11 MB: as asked
    assert (fits.every, fits.snapshots, fits.thinned) == (10, 11, False)
    thin = trajectory.plan(100, 10, 8.0, size)  # 11 MB > 8: every 20 -> 6 snapshots = 6 MB
    assert (thin.every, thin.snapshots, thin.thinned, thin.planned_bytes) == (20, 6, True, 6 * size)
    assert trajectory.snapshot_count(100, thin.every // 2) * size > 8 * trajectory.MB  # the smallest k that fits
    assert "asked: every 10; thinned to fit 8 MB" in thin.describe()
    ends = trajectory.plan(100, 1, 2.0, size)  # only the first and the last fit
    assert ends.snapshots == 2 and ends.every >= 100
    with pytest.raises(trajectory.TrajectoryTooLarge,
                       match="at least two snapshots .* raise the budget to at least 3 MB"):
        trajectory.plan(100, 1, 2.5, 1_250_001)


def test_submit_refuses_a_budget_that_cannot_hold_the_first_and_last_weights(store):
    data = DataConfig(name="shapes", image_size=32, train_subset=200)
    spec = PRESETS["resnet20"]  # ~1.1 MB of weights: with its twin, two snapshots take ~4.3 MB
    per = trajectory.spec_bytes(launcher.fit_spec_to_data(spec, data))
    torch.manual_seed(0)
    assert abs(per - trajectory.state_bytes(build_model(launcher.fit_spec_to_data(spec, data)))) == 0
    cfg = CFG.replace(keep_weights_every=5, keep_weights_budget_mb=4.0)
    with pytest.raises(ValueError, match=r"two snapshots .* of 2\.\d+ MB each .* more than the budget of 4 MB"):
        launcher.submit(spec, data, cfg, twin=True, store=store)
    assert store.jobs.list() == []  # nothing was queued
    trajectory.check_budget([launcher.fit_spec_to_data(spec, data)], cfg)  # one model alone: twice fits 4 MB
    assert launcher.submit(spec, data, cfg, twin=False, store=store)  # so it is queued
    assert launcher.submit(spec, data, cfg.replace(keep_weights_every=0, keep_weights_budget_mb=1.0), twin=True,
                           store=store)  # off: the budget does not apply


# --- the files the trainer writes ------------------------------------------------------------------------


class Stopper(Callbacks):
    def __init__(self, at: int | None):
        self.at, self.trainer = at, None

    def should_stop(self):
        return self.at is not None and self.trainer.step >= self.at


def train(tmp_path, cfg, specs=(TINY,), stop_at=None, data=None):
    cb = Stopper(stop_at)
    dirs = [tmp_path / f"run{i}" for i in range(len(specs))]
    t = Trainer(list(specs), data or make_data(n_train=96), cfg, cb, checkpoint_dirs=dirs, augment=False)
    cb.trainer = t
    return t, t.run(), dirs


def test_the_trainer_keeps_the_initial_weights_every_k_steps_and_the_end(tmp_path):
    cfg = CFG.replace(keep_weights_every=4)  # 96 images / 16 = 6 steps an epoch, 12 in all
    t, res, (run,) = train(tmp_path, cfg)
    assert t.total_steps == 12 and res[0].status == "done"
    assert [s for s, _ in trajectory.snapshots(run)] == [0, 4, 8, 12]
    assert sorted(p.name for p in trajectory.folder(run).iterdir()) == [
        "step_000000.safetensors", "step_000004.safetensors", "step_000008.safetensors", "step_000012.safetensors",
        "trajectory.json"]  # no temporary file left
    plan = trajectory.read_plan(run)
    assert plan["every"] == plan["requested_every"] == 4 and plan["snapshots"] == 4
    # step 0 is the seeded build, before any update: the trainer seeds the build with the run's seed
    torch.manual_seed(cfg.seed)
    fresh = build_model(TINY).state_dict()
    first = load_file(str(trajectory.folder(run) / "step_000000.safetensors"))
    assert first.keys() == fresh.keys() and all(torch.equal(first[k], fresh[k]) for k in fresh)
    assert all(first[k].dtype == fresh[k].dtype for k in fresh)  # the model's own dtype (float32 weights)
    # the end is the trained model, weights and BN statistics (the "last" checkpoint of the same step)
    last = load_file(str(trajectory.folder(run) / "step_000012.safetensors"))
    final = load_checkpoint(run / "last.json").model.state_dict()
    assert all(torch.equal(last[k], final[k]) for k in final)
    middle = load_file(str(trajectory.folder(run) / "step_000004.safetensors"))
    assert not torch.equal(middle["conv1.weight"], first["conv1.weight"])
    assert not torch.equal(middle["conv1.weight"], last["conv1.weight"])
    assert not any(k.startswith(("optimizer", "state")) for k in middle)  # weights only


def test_off_keeps_nothing_and_a_twin_keeps_its_own(tmp_path):
    _, _, (run,) = train(tmp_path / "off", CFG)
    assert trajectory.snapshots(run) == [] and not trajectory.folder(run).exists()
    _, _, dirs = train(tmp_path / "twin", CFG.replace(keep_weights_every=6), specs=(TINY, TINY.twin()))
    assert [[s for s, _ in trajectory.snapshots(d)] for d in dirs] == [[0, 6, 12], [0, 6, 12]]


def test_a_small_budget_thins_the_trajectory_in_the_trainer(tmp_path):
    spec = TINY.replace(widths=(32, 64))  # ~0.3 MB of weights: a 1 MB budget holds 3 snapshots, not 13
    size = trajectory.state_bytes(build_model(spec))
    t, _, (run,) = train(tmp_path, CFG.replace(keep_weights_every=1, keep_weights_budget_mb=1.0), specs=(spec,))
    plan = t.trajectory
    assert plan.thinned and plan.every > 1 and plan.bytes_per_snapshot == size
    assert trajectory.snapshot_count(12, plan.every // 2) * size > trajectory.MB  # the smallest k that fits
    kept = [s for s, _ in trajectory.snapshots(run)]
    assert kept == [s for s in range(13) if plan.keeps(s)] and kept[0] == 0 and kept[-1] == 12
    on_disk = sum(p.stat().st_size for _, p in trajectory.snapshots(run))
    assert len(kept) == plan.snapshots and on_disk <= trajectory.MB
    assert trajectory.read_plan(run)["every"] == plan.every and trajectory.read_plan(run)["requested_every"] == 1


def test_a_stop_keeps_the_weights_where_training_ended(tmp_path):
    _, res, (run,) = train(tmp_path, CFG.replace(keep_weights_every=4), stop_at=7)
    assert res[0].status == "stopped" and res[0].steps == 7
    assert [s for s, _ in trajectory.snapshots(run)] == [0, 4, 7]
    last = load_file(str(trajectory.folder(run) / "step_000007.safetensors"))
    final = load_checkpoint(run / "last.json").model.state_dict()
    assert all(torch.equal(last[k], final[k]) for k in final)


def test_a_snapshot_is_written_all_or_nothing(tmp_path, monkeypatch):
    model = build_model(TINY)

    def full_disk(path, data):
        with open(path, "wb") as f:
            f.write(data[:10])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint, "_write", full_disk)
    with pytest.raises(CheckpointNotSaved, match="No space left"):
        trajectory.save_snapshot(tmp_path, 3, model)
    assert list(trajectory.folder(tmp_path).iterdir()) == [] and trajectory.snapshots(tmp_path) == []


# --- the ways in: CLI flag and Train page ----------------------------------------------------------------


def test_the_train_command_takes_the_keep_weights_flags():
    args = build_parser().parse_args(["train", "--keep-weights-every", "25", "--keep-weights-budget-mb", "50"])
    _, _, cfg, _ = _train_parts(args)
    assert (cfg.keep_weights_every, cfg.keep_weights_budget_mb) == (25, 50.0)
    _, _, default, _ = _train_parts(build_parser().parse_args(["train"]))
    assert default.keep_weights_every == 0


@pytest.fixture
def train_page(store):
    """The app on the Train page (workers it starts are killed by ``store``'s teardown)."""
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("app_pages/train.py").run()
    assert not at.exception
    return at


def test_the_train_page_passes_the_widget_into_the_training_settings(train_page, store):
    at = train_page
    at.selectbox(key="train_data").set_value("digits").run()
    at.number_input(key="train_size").set_value(8).run()
    at.number_input(key="train_subset").set_value(64).run()
    at.number_input(key="train_epochs").set_value(1).run()
    at.number_input(key="train_batch").set_value(32).run()
    assert at.number_input(key="train_keep_budget").disabled  # off: the budget does not apply
    at.number_input(key="train_keep_every").set_value(2).run()
    at.number_input(key="train_keep_budget").set_value(1.0).run()  # resnet20 + twin: 2 snapshots > 1 MB
    at.button[[b.label for b in at.button].index("Train with plain twin")].click().run()
    assert any("more than the budget of 1 MB" in e.value for e in at.error)
    s = store
    assert s.jobs.list() == []
    at.number_input(key="train_keep_budget").set_value(50.0).run()
    at.button[[b.label for b in at.button].index("Train")].click().run()
    assert not at.error, [e.value for e in at.error]
    (run,) = s.runs.list()
    assert TrainConfig.from_dict(run.train).keep_weights_every == 2
    assert TrainConfig.from_dict(run.train).keep_weights_budget_mb == 50.0


def test_a_full_disk_while_keeping_weights_is_said_in_words(store):
    from types import SimpleNamespace

    from resnet_lab.paths import run_dir
    from resnet_lab.train.handler import checkpoint_message

    data = DataConfig(name="shapes", image_size=32, train_subset=200)
    rows = launcher.training_rows(PRESETS["resnet20"], data, CFG.replace(keep_weights_every=5))
    job, (rid,) = store.jobs.create("train", "r", "cpu", then=seed(runs=rows))
    ctx = SimpleNamespace(store=store, job=store.jobs.get(job))
    error = CheckpointNotSaved(run_dir(rid) / "trajectory", "step_000040.safetensors",
                               OSError(28, "No space left on device"))
    message = checkpoint_message(ctx, error)
    assert message.startswith(f"No space left on device while keeping the weights of run #{rid} (")
    assert "step_000040.safetensors" in message and "lower 'Keep weights every k steps'" in message
