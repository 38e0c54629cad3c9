"""Training curves: loss, accuracy, learning rate and throughput for one or more runs on one figure.

Made to be read from the back of a classroom: every y axis has labelled ticks (the log loss axis gets
1-2-5 ticks fitted to the data), the legend says which line style is training and which validation,
and a run's colour comes from its identity, so it is the same in every view, alone or among others.
"""

from __future__ import annotations

import functools
import json
import math
import zlib
from dataclasses import dataclass

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .text import plain, plain_template

# Tableau 10's red, blue, green, purple, orange and teal: its brown, pink, grey and yellow are left out (too close
# to orange, purple and the plain grey, or faint on white). Every two of these, their plain twins' darker shades
# and PLAIN_COLOR differ by ΔE2000 ≥ 17 (tests/viz/test_training_figures.py).
PALETTE = ("#e15759", "#4e79a7", "#59a14f", "#b07aa1", "#f28e2b", "#76b7b2")
PLAIN_COLOR = "#7f7f7f"
TWIN_SHADE = 0.4  # a plain twin's colour: its ResNet's mixed this far toward black
WAITING_TEXT = "Waiting for the first logged step…"
STYLE_COLOR = "#444444"  # the "training" / "validation" legend entries: a line style, not a run
# Colour is never the only thing that tells a ResNet from its plain twin: a plain net's lines are dashed (on the
# training curves, where dashed already means validation, dotted and dash-dot), its markers squares, its bars
# hatched, and its legend name says "plain".
PLAIN_DASH = "dash"
PLAIN_SYMBOL = "square"
PLAIN_PATTERN = "/"
_CURVE_DASH = {(False, False): "solid", (False, True): "dash", (True, False): "dot", (True, True): "dashdot"}


def twin_style(plain: bool) -> dict:
    """How a line of a ResNet (``plain`` False) or of a plain net differs besides its colour:
    ``{"dash", "symbol", "pattern"}`` for ``line.dash``, ``marker.symbol`` and ``marker.pattern.shape``."""
    return {"dash": PLAIN_DASH if plain else "solid", "symbol": PLAIN_SYMBOL if plain else "circle",
            "pattern": PLAIN_PATTERN if plain else ""}


def plain_name(label: str, plain: bool) -> str:
    """A legend name that says a plain net is one: ``label`` with " (plain)" unless it says so already."""
    return f"{label} (plain)" if plain and "plain" not in label.lower() else label

Series = list[tuple[int, float, float]]  # (step, epoch, value)

_NAMES = {"train/loss": "training loss", "val/loss": "validation loss", "train/acc": "training accuracy",
          "val/acc": "validation accuracy", "lr": "learning rate", "images_per_s": "images/s"}
_GOLDEN = (math.sqrt(5) - 1) / 2  # consecutive ids land far apart on the palette (Weyl sequence)
# mantissas of log-axis ticks, coarse to fine; the first that gives 4 ticks in the range wins
_MANTISSAS = ((1,), (1, 2, 5), (1, 2, 3, 5), (1, 1.5, 2, 3, 4, 5, 6, 8), (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 7, 8, 9))


@dataclass(frozen=True)
class RunCurves:
    label: str  # legend name, e.g. "#12 resnet20 · shapes"
    metrics: dict[str, Series]  # key -> points, keys like "train/loss", "val/acc", "lr", "images_per_s"
    plain: bool = False  # a plain twin: drawn in a darker shade of its colour
    color: str | None = None  # explicit colour; None: from ``key``
    key: str | int | None = None  # identity that picks the colour (a run id; a plain twin passes its ResNet's id so
    # the two read as a pair); None: the label


def run_color(key: str | int, plain: bool = False) -> str:
    """A run's colour from its identity alone, never from its place in a list: ``key`` (a run id, or any
    string) picks a palette colour (ids 1..len(PALETTE) all differ); a plain twin gets a darker shade of that
    colour (its family shows, and it stays apart from every other run's colour — a grey mix would not)."""
    n = key if isinstance(key, int) and not isinstance(key, bool) else zlib.crc32(str(key).encode())
    base = PALETTE[int((n * _GOLDEN) % 1.0 * len(PALETTE)) % len(PALETTE)]
    return _mix(base, "#000000", TWIN_SHADE) if plain else base


def _mix(a: str, b: str, t: float) -> str:
    ca, cb = (tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in (a, b))
    return "#" + "".join(f"{round((1 - t) * x + t * y):02x}" for x, y in zip(ca, cb))


_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")


def _label(v: float) -> str:
    """A tick label that says the whole value: 0.30000000000000004 -> "0.3", 2e-05 -> "2×10⁻⁵", 1e6 -> "10⁶"."""
    text = f"{float(f'{v:.6g}'):g}"
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    power = "10" + str(int(exponent)).translate(_SUPERSCRIPT)
    return power if mantissa == "1" else f"{mantissa}×{power}"


def log_ticks(lo: float, hi: float) -> tuple[list[float], list[float], list[str]]:
    """A log axis for positive data in ``[lo, hi]``: its range (log10 units, padded) and tick values and
    labels: 1-2-5 steps (or coarser/finer, whichever gives about four ticks in the range), evenly spaced
    plain numbers when the range is too narrow for that. Never an axis without labels."""
    a, b = math.log10(lo), math.log10(hi)
    pad = max(0.04, 0.05 * (b - a))
    rng = [a - pad, b + pad]
    lo_v, hi_v = 10 ** rng[0], 10 ** rng[1]
    ticks: list[float] = []
    for mants in _MANTISSAS:
        ticks = [m * 10.0 ** e for e in range(math.floor(rng[0]) - 1, math.ceil(rng[1]) + 1) for m in mants]
        ticks = [t for t in ticks if lo_v <= t <= hi_v]
        if len(ticks) >= 4:
            break
    if len(ticks) < 3:
        ticks = _linear_ticks(lo_v, hi_v)
    while len(ticks) > 10:
        ticks = ticks[::2]
    return rng, ticks, [_label(t) for t in ticks]


def _linear_ticks(lo: float, hi: float) -> list[float]:
    """Evenly spaced ticks in ``[lo, hi]``: the widest 1-2-2.5-5 step that still gives three of them."""
    e = math.floor(math.log10(hi - lo))
    for step in sorted((m * 10.0 ** k for k in (e - 2, e - 1, e) for m in (1, 2, 2.5, 5)), reverse=True):
        ticks = [k * step for k in range(math.ceil(lo / step), math.floor(hi / step) + 1)]
        if len(ticks) >= 3:
            return ticks
    return [lo, hi]


def _spread(points: list[tuple[int, float, float]], x: str) -> list[tuple[int, float, float]]:
    """Validation points as one line: an evaluation closer than a quarter of the usual spacing to the next one is
    left out, the later one kept. The trainer validates every ``total // eval_points`` steps and at each epoch's
    end, so a mid-epoch pass can land a step or two before the epoch's own (steps 92 and 93 of a 93-step epoch):
    two noisy values a hair apart would draw a vertical jump at every epoch mark. The epoch's own evaluation
    (the one its checkpoint keeps) is the later, so it is always drawn."""
    if len(points) < 3:
        return points
    xs = [p[1] if x == "epoch" else p[0] for p in points]
    gaps = sorted(b - a for a, b in zip(xs, xs[1:]))
    close = gaps[len(gaps) // 2] / 4
    return [p for p, a, b in zip(points, xs, xs[1:]) if b - a >= close] + [points[-1]]


def curves_figure(runs: list[RunCurves], x: str = "epoch", height: int = 520) -> go.Figure:
    """2×2 panel: loss (log scale), accuracy, learning rate, images/s. Solid = training, dashed = validation,
    said by two legend entries; one colour per run (:func:`run_color`); a plain twin dotted (training) and
    dash-dot (validation) with square markers, said by two more entries, and "plain" in its name. With no
    points yet it says it is waiting instead of drawing empty axes. (The figure of :func:`curves_spec`.)"""
    return go.Figure(curves_spec(runs, x, height))


_PANELS = (("train/loss", 1, 1, "solid"), ("val/loss", 1, 1, "dash"), ("train/acc", 1, 2, "solid"),
           ("val/acc", 1, 2, "dash"), ("lr", 2, 1, "solid"), ("images_per_s", 2, 2, "solid"))


@functools.lru_cache(maxsize=16)
def _frame(x: str, height: int, waiting: bool) -> tuple[str, dict[tuple[int, int], tuple[str, str]]]:
    """The curves' layout without the runs (made by plotly's own ``make_subplots``, ~50 ms, so once per shape)
    as JSON, and each panel's axis references (``(row, col) -> ("x2", "y2")``)."""
    fig = make_subplots(rows=2, cols=2, subplot_titles=("Loss (log scale)", "Accuracy", "Learning rate",
                                                        "Images / s"),
                        horizontal_spacing=0.1, vertical_spacing=0.14)
    refs = {}
    for row, col in ((1, 1), (1, 2), (2, 1), (2, 2)):
        sub = fig.get_subplot(row, col)
        refs[row, col] = tuple(a.plotly_name.replace("axis", "") for a in (sub.xaxis, sub.yaxis))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), uirevision="keep",
                      legend=dict(orientation="h", y=-0.14, yanchor="top"))
    # tick labels drawn as they are: plotly's default ("hide past div") measures every label's box on each redraw,
    # a forced layout per label that was the largest cost of a live page's tick in the browser (~18 ms a second of
    # a page's main thread here); these panels keep their labels inside their margins anyway
    fig.update_xaxes(ticklabeloverflow="allow")
    fig.update_yaxes(automargin=True, ticklabeloverflow="allow")
    fig.update_xaxes(automargin=True, title_text=x, row=2)
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%", row=1, col=2)
    if waiting:  # nothing logged yet: say so, no made-up loss scale
        fig.add_annotation(text=WAITING_TEXT, xref="paper", yref="paper", x=0.5, y=0.5, showarrow=False,
                           font=dict(size=15, color=PLAIN_COLOR))
        fig.update_xaxes(range=[0, 1])
        for row, col in ((1, 1), (2, 1), (2, 2)):
            fig.update_yaxes(showticklabels=False, row=row, col=col)
    return json.dumps(fig.to_dict()["layout"]), refs


def curves_spec(runs: list[RunCurves], x: str = "epoch", height: int = 520) -> dict:
    """:func:`curves_figure` as the plain dict plotly would make of it (``go.Figure(spec).to_dict() == spec``),
    built in about a millisecond instead of ~80: the layout comes ready-made from :func:`_frame`, the traces
    are written as plotly writes them. A live panel builds it once per new data for every tab."""
    layout_json, refs = _frame(x, height, not any(math.isfinite(p[2]) for run in runs for key, *_ in _PANELS
                                                  for p in run.metrics.get(key) or ()))
    layout = json.loads(layout_json)
    data: list[dict] = []
    losses: list[float] = []
    for run in runs:
        color = run.color or run_color(run.key if run.key is not None else run.label, run.plain)
        label = plain_name(run.label, run.plain)
        shown = False
        for key, row, col, dash in _PANELS:
            points = [p for p in run.metrics.get(key) or () if math.isfinite(p[2])]
            if not points:
                continue
            if key.startswith("val/"):
                points = _spread(points, x)
            if key.endswith("/loss"):
                losses += [p[2] for p in points if p[2] > 0]
            xref, yref = refs[row, col]
            data.append({
                "hovertemplate": f"{plain_template(label)}<br>{_NAMES[key]}: %{{y:.4g}}<br>{x}: %{{x:.3g}}"
                                 "<extra></extra>",
                "legendgroup": plain(label),
                "line": {"color": color, "dash": _CURVE_DASH[run.plain, dash == "dash"],
                         "width": 2 if key.startswith("val/") else 1.5},
                "marker": {"symbol": twin_style(run.plain)["symbol"]},
                "mode": "lines+markers" if key.startswith("val/") or len(points) < 20 else "lines",
                "name": plain(label), "showlegend": not shown,
                "x": [p[1] if x == "epoch" else p[0] for p in points], "y": [p[2] for p in points],
                "type": "scatter", "xaxis": xref, "yaxis": yref})
            shown = True
    if not data:
        return {"data": [], "layout": layout}
    xref, yref = refs[1, 1]
    styles = [("training (solid)", "solid"), ("validation (dashed)", "dash")]
    if any(run.plain for run in runs):
        styles += [("plain twin: training (dotted)", "dot"), ("plain twin: validation (dash-dot)", "dashdot")]
    for name, dash in styles:
        data.append({"hoverinfo": "skip", "legendgroup": "line style", "legendrank": 1,
                     "line": {"color": STYLE_COLOR, "dash": dash, "width": 2}, "mode": "lines", "name": name,
                     "x": [None], "y": [None], "type": "scatter", "xaxis": xref, "yaxis": yref})
    if losses:  # early validation losses can be 10x the final ones: a log axis, ticked to fit the data
        rng, ticks, labels = log_ticks(min(losses), max(losses))
        layout["yaxis" + yref[1:]].update(type="log", range=rng, tickmode="array", tickvals=ticks, ticktext=labels)
    return {"data": data, "layout": layout}
