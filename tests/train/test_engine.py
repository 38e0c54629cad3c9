import math

import pytest
import torch

from resnet_lab.models.checkpoint import load_checkpoint, read_manifest
from resnet_lab.train.config import TrainConfig
from resnet_lab.models import build_model
from resnet_lab.train.batches import FeatureBatches, ImageBatches, full_logits, head_logits
from resnet_lab.train.engine import Trainer
from resnet_lab.train.members import Callbacks, MemberSetup
from resnet_lab.train.optim import lr_lambda

from .conftest import TINY, make_data


class Recorder(Callbacks):
    def __init__(self, stop_after: int | None = None):
        self.logs, self.evals, self.norms, self.ckpts, self.ends = [], [], [], [], []
        self.stop_after = stop_after
        self.trainer = None

    def on_log(self, idx, step, epoch, metrics):
        self.logs.append((idx, step, epoch, metrics))

    def on_eval(self, idx, step, epoch, metrics):
        self.evals.append((idx, step, epoch, metrics))

    def on_grad_norms(self, idx, step, norms):
        self.norms.append((idx, step, norms))

    def on_checkpoint(self, idx, tag, path, metrics):
        self.ckpts.append((idx, tag, path))

    def on_end(self, idx, status, message):
        self.ends.append((idx, status, message))

    def should_stop(self):
        return self.stop_after is not None and self.trainer.step >= self.stop_after

    def losses(self, idx=0):
        return [m["train/loss"] for i, _, _, m in self.logs if i == idx and "train/loss" in m]


CFG = TrainConfig(epochs=2, batch_size=16, lr=0.05, log_every=1, grad_norm_every=2, device="cpu")


def train(cfg=CFG, data=None, specs=(TINY,), dirs=None, stop_after=None, augment=True):
    rec = Recorder(stop_after)
    t = Trainer(list(specs), data or make_data(), cfg, rec, checkpoint_dirs=dirs, augment=augment)
    rec.trainer = t
    return t, rec, t.run()


def test_loss_falls_on_a_tiny_fixed_batch():
    data = make_data(n_train=24)
    cfg = TrainConfig(epochs=40, batch_size=24, optimizer="adamw", lr=0.01, weight_decay=0.0, schedule="constant",
                      log_every=1, grad_norm_every=0, device="cpu")
    _, rec, res = train(cfg, data, augment=False)
    losses = rec.losses()
    assert len(losses) == 40 and res[0].status == "done"
    assert losses[-1] < 0.3 * losses[0]


def test_same_seed_gives_identical_first_epoch_losses_and_twins_share_init_and_batches():
    _, a, _ = train()
    _, b, _ = train()
    first_epoch = [m["train/loss"] for i, s, e, m in a.logs if i == 0 and e <= 1]
    assert first_epoch == [m["train/loss"] for i, s, e, m in b.logs if i == 0 and e <= 1]
    _, c, _ = train(CFG.replace(seed=1))
    assert c.losses()[:3] != a.losses()[:3]

    t = Trainer([TINY, TINY.twin()], make_data(), CFG, Recorder())
    resnet, plain = (m.model for m in t.members)
    assert all(torch.equal(p, q) for p, q in zip(resnet.state_dict().values(), plain.state_dict().values()))


def test_twin_trains_on_the_same_batches_as_running_it_alone():
    # the ResNet's curve is the same whether or not its twin trains beside it: same batches, same order
    _, alone, _ = train()
    _, pair, _ = train(specs=(TINY, TINY.twin()))
    assert pair.losses(0) == alone.losses(0)
    assert pair.losses(1) != pair.losses(0)


def test_non_finite_loss_ends_the_run_as_diverged():
    _, rec, res = train(data=make_data(poison=True))
    assert res[0].status == "diverged"
    assert "loss became nan" in res[0].message or "loss became inf" in res[0].message
    assert rec.ends == [(0, "diverged", res[0].message)]
    assert not rec.evals  # it stopped at the first log point, before any validation


def test_metrics_and_gradient_norms_are_reported():
    t, rec, _ = train(CFG.replace(eval_points=0), specs=(TINY, TINY.twin()))
    assert {"train/loss", "train/acc", "lr", "images_per_s"} <= set(rec.logs[0][3])
    assert [(i, e) for i, _, e, _ in rec.evals] == [(0, 1.0), (1, 1.0), (0, 2.0), (1, 2.0)]
    assert 0 <= rec.evals[-1][3]["val/acc"] <= 1
    steps = sorted({s for i, s, _ in rec.norms if i == 0})
    assert steps == list(range(0, t.total_steps, 2))
    assert all(len(n) == len(t.layer_names) and all(math.isfinite(v) and v >= 0 for v in n) for _, _, n in rec.norms)
    assert t.layer_names[0] == "conv1" and t.layer_names[-1] == "fc"


class NamesRecorder(Recorder):
    def __init__(self):
        super().__init__()
        self.names = {}

    def on_start(self, idx, total_steps, layer_names):
        self.names[idx] = list(layer_names)


def test_each_member_reports_its_own_layers_a_plain_twin_has_no_projection_shortcut():
    spec = TINY.replace(shortcut="B")
    rec = NamesRecorder()
    t = Trainer([spec, spec.twin()], make_data(), CFG, rec, augment=False)
    t.run()
    assert any(n.endswith("downsample.0") for n in rec.names[0])
    assert not any("downsample" in n for n in rec.names[1])
    for i in (0, 1):
        assert all(len(n) == len(rec.names[i]) for j, _, n in rec.norms if j == i)


def test_gradient_norms_equal_a_direct_backward_loop():
    data = make_data(n_train=16)
    cfg = TrainConfig(epochs=1, batch_size=16, log_every=1, grad_norm_every=1, device="cpu")
    rec = Recorder()
    t = Trainer([TINY], data, cfg, rec, augment=False)
    model = t.members[0].model
    ref = {k: v.clone() for k, v in model.state_dict().items()}
    t.run()
    # recompute on a fresh copy of the initial weights with the same (only) batch, in the same order
    from resnet_lab import build_model
    check = build_model(TINY)
    check.load_state_dict(ref)
    check.train()
    perm = torch.randperm(16, generator=torch.Generator().manual_seed(cfg.seed))
    x = (data.x_train[perm] - 0.4) / 0.3
    torch.nn.functional.cross_entropy(check(x), data.y_train[perm]).backward()
    direct = [p.grad.norm().item() for p in check.parameters() if p.dim() > 1]
    assert rec.norms[0][2] == pytest.approx(direct, rel=1e-4)


def test_stop_gives_stopped_with_a_loadable_checkpoint(tmp_path):
    t, rec, res = train(dirs=[tmp_path / "a"], stop_after=3)
    assert res[0].status == "stopped" and t.step == 3
    last = tmp_path / "a" / "last.json"
    meta = read_manifest(last)
    assert meta["step"] == 3 and meta["class_names"] == ["r", "g", "b"] and meta["mean"] == [0.4, 0.4, 0.4]
    ckpt = load_checkpoint(last)
    x = torch.rand(2, 3, 8, 8)
    torch.testing.assert_close(ckpt.model(x), t.members[0].model.eval()(x))


def test_resume_continues_from_the_saved_step_and_ends_where_an_unbroken_run_ends(tmp_path):
    cfg = CFG.replace(epochs=3)
    whole, _, _ = train(cfg, dirs=[tmp_path / "whole"])
    _, _, res = train(cfg, dirs=[tmp_path / "part"], stop_after=5)
    assert res[0].status == "stopped"
    rec = Recorder()
    resumed = Trainer([TINY], make_data(), cfg, rec, checkpoint_dirs=[tmp_path / "part"])
    resumed.resume_from([tmp_path / "part" / "last.json"])
    assert resumed.step == 5
    assert resumed.run()[0].status == "done"
    assert rec.logs[0][1] == 6 and resumed.step == whole.step
    for (k, a), b in zip(whole.members[0].model.state_dict().items(), resumed.members[0].model.state_dict().values()):
        torch.testing.assert_close(a, b, msg=k)


def test_checkpoint_round_trip_rebuilds_identical_outputs(tmp_path):
    t, rec, _ = train(dirs=[tmp_path / "r"])
    assert {(tag) for _, tag, _ in rec.ckpts} == {"best", "last"}
    for tag in ("best", "last"):
        ckpt = load_checkpoint(tmp_path / "r" / f"{tag}.json")
        assert ckpt.spec == TINY and ckpt.class_names == ["r", "g", "b"]
    x = torch.rand(4, 3, 8, 8)
    torch.testing.assert_close(load_checkpoint(tmp_path / "r" / "last.json").model(x), t.members[0].model.eval()(x))
    assert not list((tmp_path / "r").glob("*.tmp"))


def test_checkpoint_manifest_is_a_safe_door(tmp_path):
    train(dirs=[tmp_path / "r"])
    manifest = tmp_path / "r" / "last.json"
    text = manifest.read_text()
    manifest.write_text(text.replace('"last.safetensors"', '"../../etc/passwd"'))
    with pytest.raises(ValueError, match="bad file"):
        load_checkpoint(manifest)
    manifest.write_text("{not json")
    with pytest.raises(ValueError, match="not a checkpoint manifest"):
        load_checkpoint(manifest)


@pytest.mark.parametrize("schedule", ["onecycle", "cosine", "step", "constant"])
def test_schedules_start_low_or_at_peak_and_end_low(schedule):
    cfg = TrainConfig(epochs=10, schedule=schedule, warmup_epochs=1.0 if schedule != "onecycle" else 0.0)
    f = lr_lambda(cfg, steps_per_epoch=10)
    values = [f(s) for s in range(100)]
    assert max(values) == pytest.approx(1.0, abs=0.02)
    assert values[0] < 0.2  # warm-up (or one-cycle's low start)
    if schedule in ("onecycle", "cosine"):
        assert values[-1] < 0.01
    if schedule == "step":
        assert values[25] == pytest.approx(0.1) and values[45] == pytest.approx(0.01)


def test_mismatched_data_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match="set num_classes=3"):
        Trainer([TINY.replace(num_classes=10)], make_data(), CFG)
    with pytest.raises(ValueError, match="set in_channels=3"):
        Trainer([TINY.replace(in_channels=1)], make_data(), CFG)


@pytest.mark.parametrize("bad, field", [({"epochs": 0}, "epochs"), ({"lr": float("nan")}, "lr"),
                                         ({"optimizer": "lion"}, "optimizer"), ({"batch_size": 1}, "batch_size"),
                                         ({"label_smoothing": 0.9}, "label_smoothing"),
                                         ({"eval_points": -1}, "eval_points"),
                                         ({"eval_points": 1001}, "eval_points"), ({"eval_points": 2.5}, "eval_points"),
                                         ({"eval_points": True}, "eval_points")])
def test_train_config_validation_names_the_field(bad, field):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**bad)
    with pytest.raises(ValueError, match="unknown training setting"):
        TrainConfig.from_dict({"epochz": 3})


def test_a_linear_probe_steps_on_cached_pooled_features_through_the_head_only():
    data = make_data()
    cfg = TrainConfig(epochs=1, batch_size=16, device="cpu")
    probe = Trainer([TINY], data, cfg, setups=[MemberSetup(state_dict=build_model(TINY).state_dict(), head_only=True)],
                    augment=False)
    assert isinstance(probe.batches, FeatureBatches) and probe.logits is head_logits
    assert probe.members[0].frozen == tuple(n for n, _ in probe.members[0].model.named_children() if n != "fc")
    model = probe.members[0].model
    idx = torch.tensor([0, 5, 7])
    x, y = probe.batches.train(idx)
    with torch.no_grad():
        images = (data.x_train[idx] - 0.4) / 0.3
        expected = model.eval().forward_head(model.forward_features(images), pre_logits=True)
    torch.testing.assert_close(x, expected)
    assert x.shape == (3, model.fc.in_features) and torch.equal(y, data.y_train[idx])
    val = list(probe.batches.val())
    assert torch.equal(torch.cat([y for _, y in val]), data.y_val)

    plain = Trainer([TINY], data, cfg, augment=False)
    assert isinstance(plain.batches, ImageBatches) and plain.logits is full_logits
    assert plain.members[0].frozen == ()
    x, y = plain.batches.train(idx)
    torch.testing.assert_close(x, (data.x_train[idx] - 0.4) / 0.3)
    augmented, _ = Trainer([TINY], data, cfg).batches.train(idx)
    assert augmented.shape == x.shape and not torch.equal(augmented, x)


def test_short_runs_validate_eval_points_times_never_twice_at_one_step(tmp_path):
    data = make_data(n_train=160)  # batch 16: 10 steps an epoch, 20 in all
    cfg = CFG.replace(eval_points=10, log_every=5)
    t, rec, res = train(cfg, data, dirs=[tmp_path / "r"])
    assert t.total_steps == 20 and t.eval_every == 2 and res[0].status == "done"
    steps = [s for _, s, _, _ in rec.evals]
    assert steps == list(range(2, 21, 2))  # every 2 steps; the epoch ends (10, 20) once each
    assert [e for _, _, e, _ in rec.evals] == pytest.approx([s / 10 for s in steps])  # fractional epochs
    assert all(0 <= m["val/acc"] <= 1 and m["val/loss"] > 0 for _, _, _, m in rec.evals)
    # "last" still only at epoch ends; "best" whenever validation accuracy improved, mid-epoch too
    assert [tag for _, tag, _ in rec.ckpts].count("last") == 2
    best_evals = sum(1 for i, m in enumerate(rec.evals)
                     if m[3]["val/acc"] > max([-1.0] + [n[3]["val/acc"] for n in rec.evals[:i]]))
    assert [tag for _, tag, _ in rec.ckpts].count("best") == best_evals
    assert res[0].best_val_acc == max(m["val/acc"] for _, _, _, m in rec.evals)

    _, rec0, _ = train(cfg.replace(eval_points=0), data)
    assert [(s, e) for _, s, e, _ in rec0.evals] == [(10, 1.0), (20, 2.0)]  # 0: epoch ends only
    # evaluating in between changes nothing about training: same batches, same losses
    assert rec0.losses() == rec.losses()
    _, many, _ = train(cfg.replace(eval_points=1000), data)
    assert [s for _, s, _, _ in many.evals] == list(range(1, 21))  # at most one per step


def test_a_stored_config_without_eval_points_still_loads_with_the_default():
    old = TrainConfig().to_dict()
    del old["eval_points"]
    cfg = TrainConfig.from_dict(old)
    assert cfg.eval_points == 10 and cfg == TrainConfig()
    assert TrainConfig.from_dict(cfg.replace(eval_points=0).to_dict()).eval_points == 0
