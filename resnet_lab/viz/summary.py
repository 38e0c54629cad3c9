"""Figures for model summaries."""

from __future__ import annotations

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..models.summary import ModelSummary
from .text import plain

COLORS = {"skip": "#d62728", "plain": "#7f7f7f"}


def stage_cost_figure(a: ModelSummary, b: ModelSummary) -> go.Figure:
    """Parameters and multiply-adds per stage, two models side by side (grouped bars, log-free)."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Parameters per stage", "Multiply-adds per stage (per image)"))
    for s in (a, b):
        name = plain(s.spec.describe())
        color = COLORS["skip" if s.spec.skip else "plain"]
        stages = [plain(r.name) for r in s.stages]
        fig.add_trace(go.Bar(x=stages, y=[r.params for r in s.stages], name=name, marker_color=color,
                             legendgroup=name), row=1, col=1)
        fig.add_trace(go.Bar(x=stages, y=[r.macs for r in s.stages], name=name, marker_color=color,
                             legendgroup=name, showlegend=False), row=1, col=2)
    fig.update_layout(barmode="group", height=320, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", y=-0.15))
    return fig
