"""The Choose panel's charts: accuracy against cost, published (torchvision's ImageNet weights, the paper's Table 6)
and measured (this lab's runs with their Pareto front), each with its numbers as a table and a sentence.

V1 and V2 weights differ by marker (circle, diamond), by label (each point says "resnet50 V2") and by colour, so
no reader needs the colours. The source of published numbers is written on the chart itself. The model being
built has no ImageNet accuracy (it is not trained, and a CIFAR-size model never saw ImageNet): it is drawn as a
vertical line at its cost, its plain twin beside it, and the chart says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import plotly.graph_objects as go

from ..experiments.choose import AXES, Front
from ..fmt import format_count
from ..models.published import PaperRow, PublishedRow
from .tables import ChartTable
from .text import plain
from .training import PALETTE, PLAIN_COLOR

VERSION_STYLE = {"V1": dict(symbol="circle", color=PALETTE[0], name="V1 weights (original recipe)"),
                 "V2": dict(symbol="diamond", color=PALETTE[1], name="V2 weights (torchvision's 2021 recipe)")}
KIND_STYLE = {"ResNet": dict(symbol="circle", color=PALETTE[0]), "plain": dict(symbol="x", color=PLAIN_COLOR)}


@dataclass(frozen=True)
class Built:
    """The model on the Build page (or its twin) on a cost axis."""

    label: str  # "resnet20" or its description
    kind: str  # "ResNet" or "plain"
    gmacs: float  # billions of multiply-adds per image at its input size
    params: int
    input_size: int


def _source(fig: go.Figure, source: str) -> None:
    fig.add_annotation(text=f"Source: {plain(source)}", xref="paper", yref="paper", x=0, y=-0.2, showarrow=False,
                       xanchor="left", yanchor="top", font=dict(size=11), name="source")


def _log_range(xs: Sequence[float], left: float = 0.15, right: float = 0.3) -> list[float]:
    """A log axis' range (in log10 units, as plotly takes it) holding ``xs`` with room for their labels."""
    return [math.log10(min(xs)) - left, math.log10(max(xs)) + right]


def _built_lines(fig: go.Figure, built: Sequence[Built], value: str, unit: str) -> None:
    """A vertical line per built model at its cost, labelled (a log axis takes an annotation's x as log10)."""
    for i, b in enumerate(built):
        x = b.gmacs if value == "gmacs" else b.params / 1e6
        fig.add_vline(x=x, line_dash="dot" if b.kind == "ResNet" else "dash",
                      line_color=PALETTE[2] if b.kind == "ResNet" else PLAIN_COLOR)
        fig.add_annotation(x=math.log10(x), y=1 - 0.09 * i, xref="x", yref="paper", showarrow=False, xanchor="left",
                           text=f" {plain(b.label)}: {x:.3g} {unit}", font=dict(size=11), name="built")


def published_figure(rows: Sequence[PublishedRow], built: Sequence[Built], source: str) -> go.Figure:
    """ImageNet top-1 against GFLOPs (log x): a trace per weights version, each point labelled; the built model
    and its twin as vertical lines at their multiply-adds."""
    fig = go.Figure()
    for version, style in VERSION_STYLE.items():
        mine = [r for r in rows if r.version == version]
        if not mine:
            continue
        fig.add_trace(go.Scatter(
            x=[r.gflops for r in mine], y=[r.top1 for r in mine], mode="markers+text", name=style["name"],
            text=[f"{r.model} {r.version}" for r in mine],
            textposition="top left" if version == "V2" else "bottom right",
            marker=dict(symbol=style["symbol"], color=style["color"], size=11),
            customdata=[[r.top5, format_count(r.params), r.file_mb] for r in mine],
            hovertemplate="%{text}<br>top-1 %{y:.2f}%, top-5 %{customdata[0]:.2f}%<br>%{x:.3g} GFLOPs, "
                          "%{customdata[1]} parameters, %{customdata[2]:.1f} MB<extra></extra>"))
    _built_lines(fig, built, "gmacs", "GFLOPs")
    if built and any(b.input_size != 224 for b in built):
        fig.add_annotation(text="dotted: the model you are building (its twin dashed), at its input size; it has no "
                                "ImageNet accuracy", xref="paper", yref="paper", x=0, y=-0.3, showarrow=False,
                           xanchor="left", yanchor="top", font=dict(size=11))
    _source(fig, source)
    xs = [r.gflops for r in rows] + [b.gmacs for b in built]
    fig.update_xaxes(type="log", title="GFLOPs per image (torchvision's _ops: multiply-adds), log scale",
                     range=_log_range(xs) if xs else None)
    fig.update_yaxes(title="ImageNet top-1 accuracy (%)")
    fig.update_layout(title="Published: ImageNet accuracy against compute", height=460,
                      margin=dict(l=10, r=10, t=50, b=110), legend=dict(orientation="h", y=1.0, yanchor="bottom",
                                                                         x=1, xanchor="right"))
    return fig


def published_table(rows: Sequence[PublishedRow], built: Sequence[Built], source: str) -> ChartTable:
    out = [(r.model, r.weights, r.top1, r.top5, r.gflops, r.params, r.file_mb, source) for r in rows]
    out += [(b.label, f"this lab ({b.kind}, {b.input_size} px)", None, None, round(b.gmacs, 4), b.params,
             round(b.params * 4 / 2 ** 20, 2), "this lab's model summary") for b in built]
    return ChartTable(("model", "weights", "top-1 %", "top-5 %", "GFLOPs", "parameters", "file MB", "source"), out)


def published_summary(rows: Sequence[PublishedRow], built: Sequence[Built], source: str) -> str:
    """The published chart in words: the range it spans, what the V2 recipe adds, where the built model sits."""
    if not rows:
        return f"No published rows ({source})."
    lo, hi = min(rows, key=lambda r: r.gflops), max(rows, key=lambda r: r.top1)
    said = (f"Published ImageNet top-1 against GFLOPs ({source}): from {lo.model} {lo.version}, {lo.top1:.1f}% at "
            f"{lo.gflops:.2g} GFLOPs, to {hi.model} {hi.version}, {hi.top1:.1f}% at {hi.gflops:.3g}.")
    gains = [v2.top1 - v1.top1 for v1 in rows for v2 in rows
             if v1.model == v2.model and (v1.version, v2.version) == ("V1", "V2")]
    if gains:
        said += f" The V2 recipe adds {min(gains):.1f} to {max(gains):.1f} points at the same cost."
    for b in built:
        said += f" {b.label} ({b.kind}) costs {b.gmacs:.3g} GFLOPs at {b.input_size} px and has no ImageNet accuracy."
    return said


def table6_figure(rows: Sequence[PaperRow], built: Sequence[Built], source: str) -> go.Figure:
    """Table 6: CIFAR-10 test error against parameters (log x), each depth labelled; the built model's
    parameters as a vertical line."""
    fig = go.Figure(go.Scatter(
        x=[r.params_m for r in rows], y=[100 * r.error for r in rows], mode="lines+markers+text",
        text=[r.model for r in rows], textposition="top center", name="ResNet (option A), CIFAR-10",
        marker=dict(size=10, color=PALETTE[0]), line=dict(color=PALETTE[0], width=1),
        hovertemplate="%{text}<br>%{y:.2f}% test error<br>%{x} M parameters<extra></extra>"))
    _built_lines(fig, built, "params", "M parameters")
    _source(fig, source)
    xs = [r.params_m for r in rows] + [b.params / 1e6 for b in built]
    fig.update_xaxes(type="log", title="parameters (millions), log scale", range=_log_range(xs) if xs else None)
    fig.update_yaxes(title="CIFAR-10 test error (%)")
    fig.update_layout(title="Published: the paper's CIFAR-10 ResNets (deeper is better until 1202)", height=420,
                      margin=dict(l=10, r=10, t=50, b=90), showlegend=False)
    return fig


def table6_table(rows: Sequence[PaperRow], source: str) -> ChartTable:
    return ChartTable(("model", "depth", "test error %", "parameters (M)", "source"),
                      [(r.model, r.depth, round(100 * r.error, 2), r.params_m, source) for r in rows])


def table6_summary(rows: Sequence[PaperRow], source: str) -> str:
    if not rows:
        return f"No rows ({source})."
    best = min(rows, key=lambda r: r.error)
    last = rows[-1]
    return (f"{source}: test error falls from {100 * rows[0].error:.2f}% ({rows[0].model}, {rows[0].params_m} M "
            f"parameters) to {100 * best.error:.2f}% ({best.model}, {best.params_m} M); {last.model} "
            f"({last.params_m} M) is back at {100 * last.error:.2f}%, which the paper puts down to overfitting.")


def _axis_value(p: object, axis: str) -> float:
    return float(getattr(p, AXES[axis].key))


def runs_figure(f: Front, names: dict[int, str] | None = None) -> go.Figure:
    """This lab's runs: best validation accuracy against the axis' cost, ResNets and plain twins by marker, the
    front as a line through its points. ``names``: run id -> the owner as the page names them (plain text)."""
    ax = AXES[f.axis]
    fig = go.Figure()
    for kind, style in KIND_STYLE.items():
        mine = [p for p in f.points if p.kind == kind]
        if not mine:
            continue
        who = [plain((names or {}).get(p.run_id, p.owner_name or p.owner)) for p in mine]
        fig.add_trace(go.Scatter(
            x=[_axis_value(p, f.axis) for p in mine], y=[100 * p.accuracy for p in mine], mode="markers+text",
            name=f"{kind} runs", text=[plain(p.label) for p in mine], textposition="top center",
            marker=dict(symbol=style["symbol"], color=style["color"], size=11),
            customdata=[[plain(p.name), w] for p, w in zip(mine, who)],
            hovertemplate="%{text} · %{customdata[0]}<br>by %{customdata[1]}<br>%{y:.1f}% at %{x:.4g}"
                          "<extra></extra>"))
    if f.front:
        fig.add_trace(go.Scatter(x=[_axis_value(p, f.axis) for p in f.front], y=[100 * p.accuracy for p in f.front],
                                 mode="lines", name="Pareto front (best accuracy for the cost)",
                                 line=dict(color=PALETTE[2], dash="dot", shape="hv" if not ax.higher_better else "vh"),
                                 hoverinfo="skip"))
    fig.update_xaxes(type="log", title=f"{ax.label}, log scale" + (" (higher is better)" if ax.higher_better else ""))
    fig.update_yaxes(title="best validation accuracy (%)")
    fig.update_layout(title=f"Your runs: accuracy against {ax.label}", height=420, margin=dict(l=10, r=10, t=50, b=10),
                      legend=dict(orientation="h", y=-0.2))
    return fig


def runs_table(f: Front, names: dict[int, str] | None = None) -> ChartTable:
    on = {p.run_id for p in f.front}
    return ChartTable(("run", "name", "owner", "model", "kind", "best val acc %", "parameters", "multiply-adds",
                       "training s", "images/s", "on the front"),
                      [(p.run_id, p.name, (names or {}).get(p.run_id, p.owner_name or p.owner), p.model, p.kind,
                        round(100 * p.accuracy, 2), p.params, p.macs, p.train_s, p.images_per_s, p.run_id in on)
                       for p in f.points])


def runs_summary(f: Front) -> str:
    if not f.points:
        return f"No finished run has a value for {AXES[f.axis].label} yet."
    n_plain = sum(p.kind == "plain" for p in f.points)
    return (f"{len(f.points)} runs ({n_plain} plain), {len(f.front)} on the front. {f.sentence}")


__all__ = ["Built", "published_figure", "published_summary", "published_table", "runs_figure", "runs_summary",
           "runs_table", "table6_figure", "table6_summary", "table6_table"]
