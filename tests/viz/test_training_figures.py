import json
import math

import plotly.graph_objects as go

from resnet_lab.viz.training import (PALETTE, WAITING_TEXT, RunCurves, curves_figure, curves_spec, log_ticks,
                                     run_color)


def _runs(fig):
    """The run traces: (name, dash), without the two line-style legend entries."""
    return [(t.name, t.line.dash) for t in fig.data if t.legendgroup != "line style"]


def test_curves_figure_overlays_runs_with_train_solid_and_val_dashed():
    a = RunCurves("resnet", {"train/loss": [(10, 0.5, 2.0), (20, 1.0, 1.0)], "val/loss": [(20, 1.0, 1.2)],
                             "val/acc": [(20, 1.0, 0.6)], "lr": [(10, 0.5, 0.1)]}, key=12)
    b = RunCurves("plain", {"train/loss": [(10, 0.5, 2.1), (20, 1.0, 1.5)]}, plain=True, key=12)
    fig = curves_figure([a, b])
    assert _runs(fig) == [("resnet", "solid"), ("resnet", "dash"), ("resnet", "dash"), ("resnet", "solid"),
                          ("plain", "solid")]
    assert list(fig.data[0].x) == [0.5, 1.0] and list(fig.data[0].y) == [2.0, 1.0]
    # the plain twin: a grey shade of its ResNet's colour, not the same colour
    assert fig.data[0].line.color == run_color(12) and fig.data[4].line.color == run_color(12, plain=True)
    assert run_color(12) != run_color(12, plain=True)
    assert [t.showlegend for t in fig.data[:5]] == [True, False, False, False, True]
    assert list(curves_figure([a], x="step").data[0].x) == [10, 20]
    assert fig.layout.yaxis.type == "log"


def test_legend_says_which_line_is_training_and_which_validation():
    a = RunCurves("resnet", {"train/loss": [(10, 0.5, 2.0)], "val/loss": [(10, 0.5, 2.2)]})
    fig = curves_figure([a])
    style = {t.name: t.line.dash for t in fig.data if t.legendgroup == "line style"}
    assert style == {"training (solid)": "solid", "validation (dashed)": "dash"}
    assert all(t.showlegend is not False for t in fig.data if t.legendgroup == "line style")
    hovers = [t.hovertemplate for t in fig.data if t.legendgroup == "resnet"]
    assert "training loss" in hovers[0] and "validation loss" in hovers[1]


def test_log_loss_axis_has_labelled_ticks_across_the_data_range():
    a = RunCurves("r", {"train/loss": [(1, 0.1, 2.5), (2, 0.2, 0.4), (3, 0.3, 0.03)]})
    axis = curves_figure([a]).layout.yaxis
    assert axis.type == "log" and axis.tickmode == "array"
    lo, hi = 10 ** axis.range[0], 10 ** axis.range[1]
    assert lo <= 0.03 and hi >= 2.5
    inside = [v for v in axis.tickvals if lo <= v <= hi]
    assert len(inside) >= 4 and list(axis.ticktext) == ["0.05", "0.1", "0.2", "0.5", "1", "2"]
    # a narrow range (late training) still gets at least three labelled ticks; a dtick=1 axis would show none
    for lo, hi in ((0.3, 0.9), (0.31, 0.33), (2.2, 2.3), (0.5, 0.5)):
        rng, ticks, labels = log_ticks(lo, hi)
        assert len([t for t in ticks if 10 ** rng[0] <= t <= 10 ** rng[1]]) >= 3, (lo, hi)
        assert all(labels) and len(set(labels)) == len(labels)


def test_a_run_keeps_its_colour_alone_among_others_and_in_any_order():
    def curves(rid, plain=False, partner=None):
        return RunCurves(f"#{rid}", {"train/loss": [(1, 0.1, 1.0)]}, plain=plain,
                         key=partner if plain and partner else rid)

    def colors(runs):
        fig = curves_figure(runs)
        return {t.name: t.line.color for t in fig.data if t.legendgroup != "line style"}

    alone = colors([curves(7)])
    pair = colors([curves(7), curves(8, plain=True, partner=7)])
    others = colors([curves(3), curves(5), curves(8, plain=True, partner=7), curves(7)])
    assert alone["#7"] == pair["#7"] == others["#7"]
    assert pair["#8"] == others["#8"] == run_color(7, plain=True)
    assert colors([curves(8, plain=True, partner=7)])["#8"] == pair["#8"]
    assert len({run_color(i) for i in range(1, len(PALETTE) + 1)}) == len(PALETTE)  # neighbours differ
    assert run_color("#12 resnet20") == run_color("#12 resnet20")  # strings hash stably (crc32, not hash())


def test_an_empty_figure_waits_instead_of_drawing_a_made_up_loss_axis():
    for runs in ([], [RunCurves("r", {})], [RunCurves("r", {"train/loss": []})]):
        fig = curves_figure(runs)
        assert [a.text for a in fig.layout.annotations if a.text == WAITING_TEXT] == [WAITING_TEXT]
        assert fig.layout.yaxis.type != "log" and fig.layout.yaxis.range is None
        assert not fig.data
    fig = curves_figure([RunCurves("r", {"train/loss": [(1, 0.1, 2.3)]})])
    assert WAITING_TEXT not in [a.text for a in fig.layout.annotations]
    lo, hi = (10 ** v for v in fig.layout.yaxis.range)
    assert 1 < lo < 2.3 < hi < 4 and not math.isclose(hi, 1e4)


def test_the_curves_spec_is_what_plotly_itself_makes_of_it():
    """The live panel sends curves_spec as it is (no plotly validation on the way): every key and value must
    already be in plotly's own form, for runs with and without points, both x axes and any height."""
    def points(n, f):
        return [(10 * i, i / 20, f(i)) for i in range(n)]

    full = RunCurves("#1 <b>a</b>", {"train/loss": points(40, lambda i: 2 / (1 + i)), "val/loss": points(3, lambda i: 3.0),
                                     "train/acc": points(40, lambda i: i / 40), "val/acc": points(3, lambda i: 0.5),
                                     "lr": points(40, lambda i: 0.05), "images_per_s": points(5, lambda i: 90.0 + i)},
                     key=1)
    twin = RunCurves("#2 plain", {"train/loss": points(3, lambda i: math.nan if i == 1 else 0.5)}, plain=True, key=1)
    zero = RunCurves("z", {"train/loss": points(3, lambda i: 0.0), "train/acc": points(3, lambda i: 1.0)}, color="#123456")
    for runs in ([], [RunCurves("r", {})], [full], [full, twin], [zero]):
        for x in ("epoch", "step"):
            for height in (520, 300):
                spec = curves_spec(runs, x, height)
                canonical = go.Figure(spec).to_dict()  # validated by plotly, then written out by plotly
                assert json.dumps(spec, sort_keys=True) == json.dumps(canonical, sort_keys=True), (runs, x, height)
    spec = curves_spec([full, twin], "step", 300)
    assert spec["layout"]["height"] == 300 and spec["layout"]["xaxis3"]["title"]["text"] == "step"
    assert [t["x"][:2] for t in spec["data"][:1]] == [[0, 10]] and spec["layout"]["yaxis"]["type"] == "log"
    assert curves_spec([full])["data"] is not curves_spec([full])["data"]  # a new dict each time: nothing shared
    curves_spec([full])["layout"]["height"] = 1
    assert curves_spec([full])["layout"]["height"] == 520  # the cached frame is never handed out to be changed
