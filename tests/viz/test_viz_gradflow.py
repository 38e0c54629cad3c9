"""Gradient-flow figures: their log axes label every tick with its whole value (a 2 between 0.01 and 0.1 reads
"0.02", never a bare "2"), for the norms of a real depth-20 ResNet and its plain twin."""

import math

import plotly.graph_objects as go
import pytest
import torch

from resnet_lab.analysis.gradflow import cifar_spec, init_flow
from resnet_lab.viz.gradflow import FlowSeries, activation_figure, grad_norm_figure, spread_figure

_SUPERSCRIPT = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")


def label_value(text: str) -> float:
    """The number a tick label says: "0.02", "5", "2×10⁻⁵" or "10⁻⁵"."""
    if "10" in text and "×" in text or text.startswith("10") and text[2:].translate(_SUPERSCRIPT) != text[2:]:
        mantissa, _, power = text.rpartition("10")
        exponent = int(power.translate(_SUPERSCRIPT))
        return float(mantissa.rstrip("×") or 1) * 10.0 ** exponent
    return float(text)


def check_log_axis(axis: dict, values: list[float]) -> None:
    """A log axis whose range holds ``values`` and shows at least three ticks, each labelled with its value."""
    assert axis["type"] == "log" and axis["tickmode"] == "array"
    lo, hi = 10 ** axis["range"][0], 10 ** axis["range"][1]
    assert lo <= min(values) and hi >= max(values)
    shown = [(v, t) for v, t in zip(axis["tickvals"], axis["ticktext"]) if lo <= v <= hi]
    assert len(shown) >= 3
    for value, text in shown:
        assert label_value(text) == pytest.approx(value, rel=1e-6), (value, text)


@pytest.fixture(scope="module")
def depth20():
    """Gradient norms and activation stds of ResNet-20 and its plain twin at initialization, one batch."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 10, (8,), generator=g)
    spec = cifar_spec(20, num_classes=10)
    return [(s, init_flow(s, x, y)) for s in (spec, spec.twin())]


def test_gradient_norm_and_activation_axes_label_whole_values(depth20):
    grads = [FlowSeries(s.describe(), f.names, f.grad_norms, plain=not s.skip) for s, f in depth20]
    acts = [FlowSeries(s.describe(), f.act_names, f.act_stds, plain=not s.skip) for s, f in depth20]
    for fig, series in ((grad_norm_figure(grads), grads), (activation_figure(acts), acts)):
        spec = fig.to_dict()
        check_log_axis(spec["layout"]["yaxis"], [v for s in series for v in s.values if v > 0])
        assert go.Figure(spec).to_dict()["layout"]["yaxis"]["ticktext"] == spec["layout"]["yaxis"]["ticktext"]


@pytest.mark.parametrize("lo, hi", [(0.004, 0.09), (2e-6, 3e-5), (1.5, 4e4), (0.31, 0.33)])
def test_any_range_of_norms_gets_labels_with_their_magnitude(lo, hi):
    fig = grad_norm_figure([FlowSeries("r", ("a", "b", "c"), (lo, math.sqrt(lo * hi), hi))]).to_dict()
    check_log_axis(fig["layout"]["yaxis"], [lo, hi])


def test_spread_axis_labels_whole_values(depth20):
    spread = spread_figure([8, 20, 56], [3.0, 4.5, 7.0], [12.0, 140.0, 2500.0]).to_dict()
    check_log_axis(spread["layout"]["yaxis"], [3.0, 2500.0])


def test_a_figure_with_no_positive_value_still_draws():
    fig = grad_norm_figure([FlowSeries("r", ("a", "b"), (0.0, float("nan")))]).to_dict()
    assert fig["layout"]["yaxis"]["type"] == "log" and fig["data"][0]["y"] == [None, None]
