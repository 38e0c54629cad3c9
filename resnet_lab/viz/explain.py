"""Explanations across depth and how far they can be trusted: the Grad-CAM depth strip, localization against
depth, and deletion / insertion curves.

Plain data in (tensors, dicts of numbers as the analysis results' ``as_dict`` give them), ``go.Figure`` out.
Nothing here runs a model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .inspect import MODEL_COLORS, overlay
from .text import plain, plain_template

# one colour per attribution method (the references in black and grey, dashed)
MODEL_SYMBOLS = ("circle", "square", "diamond", "triangle-up")  # a model's markers: its colour is not the only sign
METHOD_COLORS = {"gradcam": "#d62728", "guided_gradcam": "#ff7f0e", "integrated_gradients": "#2ca02c",
                 "saliency": "#1f77b4", "occlusion": "#9467bd", "mask": "#111111", "random": "#999999"}
REFERENCE_DASH = {"mask": "dash", "random": "dot"}
CURVE_TITLES = {"deletion": "deletion (lower area is better)", "insertion": "insertion (higher area is better)"}
DEPTH_METRICS = {"energy": "energy inside the mask", "pointing": "pointing-game hit rate"}


STRIP_WIDTH = 860  # px: the Grad-CAM page's width in a 1280 px window (wide layout, sidebar open)
TITLE_CHAR_PX = 7.0  # an 11 px subplot title's average character, with room to spare (about 6 px in Chromium)
TITLE_LINE_PX = 14  # one line of an 11 px subplot title
_GAP_PX = 4  # between two cells of a row


def _wrap(text: str, chars: int) -> list[str]:
    """``text`` in lines of at most ``chars`` characters, broken at spaces (a longer word keeps its own line)."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and len(lines[-1]) + 1 + len(word) <= chars:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return lines


def depth_strip_figure(rows: Sequence[tuple[str, object, Sequence[tuple[str, object]]]], alpha: float = 0.5,
                       title: str = "", cell_px: int = 240, width: int = STRIP_WIDTH) -> go.Figure:
    """One row per model, one column per layer from shallow to deep: each map laid over the image.

    ``rows``: ``[(model label, image C x H x W in [0, 1], [(column title, heat H x W in [0, 1]), ...]), ...]``;
    the column titles (e.g. ``"layer2.1 · 16×16"``) are the code's, the model label is user text.
    A row with fewer layers than another leaves its last cells empty.

    Laid out for a figure ``width`` px wide: cells are square (at most ``cell_px``), and a column title that is
    wider than its cell is wrapped at its spaces; where even one word would not fit (a deep net's many narrow
    columns) the titles are turned upright instead. Each row keeps the height its titles need above it, so no
    title runs into its neighbour or into the row above.
    """
    rows = [r for r in rows if r[2]]
    if not rows:
        raise ValueError("no maps to draw")
    n_rows, n_cols = len(rows), max(len(r[2]) for r in rows)
    names = [plain(r[2][c][0]) if c < len(r[2]) else "" for r in rows for c in range(n_cols)]
    margin = dict(l=40, r=10, t=40 if title else 6, b=10)
    plot_w = max(width - margin["l"] - margin["r"], n_cols * 2 * _GAP_PX)
    cell_w = (plot_w - (n_cols - 1) * _GAP_PX) / n_cols
    chars = max(1, int(cell_w // TITLE_CHAR_PX))
    upright = any(len(word) > chars for name in names for word in name.split(" "))
    if upright:  # one line each, turned: as tall as the longest title
        titles = names
        title_px = max(len(n) for n in names) * TITLE_CHAR_PX + 6
    else:
        wrapped = [_wrap(n, chars) for n in names]
        titles = ["<br>".join(lines) for lines in wrapped]
        title_px = max(len(lines) for lines in wrapped) * TITLE_LINE_PX + 6
    cell_h = min(cell_w, cell_px)
    plot_h = n_rows * cell_h + (n_rows - 1) * title_px
    margin["t"] += round(title_px)
    fig = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=titles, horizontal_spacing=_GAP_PX / plot_w,
                        vertical_spacing=title_px / plot_h if n_rows > 1 else 0.0)
    for r, (label, image, cells) in enumerate(rows, start=1):
        for c, (name, heat) in enumerate(cells, start=1):
            fig.add_trace(go.Image(z=np.asarray(overlay(image, heat, alpha)), name=plain(name),
                                   hovertemplate=f"{plain_template(label)}<br>{plain_template(name)}"
                                                 "<br>x %{x}, y %{y}<extra></extra>"), row=r, col=c)
        fig.update_yaxes(title_text=plain(label), row=r, col=1)
    fig.update_xaxes(showticklabels=False, ticks="", showgrid=False)
    fig.update_yaxes(showticklabels=False, ticks="", showgrid=False)
    fig.update_annotations(font_size=11, textangle=-90 if upright else 0)
    height = round(margin["t"] + plot_h + margin["b"])
    fig.update_layout(height=height, margin=margin,  # the title at the very top, above the column titles
                      title=dict(text=plain(title), y=1 - 8 / height, yanchor="top") if title else None)
    return fig


def depth_localization_figure(by_model: Mapping[str, Mapping], title: str = "") -> go.Figure:
    """Localization against depth, one line per model (energy inside the mask, solid; pointing game, dotted),
    layers on a category axis from shallow to deep, a uniform map's energy dashed.

    ``by_model``: ``{label: DepthLocalization.as_dict()}`` (``{"layers": [{"layer", "energy", "pointing",
    "baseline"}, ...], ...}``).
    """
    fig = go.Figure()
    order: list[str] = []
    baseline = None
    for i, (label, d) in enumerate(by_model.items()):
        rows = list(d["layers"])
        order += [r["layer"] for r in rows if r["layer"] not in order]
        baseline = rows[0]["baseline"] if rows else baseline
        for metric, dash in (("energy", "solid"), ("pointing", "dot")):
            fig.add_trace(go.Scatter(
                x=[r["layer"] for r in rows], y=[float(r[metric]) for r in rows],
                name=plain(label) if metric == "energy" else f"{plain(label)} · pointing game",
                mode="lines+markers", line=dict(color=MODEL_COLORS[i % len(MODEL_COLORS)], dash=dash, width=2),
                marker=dict(size=6 if metric == "energy" else 4, symbol=MODEL_SYMBOLS[i % len(MODEL_SYMBOLS)]),
                legendgroup=str(i),
                hovertemplate=f"{plain_template(label)}<br>%{{x}}<br>{DEPTH_METRICS[metric]}: "
                              "%{y:.1%}<extra></extra>"))
    if baseline is not None:
        fig.add_hline(y=float(baseline), line_dash="dash", line_color="#444", line_width=1,
                      annotation_text="uniform map", annotation_position="top left")
    fig.update_xaxes(type="category", categoryorder="array", categoryarray=order, title_text="layer (shallow → deep)")
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%", title_text="localization")
    fig.update_layout(title=plain(title) or None, height=360, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", y=-0.3))
    return fig


def trust_curves_figure(by_model: Mapping[str, Sequence[Mapping]], title: str = "") -> go.Figure:
    """Deletion and insertion curves: a row per model, deletion left and insertion right, a line per method
    (the object-mask and random references dashed), area in the legend-free hover.

    ``by_model``: ``{label: [Trust.as_dict(curves=True), ...]}``, each with ``method``, ``label`` and
    ``deletion`` / ``insertion`` as ``{"fractions", "probs", "auc"}``.
    """
    labels = list(by_model)
    if not labels:
        raise ValueError("no curves to draw")
    fig = make_subplots(rows=len(labels), cols=2, shared_xaxes=True, shared_yaxes=True,
                        horizontal_spacing=0.05, vertical_spacing=0.12,
                        subplot_titles=[f"{plain(lab)} · {CURVE_TITLES[k]}" for lab in labels
                                        for k in ("deletion", "insertion")])
    shown: set[str] = set()
    for r, label in enumerate(labels, start=1):
        for row in by_model[label]:
            method = row["method"]
            for c, kind in enumerate(("deletion", "insertion"), start=1):
                curve = row[kind]
                fig.add_trace(go.Scatter(
                    x=list(curve["fractions"]), y=list(curve["probs"]), mode="lines", name=plain(row["label"]),
                    legendgroup=method, showlegend=method not in shown,
                    line=dict(color=METHOD_COLORS.get(method, "#444"), dash=REFERENCE_DASH.get(method, "solid"),
                              width=2 if method not in REFERENCE_DASH else 1.5),
                    hovertemplate=f"{plain_template(label)} · {plain_template(row['label'])}<br>{kind} area "
                                  f"{curve['auc']:.3f}<br>%{{x:.0%}} of the pixels: p = %{{y:.1%}}<extra></extra>"),
                    row=r, col=c)
                shown.add(method)
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    fig.update_xaxes(title_text="pixels removed / inserted (most important first)", row=len(labels))
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%")
    fig.update_yaxes(title_text="probability of the class", col=1)
    fig.update_annotations(font_size=12)
    fig.update_layout(title=plain(title) or None, height=80 + 260 * len(labels),
                      margin=dict(l=10, r=10, t=60 if title else 30, b=10), legend=dict(orientation="h", y=-0.12))
    return fig
