"""Figures for model summaries."""

from __future__ import annotations

import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..fmt import format_count
from ..models.summary import ModelSummary
from .text import plain, plain_template
from .training import PALETTE, PLAIN_COLOR, plain_name, twin_style

COLORS = {"skip": PALETTE[0], "plain": PLAIN_COLOR}  # a ResNet and its plain twin, as in every chart


def count_ticks(top: float) -> tuple[list[float], list[str]]:
    """Ticks for a count axis from 0 to ``top``: a 1-2-5 step giving 3 to 6 of them, labelled as the lab labels
    counts everywhere (``format_count``: "1.5G", never plotly's own "1.5B")."""
    if top <= 0:
        return [0.0, 1.0, 2.0], ["0", "1", "2"]
    e = math.floor(math.log10(top))
    step = max(1.0, next(m * 10.0 ** k for k in (e - 1, e) for m in (1, 2, 5) if top / (m * 10.0 ** k) <= 5))
    ticks = [float(round(k * step)) for k in range(math.ceil(top / step) + 1)]  # counts: whole numbers
    return ticks, [format_count(t, trim=True) for t in ticks]


def stage_cost_figure(a: ModelSummary, b: ModelSummary) -> go.Figure:
    """Parameters and multiply-adds per stage, two models side by side (grouped bars, log-free). Ticks and hover
    text use :func:`~resnet_lab.fmt.format_count`, as the Build page's metrics do."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Parameters per stage", "Multiply-adds per stage (per image)"))
    tops = [0, 0]
    for s in (a, b):
        name = plain(plain_name(s.spec.describe(), not s.spec.skip))
        color = COLORS["skip" if s.spec.skip else "plain"]
        stages = [plain(r.name) for r in s.stages]
        for col, what, values in ((1, "parameters", [r.params for r in s.stages]),
                                  (2, "multiply-adds per image", [r.macs for r in s.stages])):
            fig.add_trace(go.Bar(x=stages, y=values, name=name, marker_color=color, legendgroup=name,
                                 marker_pattern_shape=twin_style(not s.spec.skip)["pattern"],
                                 showlegend=col == 1, customdata=[format_count(v) for v in values],
                                 hovertemplate=f"{plain_template(s.spec.describe())}<br>%{{x}}: %{{customdata}} "
                                               f"{what}<extra></extra>"), row=1, col=col)
            tops[col - 1] = max(tops[col - 1], *values)
    for col, top in enumerate(tops, start=1):
        ticks, labels = count_ticks(top)
        fig.update_yaxes(tickmode="array", tickvals=ticks, ticktext=labels, range=[0, ticks[-1]], row=1, col=col)
    fig.update_layout(barmode="group", height=320, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", y=-0.15))
    return fig
