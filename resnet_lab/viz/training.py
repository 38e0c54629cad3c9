"""Training curves: loss, accuracy, learning rate and throughput for one or more runs on one figure."""

from __future__ import annotations

from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.subplots import make_subplots

PALETTE = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
PLAIN_COLOR = "#7f7f7f"

Series = list[tuple[int, float, float]]  # (step, epoch, value)


@dataclass(frozen=True)
class RunCurves:
    label: str  # legend name, e.g. "#12 resnet20 · shapes"
    metrics: dict[str, Series]  # key -> points, keys like "train/loss", "val/acc", "lr", "images_per_s"
    plain: bool = False  # a plain twin: drawn in grey when it sits next to its ResNet
    color: str | None = None


def curves_figure(runs: list[RunCurves], x: str = "epoch", height: int = 520) -> go.Figure:
    """2×2 panel: loss, accuracy, learning rate, images/s. Solid = train, dashed = validation."""
    fig = make_subplots(rows=2, cols=2, subplot_titles=("Loss", "Accuracy", "Learning rate", "Images / s"),
                        horizontal_spacing=0.08, vertical_spacing=0.14)
    panels = (("train/loss", 1, 1, "solid"), ("val/loss", 1, 1, "dash"), ("train/acc", 1, 2, "solid"),
              ("val/acc", 1, 2, "dash"), ("lr", 2, 1, "solid"), ("images_per_s", 2, 2, "solid"))
    for i, run in enumerate(runs):
        color = run.color or (PLAIN_COLOR if run.plain else PALETTE[i % len(PALETTE)])
        for key, row, col, dash in panels:
            points = run.metrics.get(key)
            if not points:
                continue
            xs = [p[1] if x == "epoch" else p[0] for p in points]
            fig.add_trace(go.Scatter(
                x=xs, y=[p[2] for p in points],
                mode="lines+markers" if key.startswith("val/") or len(points) < 20 else "lines",
                name=run.label,
                legendgroup=run.label, showlegend=key == "train/loss",
                line=dict(color=color, dash=dash, width=2 if key.startswith("val/") else 1.5),
                hovertemplate=f"{run.label}<br>{key}: %{{y:.4g}}<br>{x}: %{{x:.3g}}<extra></extra>",
            ), row=row, col=col)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), uirevision="keep",
                      legend=dict(orientation="h", y=-0.12))
    fig.update_yaxes(type="log", dtick=1, row=1, col=1)  # early validation losses can be 10x the final ones
    fig.update_yaxes(range=[0, 1.02], row=1, col=2)
    fig.update_xaxes(title_text=x, row=2)
    return fig
