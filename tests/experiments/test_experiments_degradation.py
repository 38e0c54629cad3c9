"""The degradation experiment: config validation, the CIFAR builder, final numbers and the verdict on a
store filled by hand, the figure, and (acceptance) the whole experiment on CPU with real workers."""

import time

import pytest
import torch

from resnet_lab import jobs
from resnet_lab.analysis.degradation import TOLERANCE, last_epoch_mean
from resnet_lab.experiments.degradation import KIND, DegradationConfig, from_runs, submit_degradation, summarize
from resnet_lab.data.registry import DataConfig
from resnet_lab.models import build_model
from resnet_lab.models.presets import cifar_spec
from resnet_lab.spec import ModelSpec
from resnet_lab.identity import MACHINE
from resnet_lab.store import Store
from resnet_lab.train.config import TrainConfig
from resnet_lab.viz.experiments import BOLD, THIN, degradation_figure
from tests.helpers.homes import seed

# Logged points of a hand-filled run: 5 steps per epoch, logged every 2 steps and at each epoch's end.
STEPS = [(2, 0.4), (4, 0.8), (5, 1.0), (7, 1.4), (9, 1.8), (10, 2.0)]


def _series(final: float) -> list[float]:
    """Values whose step-weighted mean over the last epoch (weights 2, 2, 1) is ``final``; the first epoch
    is far off so that counting it would show."""
    return [final + 0.3, final + 0.2, final + 0.1, final + 0.02, final - 0.02, final]


def fill(store: Store, errors: dict[str, float], shallow: int = 20, deep: int = 56, statuses: dict | None = None,
         kind: str = KIND, deep_train: TrainConfig | None = None, flat: dict[str, float] | None = None) -> int:
    """A degradation experiment with hand-written metrics: final train error ``errors[label]``; the training loss
    falls with the error (10 × it), or stays at ``flat[label]`` for the labels there (a run that learned nothing)."""
    flat = flat or {}
    cfg = DegradationConfig(shallow=shallow, deep=deep, width=16)
    statuses = statuses or {}
    job_ids = []
    for depth in (shallow, deep):
        spec = cifar_spec(depth, width=16, num_classes=6)
        train = deep_train if depth == deep and deep_train is not None else cfg.train
        rows = [{"name": f"{'resnet' if s.skip else 'plain'}-{depth}", "spec": s.to_dict(),
                 "data": cfg.data.to_dict(), "train": train.to_dict()} for s in (spec, spec.twin())]
        job, ids = store.jobs.create("train", rows[0]["name"], "cpu", then=seed(runs=rows, partners=True))
        job_ids.append(job)
        for rid, row in zip(ids, rows):
            label = row["name"]
            err = _series(errors[label])
            store.runs.add_metrics([(rid, s, e, "train/acc", 1 - v) for (s, e), v in zip(STEPS, err)]
                              + [(rid, s, e, "train/loss", flat.get(label, 10 * v)) for (s, e), v in zip(STEPS, err)]
                              + [(rid, 5, 1.0, "val/acc", 0.5), (rid, 10, 2.0, "val/acc", 0.9 - errors[label])])
            store.runs.update(rid, step=10, total_steps=10)
            status = statuses.get(label, "done")
            store.runs.finish(rid, status, error="the training loss became nan" if status == "diverged" else None)
    return store.experiments.create(kind, f"depth {shallow} vs {deep}", cfg.params(), job_ids)


YES_YES = {"plain-20": 0.05, "plain-56": 0.15, "resnet-20": 0.04, "resnet-56": 0.03}


def test_cifar_family_counts_its_weighted_layers_like_the_paper():
    """He et al. sec. 4.2: 6n stacked 3x3 conv layers + the first conv + the fc = 6n+2 weighted layers
    (option A shortcuts add none); counted on the built model, not read from the spec."""
    for depth in (8, 14, 20, 56):
        for skip in (True, False):
            model = build_model(cifar_spec(depth, skip=skip, width=4))
            weighted = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
            assert len(weighted) == depth
    spec = cifar_spec(8, width=4)
    assert spec.depths == (1, 1, 1) and spec.widths == (4, 8, 16) and spec.depth == 8


@pytest.mark.parametrize("kwargs, message", [
    (dict(shallow=21), r"6n\+2"),
    (dict(deep=51), r"6n\+2"),
    (dict(shallow=2), r"6n\+2"),
    (dict(shallow="20"), "integer"),
    (dict(shallow=56, deep=20), "more layers than"),
    (dict(shallow=20, deep=20), "more layers than"),
    (dict(width=3), "width"),
    (dict(width=65), "width"),
    (dict(width=True), "width"),
    (dict(data={"name": "shapes"}), "DataConfig"),
    (dict(train=None), "TrainConfig"),
])
def test_config_refuses_bad_settings_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DegradationConfig(**kwargs)


def test_config_defaults_params_format_and_round_trip():
    cfg = DegradationConfig()
    assert (cfg.shallow, cfg.deep, cfg.width) == (20, 56, 16)
    # the budget measured to show the paper's result on a CPU (see DEFAULT_LR's note); validation at epoch ends only
    assert cfg.data == DataConfig(name="shapes", image_size=32, train_subset=3000)
    assert (cfg.train.epochs, cfg.train.batch_size, cfg.train.lr, cfg.train.seed, cfg.train.eval_points) == (
        8, 128, 0.1, 0, 0)
    params = cfg.params()
    assert params == {"shallow": 20, "deep": 56, "width": 16, "data": cfg.data.to_dict(), "train": cfg.train.to_dict()}
    assert DegradationConfig.from_params(params) == cfg
    assert cfg.cost_ratio == 3.0  # 9 blocks per stage vs 3
    with pytest.raises(ValueError, match="unknown"):
        DegradationConfig.from_params({**params, "depth": 3})
    with pytest.raises(ValueError, match="lack"):
        DegradationConfig.from_params({"shallow": 20})


def test_last_epoch_mean_weights_points_by_the_steps_they_cover():
    points = [(2, 0.4, 9.0), (4, 0.8, 9.0), (5, 1.0, 9.0), (7, 1.4, 1.0), (9, 1.8, 2.0), (10, 2.0, 6.0)]
    assert last_epoch_mean(points) == pytest.approx((2 * 1.0 + 2 * 2.0 + 1 * 6.0) / 5)
    assert last_epoch_mean(points[:3]) == pytest.approx(9.0)
    assert last_epoch_mean(points[:4]) == pytest.approx(1.0)  # a partly done epoch: its points only
    assert last_epoch_mean([]) is None


@pytest.mark.parametrize("errors, plain_worse, resnet_good", [
    (YES_YES, True, True),
    ({**YES_YES, "resnet-56": 0.04 + 0.02}, True, False),
    ({**YES_YES, "plain-56": 0.04}, False, True),
    ({**YES_YES, "resnet-56": 0.04 + TOLERANCE - 0.001}, True, True),  # within the tolerance
    ({**YES_YES, "resnet-56": 0.04 + TOLERANCE + 0.001}, True, False),
])
def test_verdict_follows_the_final_training_errors(errors, plain_worse, resnet_good):
    store = Store()
    exp = fill(store, errors)
    report = summarize(store, exp)
    assert report.complete and report.finished and report.problems == ()
    assert (report.shallow, report.deep) == (20, 56)
    assert [r.label for r in report.runs] == ["resnet-20", "resnet-56", "plain-20", "plain-56"]
    for r in report.runs:
        assert r.final_error == pytest.approx(errors[r.label])
        assert r.final_loss == pytest.approx(10 * errors[r.label])
        assert r.final_val_error == pytest.approx(0.1 + errors[r.label])
        assert len(r.loss) == len(r.train_error) == len(STEPS)
    v = report.verdict
    assert (v.deeper_plain_worse, v.deeper_resnet_as_good) == (plain_worse, resnet_good)
    yes = {True: "yes", False: "no"}
    assert f"trains worse: {yes[plain_worse]}" in v.sentence
    assert f"at least as well: {yes[resnet_good]}" in v.sentence
    assert f"plain-56 {100 * errors['plain-56']:.1f}%" in v.sentence
    assert v.markdown()[0].startswith(f"The deeper plain net trains worse: **{yes[plain_worse]}**")
    d = report.to_dict()
    assert d["verdict"]["deeper_plain_worse"] is plain_worse and d["complete"] is True
    store.close()


AT_CHANCE = {label: 1 - 1 / 6 + 0.003 for label in YES_YES}  # 6 classes: training accuracy 16.4%, as observed
FLAT = {label: 1.79 for label in YES_YES}  # ln 6: the loss of a net that guesses


def test_runs_at_chance_are_inconclusive_never_yes():
    """The bug seen in the browser: four nets at 83% training error and "the deeper ResNet trains at least as
    well: yes". At chance with a flat loss there is no verdict, and the report says why and what to try."""
    store = Store()
    report = summarize(store, fill(store, AT_CHANCE, flat=FLAT))
    assert report.finished and report.complete and report.verdict is None
    why = report.inconclusive
    assert why.startswith("inconclusive: these models did not learn (")
    for label in ("resnet-20", "resnet-56", "plain-20", "plain-56"):
        assert f"{label}: training accuracy 16.4%" in why
    assert "loss 1.79 → 1.79" in why and "needs 37.5%" in why
    assert "try batch 32 (this run: 3,000 images, 8 epochs at batch 128" in why
    assert "yes" not in why
    assert all(not r.learned.learned for r in report.runs)
    d = report.to_dict()
    assert d["verdict"] is None and d["inconclusive"] is True and d["inconclusive_why"] == why
    assert all(r["learned"]["learned"] is False for r in d["runs"])
    # a falling loss does not rescue an accuracy at chance
    falling = summarize(store, fill(store, AT_CHANCE))
    assert falling.verdict is None and falling.inconclusive.startswith("inconclusive: these models did not learn")
    store.close()


def test_the_same_numbers_with_learning_give_the_verdicts():
    store = Store()
    report = summarize(store, fill(store, YES_YES))
    assert report.inconclusive is None and all(r.learned.learned for r in report.runs)
    assert report.verdict.deeper_plain_worse and report.verdict.deeper_resnet_as_good
    assert report.to_dict()["inconclusive"] is False
    store.close()


def test_a_deeper_plain_net_stuck_at_chance_is_the_finding_not_an_excuse():
    """The paper's (and the README's) case: plain-56 never leaves chance while plain-20 learns. The shallower
    pair is the baseline, so the verdict stands; only a shallower net at chance makes it inconclusive."""
    store = Store()
    report = summarize(store, fill(store, {**YES_YES, "plain-56": AT_CHANCE["plain-56"]}, flat={"plain-56": 1.79}))
    assert report.verdict is not None and report.verdict.deeper_plain_worse and report.inconclusive is None
    assert not report.get(False, 56).learned.learned and report.get(False, 20).learned.learned
    half = summarize(store, fill(store, {**YES_YES, "resnet-20": AT_CHANCE["resnet-20"]}, flat={"resnet-20": 1.79}))
    assert half.verdict is None
    assert half.inconclusive.startswith("inconclusive: resnet-20 did not learn (training accuracy 16.4% vs 16.7%")
    store.close()


def test_no_verdict_until_all_four_are_done_and_failures_are_reported():
    store = Store()
    running = summarize(store, fill(store, YES_YES, statuses={"plain-56": "running"}))
    assert not running.complete and not running.finished and running.verdict is None
    assert running.get(False, 56).final_error == pytest.approx(0.15)  # the numbers so far are still there
    diverged = summarize(store, fill(store, YES_YES, statuses={"plain-56": "diverged"}))
    assert diverged.finished and not diverged.complete and diverged.verdict is None
    assert any(p.startswith("plain-56 diverged") and "nan" in p for p in diverged.problems)
    store.close()


def test_runs_trained_with_different_budgets_are_flagged_as_unfair():
    store = Store()
    report = summarize(store, fill(store, YES_YES, deep_train=TrainConfig(epochs=50)))
    assert report.verdict is not None  # the numbers are still judged...
    assert any("not share one training config" in p for p in report.problems)  # ...but the unfairness is said
    store.close()


def test_reports_refuse_what_is_not_a_degradation_experiment():
    store = Store()
    exp = fill(store, YES_YES)
    job_ids = store.experiments.get(exp).job_ids
    with pytest.raises(ValueError, match="two jobs"):
        from_runs(store, [job_ids[0]])
    lone = store.runs.of_job(job_ids[1])[0]  # a resnet-56 trained alone, without its plain twin
    alone, _ = store.jobs.create("train", "alone", "cpu", then=seed(runs=[{"name": "alone", "spec": lone.spec,
                                                                  "data": lone.data, "train": lone.train}]))
    with pytest.raises(ValueError, match="not a degradation experiment"):
        from_runs(store, [job_ids[0], alone])
    other = store.experiments.create("landscape", "x", {}, job_ids)
    with pytest.raises(ValueError, match="landscape"):
        summarize(store, other)
    with pytest.raises(KeyError):
        summarize(store, 999)
    store.close()


def test_figure_draws_four_curves_per_panel_deeper_bold_plain_dashed():
    store = Store()
    report = summarize(store, fill(store, YES_YES))
    fig = degradation_figure(report)
    loss = [t for t in fig.data if t.xaxis == "x"]
    err = [t for t in fig.data if t.xaxis == "x2"]
    assert [t.name for t in loss] == ["resnet-20", "resnet-56", "plain-20", "plain-56"]
    for t_loss, t_err, r in zip(loss, err, report.runs):
        assert list(t_loss.x) == [e for _, e in STEPS] and list(t_loss.y) == pytest.approx([p[2] for p in r.loss])
        assert list(t_err.y) == pytest.approx([100 * p[2] for p in r.train_error])
        assert t_err.line.width == (BOLD if r.depth == 56 else THIN)
        assert (t_err.line.dash == "dash") == (not r.skip)
    store.close()


@pytest.mark.slow
@pytest.mark.process
def test_whole_experiment_runs_on_cpu_with_real_workers():
    """Acceptance: four runs recorded, verdict computed, and a double click is one experiment."""
    cfg = DegradationConfig(shallow=8, deep=14, width=4,
                            data=DataConfig(name="shapes", image_size=16, train_subset=128, augment=False),
                            train=TrainConfig(epochs=1, batch_size=32, lr=0.05, device="cpu"))
    store = Store()
    exp = submit_degradation(cfg, store=store, request_key="session:a")
    assert submit_degradation(cfg, store=store, request_key="session:a") == exp
    assert len(store.runs.list()) == 4 and [e.id for e in store.experiments.list(KIND)] == [exp]
    try:
        deadline = time.time() + 240
        while not summarize(store, exp).finished and time.time() < deadline:
            jobs.pump(store)
            time.sleep(0.3)
    finally:
        for job in store.experiments.get(exp).job_ids:
            jobs.stop(job, store, by=MACHINE)
    report = summarize(store, exp)
    assert [r.status for r in report.runs] == ["done"] * 4, [r.error for r in report.runs]
    experiment = store.experiments.get(exp)
    assert experiment.params == cfg.params()
    runs = [r for job in experiment.job_ids for r in store.runs.of_job(job)]
    assert len(runs) == 4
    assert [r.partner_id for r in runs] == [runs[1].id, runs[0].id, runs[3].id, runs[2].id]
    assert all(store.jobs.get(j).origin == KIND for j in experiment.job_ids)
    assert [r.name for r in runs] == [f"{k}-{d} (degradation #{exp})" for d in (8, 14) for k in ("resnet", "plain")]
    specs = [ModelSpec.from_dict(r.spec) for r in runs]
    assert [(s.depth, s.skip, s.widths) for s in specs] == [(8, True, (4, 8, 16)), (8, False, (4, 8, 16)),
                                                            (14, True, (4, 8, 16)), (14, False, (4, 8, 16))]
    assert all(r.data == cfg.data.to_dict() and r.train == cfg.train.to_dict() for r in runs)
    assert report.complete and report.problems == ()
    final = {}
    for r in runs:  # one epoch, logged once at its end: the final error is that one point
        acc = store.runs.metrics(r.id, ["train/acc"])["train/acc"]
        final[(r.spec["skip"], ModelSpec.from_dict(r.spec).depth)] = 1 - acc[-1][2]
    for r in report.runs:
        assert r.final_error == pytest.approx(final[(r.skip, r.depth)])
    shallow_learned = all(r.learned.learned for r in report.runs if r.depth == 8)
    assert (report.verdict is not None) == shallow_learned  # one epoch on 128 images may well stay at chance
    if report.verdict is None:
        assert report.inconclusive.startswith("inconclusive: ") and "try " in report.inconclusive
        store.close()
        return
    v = report.verdict
    assert v.deeper_plain_worse == (final[(False, 14)] > final[(False, 8)])
    assert v.deeper_resnet_as_good == (final[(True, 14)] <= final[(True, 8)] + TOLERANCE)
    store.close()


def test_an_experiment_is_its_owners_and_is_refused_whole_when_their_queue_is_full(lab_home, monkeypatch):
    from resnet_lab.identity import Identity
    from resnet_lab.jobs import QueueFull, scheduler

    ada = Identity("class:1", "Ada", source="class")
    monkeypatch.setattr(scheduler, "pump", lambda store=None, capacity=None, max_running_per_owner=None: [])
    monkeypatch.setattr(scheduler, "queue_caps", lambda: (3, None))
    cfg = DegradationConfig(shallow=8, deep=14, width=4, data=DataConfig(name="shapes", image_size=16),
                            train=TrainConfig(epochs=1, device="cpu"))
    store = Store()
    exp = submit_degradation(cfg, store=store, request_key="tab:1", owner=ada)
    assert {store.jobs.get(j).owner for j in store.experiments.get(exp).job_ids} == {ada.owner}
    assert {r.owner for r in store.runs.list()} == {ada.owner}
    assert submit_degradation(cfg, store=store, request_key="tab:1", owner=ada) == exp  # a double click
    with pytest.raises(QueueFull, match="This needs 2 jobs, and you already have 2 jobs"):
        submit_degradation(cfg, store=store, owner=ada)  # room for one more job, not for two
    assert len(store.jobs.list()) == 2 and len(store.experiments.list()) == 1
    assert submit_degradation(cfg, store=store) != exp  # the machine is not capped
