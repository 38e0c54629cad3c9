import json
import math

import plotly.graph_objects as go

from resnet_lab.viz.training import (PALETTE, PLAIN_COLOR, WAITING_TEXT, RunCurves, curves_figure, curves_spec,
                                     log_ticks, run_color)


def _runs(fig):
    """The run traces: (name, dash), without the two line-style legend entries."""
    return [(t.name, t.line.dash) for t in fig.data if t.legendgroup != "line style"]


def test_curves_figure_overlays_runs_with_train_solid_and_val_dashed():
    a = RunCurves("resnet", {"train/loss": [(10, 0.5, 2.0), (20, 1.0, 1.0)], "val/loss": [(20, 1.0, 1.2)],
                             "val/acc": [(20, 1.0, 0.6)], "lr": [(10, 0.5, 0.1)]}, key=12)
    b = RunCurves("plain", {"train/loss": [(10, 0.5, 2.1), (20, 1.0, 1.5)]}, plain=True, key=12)
    fig = curves_figure([a, b])
    # the plain twin is told by more than its colour: its name says plain, its training line is dotted
    assert _runs(fig) == [("resnet", "solid"), ("resnet", "dash"), ("resnet", "dash"), ("resnet", "solid"),
                          ("plain", "dot")]
    assert list(fig.data[0].x) == [0.5, 1.0] and list(fig.data[0].y) == [2.0, 1.0]
    # the plain twin: a darker shade of its ResNet's colour, not the same colour
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
    twin = "#8 (plain)"  # a plain twin's legend name says so
    assert pair[twin] == others[twin] == run_color(7, plain=True)
    assert colors([curves(8, plain=True, partner=7)])[twin] == pair[twin]
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


def _eval_steps(steps_per_epoch: int, epochs: int, eval_points: int) -> list[int]:
    """The steps the trainer validates at (resnet_lab.train.engine): every total // eval_points steps except at an
    epoch's end, and at every epoch's end."""
    total = steps_per_epoch * epochs
    every = max(1, total // eval_points)
    return [s for s in range(1, total + 1) if s % steps_per_epoch == 0 or s % every == 0]


def test_validation_is_one_line_through_evenly_spread_evaluations_not_jumps_at_epoch_marks():
    """The shapes recipe (93 steps an epoch, 5 epochs, 10 eval points) validates at step 92 and again at 93, 184
    and 186, …: two values a step apart, drawn 1% of an epoch apart, make a vertical jump at each epoch mark."""
    spe = 93
    steps = _eval_steps(spe, 5, 10)
    assert 92 in steps and 93 in steps  # the schedule that made the jumps
    noisy = [(s, s / spe, 1.0 + 0.3 * (-1) ** i / (1 + s / 100)) for i, s in enumerate(steps)]
    run = RunCurves("r", {"val/loss": noisy, "val/acc": [(s, e, 0.5) for s, e, _ in noisy],
                          "train/loss": [(s, s / spe, 1.0) for s in range(10, 466, 10)]})
    for x in ("epoch", "step"):
        spec = curves_spec([run], x=x)
        assert go.Figure(spec).to_dict() == spec
        for trace in spec["data"]:
            if trace["line"]["dash"] != "dash" or trace.get("legendgroup") == "line style":
                continue
            xs = trace["x"]
            gaps = [b - a for a, b in zip(xs, xs[1:])]
            assert "markers" in trace["mode"] and "lines" in trace["mode"] and trace["line"].get("shape") in (None,
                                                                                                            "linear")
            assert min(gaps) >= 0.5 * sorted(gaps)[len(gaps) // 2], (x, xs)  # no two points nearly on one x
            ends = [k * (spe if x == "step" else 1) for k in range(1, 6)]
            assert all(any(abs(v - e) < 1e-9 for v in xs) for e in ends)  # every epoch's own evaluation is drawn


def _lab(hex_color: str) -> tuple[float, float, float]:
    """CIELAB (D65) of an sRGB colour "#rrggbb" (IEC 61966-2-1 transfer, CIE 1976 L*a*b*)."""
    rgb = [int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb)
    x = (0.4124564 * r + 0.3575761 * g + 0.1804375 * b) / 0.95047
    y = 0.2126729 * r + 0.7151522 * g + 0.0721750 * b
    z = (0.0193339 * r + 0.1191920 * g + 0.9503041 * b) / 1.08883

    def f(t):
        return t ** (1 / 3) if t > (6 / 29) ** 3 else t / (3 * (6 / 29) ** 2) + 4 / 29

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def delta_e2000(c1: str, c2: str) -> float:
    """CIEDE2000 colour difference of two sRGB colours "#rrggbb"."""
    return _de2000(_lab(c1), _lab(c2))


def _de2000(lab1: tuple[float, float, float], lab2: tuple[float, float, float]) -> float:
    """CIEDE2000 colour difference of two CIELAB colours (Sharma, Wu & Dalal 2005)."""
    (l1, a1, b1), (l2, a2, b2) = lab1, lab2
    cbar = (math.hypot(a1, b1) + math.hypot(a2, b2)) / 2
    g = 0.5 * (1 - math.sqrt(cbar ** 7 / (cbar ** 7 + 25 ** 7)))
    a1p, a2p = (1 + g) * a1, (1 + g) * a2
    c1p, c2p = math.hypot(a1p, b1), math.hypot(a2p, b2)
    h1p, h2p = math.degrees(math.atan2(b1, a1p)) % 360, math.degrees(math.atan2(b2, a2p)) % 360
    dh = 0.0 if c1p * c2p == 0 else (h2p - h1p + 180) % 360 - 180
    dhp = 2 * math.sqrt(c1p * c2p) * math.sin(math.radians(dh / 2))
    lbar, cbarp = (l1 + l2) / 2, (c1p + c2p) / 2
    if c1p * c2p == 0:
        hbar = h1p + h2p
    elif abs(h1p - h2p) <= 180:
        hbar = (h1p + h2p) / 2
    else:
        hbar = (h1p + h2p + 360) / 2 if h1p + h2p < 360 else (h1p + h2p - 360) / 2
    t = (1 - 0.17 * math.cos(math.radians(hbar - 30)) + 0.24 * math.cos(math.radians(2 * hbar))
         + 0.32 * math.cos(math.radians(3 * hbar + 6)) - 0.20 * math.cos(math.radians(4 * hbar - 63)))
    rc = 2 * math.sqrt(cbarp ** 7 / (cbarp ** 7 + 25 ** 7))
    rt = -math.sin(math.radians(60 * math.exp(-((hbar - 275) / 25) ** 2))) * rc
    sl = 1 + 0.015 * (lbar - 50) ** 2 / math.sqrt(20 + (lbar - 50) ** 2)
    sc, sh = 1 + 0.045 * cbarp, 1 + 0.015 * cbarp * t
    dl, dc, dhh = (l2 - l1) / sl, (c2p - c1p) / sc, dhp / sh
    return math.sqrt(dl ** 2 + dc ** 2 + dhh ** 2 + rt * dc * dhh)


def test_delta_e2000_matches_sharmas_published_pairs():
    # Sharma, Wu & Dalal (2005), table 1, pairs 1 and 7, and an sRGB pair that is the same colour
    assert round(_de2000((50.0, 2.6772, -79.7751), (50.0, 0.0, -82.7485)), 4) == 2.0425
    assert round(_de2000((50.0, 0.0, 0.0), (50.0, -1.0, 2.0)), 4) == 2.3669
    assert delta_e2000("#7f7f7f", "#7f7f7f") == 0


def test_the_colours_of_runs_and_their_plain_twins_are_clearly_distinct():
    """The first runs of a lab (ids 1..len(PALETTE)) take distinct palette colours, and every colour a run or its
    plain twin can get, with the grey of plain models elsewhere, differs from every other by ΔE2000 ≥ 15 (about
    three times a just noticeable difference for lines; orange/brown, pink/mauve and grey/brown were under 10)."""
    ids = range(1, len(PALETTE) + 1)
    assert len({run_color(i) for i in ids}) == len(PALETTE)
    colours = [run_color(i) for i in ids] + [run_color(i, plain=True) for i in ids] + [PLAIN_COLOR]
    worst = min((delta_e2000(a, b), a, b) for i, a in enumerate(colours) for b in colours[i + 1:])
    assert worst[0] >= 15, worst
