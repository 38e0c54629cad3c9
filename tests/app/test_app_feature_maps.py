"""AppTest of the Feature maps page against a real finished run (a tiny ResNet and its plain twin on shapes)."""

import json

import pytest

from resnet_lab.analysis import activation_stats, from_run
from resnet_lab.analysis.features import compare_responses
from resnet_lab.data.registry import load_dataset
from resnet_lab.store import Store

PAGE = "app_pages/feature_maps.py"


def charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def grids(at) -> list[dict]:
    """The feature-map grids (image facets), not the layer-response chart."""
    return [f for f in charts(at) if f["data"] and f["data"][0]["type"] in ("heatmap", "image")]


def response_chart(at) -> dict:
    lines = [f for f in charts(at) if f["data"] and all(t["type"] == "scatter" for t in f["data"])]
    assert len(lines) == 1
    return lines[0]


def infos(at) -> str:
    return " ".join(i.value for i in at.info)


def ok(at) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


@pytest.fixture
def page(finished_run, open_app_page):
    at = open_app_page(PAGE)
    ok(at)
    return at


def test_default_point_shows_two_grids_side_by_side(page):
    at = page
    assert at.title[0].value == "Feature maps"
    assert at.selectbox(key="fm_layer").value == "layer1.0:branch"
    assert len(grids(at)) == 2  # the ResNet and its plain twin
    caps = " ".join(c.value for c in at.caption)
    assert "8 × 32 × 32" in caps  # layer1 of the tiny CIFAR-stem net: 8 channels at 32 px
    md = " ".join(m.value for m in at.markdown)
    assert "out = ReLU(F(x) + shortcut)" in md and "out = ReLU(F(x))" in md


def test_layer_tree_reads_as_a_tree(page):
    sb = page.selectbox(key="fm_layer")
    assert "stem" in sb.options[0]
    assert any(o.startswith("\u3000\u3000layer2.0") for o in sb.options)  # block parts are indented twice


def test_second_stage_branch_renders(page):
    at = page.selectbox(key="fm_layer").set_value("layer2.0:branch").run()
    ok(at)
    assert len(grids(at)) == 2
    assert "16 × 16 × 16" in " ".join(c.value for c in at.caption)


def test_shortcut_point_says_the_plain_twin_has_none(page, finished_run):
    at = page.selectbox(key="fm_run").set_value(finished_run[0]).run()  # the ResNet first, its twin beside it
    ok(at)
    assert at.selectbox(key="fm_vs").value == finished_run[1]
    assert any(o.endswith("layer2.0 · shortcut") for o in at.selectbox(key="fm_layer").options)
    at = at.selectbox(key="fm_layer").set_value("layer2.0:shortcut").run()
    ok(at)
    assert "the plain twin has no shortcut here" in infos(at)
    assert len(grids(at)) == 1  # only the ResNet has something to show


def test_channel_count_sets_the_number_of_facets(page):
    at = page.selectbox(key="fm_layer").set_value("layer3.0:branch").run()  # 32 channels
    ok(at)
    assert all(len(g["data"]) == 16 for g in grids(at))
    at = at.slider(key="fm_channels").set_value(8).run()
    ok(at)
    assert [len(g["data"]) for g in grids(at)] == [8, 8]


def test_colour_controls_render(page):
    at = page.selectbox(key="fm_colors").set_value("Greys").run()
    at = at.toggle(key="fm_shared").set_value(False).run()
    ok(at)
    assert len(grids(at)) == 2


def test_layer_responses_equal_activation_stats(page, finished_run):
    store = Store()
    try:
        runs = [store.runs.get(i) for i in finished_run]
    finally:
        store.close()
    subjects = [from_run(run) for run in runs]
    ds = load_dataset(subjects[0].data)
    direct = {run.id: activation_stats(s.model, s.normalize(ds.x_val[:64])) for run, s in zip(runs, subjects)}
    at = page
    assert at.selectbox(key="fm_stat").value == "branch_std"  # the paper's Fig. 7 by default
    for stat in ("branch_std", "std", "mean", "zero_frac"):
        at = at.selectbox(key="fm_stat").set_value(stat).run()
        ok(at)
        fig = response_chart(at)
        assert len(fig["data"]) == 2  # one line per model
        for run in runs:
            [trace] = [t for t in fig["data"] if t["name"].startswith(f"#{run.id} ")]
            expected = [r[stat] for r in direct[run.id] if stat in r]
            assert len(expected) == (3 if stat == "branch_std" else 4)  # 3 blocks (+ the stem)
            assert trace["y"] == pytest.approx(expected, rel=1e-5, abs=1e-7), stat


def test_sorting_by_magnitude_orders_each_line(page):
    at = page.toggle(key="fm_sort").set_value(True).run()
    ok(at)
    for trace in response_chart(at)["data"]:
        assert trace["y"] == sorted(trace["y"], reverse=True)
        assert trace["x"] == list(range(1, len(trace["y"]) + 1))


def test_without_an_image_it_asks_for_one(page):
    at = page.radio(key="fm_how").set_value("Upload").run()
    ok(at)
    assert "upload" in infos(at).lower()
    assert grids(at) == []
    assert len(response_chart(at)["data"]) == 2  # the validation images still measure the layer responses


def test_untrained_model_from_build_renders(page):
    at = page.radio(key="fm_source").set_value("An untrained model (from Build)").run()
    ok(at)
    assert len(grids(at)) == 2
    assert len(response_chart(at)["data"]) == 2


def _direct_comparison(ids):
    store = Store()
    try:
        runs = [store.runs.get(i) for i in ids]
    finally:
        store.close()
    subjects = [from_run(run) for run in runs]
    ds = load_dataset(subjects[0].data)
    rows = [activation_stats(s.model, s.normalize(ds.x_val[:64])) for s in subjects]
    return compare_responses(rows[0], rows[1])  # [resnet, plain]


def test_fig7_finding_is_inconclusive_for_runs_at_chance(open_app_page, private_trained_home, run_numbers):
    store, ids = private_trained_home
    for rid in ids:
        run_numbers(store, rid, 0.17)
    at = open_app_page(PAGE)
    ok(at)
    (warning,) = [w.value for w in at.warning]
    assert warning.startswith("Inconclusive: these models did not learn (ResNet #")
    text = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "Fig. 7) found" not in text and "smaller, as He et al." not in text


def test_fig7_comparison_is_computed_from_the_measured_stds_for_runs_that_learned(open_app_page, private_trained_home,
                                                                                   run_numbers):
    store, ids = private_trained_home
    for rid in ids:
        run_numbers(store, rid, 0.95, last_loss=0.05)
    at = open_app_page(PAGE)
    ok(at)
    assert not at.warning
    comparison = _direct_comparison(ids)
    assert comparison.sentence in [m.value for m in at.markdown]
    caps = " ".join(c.value for c in at.caption)
    assert "find ResNets' residual responses generally smaller" not in caps  # no fixed claim any more


def test_untrained_models_are_not_compared_with_the_paper(page):
    at = page.radio(key="fm_source").set_value("An untrained model (from Build)").run()
    ok(at)
    assert "fresh, untrained weights" in infos(at)
    assert not any("He et al. (2015, Fig. 7) found" in m.value for m in at.markdown)


@pytest.mark.parametrize("point", ["layer1.0:branch", "layer1.0", "layer2.0:out"])
def test_the_plain_twins_caption_mentions_no_addition(page, point):
    """A plain block computes out = ReLU(F(x)): its caption says what is shown without an addition it has not."""
    at = page.selectbox(key="fm_layer").set_value(point).run()
    assert at.selectbox(key="fm_layer").value == point
    ok(at)
    shown = [m.value for m in at.markdown if "· shown:" in m.value]
    plain = [v for v in shown if "`out = ReLU(F(x))`" in v]
    resnet = [v for v in shown if "+ shortcut" in v]
    assert len(plain) == 1 and len(resnet) == 1
    assert "addition" not in plain[0] and "shortcut" not in plain[0].split("·", 1)[1]
    if point.endswith(":branch"):
        assert "before the addition" in resnet[0]
