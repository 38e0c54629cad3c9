"""Inspect pages: top-k predictions, confusion matrices, feature maps, Grad-CAM overlays, layer responses.

Arrays or tensors in, `go.Figure` or `PIL.Image` out. Nothing here runs a model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np
import plotly.colors as pc
import plotly.express as px
import plotly.graph_objects as go
import torch
import torch.nn.functional as F
from PIL import Image

from ..fmt import finite_or_none
from .text import plain, plain_template
from .training import PALETTE, PLAIN_COLOR, twin_style

# the model first, its plain twin second (same red/grey pair as the training curves), then the rest
MODEL_COLORS = (PALETTE[0], PLAIN_COLOR) + PALETTE[1:]
BAR_COLOR = "#1f77b4"
HIGHLIGHT_COLOR = "#2ca02c"  # e.g. the true class among the top-k predictions

STAT_TITLES = {
    "mean": "mean activation",
    "std": "std of activations",
    "zero_frac": "fraction of zero outputs",
    "branch_std": "std of residual branch F(x) (paper Fig. 7)",
}
LOCALIZATION_METRICS = (("energy", "CAM energy inside the mask"), ("pointing", "pointing-game hit rate"))

_MARGIN = dict(l=10, r=10, t=40, b=10)


def _numpy(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().float().numpy()
    return np.asarray(x, dtype=np.float64)


def _model_color(i: int) -> str:
    return MODEL_COLORS[i % len(MODEL_COLORS)]


def _model_style(i: int) -> dict:
    """Besides its colour, how the second model of a comparison (the plain twin, by the pages' order) differs
    from the first, as its grey does (``MODEL_COLORS[1]``): dashed lines, square markers, hatched bars
    (:func:`resnet_lab.viz.training.twin_style`)."""
    return twin_style(i == 1)


@lru_cache(maxsize=32)
def _lut(colorscale: str) -> np.ndarray:
    """256x3 uint8 lookup table sampled from a named plotly colourscale."""
    scale = pc.get_colorscale(colorscale)
    colors = pc.sample_colorscale(scale, np.linspace(0.0, 1.0, 256).tolist(), colortype="rgb")
    lut = np.array([pc.unlabel_rgb(c) for c in colors], dtype=np.float64)
    lut = np.clip(np.rint(lut), 0, 255).astype(np.uint8)
    lut.flags.writeable = False
    return lut


def colorize(heat, colorscale: str = "Turbo") -> np.ndarray:
    """Map an HxW heat map in [0, 1] (values outside are clipped, NaN reads as 0) to HxWx3 uint8 colours."""
    h = _numpy(heat)
    if h.ndim != 2:
        raise ValueError(f"heat must be HxW, got shape {h.shape}")
    idx = np.rint(np.clip(np.nan_to_num(h, nan=0.0), 0.0, 1.0) * 255).astype(np.intp)
    return _lut(colorscale)[idx]


def _image_u8(image) -> np.ndarray:
    """CxHxW (C=1 or 3) or HxW in [0, 1] -> HxWx3 uint8."""
    a = _numpy(image)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or a.shape[0] not in (1, 3):
        raise ValueError(f"image must be CxHxW with C=1 or 3, got shape {a.shape}")
    if a.shape[0] == 1:
        a = np.repeat(a, 3, axis=0)
    a = np.nan_to_num(a, nan=0.0).transpose(1, 2, 0)
    return np.rint(np.clip(a, 0.0, 1.0) * 255).astype(np.uint8)


def _resize(img: Image.Image, size: int | None) -> Image.Image:
    """Resize so the longer side is `size`: NEAREST when the factor is within 10% of a whole number >= 1
    (small 32 px images stay crisp), BILINEAR otherwise."""
    if size is None:
        return img
    if size < 1:
        raise ValueError(f"size must be a positive number of pixels, got {size}")
    w, h = img.size
    factor = size / max(w, h)
    new = (max(1, int(w * factor + 0.5)), max(1, int(h * factor + 0.5)))
    if new == (w, h):
        return img
    whole = round(factor)
    resample = Image.NEAREST if whole >= 1 and abs(factor - whole) <= 0.1 * whole else Image.BILINEAR
    return img.resize(new, resample)


def to_pil(image, size: int | None = None) -> Image.Image:
    """An image tensor CxHxW in [0, 1] (C=1 or 3, not normalized) as an RGB PIL image,
    optionally resized so its longer side is `size` pixels."""
    return _resize(Image.fromarray(_image_u8(image), mode="RGB"), size)


def overlay(image, heat, alpha: float = 0.5, colorscale: str = "Turbo", size: int | None = None) -> Image.Image:
    """Alpha-blend a colourized heat map over an image: out = (1 - alpha) * image + alpha * colorize(heat).

    image: CxHxW in [0, 1]; heat: hxw in [0, 1], resized bilinearly to HxW when its size differs.
    The result is optionally resized like `to_pil`.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    img = _image_u8(image)
    h = _numpy(heat)
    if h.ndim != 2:
        raise ValueError(f"heat must be hxw, got shape {h.shape}")
    if h.shape != img.shape[:2]:
        t = torch.from_numpy(h)[None, None]
        h = F.interpolate(t, size=img.shape[:2], mode="bilinear", align_corners=False)[0, 0].numpy()
    blended = (1.0 - alpha) * img.astype(np.float64) + alpha * colorize(h, colorscale).astype(np.float64)
    out = np.clip(np.rint(blended), 0, 255).astype(np.uint8)
    return _resize(Image.fromarray(out, mode="RGB"), size)


def topk_figure(probs: Sequence[float], labels: Sequence[str], title: str = "",
                highlight: str | None = None) -> go.Figure:
    """Horizontal bars of top-k class probabilities (k floats in [0, 1], k labels), highest on top;
    the `highlight` label (e.g. the true class) is drawn in HIGHLIGHT_COLOR."""
    p = _numpy(probs).reshape(-1)
    labels = [str(lab) for lab in labels]
    if len(p) != len(labels):
        raise ValueError(f"{len(p)} probabilities but {len(labels)} labels")
    order = np.argsort(-p, kind="stable")[::-1]  # ascending: plotly draws the last bar on top
    xs = [float(p[i]) for i in order]
    ys = [labels[i] for i in order]
    colors = [HIGHLIGHT_COLOR if highlight is not None and y == str(highlight) else BAR_COLOR for y in ys]
    ys = [plain(y) for y in ys]  # class names are user text (folder names of an uploaded zip)
    fig = go.Figure(go.Bar(
        x=xs, y=ys, orientation="h", marker_color=colors,
        text=[f"{v:.1%}" for v in xs], textposition="auto",
        hovertemplate="%{y}: %{x:.2%}<extra></extra>",
    ))
    fig.update_layout(title=plain(title) or None, height=80 + 28 * max(len(xs), 1), margin=_MARGIN, showlegend=False)
    fig.update_xaxes(range=[0, 1], tickformat=".0%")
    fig.update_yaxes(type="category", categoryorder="array", categoryarray=ys)
    return fig


CELL_TRACE = 1  # in a clickable confusion figure, the curve number of the (invisible) markers at the cell centres
PICKED_COLOR = "#ff7f0e"  # the outline of the cell that is open
# tick label angles plotly may choose from, first that fits: long class names turn instead of overlapping
TICK_ANGLES = (0, -45, -90)
TICK_CHAR_PX = 6  # about one character of a 12 px tick label, px


def short_label(name: str, max_chars: int) -> str:
    """``name`` cut to at most ``max_chars`` characters by an ellipsis in the middle ("a rather…name 7"): class
    names often share a start ("n01440764 …", "class 1…") or an end, so both are kept. Raw text in, raw text out:
    escape after cutting, so an HTML entity is never cut in half."""
    if max_chars < 3:
        raise ValueError(f"max_chars must be at least 3, got {max_chars}")
    name = " ".join(str(name).split())
    if len(name) <= max_chars:
        return name
    head = max_chars // 2
    tail = max_chars - 1 - head
    return name[:head].rstrip() + "…" + name[len(name) - tail:].lstrip()


def _common_affixes(names: Sequence[str]) -> tuple[int, int]:
    """Lengths of the prefix and suffix all ``names`` share, backed off to whole words (and the prefix by one more
    word, for context), so "a number 1 of ten" and "a number 10 of ten" keep "number 1" and "number 10"."""
    first, last = min(names), max(names)  # the common prefix of all strings is that of the extremes
    pre = next((i for i, (a, b) in enumerate(zip(first, last)) if a != b), min(len(first), len(last)))
    pre = first.rfind(" ", 0, pre) + 1
    pre = first.rfind(" ", 0, pre - 1) + 1 if pre > 1 else pre  # keep the last shared word: "…number 3…"
    rev = sorted(n[::-1] for n in names)
    suf = next((i for i, (a, b) in enumerate(zip(rev[0], rev[-1])) if a != b), min(len(rev[0]), len(rev[-1])))
    suf = max(0, rev[0].rfind(" ", 0, suf) + 1)
    return pre, suf


def short_labels(names: Sequence[str], max_chars: int) -> list[str]:
    """Each name cut to ``max_chars`` characters (:func:`short_label`), as distinct as the names are: when cutting
    makes two alike, the words all names share at the start and the end become "…" and what tells them apart is
    kept ("a long name 3 of ten" -> "…name 3…"); if even that collides, each label starts with its index."""
    names = [" ".join(str(n).split()) for n in names]
    cut = [short_label(n, max_chars) for n in names]
    if len(set(cut)) == len(set(names)) or len(names) < 2:
        return cut
    pre, suf = _common_affixes(names)
    if pre or suf:
        cores = [n[pre: len(n) - suf].strip() for n in names]
        cut = [("…" if pre else "") + short_label(c, max_chars - bool(pre) - bool(suf)) + ("…" if suf else "")
               if len(n) > max_chars else n for n, c in zip(names, cores)]
        if len(set(cut)) == len(set(names)):
            return cut
    return [f"{i} {short_label(n, max(3, max_chars - len(str(i)) - 1))}" for i, n in enumerate(names)]


def confusion_figure(cm, class_names: Sequence[str], normalize: bool = False, title: str = "",
                     clickable: bool = False, picked: tuple[int, int] | None = None,
                     tick_chars: int | None = None) -> go.Figure:
    """Heatmap of a CxC confusion matrix of counts (rows = true class, columns = predicted), class 0 on top.

    normalize=True colours and labels each cell by its share of the row (empty rows stay 0).
    Cell text is dropped when C > 20. The predicted-class labels turn (0°, then -45°, then -90°, the first angle
    at which they do not overlap, chosen by plotly at the drawn width) and both axes take the margin their labels
    need, so many or long class names stay readable; the hover always names both classes in full.
    tick_chars=N shortens the tick labels of both axes to about N characters (:func:`short_labels`) and makes the
    figure taller by the room its rotated labels need, so long names do not squeeze the matrix.

    clickable=True adds, as trace :data:`CELL_TRACE`, an invisible square marker at the centre of every cell,
    row by row (point ``t * C + p`` is cell (t, p); see :func:`resnet_lab.viz.errors.cell_of_point`), and
    moves the hover onto them: plotly cannot select heatmap cells, so a click selects the nearest marker instead
    (``hoverdistance=-1``: a click anywhere in a cell lands on its centre). ``picked`` = (true, pred) outlines
    that cell.
    """
    counts = _numpy(cm)
    names = [str(n) for n in class_names]
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"confusion matrix must be CxC, got shape {counts.shape}")
    if counts.shape[0] != len(names):
        raise ValueError(f"{counts.shape[0]} classes in the matrix but {len(names)} class names")
    names = [plain(n) for n in names]  # axis categories: user text
    rows = counts.sum(axis=1, keepdims=True)
    frac = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    z = frac if normalize else counts
    c = len(names)
    text = None
    if c <= 20:
        text = [[f"{v:.0%}" for v in row] for row in frac] if normalize else \
            [[f"{int(v)}" for v in row] for row in counts]
    fig = go.Figure(go.Heatmap(
        z=z.tolist(), x=names, y=names, colorscale="Blues", zmin=0, zmax=1 if normalize else None,
        text=text, texttemplate="%{text}" if text is not None else None,
        customdata=np.dstack([counts, frac]).tolist(),
        hovertemplate="true: %{y}<br>predicted: %{x}<br>count: %{customdata[0]:.0f}"
                      "<br>row: %{customdata[1]:.1%}<extra></extra>",
        colorbar=dict(title="share of row" if normalize else "count", tickformat=".0%" if normalize else None),
    ))
    side = min(900, max(320, 120 + 28 * c))
    ticks: dict = {}
    if tick_chars is not None:
        short = short_labels(class_names, tick_chars)
        ticks = dict(tickmode="array", tickvals=names, ticktext=[plain(t) for t in short])
        side += TICK_CHAR_PX * max(len(t) for t in short)  # room for the x labels
    fig.update_layout(title=plain(title) or None, height=side, margin=_MARGIN)
    fig.update_xaxes(title_text="predicted", type="category", constrain="domain",
                     autotickangles=list(TICK_ANGLES), automargin=True, **ticks)
    fig.update_yaxes(title_text="true", type="category", autorange="reversed", scaleanchor="x",
                     constrain="domain", automargin=True, **ticks)
    if clickable:
        _add_cell_markers(fig, counts, frac, names, side)
    if picked is not None:
        t, p = (int(v) for v in picked)
        if not (0 <= t < c and 0 <= p < c):
            raise ValueError(f"picked cell {picked} is outside a {c} x {c} matrix")
        fig.add_shape(type="rect", xref="x", yref="y", x0=p - 0.5, x1=p + 0.5, y0=t - 0.5, y1=t + 0.5,
                      line=dict(color=PICKED_COLOR, width=3), fillcolor="rgba(0,0,0,0)", layer="above")
    return fig


def _add_cell_markers(fig: go.Figure, counts: np.ndarray, frac: np.ndarray, names: list[str], side: int) -> None:
    """One invisible, selectable square marker per cell (row-major), carrying the cell's hover."""
    c = len(names)
    rows, cols = np.divmod(np.arange(c * c), c)
    heat = fig.data[0]
    fig.add_trace(go.Scatter(
        x=[names[j] for j in cols], y=[names[i] for i in rows], mode="markers", name="cells", showlegend=False,
        marker=dict(symbol="square", size=max(4, min(40, int(0.6 * side / c))), opacity=0, color=BAR_COLOR),
        customdata=np.stack([counts.reshape(-1), frac.reshape(-1)], axis=1).tolist(),
        hovertemplate=heat.hovertemplate.replace("<extra></extra>", "<br>click to open<extra></extra>"),
    ))
    heat.hoverinfo = "skip"  # the markers answer the hover and the click
    fig.update_layout(hovermode="closest", hoverdistance=-1, clickmode="event+select")


def per_class_figure(acc_by_model: Mapping[str, Sequence[float]], class_names: Sequence[str],
                     title: str = "") -> go.Figure:
    """Grouped bars of per-class accuracy, one bar per model and class ({model label: C values in [0, 1]};
    NaN = no samples of that class, drawn as a gap)."""
    names = [plain(n) for n in class_names]
    fig = go.Figure()
    for i, (label, accs) in enumerate(acc_by_model.items()):
        a = _numpy(accs).reshape(-1)
        if len(a) != len(names):
            raise ValueError(f"{label}: {len(a)} accuracies for {len(names)} classes")
        ys = [finite_or_none(v) for v in a]
        fig.add_trace(go.Bar(
            x=names, y=ys, name=plain(label), marker_color=_model_color(i),
            marker_pattern_shape=_model_style(i)["pattern"],
            hovertemplate=f"{plain_template(label)}<br>%{{x}}: %{{y:.1%}}<extra></extra>",
        ))
    fig.update_layout(title=plain(title) or None, barmode="group", height=360, margin=_MARGIN,
                      legend=dict(orientation="h", y=-0.2))
    fig.update_xaxes(type="category", title_text="class")
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%", title_text="accuracy")
    return fig


FACET_TITLE_PX = 20  # a row of facet titles ("ch 12") between two rows of maps
FACET_GAP_PX = 4  # between two maps of a row
COLORBAR_PX = 56  # the horizontal colour bar under the grid, with its tick labels


def _facet_grid(arr: np.ndarray, labels: list[str], colorscale: str, cols: int, zmin: float, zmax: float,
                colorbar_title: str, title: str, width: int) -> go.Figure:
    """K x h x w maps as a grid of px.imshow facets sharing one colour axis, facet k titled labels[k].

    Sized for a figure ``width`` px wide: the maps take the whole width (the colour bar lies under them), a few
    pixels apart, and each row is exactly as tall as its maps plus one line of titles, so no band of white
    opens between rows (the old fixed 170 px a row left the maps small and the gaps large)."""
    k, h, w = arr.shape
    cols = max(1, min(cols, k))
    rows = math.ceil(k / cols)
    margin = dict(l=10, r=10, t=FACET_TITLE_PX + (40 if title else 4), b=COLORBAR_PX)
    plot_w = max(width - margin["l"] - margin["r"], cols * 8)
    tile_w = (plot_w - (cols - 1) * FACET_GAP_PX) / cols
    plot_h = rows * tile_w * h / w + (rows - 1) * FACET_TITLE_PX
    fig = px.imshow(arr, facet_col=0, facet_col_wrap=cols, color_continuous_scale=colorscale,
                    range_color=[zmin, zmax], aspect="equal",
                    facet_col_spacing=FACET_GAP_PX / plot_w if cols > 1 else 0.0,
                    facet_row_spacing=FACET_TITLE_PX / plot_h if rows > 1 else 0.0)
    fig.for_each_annotation(lambda a: a.update(text=plain(labels[int(a.text.split("=")[-1])])))
    fig.update_xaxes(showticklabels=False, ticks="", title_text=None)
    fig.update_yaxes(showticklabels=False, ticks="", title_text=None)
    fig.update_traces(hovertemplate="x: %{x}<br>y: %{y}<br>value: %{z:.3g}<extra></extra>")
    fig.update_layout(title=plain(title) or None, height=round(margin["t"] + plot_h + margin["b"]), margin=margin,
                      coloraxis_colorbar=dict(title=dict(text=colorbar_title, side="right"), orientation="h",
                                              x=0.5, xanchor="center", y=0, yanchor="top", len=0.7, thickness=10,
                                              ypad=8))
    return fig


GRID_WIDTH = 440  # px: one of two side-by-side columns of the wide layout in a 1280 px window


def feature_grid_figure(maps, channels: Sequence[int], title: str = "", colorscale: str = "Viridis",
                        cols: int = 4, shared_scale: bool = True, width: int = GRID_WIDTH) -> go.Figure:
    """Grid of K activation maps (K x h x w, any real values), facet titled "ch <index>" from `channels`, sized
    for a figure ``width`` px wide (default: one of two columns of a 1280 px window).

    shared_scale=True puts all maps on one colour range (min..max over all of them);
    False stretches each map to its own min..max (constant maps read as 0).
    """
    arr = _numpy(maps)
    if arr.ndim != 3 or arr.shape[0] == 0:
        raise ValueError(f"maps must be K x h x w with K >= 1, got shape {arr.shape}")
    if len(channels) != arr.shape[0]:
        raise ValueError(f"{arr.shape[0]} maps but {len(channels)} channel indices")
    arr = np.nan_to_num(arr, nan=0.0)
    if shared_scale:
        lo, hi = float(arr.min()), float(arr.max())
        if hi <= lo:
            hi = lo + 1.0
        bar = "activation"
    else:
        mins = arr.min(axis=(1, 2), keepdims=True)
        spans = arr.max(axis=(1, 2), keepdims=True) - mins
        arr = np.divide(arr - mins, spans, out=np.zeros_like(arr), where=spans > 0)
        lo, hi, bar = 0.0, 1.0, "relative (per map)"
    return _facet_grid(arr, [f"ch {int(c)}" for c in channels], colorscale, cols, lo, hi, bar, title, width)


def heatmap_grid_figure(heats, titles: Sequence[str], colorscale: str = "Turbo", cols: int = 4,
                        zmin: float = 0, zmax: float = 1, title: str = "", width: int = 2 * GRID_WIDTH) -> go.Figure:
    """Grid of N heat maps (N x h x w, in [zmin, zmax]) on one colour scale, one title each
    (e.g. one Grad-CAM per step of the cascading-randomization sanity check), sized for ``width`` px
    (default: the whole page of a 1280 px window)."""
    arr = _numpy(heats)
    if arr.ndim != 3 or arr.shape[0] == 0:
        raise ValueError(f"heats must be N x h x w with N >= 1, got shape {arr.shape}")
    if len(titles) != arr.shape[0]:
        raise ValueError(f"{arr.shape[0]} maps but {len(titles)} titles")
    return _facet_grid(np.nan_to_num(arr, nan=0.0), [str(t) for t in titles], colorscale, cols,
                       zmin, zmax, "", title, width)


def layer_stats_figure(stats_by_model: Mapping[str, Sequence[Mapping]], stat: str, title: str = "",
                       sort: bool = False) -> go.Figure:
    """Per-layer response statistic vs depth, one line per model (the ResNet paper's Fig. 7).

    stats_by_model: {model label: [{"name": "layer2.1", "index": 5, "mean": ..., "std": ..., ...}, ...]}
    in depth order. sort=True draws each model's values sorted descending against rank (Fig. 7, bottom).
    Layers without the statistic (or with a NaN or infinite one) are left out.
    """
    if stat not in STAT_TITLES:
        raise ValueError(f"unknown layer statistic {stat!r}; expected one of {sorted(STAT_TITLES)}")
    fig = go.Figure()
    fmt = ".1%" if stat == "zero_frac" else ".4g"
    for i, (label, layers) in enumerate(stats_by_model.items()):
        points = [(int(d["index"]), str(d["name"]), v) for d in layers
                  if (v := finite_or_none(d.get(stat))) is not None]
        if sort:
            points = sorted(points, key=lambda p: -p[2])
            xs = list(range(1, len(points) + 1))
        else:
            xs = [p[0] for p in points]
        fig.add_trace(go.Scatter(
            x=xs, y=[p[2] for p in points], text=[plain(p[1]) for p in points], name=plain(label),
            mode="lines+markers", line=dict(color=_model_color(i), width=1.5, dash=_model_style(i)["dash"]),
            marker=dict(size=5, symbol=_model_style(i)["symbol"]),
            hovertemplate=f"{plain_template(label)}<br>%{{text}}<br>{stat}: %{{y:{fmt}}}<extra></extra>",
        ))
    fig.update_layout(title=plain(title) or None, height=360, margin=_MARGIN, legend=dict(orientation="h", y=-0.2))
    fig.update_xaxes(title_text="layer index (sorted by magnitude)" if sort else "layer index (depth)")
    fig.update_yaxes(title_text=STAT_TITLES[stat], tickformat=".0%" if stat == "zero_frac" else None)
    return fig


def localization_figure(scores_by_model: Mapping[str, Mapping[str, float]], baseline: float | None = None,
                        title: str = "") -> go.Figure:
    """Grouped bars of Grad-CAM localization scores per model ({label: {"energy": f, "pointing": f}}, in [0, 1]);
    `baseline` (mean mask area fraction: a uniform map's energy score) is a dashed line marked "uniform map"."""
    keys = [k for k, _ in LOCALIZATION_METRICS]
    names = [n for _, n in LOCALIZATION_METRICS]
    fig = go.Figure()
    for i, (label, scores) in enumerate(scores_by_model.items()):
        ys = [float(scores[k]) for k in keys]
        fig.add_trace(go.Bar(
            x=names, y=ys, name=plain(label), marker_color=_model_color(i),
            marker_pattern_shape=_model_style(i)["pattern"], text=[f"{v:.0%}" for v in ys], textposition="auto",
            hovertemplate=f"{plain_template(label)}<br>%{{x}}: %{{y:.1%}}<extra></extra>",
        ))
    if baseline is not None:
        fig.add_hline(y=float(baseline), line_dash="dash", line_color="#444", line_width=1,
                      annotation_text="uniform map", annotation_position="top left")
    fig.update_layout(title=plain(title) or None, barmode="group", height=340, margin=_MARGIN,
                      legend=dict(orientation="h", y=-0.15))
    fig.update_yaxes(range=[0, 1.05], tickformat=".0%")
    return fig
