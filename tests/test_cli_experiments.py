"""`python -m resnet_lab degradation` and `lesion`: the JSON they print is the analysis's, bad input exits 2."""

import json

import pytest

from resnet_lab.analysis import from_run
from resnet_lab.experiments.degradation import KIND, DegradationConfig, summarize
from resnet_lab.experiments.learned import check_runs
from resnet_lab.models.presets import cifar_spec
from resnet_lab.analysis.learned import inconclusive
from resnet_lab.analysis.lesion import comparison_sentence, lesion_indices, lesion_study, summary_sentence
from resnet_lab.cli import main
from resnet_lab.data.registry import DataConfig, load_dataset
from resnet_lab.spec import ModelSpec
from resnet_lab.store import Store
from resnet_lab.jobs import scheduler
from resnet_lab.train.config import TrainConfig
from tests.helpers.cli import run_cli
from tests.helpers.homes import seed

STEPS = [(3, 0.5), (6, 1.0), (9, 1.5), (12, 2.0)]  # 6 steps per epoch, logged every 3


def fill(store: Store, errors: dict[str, float]) -> int:
    """A finished 20-vs-56 degradation experiment whose final training errors are ``errors[label]``."""
    cfg = DegradationConfig()
    job_ids = []
    for depth in (20, 56):
        spec = cifar_spec(depth, width=16, num_classes=6)
        rows = [{"name": f"{'resnet' if s.skip else 'plain'}-{depth}", "spec": s.to_dict(),
                 "data": cfg.data.to_dict(), "train": cfg.train.to_dict()} for s in (spec, spec.twin())]
        job, ids = store.jobs.create("train", rows[0]["name"], "cpu", then=seed(runs=rows, partners=True), origin=KIND)
        job_ids.append(job)
        for rid, row in zip(ids, rows):
            e = errors[row["name"]]
            values = [e + 0.2, e + 0.1, e + 0.01, e - 0.01]  # last epoch: equal weights, mean e
            store.runs.add_metrics([(rid, s, ep, "train/acc", 1 - v) for (s, ep), v in zip(STEPS, values)]
                              + [(rid, s, ep, "train/loss", 3 * v) for (s, ep), v in zip(STEPS, values)]
                              + [(rid, 12, 2.0, "val/acc", 0.8)])
        store.jobs.finish(job, "done", only_if=["queued"])
    return store.experiments.create(KIND, "depth 20 vs 56", cfg.params(), job_ids)


def cli_json(capsys, *args) -> dict:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def cli_error(capsys, *args) -> str:
    code = main([str(a) for a in args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error:") and "Traceback" not in err
    return err


def test_degradation_reports_an_experiment_as_summarize_does(capsys):
    store = Store()
    errors = {"plain-20": 0.06, "plain-56": 0.11, "resnet-20": 0.05, "resnet-56": 0.049}
    exp = fill(store, errors)
    got = cli_json(capsys, "degradation", "--experiment", exp, "--json")
    report = summarize(store, exp)
    assert got == json.loads(json.dumps(report.to_dict()))
    assert got["complete"] is True and got["verdict"]["deeper_plain_worse"] is True
    assert got["verdict"]["deeper_resnet_as_good"] is True
    assert {r["label"]: r["final_train_error"] for r in got["runs"]} == pytest.approx(errors)
    assert main(["degradation", "--experiment", str(exp)]) == 0
    text = capsys.readouterr().out
    assert report.verdict.sentence in text and "plain-56" in text and "11.00%" in text
    store.close()


def test_degradation_at_chance_says_inconclusive_and_why_never_yes(capsys):
    store = Store()
    exp = fill(store, {label: 0.835 for label in ("plain-20", "plain-56", "resnet-20", "resnet-56")})
    got = cli_json(capsys, "degradation", "--experiment", exp, "--json")
    report = summarize(store, exp)
    assert got == json.loads(json.dumps(report.to_dict()))
    assert got["verdict"] is None and got["inconclusive"] is True
    assert got["inconclusive_why"].startswith("inconclusive: these models did not learn (")
    assert "training accuracy 16.5% vs 16.7% chance" in got["inconclusive_why"]
    assert main(["degradation", "--experiment", str(exp)]) == 0
    text = capsys.readouterr().out
    assert report.inconclusive in text and "yes" not in text and "No verdict" not in text
    store.close()


@pytest.mark.parametrize("args, message", [
    (["--shallow", "21"], "6n+2"),
    (["--shallow", "56", "--deep", "20"], "more layers than"),
    (["--width", "2"], "width"),
    (["--subset", "-1"], "--subset"),
    (["--data", "imagenet"], "not a known dataset"),
    (["--epochs", "0"], "epochs"),
    (["--experiment", "999"], "no experiment with id 999"),
])
def test_degradation_refuses_bad_input_with_exit_2(capsys, args, message):
    assert message in cli_error(capsys, "degradation", *args)
    assert Store().runs.list() == []  # nothing was queued


def test_degradation_detach_queues_the_four_runs(capsys, monkeypatch):
    monkeypatch.setattr(scheduler, "pump", lambda store=None, capacity=None: [])  # queue only: start no worker
    got = cli_json(capsys, "degradation", "--shallow", 8, "--deep", 14, "--width", 4, "--subset", 100,
                   "--image-size", 16, "--epochs", 1, "--batch-size", 16, "--lr", 0.05, "--seed", 3,
                   "--device", "cpu", "--detach", "--json")
    store = Store()
    exp = store.experiments.get(got["experiment"])
    assert exp.job_ids == got["jobs"]
    data = DataConfig(name="shapes", image_size=16, train_subset=100, seed=3)
    train = TrainConfig(epochs=1, batch_size=16, lr=0.05, seed=3, device="cpu", eval_points=0)
    assert exp.params == DegradationConfig(8, 14, 4, data, train).params()
    runs = [r for job in exp.job_ids for r in store.runs.of_job(job)]
    assert sorted(r.id for r in runs) == sorted(got["runs"])
    assert [(ModelSpec.from_dict(r.spec).depth, r.spec["skip"]) for r in runs] == [
        (8, True), (8, False), (14, True), (14, False)]
    assert all(r.status == "queued" and r.data == data.to_dict() and r.train == train.to_dict() for r in runs)
    store.close()


def test_lesion_json_is_the_lesion_study_of_both_twins(capsys, finished_run):
    got = cli_json(capsys, "lesion", "--run", finished_run[0], "--twin", "--n", 100, "--json")
    store = Store()
    subjects = [from_run(store.runs.get(i)) for i in finished_run]
    store.close()
    data = load_dataset(subjects[0].data)
    idx = lesion_indices(data.y_val, 100)
    studies = [lesion_study(s.model, s.normalize(data.x_val[idx]), data.y_val[idx], label=s.label) for s in subjects]
    assert got["n"] == 100 and got["kinds"] == ["branch", "skip"]
    assert [m["run"] for m in got["models"]] == finished_run
    for m, study in zip(got["models"], studies):
        assert m["base_acc"] == pytest.approx(study.base_acc)
        assert len(m["rows"]) == len(study.rows)
        for row, want in zip(m["rows"], study.rows):
            assert (row["block"], row["kind"], row["downsampling"]) == (want.block, want.kind, want.downsampling)
            assert row["acc"] == (None if want.acc is None else pytest.approx(want.acc))
    assert got["summary"]["branch"] == summary_sentence(studies, "branch")
    store = Store()
    checks = check_runs(store, [store.runs.get(i) for i in finished_run])
    store.close()
    assert [m["learned"] for m in got["models"]] == [json.loads(json.dumps(c.to_dict())) for c in checks]
    assert got["inconclusive_why"] == inconclusive(checks) and got["inconclusive"] == (inconclusive(checks) is not None)
    want = None if got["inconclusive"] else (comparison_sentence(studies, "branch") or None)
    assert got["comparison"]["branch"] == want and got["comparison"]["skip"] is None  # a plain net has no skip
    assert main(["lesion", "--run", str(finished_run[1]), "--n", "40", "--kinds", "branch"]) == 0
    text = capsys.readouterr().out
    assert "n/a" in text and "layer2.0 ↓" in text and "intact accuracy" in text


def test_lesion_of_runs_at_chance_is_inconclusive_and_draws_no_conclusion(capsys, private_trained_home, run_numbers):
    store, ids = private_trained_home
    for rid in ids:
        run_numbers(store, rid, 0.17)  # 6 classes: chance is 16.7%; the loss ends where it began
    got = cli_json(capsys, "lesion", "--run", ids[0], "--twin", "--n", 40, "--kinds", "branch", "--json")
    assert got["inconclusive"] is True and got["comparison"] == {"branch": None}
    assert got["inconclusive_why"].startswith("inconclusive: these models did not learn (ResNet #")
    assert "val accuracy 17.0% vs 16.7% chance" in got["inconclusive_why"] and "try " in got["inconclusive_why"]
    assert [m["learned"]["learned"] for m in got["models"]] == [False, False]
    assert main(["lesion", "--run", str(ids[0]), "--twin", "--n", "40", "--kinds", "branch"]) == 0
    text = capsys.readouterr().out
    assert got["inconclusive_why"] in text and "Veit et al." not in text and "falls apart" not in text


def test_lesion_of_runs_that_learned_compares_them(capsys, private_trained_home, run_numbers):
    store, ids = private_trained_home
    for rid in ids:
        run_numbers(store, rid, 0.95, last_loss=0.05)
    got = cli_json(capsys, "lesion", "--run", ids[0], "--twin", "--n", 40, "--kinds", "branch", "--json")
    assert got["inconclusive"] is False and got["inconclusive_why"] is None
    d_res, d_plain = (m["mean_drop"]["branch"] for m in got["models"])
    sentence = got["comparison"]["branch"]
    if abs(d_plain - d_res) < 0.01:
        assert sentence.startswith("The two lose about the same")
    else:
        who = "plain net" if d_plain > d_res else "ResNet"
        assert sentence.startswith(f"The {who} loses {100 * abs(d_plain - d_res):.1f} points more per deleted block")
        assert ("as Veit et al. found" in sentence) == (who == "plain net")


@pytest.mark.parametrize("args, message", [
    (["--kinds", "branch,wires"], "--kinds"),
    (["--n", "0"], "--n"),
    (["--batch-size", "0"], "--batch-size"),
    (["--run", "999"], "no run with id 999"),  # the last --run wins
])
def test_lesion_refuses_bad_input_with_exit_2(capsys, finished_run, args, message):
    assert message in cli_error(capsys, "lesion", "--run", finished_run[0], *args)


def test_lesion_of_one_kind_prints_json_of_that_kind(finished_run):
    ok = run_cli("lesion", "--run", finished_run[0], "--n", 30, "--kinds", "skip", "--json")
    assert ok.returncode == 0, ok.stderr
    got = json.loads(ok.stdout)
    assert got["n"] == 30 and [r["kind"] for r in got["models"][0]["rows"]] == ["skip"] * 3


# --- degradation --paper: He et al. 2015's CIFAR-10 Table 6 --------------------------------------------------------


def test_degradation_paper_options_parse_into_the_experiments_config():
    from resnet_lab.cli import build_parser
    from resnet_lab.commands.degradation import paper_config_from_args
    from resnet_lab.experiments.paper_cifar import PaperConfig

    args = build_parser().parse_args(["degradation", "--paper"])
    assert paper_config_from_args(args) == PaperConfig()  # 20, 32, 44, 56; one seed; the paper recipe; all images
    args = build_parser().parse_args(["degradation", "--paper", "--depths", "20, 56,110", "--seeds", "3", "--recipe",
                                      "short", "--subset", "5000", "--width", "8", "--max-steps", "100",
                                      "--device", "cpu"])
    assert paper_config_from_args(args) == PaperConfig(depths=(20, 56, 110), seeds=3, recipe="short", subset=5000,
                                                       width=8, max_steps=100, device="cpu")
    args = build_parser().parse_args(["degradation", "--paper", "--data", "cifar100", "--recipe", "short"])
    assert paper_config_from_args(args) == PaperConfig(dataset="cifar100", recipe="short")
    args = build_parser().parse_args(["degradation"])  # the classic experiment keeps its 3,000 shapes images
    from resnet_lab.commands.degradation import config_from_args
    assert (config_from_args(args).data.train_subset, config_from_args(args).data.name) == (3000, "shapes")


@pytest.mark.parametrize("args, message", [
    (["--depths", "20,21"], "6n+2"),
    (["--depths", "twenty"], "--depths"),
    (["--seeds", "0"], "seeds"),
    (["--subset", "-5"], "--subset"),
    ([], "CIFAR-10 is not in"),  # no files in the lab's data folder: what to put where, before anything is queued
])
def test_degradation_paper_refuses_bad_input_and_missing_files_with_exit_2(capsys, args, message):
    assert message in cli_error(capsys, "degradation", "--paper", *args)
    assert Store().runs.list() == []


def test_degradation_paper_detach_queues_a_twin_job_per_depth_and_seed_and_reports_json(capsys, monkeypatch, lab_home):
    from resnet_lab.experiments.paper_cifar import KIND as PAPER_KIND, PaperConfig
    from tests.experiments.cifar_wiring import write_tiny_cifar

    monkeypatch.setattr(scheduler, "pump", lambda store=None, capacity=None: [])  # queue only: start no worker
    write_tiny_cifar(lab_home / "data")
    got = cli_json(capsys, "degradation", "--paper", "--depths", "8,14", "--seeds", 2, "--width", 4, "--max-steps", 4,
                   "--device", "cpu", "--detach", "--json")
    store = Store()
    exp = store.experiments.get(got["experiment"])
    assert exp.kind == PAPER_KIND and len(exp.job_ids) == 4 and sorted(exp.job_ids) == got["jobs"]
    assert PaperConfig.from_params(exp.params) == PaperConfig(depths=(8, 14), seeds=2, width=4, max_steps=4,
                                                              device="cpu")
    runs = [r for job in exp.job_ids for r in store.runs.of_job(job)]
    assert [(ModelSpec.from_dict(r.spec).depth, r.spec["skip"], r.train["seed"]) for r in runs] == [
        (8, True, 0), (8, False, 0), (14, True, 0), (14, False, 0), (8, True, 1), (8, False, 1), (14, True, 1),
        (14, False, 1)]
    report = cli_json(capsys, "degradation", "--experiment", exp.id, "--json")
    assert report["kind"] == PAPER_KIND and [row["depth"] for row in report["table"]] == [8, 14]
    assert report["table"][0]["resnet_test_error"] is None and not report["finished"]
    assert main(["degradation", "--experiment", str(exp.id)]) == 0
    text = capsys.readouterr().out
    assert "paper's ResNet (Table 6)" in text and "0 of 8 runs done" in text
    store.close()
