from resnet_lab import PRESETS
from resnet_lab.fmt import format_count
from resnet_lab.models.summary import summarize
from resnet_lab.viz.summary import COLORS, stage_cost_figure


def test_stage_cost_figure_plots_both_models_per_stage():
    a, b = summarize(PRESETS["resnet50"]), summarize(PRESETS["plain50"])
    fig = stage_cost_figure(a, b)
    assert len(fig.data) == 4
    params_a, macs_a, params_b, macs_b = fig.data
    assert sum(params_a.y) == a.params and sum(params_b.y) == b.params
    assert sum(macs_a.y) == a.macs and sum(macs_b.y) == b.macs
    assert list(params_a.x) == [r.name for r in a.stages]
    assert params_a.marker.color == COLORS["skip"] and params_b.marker.color == COLORS["plain"]



def test_stage_costs_speak_the_build_pages_units():
    """The Build page's metrics say ResNet-50 costs format_count(macs) = "4.09G" multiply-adds: the chart's ticks and
    hover say its stages' costs with the same formatter (G for 10⁹, never plotly's own "B")."""
    a, b = summarize(PRESETS["resnet50"]), summarize(PRESETS["plain50"])
    fig = stage_cost_figure(a, b).to_dict()
    layout = fig["layout"]
    params_a, macs_a, params_b, macs_b = fig["data"]
    for trace, values in ((params_a, [r.params for r in a.stages]), (macs_a, [r.macs for r in a.stages]),
                          (params_b, [r.params for r in b.stages]), (macs_b, [r.macs for r in b.stages])):
        assert list(trace["customdata"]) == [format_count(v) for v in values]
        assert "%{customdata}" in trace["hovertemplate"] and "%{y" not in trace["hovertemplate"]
    for axis, traces in (("yaxis", (params_a, params_b)), ("yaxis2", (macs_a, macs_b))):
        ax = layout[axis]
        assert ax["tickmode"] == "array"
        assert list(ax["ticktext"]) == [format_count(v, trim=True) for v in ax["tickvals"]]
        assert 3 <= len(ax["tickvals"]) <= 7 and ax["range"][1] >= max(v for t in traces for v in t["y"])
    biggest = max(r.macs for r in a.stages)
    assert format_count(a.macs)[-1] == format_count(biggest)[-1] == "G"  # the metric and layer3's bar: both G
    assert any(t.endswith("G") for t in layout["yaxis2"]["ticktext"])
