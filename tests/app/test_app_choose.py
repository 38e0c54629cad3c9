"""The Choose panel on Build: closed, it computes nothing; open, the published charts with their sources, the
built model on the cost axis, your runs' front with names as text, and the budget answering "not measured"."""

from pathlib import Path

from streamlit.testing.v1 import AppTest

from resnet_lab.identity import Identity
from resnet_lab.models.presets import PRESETS
from resnet_lab.models.published import TABLE6_SOURCE, TORCHVISION_SOURCE
from resnet_lab.store import Store
from resnet_lab.ui.choose import KEY, NOT_MEASURED_TEXT, PANEL_LABEL
from tests.helpers.homes import seed

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def open_build(choose: bool, tab: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page("app_pages/build.py").run()
    if choose:
        at.session_state[KEY] = True  # the expander opened
        if tab:
            at.session_state[f"{KEY}_tab"] = tab  # a tab chosen
        at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def charts(at):
    import json
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def answer_of(at):
    """The budget's answer table (the one dataframe with a verdict column)."""
    (frame,) = [d.value for d in at.dataframe if "verdict" in d.value.columns]
    return frame


def finished_runs():
    s = Store()
    rows = [{"name": n, "spec": PRESETS[p].to_dict(), "data": {"name": "cifar10", "image_size": 32}, "train": {}}
            for n, p in (("<b>small</b>", "resnet20"), ("big", "resnet56"), ("flat", "plain56"))]
    _, ids = s.jobs.create("train", "three", "cpu", then=seed(runs=rows),
                           owner=Identity("class:zoe", "Zoë <script>", source="class"))
    for rid, acc in zip(ids, (0.915, 0.921, 0.85)):
        s.runs.update(rid, best={"val/acc": acc})
        s.runs.finish(rid, "done", only_if=("queued", "running"))
    s.close()
    return ids


def test_the_panel_is_closed_and_costs_nothing_until_opened():
    at = open_build(choose=False)
    assert PANEL_LABEL in [e.label for e in at.expander]
    assert not any(TORCHVISION_SOURCE in c.value for c in at.caption)


def test_the_open_panel_shows_published_charts_with_sources_and_the_built_model():
    at = open_build(choose=True)
    figs = charts(at)
    texts = [a["text"] for f in figs for a in f["layout"].get("annotations", [])]
    assert f"Source: {TORCHVISION_SOURCE}" in texts and f"Source: {TABLE6_SOURCE}" in texts
    assert any(t.startswith(" resnet20: 0.0406 GFLOPs") for t in texts)  # the built model (resnet20 at 32 px)
    assert any(t.startswith(" plain20: 0.0406 GFLOPs") for t in texts)  # and its twin
    captions = [c.value for c in at.caption]
    assert any("has no ImageNet accuracy" in c for c in captions)  # the screen-reader sentence
    assert not [d for d in at.dataframe if "verdict" in d.value.columns]  # the other tabs did not run
    assert any("No finished run yet" in i.value for i in open_build(choose=True, tab="Your runs").info)
    at = open_build(choose=True, tab="Budget")
    assert any(NOT_MEASURED_TEXT in i.value for i in at.info)
    assert not at.button(key=f"{KEY}_measure").disabled  # it queues the speed job (below)


def test_the_budget_reads_this_devices_measured_speeds_and_its_button_queues_the_rest(lab_home, monkeypatch,
                                                                                       no_workers_left):
    from resnet_lab.experiments.speed import lab_device_name
    from resnet_lab.store import Speed

    monkeypatch.setenv("RESNET_LAB_GPU_COUNT", "0")
    s = Store()
    name = lab_device_name("cpu")
    s.model_speeds.record(Speed("resnet20", "cpu", name, 400.0, 4.0, 900.0, 64, 1.0, image_size=32))
    at = open_build(choose=True, tab="Budget")
    at.number_input(key=f"{KEY}_ms").set_value(5.0).run()
    answer = answer_of(at)
    row = answer[answer["preset"] == "resnet20"]
    assert set(row["verdict"]) == {"fits"} and list(row["ms per image"]) == [4.0]  # measured here: it fits 5 ms
    assert set(answer[answer["preset"] == "resnet32"]["verdict"]) == {"not measured"}
    at.button(key=f"{KEY}_measure").click().run()
    assert not at.exception, [e.message for e in at.exception]
    (job,) = s.jobs.list(kinds=["speed"])
    assert "resnet20" not in job.params["presets"] and "resnet32" in job.params["presets"]
    s.close()


def test_the_budget_answers_and_never_drops_an_unmeasured_preset():
    at = open_build(choose=True, tab="Budget")
    at.number_input(key=f"{KEY}_ms").set_value(5.0).run()
    answer = answer_of(at)
    assert set(answer["verdict"]) == {"not measured"} and len(answer) == len(PRESETS)
    at.number_input(key=f"{KEY}_mb").set_value(10.0).run()
    answer = answer_of(at)
    assert set(answer[answer["preset"] == "resnet50"]["verdict"]) == {"does not fit"}
    assert set(answer[answer["preset"] == "resnet20"]["verdict"]) == {"not measured"}
    assert set(answer[answer["preset"] == "resnet56"]["published"]) == {"CIFAR-10 93.03% (He et al. 2015, Table 6)"}


def test_your_runs_front_with_names_as_text():
    ids = finished_runs()
    at = open_build(choose=True, tab="Your runs")
    (runs_fig,) = [f for f in charts(at) if f["layout"].get("title", {}).get("text", "").startswith("Your runs")]
    names = {t["name"] for t in runs_fig["data"]}
    assert {"ResNet runs", "plain runs", "Pareto front (best accuracy for the cost)"} <= names
    hover = [row[1] for t in runs_fig["data"] if t["name"] == "ResNet runs" for row in t["customdata"]]
    assert "Zoë &lt;script&gt;" in hover  # class mode or not, another person is named, as text
    assert any(f"resnet20 #{ids[0]} is within 0.6 points" in m.value for m in at.markdown)
    budget = answer_of(open_build(choose=True, tab="Budget"))
    assert set(budget[budget["preset"] == "resnet20"]["your runs"]) == {"91.5% best of 1 run (cifar10)"}
