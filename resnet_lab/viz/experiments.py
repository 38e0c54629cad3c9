"""Figures of the experiments: the degradation curves (He et al. 2015, Fig. 1 / Fig. 4) and the lesion
study bars (Veit et al. 2016, Fig. 3 and 5a).

Reports in, ``go.Figure`` out; nothing here trains or runs a model. Every array is handed to plotly as
a plain list, so a figure's JSON holds the exact numbers of the report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..analysis.lesion import DeletionCurve, LesionStudy
from .text import plain, plain_template
from .training import PALETTE, PLAIN_COLOR, twin_style

if TYPE_CHECKING:  # a report in, a figure out: viz reads its fields, never the store
    from ..experiments.degradation import DegradationReport

RESNET_COLOR = PALETTE[0]  # the ResNet red of the training curves
THIN, BOLD = 1.5, 4.0  # line widths: shallower net thin, deeper net bold (as in the paper's figures)
DOWNSAMPLE_SHADE = "rgba(127, 127, 127, 0.12)"
NA_TEXT = "n/a"  # written at the baseline where a lesion is not possible (no bar: nothing to read as a value)
_MARGIN = dict(l=10, r=10, t=50, b=10)


def study_color(skip: bool, i: int = 0) -> str:
    """ResNets in the palette (red first), plain nets grey."""
    return PALETTE[i % len(PALETTE)] if skip else PLAIN_COLOR


def degradation_figure(report: DegradationReport, height: int = 420) -> go.Figure:
    """Two panels, training loss | training error (%), x = epoch: four curves. ResNets red and solid, plain
    nets grey and dashed; the shallower net of each pair is thin, the deeper one bold. Legend names are
    the runs' labels ("plain-56"). A run with no points yet still has its (empty) trace in the legend."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Training loss", "Training error (%)"),
                        horizontal_spacing=0.08)
    for r in report.runs:
        color = RESNET_COLOR if r.skip else PLAIN_COLOR
        line = dict(color=color, width=BOLD if r.depth == report.deep else THIN, dash="solid" if r.skip else "dash")
        name = plain(r.label + ("" if r.status == "done" else f" ({r.status})"))
        for col, points, scale, fmt in ((1, r.loss, 1.0, ".4g"), (2, r.train_error, 100.0, ".2f")):
            fig.add_trace(go.Scatter(
                x=[p[1] for p in points], y=[scale * p[2] for p in points], mode="lines", name=name,
                legendgroup=plain(r.label), showlegend=col == 1, line=line,
                hovertemplate=f"{plain_template(r.label)}<br>epoch %{{x:.2f}}<br>%{{y:{fmt}}}<extra></extra>",
            ), row=1, col=col)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="loss", row=1, col=1, rangemode="tozero")
    fig.update_yaxes(title_text="error (%)", row=1, col=2, rangemode="tozero")
    fig.update_layout(height=height, margin=_MARGIN, uirevision="keep", legend=dict(orientation="h", y=-0.18))
    return fig


def lesion_figure(studies: Sequence[LesionStudy], kind: str = "branch", height: int = 420) -> go.Figure:
    """Grouped bars per block (x = block name, depth order): the accuracy drop in percentage points when
    that one block is lesioned, one bar colour per model (ResNet red, plain grey). A lesion that is not
    possible has no bar (its drop trace holds ``None`` there); instead the word "n/a" sits at the baseline
    (y = 0) in its model's slot, in its own text-only trace named "<label>: n/a", whose hover gives the
    reason. A placeholder bar with a height would read as a measured drop. Downsampling blocks are shaded."""
    fig = go.Figure()
    blocks: list[str] = []
    for s in studies:
        for b in s.blocks:
            if b not in blocks:
                blocks.append(b)
    resnets = 0
    for i, s in enumerate(studies):
        color = study_color(s.skip, resnets)
        resnets += s.skip
        rows = {r.block: r for r in s.kind_rows(kind)}
        hover = plain_template(s.label)
        present = [b for b in blocks if b in rows]
        fig.add_trace(go.Bar(
            x=present, y=[None if rows[b].drop is None else 100 * rows[b].drop for b in present],
            name=plain(s.label), marker_color=color, offsetgroup=str(i),
            marker_pattern_shape=twin_style(not s.skip)["pattern"],
            customdata=[[None if rows[b].acc is None else 100 * rows[b].acc, rows[b].note] for b in present],
            hovertemplate=f"{hover}<br>%{{x}}: drop %{{y:.1f}} points<br>accuracy %{{customdata[0]:.1f}}% "
                          f"(intact {100 * s.base_acc:.1f}%)<br>%{{customdata[1]}}<extra></extra>",
        ))
        na = [b for b in present if rows[b].acc is None]
        if na:
            fig.add_trace(go.Scatter(
                x=na, y=[0] * len(na), mode="text", text=[NA_TEXT] * len(na), textposition="top center",
                textfont=dict(color=color, size=13, weight="bold"), name=plain(f"{s.label}: n/a"), offsetgroup=str(i),
                showlegend=False, customdata=[rows[b].note for b in na],
                hovertemplate=f"{hover}<br>%{{x}}: not possible (%{{customdata}})<extra></extra>",
            ))
    down = {r.block for s in studies for r in s.kind_rows(kind) if r.downsampling}
    for j, b in enumerate(blocks):
        if b in down:
            fig.add_vrect(x0=j - 0.5, x1=j + 0.5, fillcolor=DOWNSAMPLE_SHADE, line_width=0, layer="below")
    if down:
        fig.add_annotation(text="shaded: downsampling blocks", xref="paper", yref="paper", x=1, y=1.08,
                           showarrow=False, font=dict(size=11, color=PLAIN_COLOR))
    what = "residual branch deleted" if kind == "branch" else "skip connection removed"
    fig.update_layout(barmode="group", scattermode="group", height=height, margin=_MARGIN, uirevision="keep",
                      title=dict(text=f"Accuracy drop with one block's {what}", font=dict(size=14)),
                      xaxis=dict(title="block (depth order)", categoryorder="array", categoryarray=blocks),
                      yaxis=dict(title="accuracy drop (points)", zeroline=True),
                      legend=dict(orientation="h", y=-0.2))
    return fig


def deletion_figure(curves: Sequence[DeletionCurve], height: int = 380) -> go.Figure:
    """Accuracy (%) against the number of blocks deleted at once (Veit et al. 2016, Fig. 5a): the mean
    over random subsets as a line, the best and worst trial as a band."""
    fig = go.Figure()
    resnets = 0
    for s in curves:
        color = study_color(s.skip, resnets)
        resnets += s.skip
        ks = list(s.ks)
        hover = plain_template(s.label)
        fig.add_trace(go.Scatter(x=ks + ks[::-1], y=[100 * a for a in s.max_acc] + [100 * a for a in s.min_acc[::-1]],
                                 fill="toself", line=dict(width=0), fillcolor=color, opacity=0.15,
                                 hoverinfo="skip", showlegend=False, name=plain(f"{s.label}: range")))
        fig.add_trace(go.Scatter(x=ks, y=[100 * a for a in s.mean_acc], mode="lines+markers", name=plain(s.label),
                                 line=dict(color=color, width=2, dash=twin_style(not s.skip)["dash"]),
                                 marker=dict(symbol=twin_style(not s.skip)["symbol"]),
                                 hovertemplate=f"{hover}<br>%{{x}} blocks deleted: %{{y:.1f}}%<extra></extra>"))
    fig.update_layout(height=height, margin=_MARGIN, uirevision="keep",
                      xaxis=dict(title="blocks deleted at once", dtick=1),
                      yaxis=dict(title="accuracy (%)", range=[0, 102]), legend=dict(orientation="h", y=-0.2))
    return fig


__all__ = ["degradation_figure", "deletion_figure", "lesion_figure", "study_color"]
