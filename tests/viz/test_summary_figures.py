from resnet_lab import PRESETS
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
