"""Loss-landscape figures: 1D curves and 2D contour / surface plots of a run and its twin, the training path
over a PCA slice, and linear interpolations.

Surfaces in (:class:`resnet_lab.analysis.landscape.Surface`), ``go.Figure`` out. Nothing here runs a
model. Contours are drawn on log10(loss) with evenly spaced levels — log-spaced in the loss, close to the
paper's figures, whose levels crowd near the minimum — and one colour scale is shared by both models so
equal colours mean equal loss. A PCA slice's contour carries its training path (Li et al. 2018, fig. 9:
a line with a marker per kept snapshot, start and end labelled, each axis titled with its share of the
path's variance).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from ..analysis.landscape import LOSS_FLOOR, Interpolation, Surface, TrajectoryPath
from ..fmt import finite_or_none
from .text import plain, plain_template
from .training import PALETTE, PLAIN_COLOR, twin_style

COLORSCALE = "Viridis"
CONTOUR_LEVELS = 24  # contour lines over the shared log-loss range


def model_color(surface: Surface, index: int) -> str:
    """ResNet red (the palette's first colour, as on the training curves), plain grey, others after."""
    if not surface.skip:
        return PLAIN_COLOR
    return PALETTE[index % len(PALETTE)] if index else PALETTE[0]


def _values(t: torch.Tensor) -> list:
    """A tensor -> nested lists with NaN as None (plotly leaves a gap)."""
    def conv(v):
        return [conv(x) for x in v] if isinstance(v, list) else finite_or_none(v)
    return conv(t.tolist())


def landscape_1d_figure(surfaces: Sequence[Surface], show_acc: bool = True, height: int | None = None) -> go.Figure:
    """Loss (and, with ``show_acc``, accuracy in a second row) against α for every surface on one axis:
    ResNets solid in colour, plain twins dashed grey. The trained weights sit at α = 0."""
    if not surfaces or any(s.dims != 1 for s in surfaces):
        raise ValueError("landscape_1d_figure needs one or more 1D surfaces")
    rows = 2 if show_acc else 1
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("Training loss", "Training accuracy")[:rows],
                        row_heights=[0.65, 0.35] if rows == 2 else None)
    for i, s in enumerate(surfaces):
        color = model_color(s, i)
        dash = "solid" if s.skip else "dash"
        name, hover = plain(s.label), plain_template(s.label)
        fig.add_trace(go.Scatter(x=list(s.alphas), y=_values(s.grid()), mode="lines+markers", name=name,
                                 legendgroup=name, line=dict(color=color, dash=dash, width=2),
                                 marker=dict(size=5, symbol=twin_style(not s.skip)["symbol"]),
                                 hovertemplate=f"{hover}<br>α=%{{x:.3g}}<br>loss %{{y:.4g}}<extra></extra>"),
                      row=1, col=1)
        if show_acc:
            fig.add_trace(go.Scatter(x=list(s.alphas), y=_values(s.acc_grid()), mode="lines", name=name,
                                     legendgroup=name, showlegend=False,
                                     line=dict(color=color, dash=dash, width=1.5),
                                     hovertemplate=f"{hover}<br>α=%{{x:.3g}}<br>acc %{{y:.1%}}<extra></extra>"),
                          row=2, col=1)
    fig.add_vline(x=0, line=dict(color="#bbbbbb", width=1, dash="dot"))
    fig.update_yaxes(title_text="loss", row=1, col=1)
    if show_acc:
        fig.update_yaxes(title_text="accuracy", range=[0, 1.02], tickformat=".0%", row=2, col=1)
    fig.update_xaxes(title_text="α (along the filter-normalized direction δ)", row=rows, col=1)
    fig.update_layout(height=height or (520 if show_acc else 380), margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", y=-0.18))
    return fig


def log_loss_range(surfaces: Sequence[Surface]) -> tuple[float, float]:
    """(min, max) of log10(loss) over every finite point of every surface: the shared colour range."""
    logs = [torch.log10(g.clamp_min(LOSS_FLOOR)) for g in (s.grid() for s in surfaces)]
    finite = torch.cat([v[torch.isfinite(v)] for v in logs])
    if not finite.numel():
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def _loss_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """Colour-bar ticks at 1, 2, 5 × 10^k of the loss, as positions in log10."""
    vals, text = [], []
    for k in range(math.floor(lo) - 1, math.ceil(hi) + 1):
        for m in (1, 2, 5):
            v = m * 10.0 ** k
            if lo - 1e-9 <= math.log10(v) <= hi + 1e-9:
                vals.append(math.log10(v))
                text.append(f"{v:g}")
    return vals, text


def landscape_2d_figure(surfaces: Sequence[Surface], kind: str = "contour", height: int = 520) -> go.Figure:
    """The 2D slices side by side (one subplot per surface, titled with its model).

    ``kind="contour"``: filled contours of log10(loss) over (α, β), hover showing the loss itself; the trained
    weights are marked at the centre. ``kind="surface"``: 3D surfaces, height = loss, colour = log10(loss).
    Both share one colour scale (``coloraxis``) over all surfaces.
    """
    if kind not in ("contour", "surface"):
        raise ValueError(f"kind must be 'contour' or 'surface', got {kind!r}")
    if not surfaces or any(s.dims != 2 for s in surfaces):
        raise ValueError("landscape_2d_figure needs one or more 2D surfaces")
    n = len(surfaces)
    spec_type = "scene" if kind == "surface" else "xy"
    fig = make_subplots(rows=1, cols=n, subplot_titles=[plain(s.label) for s in surfaces], horizontal_spacing=0.06,
                        specs=[[{"type": spec_type} for _ in surfaces]])
    lo, hi = log_loss_range(surfaces)
    ticks, labels = _loss_ticks(lo, hi)
    for i, s in enumerate(surfaces):
        grid = s.grid()
        log_grid = torch.log10(grid.clamp_min(LOSS_FLOOR))
        x, y = list(s.alphas), list(s.betas or ())
        name, hover = plain(s.label), plain_template(s.label)
        if kind == "contour":
            fig.add_trace(go.Contour(
                x=x, y=y, z=_values(log_grid), customdata=_values(grid), coloraxis="coloraxis", name=name,
                contours=dict(start=lo, end=hi, size=(hi - lo) / CONTOUR_LEVELS, coloring="heatmap",
                              showlines=True),
                line=dict(width=0.5, color="rgba(255,255,255,0.5)"),
                hovertemplate=f"{hover}<br>α=%{{x:.3g}}, β=%{{y:.3g}}<br>loss %{{customdata:.4g}}<extra></extra>"),
                row=1, col=i + 1)
            centre = "end of training (last kept weights)" if s.path is not None else "trained weights"
            fig.add_trace(go.Scatter(x=[0.0], y=[0.0], mode="markers", showlegend=False,
                                     marker=dict(symbol="x", size=10, color="white", line=dict(width=1)),
                                     hovertemplate=f"{centre}<br>loss {s.center_loss:.4g}<extra></extra>"),
                          row=1, col=i + 1)
            if s.path is not None:
                fig.add_trace(path_trace(s.path, hover), row=1, col=i + 1)
                ex = s.path.explained
                fig.update_xaxes(title_text=f"1st PCA direction: {100 * ex[0]:.1f}% of variance", row=1, col=i + 1)
                fig.update_yaxes(title_text=f"2nd PCA direction: {100 * ex[1]:.1f}%", row=1, col=i + 1)
            else:
                fig.update_xaxes(title_text="α (δ)", row=1, col=i + 1)
                fig.update_yaxes(title_text="β (η)" if i == 0 else None, scaleanchor=f"x{i + 1 if i else ''}",
                                 row=1, col=i + 1)
        else:
            fig.add_trace(go.Surface(
                x=x, y=y, z=_values(grid), surfacecolor=_values(log_grid), coloraxis="coloraxis", name=name,
                hovertemplate=f"{hover}<br>α=%{{x:.3g}}, β=%{{y:.3g}}<br>loss %{{z:.4g}}<extra></extra>"),
                row=1, col=i + 1)
            scene = "scene" if i == 0 else f"scene{i + 1}"
            fig.update_layout({scene: dict(xaxis_title="α", yaxis_title="β", zaxis_title="loss",
                                           aspectmode="cube")})
    fig.update_layout(coloraxis=dict(colorscale=COLORSCALE, cmin=lo, cmax=hi,
                                     colorbar=dict(title="loss", tickvals=ticks, ticktext=labels)),
                      height=height, margin=dict(l=10, r=10, t=50, b=10))
    return fig


PATH_COLOR = "#ff4b4b"


def path_trace(path: TrajectoryPath, hover_label: str = "") -> go.Scatter:
    """The training path as a line with a marker per kept snapshot, the first labelled "start (step 0)" and the
    last "end (step N)"; hovering a marker shows its step and coordinates. ``hover_label``: a plotly-safe
    template prefix (already escaped with :func:`plain_template`)."""
    n = len(path.steps)
    text = [""] * n
    text[0], text[-1] = f"start (step {path.steps[0]})", f"end (step {path.steps[-1]})"
    sizes = [7] * n
    sizes[0] = sizes[-1] = 11
    prefix = f"{hover_label}<br>" if hover_label else ""
    return go.Scatter(x=list(path.alphas), y=list(path.betas), mode="lines+markers+text", text=text,
                      textposition="top center", textfont=dict(color="white"), customdata=list(path.steps),
                      line=dict(color=PATH_COLOR, width=2), showlegend=False, name="training path",
                      marker=dict(size=sizes, color=PATH_COLOR, line=dict(color="white", width=1)),
                      hovertemplate=prefix + "step %{customdata}<br>(%{x:.3g}, %{y:.3g})<extra>training path</extra>")


def interpolation_figure(curves: Sequence[Interpolation], height: int = 480) -> go.Figure:
    """Linear interpolations side by side, one column per model (Goodfellow et al. 2015, fig. 1 style): the
    training loss (top, one shared scale) and accuracy (bottom) against α, the two ends marked and labelled
    (α = 0: where it starts, α = 1: the trained weights). ResNets in colour, plain twins grey."""
    if not curves:
        raise ValueError("interpolation_figure needs one or more curves")
    n = len(curves)
    fig = make_subplots(rows=2, cols=n, shared_xaxes=True, shared_yaxes=True, vertical_spacing=0.08,
                        horizontal_spacing=0.05, row_heights=[0.65, 0.35],
                        subplot_titles=[plain(c.label) for c in curves])
    for i, c in enumerate(curves):
        color = PLAIN_COLOR if not c.skip else PALETTE[i % len(PALETTE)] if i else PALETTE[0]
        hover = plain_template(c.label)
        loss, acc = [finite_or_none(v) for v in c.loss], [finite_or_none(v) for v in c.acc]
        fig.add_trace(go.Scatter(x=list(c.alphas), y=loss, mode="lines+markers", name=plain(c.label),
                                 line=dict(color=color, width=2, dash="solid" if c.skip else "dash"),
                                 marker=dict(size=4), showlegend=False,
                                 hovertemplate=f"{hover}<br>α=%{{x:.3g}}<br>loss %{{y:.4g}}<extra></extra>"),
                      row=1, col=i + 1)
        fig.add_trace(go.Scatter(x=list(c.alphas), y=acc, mode="lines", showlegend=False,
                                 line=dict(color=color, width=1.5, dash="solid" if c.skip else "dash"),
                                 hovertemplate=f"{hover}<br>α=%{{x:.3g}}<br>acc %{{y:.1%}}<extra></extra>"),
                      row=2, col=i + 1)
        ends = [(a, v) for a, v in zip(c.alphas, loss) if a in (0.0, 1.0)]
        fig.add_trace(go.Scatter(x=[a for a, _ in ends], y=[v for _, v in ends], mode="markers+text",
                                 text=["start" if a == 0.0 else "trained" for a, _ in ends],
                                 textposition="top center", showlegend=False,
                                 marker=dict(size=10, color=color, line=dict(color="white", width=1)),
                                 hovertemplate=plain_template(c.start)
                                 + "<br>α=%{x:g}<br>loss %{y:.4g}<extra></extra>"),
                      row=1, col=i + 1)
        for a in (0.0, 1.0):
            fig.add_vline(x=a, line=dict(color="#bbbbbb", width=1, dash="dot"), row="all", col=i + 1)
        fig.update_xaxes(title_text="α  (0: start, 1: trained)", row=2, col=i + 1)
    fig.update_yaxes(title_text="loss", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", range=[0, 1.02], tickformat=".0%", row=2, col=1)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=50, b=10))
    return fig
