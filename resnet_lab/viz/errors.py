"""Opening a confusion matrix: which cell a click picked, image cards (an image beside its Grad-CAM overlays),
compact top-k bars as text, and the right/wrong split of two models on the same images.

Arrays or tensors in, plain values, `PIL.Image` or `go.Figure` out. Nothing here runs a model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
import torch
from PIL import Image

from .inspect import CELL_TRACE, MODEL_COLORS, overlay, to_pil
from .text import plain, plain_template

CARD_GAP = 4  # px of white between the panels of a card
BAR_CELLS = 10  # a text bar is this many characters wide: filled blocks on a light track
BAR_FILL, BAR_TRACK = "█", "░"
BOTH_RIGHT_COLOR = "#a1d99b"
BOTH_WRONG_COLOR = "#d9d9d9"


def cell_of_point(point: Mapping, num_classes: int) -> tuple[int, int] | None:
    """The confusion-matrix cell (true, pred) of one point of a Streamlit plotly selection
    (``event.selection.points[i]``) on a ``confusion_figure(..., clickable=True)``, or None when the point is
    not one of its cell markers (another trace, or an index out of range)."""
    if int(point.get("curve_number", -1)) != CELL_TRACE:
        return None
    k = point.get("point_index", point.get("point_number"))
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < num_classes * num_classes:
        return None
    return divmod(k, num_classes)


def picked_cell(points: Sequence[Mapping], num_classes: int) -> tuple[int, int] | None:
    """The cell of the last cell marker among a selection's points (a click selects one), or None."""
    cells = [c for p in points if (c := cell_of_point(p, num_classes)) is not None]
    return cells[-1] if cells else None


def card_image(image, heats: Sequence = (), size: int = 112, alpha: float = 0.5) -> Image.Image:
    """One RGB image: the image (CxHxW in [0, 1]), then each heat map (hxw in [0, 1], e.g. a Grad-CAM)
    blended over it (:func:`resnet_lab.viz.inspect.overlay`), side by side, each panel ``size`` px square
    (small images upscaled crisply), ``CARD_GAP`` px of white between them."""
    panels = [to_pil(image, size=size)] + [overlay(image, h, alpha=alpha, size=size) for h in heats]
    w = sum(p.width for p in panels) + CARD_GAP * (len(panels) - 1)
    out = Image.new("RGB", (w, max(p.height for p in panels)), (255, 255, 255))
    x = 0
    for p in panels:
        out.paste(p, (x, 0))
        x += p.width + CARD_GAP
    return out


def text_bar(p: float, cells: int = BAR_CELLS) -> str:
    """A probability in [0, 1] as ``cells`` characters (for a monospace font): ``round(p * cells)`` filled blocks,
    the rest a light track, so bars of different images line up. Values outside [0, 1] are clipped; NaN is 0."""
    p = 0.0 if p != p else min(1.0, max(0.0, float(p)))
    filled = int(round(p * cells))
    return BAR_FILL * filled + BAR_TRACK * (cells - filled)


def topk_bars(probs, k: int = 3) -> list[tuple[int, float, str]]:
    """The ``k`` most probable classes of one softmax row (K probabilities): (class index, probability, text bar),
    highest first; ties keep the lower class index first."""
    p = probs.detach().cpu().double() if isinstance(probs, torch.Tensor) else torch.as_tensor(probs).double()
    p = p.reshape(-1)
    if p.numel() == 0:
        return []
    order = torch.argsort(-p, stable=True)[: max(0, min(int(k), p.numel()))]
    return [(int(i), float(p[i]), text_bar(float(p[i]))) for i in order]


def agreement_figure(both_right: int, a_only: int, b_only: int, both_wrong: int, label_a: str, label_b: str,
                     title: str = "") -> go.Figure:
    """One horizontal bar split into the four kinds of image: both right, only A right, only B right, both wrong
    (counts), A and B in the model colours of the other Inspect charts. The two middle segments are the
    disagreements."""
    parts = [("both right", both_right, BOTH_RIGHT_COLOR), (f"{plain(label_a)} right, {plain(label_b)} wrong",
                                                           a_only, MODEL_COLORS[0]),
             (f"{plain(label_b)} right, {plain(label_a)} wrong", b_only, MODEL_COLORS[1]),
             ("both wrong", both_wrong, BOTH_WRONG_COLOR)]
    counts = np.array([n for _, n, _ in parts], dtype=np.int64)
    if (counts < 0).any():
        raise ValueError(f"counts must be >= 0, got {counts.tolist()}")
    total = max(int(counts.sum()), 1)
    fig = go.Figure()
    templates = ["both right", f"{plain_template(label_a)} right, {plain_template(label_b)} wrong",
                 f"{plain_template(label_b)} right, {plain_template(label_a)} wrong", "both wrong"]
    for (name, n, color), tmpl in zip(parts, templates):
        fig.add_trace(go.Bar(
            x=[n], y=[""], orientation="h", name=name, marker_color=color,
            text=[f"{n:,}" if n else ""], textposition="inside", insidetextanchor="middle",
            hovertemplate=f"{tmpl}: %{{x:,}} images ({n / total:.1%})<extra></extra>",
        ))
    fig.update_layout(title=plain(title) or None, barmode="stack", height=150,
                      margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      legend=dict(orientation="h", y=-0.3, traceorder="normal"), xaxis=dict(range=[0, total]))
    fig.update_yaxes(showticklabels=False)
    return fig
