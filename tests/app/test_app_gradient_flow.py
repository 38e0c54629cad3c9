"""The Gradient flow page: the depth slider really rebuilds both charts from init_flow's numbers, the sweep and
the Build-page toggle work, and a finished run shows heat maps of exactly the norms its trainer logged."""

import json
import math

import pytest

from resnet_lab.analysis.gradflow import cifar_spec, flow_batch, flow_data, init_flow
from resnet_lab.data.registry import load_dataset
from resnet_lab.spec import ModelSpec
from resnet_lab.store import Store
from resnet_lab.ui.state import SPEC_KEY

PAGE = "app_pages/gradient_flow.py"


def charts(at) -> dict[str, dict]:
    """Plotly figures on the page by their layout.meta 'figure' kind (several of a kind: a list)."""
    out: dict[str, list] = {}
    for el in at.get("plotly_chart"):
        fig = json.loads(el.proto.spec)
        out.setdefault(fig["layout"]["meta"]["figure"], []).append(fig)
    return out


def traces(fig) -> dict[str, dict]:
    return {t["name"]: t for t in fig["data"]}


@pytest.fixture(scope="module")
def batch():
    return flow_batch(load_dataset(flow_data("shapes")), 64, seed=0)


def _expect_depth(at, depth, batch):
    x, y = batch
    got = charts(at)
    grads, acts = traces(got["grad_norms"][0]), traces(got["activation_std"][0])
    assert set(grads) == set(acts) == {f"ResNet-{depth}", f"Plain-{depth}"}
    for skip, label in ((True, f"ResNet-{depth}"), (False, f"Plain-{depth}")):
        ref = init_flow(cifar_spec(depth, skip=skip, num_classes=6), x, y, seed=0)
        assert len(grads[label]["y"]) == depth == len(ref.names)  # 6n+2 weight layers
        assert grads[label]["customdata"] == list(ref.names)
        assert grads[label]["y"] == pytest.approx(ref.grad_norms, rel=1e-5)
        assert acts[label]["y"] == pytest.approx(ref.act_stds, rel=1e-5)
        assert ref.verdict().sentence in [c.value for c in at.caption]


def test_depth_slider_rebuilds_both_charts_from_init_flow(open_app_page, batch):
    at = open_app_page(PAGE)
    assert at.title[0].value == "Gradient flow" and not at.error
    assert at.select_slider(key="gf_depth").value == 20
    _expect_depth(at, 20, batch)
    at.select_slider(key="gf_depth").set_value(8).run()
    assert not at.exception and not at.error
    _expect_depth(at, 8, batch)
    labels = [m.label for m in at.metric]
    assert labels.count("First / last") == 2 and labels.count("Conv spread") == 2


def test_sweep_shows_spread_against_depth(open_app_page, batch):
    at = open_app_page(PAGE)
    assert "spread" not in charts(at)
    at.select_slider(key="gf_sweep_max").set_value(14).run()
    at.button(key="gf_sweep_go").click().run()
    assert not at.exception and not at.error
    fig = charts(at)["spread"][0]
    x, y = batch
    for name, skip in (("ResNet", True), ("plain", False)):
        t = traces(fig)[name]
        assert t["x"] == [8, 14]
        want = [init_flow(cifar_spec(d, skip=skip, num_classes=6), x, y, seed=0).conv_spread for d in (8, 14)]
        assert t["y"] == pytest.approx(want, rel=1e-5)
    at.number_input(key="gf_seed").set_value(1).run()  # other settings: the old sweep is not passed off as new
    assert "spread" not in charts(at)
    assert any("press **Sweep all depths** again" in c.value for c in at.caption)


def test_build_toggle_uses_the_build_pages_model(open_app_page):
    at = open_app_page(PAGE)
    at.session_state[SPEC_KEY] = ModelSpec(stem="cifar", depths=(2, 1, 1), widths=(8, 16, 32), shortcut="B",
                                           num_classes=10)
    at.toggle(key="gf_use_build").set_value(True).run()
    assert not at.exception and not at.error
    assert at.select_slider(key="gf_depth").disabled
    grads = traces(charts(at)["grad_norms"][0])
    # option B: the ResNet has two projection convs its plain twin lacks
    assert {k: len(v["y"]) for k, v in grads.items()} == {"ResNet-10": 12, "Plain-10": 10}
    assert "layer2.0.downsample.0" in grads["ResNet-10"]["customdata"]


def test_run_section_shows_the_logged_norms_as_heatmaps(open_app_page, finished_run):
    resnet_id, plain_id = finished_run
    at = open_app_page(PAGE)
    assert not at.error
    assert at.selectbox(key="gf_run").value == resnet_id
    heats = charts(at)["grad_heatmap"]
    assert len(heats) == 2
    store = Store()
    for fig, rid in zip(heats, (resnet_id, plain_id)):
        names, steps, norms = store.runs.grad_norms(rid)
        assert steps and names
        (hm,) = fig["data"]
        assert hm["y"] == names and hm["x"] == steps
        want = [[math.log10(norms[j][i]) for j in range(len(steps))] for i in range(len(names))]
        for row, ref in zip(hm["z"], want):
            assert row == pytest.approx(ref, rel=1e-9)
        assert f"#{rid}" in fig["layout"]["title"]["text"]
    # the checkpoint's own gradient flow, for both runs
    assert set(traces(charts(at)["grad_norms"][1])) == {f"#{resnet_id} ResNet-8", f"#{plain_id} Plain-8"}


def test_a_checkpoint_of_runs_at_chance_is_flagged_before_its_gradients(open_app_page, private_trained_home,
                                                                       run_numbers):
    store, ids = private_trained_home
    for rid in ids:
        run_numbers(store, rid, 0.17)
    at = open_app_page(PAGE)
    assert not at.exception and not at.error
    (warning,) = [w.value for w in at.warning]
    assert warning.startswith("Inconclusive: these models did not learn (ResNet #")
    assert "they say nothing yet about how trained ResNets and plain nets differ" in warning
    for rid in ids:
        run_numbers(store, rid, 0.95, last_loss=0.05)
    at = open_app_page(PAGE)
    assert not at.exception and not at.warning
