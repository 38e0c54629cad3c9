"""The Degradation page: empty state, one click queues the four runs (once, even double-clicked) and they
can be stopped from the page, and a recorded experiment is drawn and judged exactly as summarize() does."""

import json

import pytest

from resnet_lab import jobs
from resnet_lab.experiments.degradation import KIND, DegradationConfig, summarize
from resnet_lab.models.presets import cifar_spec
from resnet_lab.spec import ModelSpec
from resnet_lab.store import Store
from tests.helpers.homes import seed

PAGE = "app_pages/degradation.py"
STEPS = [(4, 0.5), (8, 1.0), (12, 1.5), (16, 2.0)]  # 8 steps per epoch, logged every 4


def fill(store: Store, errors: dict[str, float], running: str | None = None, flat_loss: float | None = None) -> int:
    """A 20-vs-56 experiment with hand-written metrics: final train error ``errors[label]``; the training loss
    falls with it (2 × the error), or stays at ``flat_loss`` (runs that learned nothing)."""
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
            values = [e + 0.3, e + 0.1, e + 0.02, e - 0.02]
            store.runs.add_metrics([(rid, s, ep, "train/acc", 1 - v) for (s, ep), v in zip(STEPS, values)]
                              + [(rid, s, ep, "train/loss", 2 * v if flat_loss is None else flat_loss)
                                 for (s, ep), v in zip(STEPS, values)])
            store.runs.update(rid, step=16, total_steps=16)
        if running is None:
            store.jobs.finish(job, "done", only_if=["queued"])
        else:
            jobs.turns.claim(store, {"cpu": 2})
            for rid, row in zip(ids, rows):
                if row["name"] != running:
                    store.runs.finish(rid, "done")
    return store.experiments.create(KIND, "depth 20 vs 56", cfg.params(), job_ids)


def classic_warnings(at) -> list[str]:
    """The page's warnings but the Table 6 section's missing-files panel (no CIFAR-10 in a test's lab home)."""
    return [w.value for w in at.warning if w.icon != ":material/download:"]


def charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_renders_with_no_experiment_yet(open_app_page):
    at = open_app_page(PAGE)
    assert at.title[0].value == "Degradation"
    assert any("No degradation experiment yet" in i.value for i in at.info)
    assert not at.button(key="dg_start").disabled
    assert at.selectbox(key="dg_shallow").value == 20 and at.selectbox(key="dg_deep").value == 56
    assert any("3.0× the blocks" in c.value for c in at.caption)  # the cost hint: 9 vs 3 blocks per stage
    assert not at.error


def test_bad_depths_disable_the_button_with_a_reason(open_app_page):
    at = open_app_page(PAGE)
    at.selectbox(key="dg_shallow").set_value(56).run()
    at.selectbox(key="dg_deep").set_value(20).run()
    assert any("more layers than" in w.value for w in at.warning)
    assert at.button(key="dg_start").disabled


@pytest.mark.usefixtures("no_workers_left")
def test_run_the_experiment_queues_four_runs_once_and_stop_works(open_app_page):
    at = open_app_page(PAGE)
    at.selectbox(key="dg_shallow").set_value(8).run()
    at.selectbox(key="dg_deep").set_value(14).run()
    at.number_input(key="dg_width").set_value(4).run()
    at.number_input(key="dg_subset").set_value(64).run()
    at.number_input(key="dg_epochs").set_value(1).run()
    at.number_input(key="dg_batch").set_value(16).run()
    at.button(key="dg_start").click().run()
    at.button(key="dg_start").click().run()  # a double click is one experiment
    assert not at.exception and not at.error
    store = Store()
    exps = store.experiments.list(KIND)
    assert len(exps) == 1 and len(store.runs.list()) == 4
    exp = exps[0]
    assert at.selectbox(key="dg_pick").value == exp.id
    assert (exp.params["shallow"], exp.params["deep"], exp.params["width"]) == (8, 14, 4)
    assert exp.params["data"]["train_subset"] == 64 and exp.params["train"]["epochs"] == 1
    runs = [r for job in exp.job_ids for r in store.runs.of_job(job)]
    assert [(ModelSpec.from_dict(r.spec).depth, r.spec["skip"]) for r in runs] == [
        (8, True), (8, False), (14, True), (14, False)]
    assert len(at.get("plotly_chart")) == 1
    for job in exp.job_ids:  # stop both jobs from the page
        if store.jobs.get(job).active:
            at.button(key=f"dg_stop_{job}").click().run()
            assert not at.exception
    assert all(store.jobs.get(j).status in ("stopped", "done") or store.jobs.get(j).stop_requested
               for j in exp.job_ids)
    store.close()


def test_a_recorded_experiment_shows_four_curves_and_the_verdict(open_app_page):
    store = Store()
    errors = {"plain-20": 0.05, "plain-56": 0.2, "resnet-20": 0.04, "resnet-56": 0.03}
    exp = fill(store, errors)
    at = open_app_page(PAGE)
    assert not at.error
    report = summarize(store, exp)
    (fig,) = charts(at)
    loss = [t for t in fig["data"] if t.get("xaxis", "x") == "x"]
    err = [t for t in fig["data"] if t.get("xaxis") == "x2"]
    assert [t["name"] for t in loss] == ["resnet-20", "resnet-56", "plain-20", "plain-56"]
    for t, r in zip(err, report.runs):
        assert t["x"] == [e for _, e in STEPS]
        assert t["y"] == pytest.approx([100 * p[2] for p in r.train_error])
    shown = [m.value for m in at.markdown]
    for line in report.verdict.markdown():
        assert line in shown
    assert "trains worse: **yes**" in report.verdict.markdown()[0]
    table = at.dataframe[0].value
    assert list(table["model"]) == ["resnet-20", "resnet-56", "plain-20", "plain-56"]
    assert list(table["final train error (%)"]) == pytest.approx([100 * errors[m] for m in table["model"]])
    store.close()


def test_an_unfinished_experiment_waits_for_its_verdict(open_app_page):
    store = Store()
    fill(store, {"plain-20": 0.05, "plain-56": 0.2, "resnet-20": 0.04, "resnet-56": 0.03}, running="plain-56")
    at = open_app_page(PAGE)
    assert any("verdict appears when all four runs are done" in c.value for c in at.caption)
    assert not any("trains worse" in m.value for m in at.markdown)
    store.close()


def test_runs_at_chance_show_inconclusive_not_yes(open_app_page):
    """Seen in the browser: four nets at 83% training error and "the deeper ResNet trains at least as well:
    yes". Now the page says the models did not learn, with the numbers and a setting to try."""
    store = Store()
    exp = fill(store, {label: 0.835 for label in ("plain-20", "plain-56", "resnet-20", "resnet-56")}, flat_loss=1.79)
    at = open_app_page(PAGE)
    assert not at.exception and not at.error
    report = summarize(store, exp)
    assert report.verdict is None
    warnings = classic_warnings(at)
    assert warnings == ["I" + report.inconclusive[1:]]
    assert warnings[0].startswith("Inconclusive: these models did not learn (")
    assert "try batch 32 (this run: 3,000 images, 8 epochs at batch 128" in warnings[0]
    shown = " ".join(m.value for m in at.markdown)
    assert "**yes**" not in shown and "**no**" not in shown and "trains worse" not in shown
    assert list(at.dataframe[0].value["learned"]) == [False] * 4
    store.close()


def test_a_deeper_plain_net_at_chance_beside_a_shallow_one_that_learned_is_judged(open_app_page):
    store = Store()
    fill(store, {"plain-20": 0.05, "plain-56": 0.835, "resnet-20": 0.04, "resnet-56": 0.03})
    at = open_app_page(PAGE)
    shown = [m.value for m in at.markdown]
    assert any(m.startswith("The deeper plain net trains worse: **yes**") for m in shown)
    assert not classic_warnings(at)
    assert any(c.value.startswith("plain-56 did not learn: training accuracy 16.5%") for c in at.caption)
    store.close()


# --- Reproduce the paper (Table 6) --------------------------------------------------------------------------------


def test_table6_on_a_cpu_without_cifar_says_the_cost_what_is_missing_and_offers_the_short_recipe(open_app_page):
    at = open_app_page(PAGE)
    assert not at.exception and not at.error
    assert any(h.value == "Reproduce the paper (Table 6)" for h in at.header)
    (missing,) = [w.value for w in at.warning if w.icon == ":material/download:"]  # the loader's DatasetMissing
    assert "CIFAR" in missing and "is not in" in missing  # message, in the lab's download panel with its button:
    assert at.button(key="t6_get_cifar10")
    assert at.button(key="t6_start").disabled
    (cpu,) = [i.value for i in at.info if "no GPU" in i.value]
    assert "65.5 million training images" in cpu and "short recipe" in cpu
    assert at.multiselect(key="t6_depths").value == [20, 32, 44, 56] and at.selectbox(key="t6_recipe").value == "paper"
    at.button(key="t6_try_short").click().run()
    assert at.selectbox(key="t6_recipe").value == "short" and at.number_input(key="t6_subset").value == 2000
    assert any("onecycle" in c.value and "2,000 training images" in c.value for c in at.caption)
    assert not at.get("plotly_chart")  # no Table 6 experiment yet: no table, no curves


@pytest.mark.usefixtures("no_workers_left")
def test_table6_button_queues_a_twin_job_per_depth_once(open_app_page, lab_home, monkeypatch):
    from resnet_lab.experiments.paper_cifar import KIND as PAPER_KIND, PaperConfig
    from tests.experiments.cifar_wiring import write_tiny_cifar

    monkeypatch.setattr(jobs, "pump", lambda store=None, capacity=None: [])  # queue only: no worker
    monkeypatch.setattr(jobs.scheduler, "pump", lambda store=None, capacity=None: [])
    write_tiny_cifar(lab_home / "data")
    at = open_app_page(PAGE)
    assert not at.button(key="t6_start").disabled
    at.multiselect(key="t6_depths").set_value([20, 56]).run()
    at.button(key="t6_try_short").click().run()
    at.button(key="t6_start").click().run()
    at.button(key="t6_start").click().run()  # a double click is one experiment
    assert not at.exception and not at.error
    store = Store()
    (exp,) = store.experiments.list(PAPER_KIND)
    assert PaperConfig.from_params(exp.params) == PaperConfig(depths=(20, 56), recipe="short", subset=2000)
    assert len(exp.job_ids) == 2 and len(store.runs.list()) == 4
    assert at.selectbox(key="t6_pick").value == exp.id
    assert "0 of 4 runs done" in " ".join(c.value for c in at.caption)
    store.close()


def test_a_recorded_table6_experiment_shows_its_table_beside_the_paper_and_fig6(open_app_page):
    from resnet_lab.experiments.paper_cifar import PaperConfig
    from tests.experiments.test_experiments_paper_cifar import fill as fill_table6

    store = Store()
    cfg = PaperConfig(depths=(20, 56), seeds=2, width=4, max_steps=20)
    fill_table6(store, cfg, {(f"{k}-{d}", s): e + s / 100 for k, base in (("plain", 0.1), ("resnet", 0.08))
                             for d, e in ((20, base), (56, base + (0.03 if k == "plain" else -0.01)))
                             for s in (0, 1)})
    at = open_app_page(PAGE)
    assert not at.exception and not at.error
    (table,) = [d.value for d in at.dataframe]  # no degradation experiment here: the one table is Table 6's
    assert list(table["depth"]) == [20, 56]
    assert list(table["paper's ResNet (Table 6)"]) == ["8.75%", "6.97%"]
    assert list(table["plain test error"]) == ["10.50 ± 0.71% (2 seeds)", "13.50 ± 0.71% (2 seeds)"]
    assert list(table["ResNet test error"]) == ["8.50 ± 0.71% (2 seeds)", "7.50 ± 0.71% (2 seeds)"]
    assert any(m.value.startswith("The plain nets' test error rises") for m in at.markdown)
    (fig,) = charts(at)
    assert [(t["name"], t["line"]["dash"]) for t in fig["data"] if t["showlegend"]] == [
        ("plain-20", "dash"), ("plain-56", "dash"), ("resnet-20", "solid"), ("resnet-56", "solid")]
    assert len(fig["data"]) == 8  # two seeds a model
    store.close()
