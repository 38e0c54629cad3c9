"""Gradient-flow figures: per-layer gradient norms and activation stds by depth, the layer × step heat map of
the norms logged during training, and spread vs depth. Arrays in, plotly figures out; nothing runs a model.

Colours follow the training curves: a ResNet in a palette colour with a solid line, its plain twin grey and
dashed. Every figure carries ``layout.meta = {"figure": <kind>}`` and every trace is named after its model, so
tests (and people reading the JSON) can find the series.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import plotly.graph_objects as go

from ..fmt import finite_or_none
from .text import plain as plain_text  # spread_figure has a parameter named `plain`
from .text import plain_template
from .training import PALETTE, PLAIN_COLOR, log_ticks, twin_style

_MARGIN = dict(l=10, r=10, t=50, b=10)
LOG_NORM_LABEL = "log₁₀ ‖dL/dW‖"


@dataclass(frozen=True)
class FlowSeries:
    """One model's values along depth."""

    label: str  # legend name, e.g. "ResNet-56" or "#12 tiny (plain)"
    names: tuple[str, ...]  # layer (or block) names in depth order, shown on hover
    values: tuple[float, ...]  # one value per name (gradient norm or activation std); <= 0 / non-finite: a gap
    plain: bool = False  # a plain twin: grey and dashed
    color: str | None = None  # overrides the default colour

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(self.names))
        object.__setattr__(self, "values", tuple(float(v) for v in self.values))
        if len(self.names) != len(self.values):
            raise ValueError(f"{self.label}: {len(self.names)} names but {len(self.values)} values")


def _positive(values: Sequence[float | None]) -> list[float | None]:
    """Values for a log axis: missing, non-finite or non-positive ones become None (a gap in the line)."""
    return [f if (f := finite_or_none(v)) is not None and f > 0 else None for v in values]


def _log_yaxis(fig: go.Figure, values: Sequence[float | None], title: str) -> None:
    """A log y axis for ``values`` whose ticks say their whole value ("0.02", "2×10⁻⁵"), fitted to the data as the
    loss axis of the training curves is (:func:`log_ticks`); plotly's own would label the digits between
    powers of ten as bare "2".."9"."""
    fig.update_yaxes(type="log", title_text=title)
    shown = [v for v in _positive(values) if v is not None]
    if shown:
        rng, ticks, labels = log_ticks(min(shown), max(shown))
        fig.update_yaxes(range=rng, tickmode="array", tickvals=ticks, ticktext=labels)


def _style(i: int, s: FlowSeries) -> dict:
    color = s.color or (PLAIN_COLOR if s.plain else PALETTE[i % len(PALETTE)])
    return dict(color=color, width=2, dash=twin_style(s.plain)["dash"])


def _depth_lines(series: Sequence[FlowSeries], kind: str, title: str, ytitle: str, xtitle: str,
                 value_label: str, height: int) -> go.Figure:
    fig = go.Figure()
    for i, s in enumerate(series):
        fig.add_trace(go.Scatter(
            x=list(range(len(s.values))), y=_positive(s.values), customdata=[plain_text(n) for n in s.names],
            name=plain_text(s.label),
            mode="lines+markers", marker=dict(size=5, symbol=twin_style(s.plain)["symbol"]), line=_style(i, s),
            connectgaps=False,
            hovertemplate=f"{plain_template(s.label)}<br>%{{customdata}}<br>{value_label}: %{{y:.3g}}<extra></extra>",
        ))
    fig.update_layout(title=plain_text(title), height=height, margin=_MARGIN, meta={"figure": kind},
                      legend=dict(orientation="h", y=-0.18), hovermode="closest")
    _log_yaxis(fig, [v for s in series for v in s.values], ytitle)
    fig.update_xaxes(title_text=xtitle, rangemode="tozero")
    return fig


def grad_norm_figure(series: Sequence[FlowSeries], title: str = "Gradient norm per layer",
                     height: int = 420) -> go.Figure:
    """‖dL/dW‖ of every conv/linear weight against its depth index (0 = first conv, input side), log y.
    One line per model; hover names the layer."""
    return _depth_lines(series, "grad_norms", title, "‖dL/dW‖ (log)", "layer (input → output)", "‖dL/dW‖",
                        height)


def activation_figure(series: Sequence[FlowSeries], title: str = "Forward signal: activation std by depth",
                      height: int = 420) -> go.Figure:
    """Std of the stem's and every block's output against its depth index (0 = stem), log y."""
    return _depth_lines(series, "activation_std", title, "std of the output (log)", "block (0 = stem)", "std",
                        height)


def log_norm_grid(names: Sequence[str], steps: Sequence[int], norms: Sequence[Sequence[float]]
                  ) -> list[list[float | None]]:
    """``norms`` (one list of per-layer norms per step) -> layers × steps grid of log10 norms (None where a norm
    is missing, zero or not finite)."""
    grid: list[list[float | None]] = [[None] * len(steps) for _ in names]
    for j, row in enumerate(norms):
        for i, v in enumerate(_positive(row[:len(names)])):
            if v is not None:
                grid[i][j] = math.log10(v)
    return grid


def grad_heatmap_figure(names: Sequence[str], steps: Sequence[int], norms: Sequence[Sequence[float]],
                        title: str, zrange: tuple[float, float] | None = None, height: int = 460) -> go.Figure:
    """Layer (y; top = first layer, input side) × training step (x) heat map of log10 of the gradient norms
    logged during training. ``zrange``: a shared colour range (log10 units) so two runs compare at a glance."""
    if len(norms) != len(steps):
        raise ValueError(f"{len(steps)} steps but {len(norms)} rows of norms")
    z = log_norm_grid(names, steps, norms)
    fig = go.Figure(go.Heatmap(
        z=z, x=list(steps), y=[plain_text(n) for n in names], colorscale="Viridis", name=plain_text(title),
        zmin=zrange[0] if zrange else None, zmax=zrange[1] if zrange else None,
        colorbar=dict(title=dict(text=LOG_NORM_LABEL, side="right")),
        hovertemplate="%{y}<br>step %{x}<br>log₁₀ norm %{z:.2f}<extra></extra>",
    ))
    fig.update_layout(title=plain_text(title), height=height, margin=_MARGIN, meta={"figure": "grad_heatmap"})
    fig.update_yaxes(autorange="reversed", title_text="layer (input at the top)", type="category")
    fig.update_xaxes(title_text="training step")
    return fig


def spread_figure(depths: Sequence[int], resnet: Sequence[float], plain: Sequence[float],
                  title: str = "Gradient spread at initialization vs depth", resnet_label: str = "ResNet",
                  plain_label: str = "plain twin", height: int = 380) -> go.Figure:
    """Conv spread (max/min per-layer gradient norm, log y) against depth for the ResNets and their plain twins."""
    if not len(depths) == len(resnet) == len(plain):
        raise ValueError("depths, resnet and plain need one value per depth")
    fig = go.Figure()
    for i, (label, values, is_plain) in enumerate(((resnet_label, resnet, False), (plain_label, plain, True))):
        s = FlowSeries(label, tuple(str(d) for d in depths), tuple(values), plain=is_plain)
        fig.add_trace(go.Scatter(
            x=list(depths), y=_positive(s.values), name=plain_text(label), mode="lines+markers", line=_style(i, s),
            hovertemplate=f"{plain_template(label)}-%{{x}}<br>max/min gradient norm %{{y:.3g}}×<extra></extra>",
        ))
    fig.update_layout(title=plain_text(title), height=height, margin=_MARGIN, meta={"figure": "spread"},
                      legend=dict(orientation="h", y=-0.2))
    _log_yaxis(fig, [*resnet, *plain], "max / min conv gradient norm")
    fig.update_xaxes(title_text="depth (weighted layers)")
    return fig
