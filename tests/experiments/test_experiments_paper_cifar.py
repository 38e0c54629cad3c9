"""He et al. 2015's CIFAR-10 experiment (Table 6, Fig. 6): the config and its jobs, the table's math (mean ± std over
seeds, the paper's column) on hand-made numbers, the test error read from a store filled by hand, the Fig. 6 figure,
the cost, and (acceptance) the whole experiment in real worker processes on tiny CIFAR-format files."""

from __future__ import annotations

import json
import statistics

import pytest

from resnet_lab import jobs
from resnet_lab.experiments.paper_cifar import (KIND, PAPER_RESNET_ERROR, PaperConfig, PaperRun, finding, spread,
                                                submit_paper, summarize_paper, table)
from resnet_lab.jobs.handlers import WIRING_ENV
from resnet_lab.models.presets import cifar_spec
from resnet_lab.store import Store
from resnet_lab.train.config import TrainConfig
from resnet_lab.viz.paper_curves import fig6_figure, table_records
from tests.experiments.cifar_wiring import write_tiny_cifar
from tests.helpers.homes import seed
from tests.helpers.waiting import wait_for


def run(depth: int, skip: bool, seed: int, test_error: float | None, status: str = "done",
        curve: tuple = ((10, 0.9), (20, 0.5))) -> PaperRun:
    return PaperRun(label=f"{'resnet' if skip else 'plain'}-{depth}", depth=depth, skip=skip, seed=seed, run_id=0,
                    job_id=None, status=status, step=20, total_steps=20, train_error=curve, test_error=test_error)


def test_the_papers_column_is_table_6():
    assert PAPER_RESNET_ERROR == {20: 0.0875, 32: 0.0751, 44: 0.0717, 56: 0.0697, 110: 0.0643}


def test_the_table_averages_seeds_with_the_sample_std_and_sets_the_paper_beside():
    runs = [run(20, True, 0, 0.09), run(20, True, 1, 0.10), run(20, True, 2, 0.08),
            run(20, False, 0, 0.095), run(20, False, 1, None, status="running"),
            run(56, True, 0, 0.07), run(56, False, 0, 0.12), run(56, False, 1, 0.5, status="diverged"),
            run(8, True, 0, 0.3)]
    rows = table(runs)
    assert [r.depth for r in rows] == [8, 20, 56]
    r8, r20, r56 = rows
    assert r20.resnet.n == 3 and r20.resnet.mean == pytest.approx(0.09)
    assert r20.resnet.std == pytest.approx(statistics.stdev([0.09, 0.10, 0.08])) == pytest.approx(0.01)
    assert r20.plain.n == 1 and r20.plain.std is None  # one seed done: no spread (the running one counts in nothing)
    assert r56.plain.values == (0.12,)  # the diverged run is left out
    assert (r8.plain, r8.paper_resnet, r20.paper_resnet, r56.paper_resnet) == (None, None, 0.0875, 0.0697)
    assert r20.resnet.text() == "9.00 ± 1.00% (3 seeds)" and r20.plain.text() == "9.50%"
    assert table_records(rows) == [
        {"depth": 8, "plain test error": "—", "ResNet test error": "30.00%", "paper's ResNet (Table 6)": "—"},
        {"depth": 20, "plain test error": "9.50%", "ResNet test error": "9.00 ± 1.00% (3 seeds)",
         "paper's ResNet (Table 6)": "8.75%"},
        {"depth": 56, "plain test error": "12.00%", "ResNet test error": "7.00%", "paper's ResNet (Table 6)": "6.97%"}]
    assert spread([None, None]) is None
    assert [r.paper_resnet for r in table(runs, paper={})] == [None, None, None]  # CIFAR-100: no paper column
    assert json.loads(json.dumps([r.to_dict() for r in rows]))[1]["resnet_test_error"]["n"] == 3


def test_the_finding_follows_the_numbers():
    paper_like = table([run(20, False, 0, 0.09), run(56, False, 0, 0.12), run(20, True, 0, 0.09),
                        run(56, True, 0, 0.07)])
    assert finding(paper_like) == ("The plain nets' test error rises from 9.00% at 20 layers to 12.00% at 56; the "
                                   "residual nets' test error falls from 9.00% at 20 layers to 7.00% at 56.")
    stuck = table([run(20, False, 0, 0.3), run(56, False, 0, 0.9), run(20, True, 0, 0.2), run(56, True, 0, 0.1)])
    assert finding(stuck).endswith("At chance (learned nothing): plain-56.")
    assert finding(table([run(20, False, 0, 0.9), run(20, True, 0, 0.9), run(56, False, 0, 0.9),
                          run(56, True, 0, 0.9)])).startswith("No net learned")
    assert finding(table([run(20, False, 0, 0.1), run(20, True, 0, 0.1), run(56, True, 0, 0.1)])) is None


def test_config_plans_one_twin_job_per_depth_and_seed_and_round_trips():
    cfg = PaperConfig(depths=(56, 20), seeds=2, width=4, max_steps=640)
    assert cfg.depths == (20, 56) and cfg.plan() == [(20, 0), (56, 0), (20, 1), (56, 1)]
    train = cfg.train(20, 1)
    assert (train.seed, train.max_steps, train.milestones, train.log_every) == (1, 640, (320, 480), 3)
    assert cfg.train(20, 0).replace(seed=1) == train  # the seed is all that differs between seeds
    assert PaperConfig.from_params(json.loads(json.dumps(cfg.params()))) == cfg
    full = PaperConfig(depths=(20, 110))
    assert full.train(20, 0).milestones == (32_000, 48_000) and full.train(20, 0).max_steps == 64_000
    assert full.train(110, 0).warmup_epochs == 1.0 and full.train(20, 0).warmup_epochs == 0.0
    data = full.data()
    assert data.holdout_val and data.val_fraction == 0.1 and data.train_subset is None
    short = PaperConfig(recipe="short", subset=2000)
    assert short.data().train_subset == 2000 and not short.data().holdout_val
    assert short.train(20, 0).schedule == "onecycle"


@pytest.mark.parametrize("kwargs, message", [
    (dict(depths=(21,)), "6n"), (dict(depths=()), "depths"), (dict(depths="20"), "depths"),
    (dict(seeds=0), "seeds"), (dict(seeds=11), "seeds"), (dict(recipe="default"), "paper or short"),
    (dict(max_steps=0), "max_steps"), (dict(width=2), "width"), (dict(subset=0), "train_subset"),
])
def test_config_refuses_bad_settings_clearly(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PaperConfig(**kwargs)


def fill(store: Store, cfg: PaperConfig, results: dict[tuple[str, int], float], data: dict | None = None) -> int:
    """A Table 6 experiment recorded by hand: ``results[(label, seed)]`` is the run's final ``test/acc`` error (or,
    for data without a held-out val, its last ``val/acc`` error)."""
    job_ids = []
    data = data or cfg.data().to_dict()
    for depth, s in cfg.plan():
        spec = cifar_spec(depth, width=cfg.width)
        train = cfg.train(depth, s)
        rows = [{"name": f"{'resnet' if x.skip else 'plain'}-{depth}", "spec": x.to_dict(), "data": data,
                 "train": train.to_dict()} for x in (spec, spec.twin())]
        job, ids = store.jobs.create("train", rows[0]["name"], "cpu", then=seed(runs=rows, partners=True), origin=KIND)
        job_ids.append(job)
        for rid, row in zip(ids, rows):
            err = results.get((row["name"], s))
            metric = "test/acc" if data.get("holdout_val") else "val/acc"
            store.runs.add_metrics([(rid, 10, 1.0, "train/acc", 0.5), (rid, 20, 2.0, "train/acc", 0.8),
                                    (rid, 10, 1.0, "val/acc", 0.1)]
                                   + ([] if err is None else [(rid, 20, 2.0, metric, 1 - err)]))
            store.runs.update(rid, step=20, total_steps=20)
            store.runs.finish(rid, "done" if err is not None else "stopped")
        store.jobs.finish(job, "done", only_if=["queued"])  # nothing left for a worker to start
    return store.experiments.create(KIND, "Table 6", cfg.params(), job_ids)


def test_the_report_reads_each_runs_test_error_from_the_store(lab_home):
    store = Store()
    cfg = PaperConfig(depths=(20, 56), seeds=2, width=4, max_steps=20)
    results = {("resnet-20", 0): 0.09, ("resnet-20", 1): 0.08, ("plain-20", 0): 0.10, ("plain-20", 1): 0.11,
               ("resnet-56", 0): 0.07, ("resnet-56", 1): 0.06, ("plain-56", 0): 0.13}
    exp = fill(store, cfg, results)
    report = summarize_paper(store, exp)
    assert [(r.label, r.seed) for r in report.runs] == [("resnet-20", 0), ("plain-20", 0), ("resnet-20", 1),
                                                         ("plain-20", 1), ("resnet-56", 0), ("plain-56", 0),
                                                         ("resnet-56", 1), ("plain-56", 1)]
    assert {(r.label, r.seed): r.test_error for r in report.runs if r.test_error is not None} == pytest.approx(results)
    assert [s for s, _ in report.runs[0].train_error] == [10, 20]
    assert [e for _, e in report.runs[0].train_error] == pytest.approx([0.5, 0.2])
    r20, r56 = report.rows
    assert r20.resnet.mean == pytest.approx(0.085) and r56.plain.n == 1
    assert report.problems == ("plain-56 seed 1 stopped",) and report.finished and not report.complete
    assert report.finding is None
    got = json.loads(json.dumps(report.to_dict(series=True)))
    assert got["kind"] == KIND and got["table"][0]["paper_resnet_test_error"] == 0.0875
    assert got["runs"][0]["train_error"][0] == [10, 0.5]
    with pytest.raises(ValueError, match="not a paper_cifar experiment"):
        summarize_paper(store, store.experiments.create("degradation", "x", {}, [1]))
    store.close()


def test_without_a_held_out_val_the_last_validation_is_the_test_error(lab_home):
    store = Store()
    cfg = PaperConfig(depths=(8, 14), recipe="short", subset=100, width=4)
    results = {(f"{k}-{d}", 0): e for k in ("plain", "resnet") for d, e in ((8, 0.4), (14, 0.3))}
    report = summarize_paper(store, fill(store, cfg, results))
    assert [r.test_error for r in report.runs] == pytest.approx([0.4, 0.4, 0.3, 0.3])  # the official test set is val
    assert report.complete
    # a held-out val run that has no test number yet has no test error (its val split is not the test set)
    held = fill(store, cfg, {("resnet-8", 0): 0.2}, data={**cfg.data().to_dict(), "val_fraction": 0.1,
                                                         "holdout_val": True})
    first, twin = summarize_paper(store, held).runs[:2]
    assert first.test_error == pytest.approx(0.2) and twin.test_error is None
    store.close()


def test_fig6_draws_plain_dashed_and_resnets_solid_one_colour_a_depth():
    runs = [run(20, True, 0, 0.1), run(20, False, 0, 0.1), run(56, True, 0, 0.1), run(56, False, 0, 0.1),
            run(56, False, 1, 0.1, curve=((10, 0.95),))]
    fig = json.loads(fig6_figure(runs).to_json())
    traces = fig["data"]
    assert [(t["name"], t["line"]["dash"], t["showlegend"]) for t in traces] == [
        ("plain-20", "dash", True), ("plain-56", "dash", True), ("plain-56", "dash", False),
        ("resnet-20", "solid", True), ("resnet-56", "solid", True)]
    assert traces[0]["line"]["color"] == traces[3]["line"]["color"] != traces[1]["line"]["color"]
    assert traces[0]["x"] == [10, 20] and traces[0]["y"] == pytest.approx([90.0, 50.0])
    assert "iterations" in fig["layout"]["xaxis"]["title"]["text"]


def test_the_cost_counts_every_image_and_waits_for_a_timing(lab_home):
    from resnet_lab.experiments.paper_cifar import cost

    store = Store()
    c = cost(store, PaperConfig(device="cpu"))
    assert c.images == 4 * 2 * 64_000 * 128 and c.device == "cpu" and c.seconds is None
    assert "65.5 million training images" in c.text() and "no estimate yet" in c.text()
    short = cost(store, PaperConfig(recipe="short", subset=2048, depths=(20,), device="cpu"))
    assert short.images == 2 * 30 * 4 * 512  # 2048 images at batch 512: 4 steps an epoch, 30 epochs, 2 models
    store.close()


@pytest.mark.process
def test_table6_runs_end_to_end_in_real_worker_processes(lab_home, monkeypatch):
    """Submit → two twin jobs trained by real workers on tiny CIFAR-format files (45 training images less 10% held
    out as val, 10 test images; depth 8 and 14 at width 4, 4 steps) → a report with both twins of each depth, each
    with a test error measured on the test split."""
    monkeypatch.setenv(WIRING_ENV, "tests.experiments.cifar_wiring")  # the workers trust the tiny files' md5s
    monkeypatch.setenv("RESNET_LAB_HEARTBEAT_S", "0.5")
    monkeypatch.setenv("RESNET_LAB_JOBS_PER_CPU", "2")  # both twin jobs at once: their start-ups overlap
    write_tiny_cifar(lab_home / "data", per_batch=10)
    store = Store()
    cfg = PaperConfig(depths=(8, 14), width=4, max_steps=4, device="cpu")
    exp = submit_paper(cfg, store=store)
    assert store.experiments.get(exp).kind == KIND
    wait_for(lambda: summarize_paper(store, exp).finished, 240, store, "the experiment's jobs to end",
             explain=lambda: str([(r.label, r.status) for r in summarize_paper(store, exp).runs]))
    report = summarize_paper(store, exp)
    assert [(r.depth, r.skip, r.status, r.step, r.total_steps) for r in report.runs] == [
        (8, True, "done", 4, 4), (8, False, "done", 4, 4), (14, True, "done", 4, 4), (14, False, "done", 4, 4)]
    for r in report.runs:
        test = store.runs.metrics(r.run_id, ["test/acc"])["test/acc"]
        assert len(test) == 1 and r.test_error == pytest.approx(1 - test[0][2])  # the 10 official test images
        assert [s for s, _ in r.train_error][-1] == 4
        train = TrainConfig.from_dict(store.runs.get(r.run_id).train)
        assert (train.max_steps, train.milestones, train.weight_decay) == (4, (2, 3), 1e-4)
    assert [(row.depth, row.plain.n, row.resnet.n, row.paper_resnet) for row in report.rows] == [
        (8, 1, 1, None), (14, 1, 1, None)]
    assert report.complete and report.finding is not None
    pids = [store.jobs.get(j).pid for j in report.job_ids]
    wait_for(lambda: not any(jobs.pid_alive(p) for p in pids if p), 60, what="the workers to exit")
    store.close()
