"""The lab's own runs as points (pure over store records, and read from a real store), their fronts, and the
budget question with and without measured speeds."""

from dataclasses import dataclass

import pytest

from resnet_lab.experiments.budget import (FITS, NOT_MEASURED, TOO_BIG, Budget, answer, answer_sentence, fit,
                                           preset_params, published_says)
from resnet_lab.experiments.choose import front_of, points_of, run_costs, run_points, runs_report
from resnet_lab.models.presets import PRESETS
from resnet_lab.models.summary import summarize
from resnet_lab.store import Run
from tests.helpers.homes import seed

R20 = PRESETS["resnet20"].replace(num_classes=10).to_dict()
R56 = PRESETS["resnet56"].to_dict()
P20 = PRESETS["plain20"].to_dict()


def record(id, spec, acc, status="done", dataset="cifar10", owner="local", job_id=None, name="r"):
    return Run(id=id, job_id=job_id, partner_id=None, name=name, status=status, spec=spec,
               data={"name": dataset, "image_size": 32}, train={}, finetune={}, device="cpu", created_at=0.0,
               started_at=0.0, finished_at=1.0, error=None, step=1, total_steps=1,
               best={"val/acc": acc} if acc is not None else {}, last={}, ckpt_best=None, ckpt_last=None, owner=owner)


def test_points_are_finished_runs_of_the_dataset_with_their_costs():
    runs = [record(1, R20, 0.90, job_id=7, owner="ann"), record(2, R56, 0.92), record(3, P20, 0.85),
            record(4, R20, 0.95, status="failed"), record(5, R20, None), record(6, R20, 0.99, dataset="mnist")]
    pts = points_of(runs, {1: 60.0, 2: 200.0}, {1: 900.0}, {7: "Ann <b>"}, dataset="cifar10")
    assert [p.run_id for p in pts] == [1, 2, 3]
    a = pts[0]
    assert (a.model, a.kind, a.owner_name, a.train_s, a.images_per_s) == ("resnet20", "ResNet", "Ann <b>", 60.0, 900.0)
    assert (a.params, a.macs) == (summarize(PRESETS["resnet20"], 32).params, summarize(PRESETS["resnet20"], 32).macs)
    assert pts[2].kind == "plain" and pts[1].images_per_s is None


def test_a_run_without_a_logged_time_is_off_that_axis_only():
    pts = points_of([record(1, R20, 0.90), record(2, R56, 0.905)], {1: 60.0}, {}, {})
    assert [p.run_id for p in front_of(pts, "params").points] == [1, 2]
    assert [p.run_id for p in front_of(pts, "train_s").points] == [1]
    assert front_of(pts, "images_per_s").points == [] and front_of(pts, "images_per_s").sentence == ""


def test_the_front_and_sentence_of_runs():
    pts = points_of([record(1, R20, 0.915), record(2, R56, 0.921), record(3, P20, 0.80)], {}, {}, {})
    f = front_of(pts, "params")
    assert [p.run_id for p in f.front] == [1, 2]
    assert f.sentence == ("resnet20 #1 is within 0.6 points of the best (resnet56 #2, 92.1%) "
                          "at a third of the parameters.")


def test_a_speed_axis_maximises_the_speed():
    pts = points_of([record(1, R20, 0.90), record(2, R56, 0.91)], {}, {1: 3000.0, 2: 1000.0}, {})
    assert [p.run_id for p in front_of(pts, "images_per_s").front] == [1, 2]
    assert front_of(pts, "images_per_s").sentence.endswith("at 3× the images/s.")


def test_an_unreadable_spec_has_no_costs():
    assert run_costs({"stem": "nonsense"}, 32) is None


def test_run_points_read_the_store(tmp_path, open_store):
    s = open_store(tmp_path / "runs.db")
    rows = [{"name": n, "spec": sp, "data": {"name": "cifar10", "image_size": 32}, "train": {}}
            for n, sp in (("res", R20), ("plain", P20))]
    job, (a, b) = s.jobs.create("train", "pair", "cpu", then=seed(runs=rows, partners=True))
    s.runs.update(a, best={"val/acc": 0.9})
    s.runs.update(b, best={"val/acc": 0.8})
    for rid in (a, b):
        s.runs.finish(rid, "done", only_if=("queued", "running"))
    s.runs.add_metrics([(a, 10, 1.0, "train_s", 42.0), (a, 10, 1.0, "images_per_s", 1500.0)])
    pts = run_points(s, "cifar10")
    assert {p.run_id: (p.kind, p.train_s, p.images_per_s) for p in pts} == {a: ("ResNet", 42.0, 1500.0),
                                                                              b: ("plain", None, None)}
    report = runs_report(pts, "cifar10")
    assert report["fronts"]["params"]["run_ids"] == [a] and "resnet20" in report["fronts"]["params"]["sentence"]
    assert run_points(s, "mnist") == []


@dataclass
class Speed:
    latency_ms: float
    train_images_per_s: float


def test_size_is_float32_weights():
    assert preset_params("resnet50") == summarize(PRESETS["resnet50"]).params
    f = fit(Budget(max_mb=100), "resnet50", None)
    assert f.verdict == FITS and f.size_mb == pytest.approx(25_557_032 * 4 / 2 ** 20)
    assert fit(Budget(max_mb=50), "resnet50", None).verdict == TOO_BIG


def test_a_preset_without_a_speed_is_not_measured_never_passed_or_dropped():
    fits = answer(Budget(max_ms=5), {"resnet20": Speed(2.0, 3000)}, presets=["resnet20", "resnet56", "resnet110"])
    assert [(f.preset, f.verdict) for f in fits] == [("resnet20", FITS), ("resnet56", NOT_MEASURED),
                                                     ("resnet110", NOT_MEASURED)]
    assert "not measured" in fits[1].why
    assert answer_sentence(fits) == "1 preset fits and 2 are not measured on this device yet."


def test_time_limits_with_measured_speeds():
    speeds = {"resnet20": Speed(2.0, 5000.0), "resnet56": Speed(6.0, 1000.0)}
    fits = answer(Budget(max_minutes=5, train_images=500_000), speeds, presets=["resnet20", "resnet56"])
    by = {f.preset: f for f in fits}
    assert by["resnet20"].train_minutes == pytest.approx(500_000 / 5000 / 60)  # 1.67 min
    assert by["resnet20"].verdict == FITS and by["resnet56"].verdict == TOO_BIG  # 8.3 min
    assert answer(Budget(max_ms=5), speeds, presets=["resnet56"])[0].verdict == TOO_BIG
    assert answer_sentence(answer(Budget(max_ms=1), speeds, presets=["resnet56"])) == "No preset fits for sure and " \
                                                                                       "1 does not fit."


def test_a_size_that_rules_it_out_wins_over_not_measured():
    assert fit(Budget(max_mb=1, max_ms=5), "resnet50", None).verdict == TOO_BIG


def test_what_the_tables_and_the_runs_say():
    assert published_says("resnet50").startswith("ImageNet top-1 80.9% (torchvision V2)")
    assert published_says("resnet56") == "CIFAR-10 93.03% (He et al. 2015, Table 6)"
    assert published_says("plain56") == ""
    pts = points_of([record(1, R20, 0.90), record(2, R20, 0.91)], {}, {}, {})
    f = fit(Budget(), "resnet20", None, pts)
    assert f.lab == "91.0% best of 2 runs (cifar10)" and f.lab_best == 0.91 and f.verdict == FITS


@pytest.mark.parametrize("bad", [dict(max_ms=0), dict(max_mb=-1), dict(max_minutes="5"), dict(train_images=0)])
def test_a_budget_refuses_nonsense(bad):
    with pytest.raises(ValueError):
        Budget(**bad)


def test_an_unknown_preset_is_refused():
    with pytest.raises(ValueError, match="unknown preset"):
        answer(Budget(), {}, presets=["resnet7"])
