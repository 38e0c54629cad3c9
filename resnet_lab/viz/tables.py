"""A chart's numbers as a table and as a sentence: what a screen reader says, and what a click shows.

Both are read from the figure itself (its traces, axis titles and subplot titles), so they cannot disagree with
what it draws: :func:`figure_table` lists every drawn point (a heat map's every cell) and :func:`figure_summary`
says, per series, where it ends and where it peaks (lines), its highest and lowest bar (bars), or its extremes (heat
maps). A figure may be a ``go.Figure`` or the dict plotly makes of one (the live curves' ready dict). The training
curves get their own sentence (:func:`curves_summary`): best validation accuracy and where, per run, and the plain
twin beside its ResNet.
"""

from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from ..fmt import csv_text
from .training import RunCurves, _spread

MAX_SENTENCES = 6  # a summary says this many series; the rest are in the table
MAX_ROWS = 50_000  # a table stops there (a grid of feature maps can hold tens of thousands of cells)
_GRIDS = ("heatmap", "contour", "surface", "image", "histogram2d")
_METRICS = {"train/loss": "training loss", "val/loss": "validation loss", "train/acc": "training accuracy",
            "val/acc": "validation accuracy", "lr": "learning rate", "images_per_s": "images/s"}
_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class ChartTable:
    """A chart's numbers: column names and rows of plain values (text, numbers, None)."""

    columns: tuple[str, ...]
    rows: list[tuple]

    def csv(self) -> str:
        """The table as CSV text a spreadsheet opens safely (:func:`resnet_lab.fmt.csv_text`)."""
        return csv_text(self.columns, self.rows)

    def records(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]


def text_of(s: object) -> str:
    """A figure string as people read it: plotly's pseudo-HTML tags dropped (``<br>`` as a space), the
    entities of :func:`resnet_lab.viz.text.plain` turned back into characters."""
    return " ".join(html.unescape(_TAG.sub(" ", str(s))).split())


def _spec(fig: Any) -> dict:
    return fig if isinstance(fig, dict) else fig.to_dict()


def _list(v: Any) -> list:
    if v is None:
        return []
    if isinstance(v, dict) and "bdata" in v:  # plotly's typed array (base64): decode it
        import base64
        arr = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        if "shape" in v:
            arr = arr.reshape([int(n) for n in str(v["shape"]).split(",")])
        return arr.tolist()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return list(v)


def _title(obj: Any) -> str:
    t = obj.get("title") if isinstance(obj, dict) else None
    if isinstance(t, dict):
        t = t.get("text")
    return text_of(t) if t else ""


def _axis(layout: dict, ref: str | None, letter: str) -> dict:
    ref = ref or letter
    return layout.get(letter + "axis" + ref[1:], {}) or {}


def _panel(layout: dict, trace: dict) -> str:
    """The subplot title over a trace's axes (``make_subplots`` writes them as annotations at the top centre
    of each cell), else its y axis title, else ''."""
    xa, ya = _axis(layout, trace.get("xaxis"), "x"), _axis(layout, trace.get("yaxis"), "y")
    xd, yd = xa.get("domain"), ya.get("domain")
    if xd and yd:
        for a in layout.get("annotations") or ():
            if a.get("xref") == "paper" and a.get("yref") == "paper" and a.get("text") \
                    and abs(a.get("x", -9) - (xd[0] + xd[1]) / 2) < 0.02 and abs(a.get("y", -9) - yd[1]) < 0.02:
                return text_of(a["text"])
    return _title(ya)


def _drawn(spec: dict) -> Iterator[dict]:
    """The traces that carry data: every heat map, and the lines, bars and markers one can see, but not the legend's
    style swatches nor shaded ranges (their hover skipped) nor invisible click targets (a clickable heat map's
    transparent markers, which answer its hover instead)."""
    for t in spec.get("data") or ():
        if t.get("visible") is False:
            continue
        if t.get("type", "scatter") in _GRIDS:
            if _list(t.get("z")):
                yield t
            continue
        if t.get("hoverinfo") == "skip" or t.get("opacity") == 0 or (t.get("marker") or {}).get("opacity") == 0 \
                or t.get("mode") == "text":  # a word placed on the chart ("n/a"): its y is a place, not a value
            continue
        if any(v is not None for v in _list(t.get("y")) + _list(t.get("x"))):
            yield t


def _name(spec: dict, t: dict) -> str:
    """A trace's name; a bare facet number (plotly express names a facet's trace "0", "1", …) is no name: the
    figure's title stands in, its panel title says which."""
    name = text_of(t.get("name") or "")
    return name if name and not name.isdigit() else _title(spec.get("layout") or {}) or name


_DASH_WORDS = {"solid": "solid", "dash": "dashed", "dot": "dotted", "dashdot": "dash-dot", "longdash": "long dashes"}


def _names(spec: dict, traces: Sequence[dict]) -> list[str]:
    """Each trace's series name; two traces of one name in one panel (a run's training and validation lines)
    are told apart by their line style, as the legend tells them."""
    layout = spec.get("layout") or {}
    keys = [(_name(spec, t), _panel(layout, t)) for t in traces]
    out = []
    for t, key in zip(traces, keys):
        dash = ((t.get("line") or {}).get("dash") or "solid") if isinstance(t.get("line"), dict) else "solid"
        out.append(f"{key[0]} ({_DASH_WORDS.get(dash, dash)} line)" if keys.count(key) > 1 else key[0])
    return out


def _points(t: dict, gaps: bool = False) -> list[tuple[Any, Any]]:
    """A trace's (x, y) pairs; with ``gaps``, those with no value too (a bar not measured: an empty cell)."""
    xs, ys = _list(t.get("x")), _list(t.get("y"))
    n = max(len(xs), len(ys))
    xs = xs or list(range(n))
    ys = ys or list(range(n))
    return [(x, y) for x, y in zip(xs, ys) if (x is not None and y is not None) or (gaps and (x, y) != (None, None))]


def _cells(t: dict) -> Iterator[tuple[Any, Any, Any]]:
    z = _list(t.get("z"))
    xs, ys = _list(t.get("x")), _list(t.get("y"))
    for j, row in enumerate(z):
        for i, v in enumerate(row if isinstance(row, list) else [row]):
            if isinstance(v, list):  # an image's pixel: its channels
                v = " ".join(str(c) for c in v)
            yield (xs[i] if i < len(xs) else i), (ys[j] if j < len(ys) else j), v


def _clean(v: Any) -> Any:
    if isinstance(v, str):
        return text_of(v)
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def figure_table(fig: Any) -> ChartTable:
    """Every point a figure draws, one row each: its series (trace name), its panel (subplot title) when the
    figure has several, x, y, and a heat map's value. Columns are named after the axes when all series share
    one axis title."""
    spec = _spec(fig)
    layout = spec.get("layout") or {}
    traces = list(_drawn(spec))
    if traces and all(t.get("type") == "image" for t in traces):  # pictures: what each shows, not its pixels
        return ChartTable(("picture", "row"), [(_name(spec, t), _row(layout, t)) for t in traces])
    grid = any(t.get("type") in _GRIDS for t in traces)
    panels = [_panel(layout, t) for t in traces]
    several = len(set(panels)) > 1
    xt = {_title(_axis(layout, t.get("xaxis"), "x")) for t in traces}
    yt = {_title(_axis(layout, t.get("yaxis"), "y")) for t in traces}
    xname = next(iter(xt)) if len(xt) == 1 and "" not in xt else "x"
    yname = next(iter(yt)) if len(yt) == 1 and "" not in yt else "y"
    if yname in ("series", "panel", xname):
        yname = "y"
    bars = {_title(_colorbar(layout, t)) for t in traces if t.get("type") in _GRIDS}
    vname = next(iter(bars)) if len(bars) == 1 and "" not in bars else "value"
    if vname in ("series", "panel", xname, yname):
        vname = "value"
    columns = ("series", *(["panel"] if several else []), xname, yname, *([vname] if grid else []))
    rows: list[tuple] = []
    for t, panel, name in zip(traces, panels, _names(spec, traces)):
        head = (name, panel) if several else (name,)
        if t.get("type") in _GRIDS:
            points = ((x, y, v) for x, y, v in _cells(t))
        else:
            points = ((x, y, None) for x, y in _points(t, True)) if grid else _points(t, True)
        for p in points:
            rows.append(head + tuple(_clean(v) for v in p))
            if len(rows) >= MAX_ROWS:
                return ChartTable(columns, rows)
    return ChartTable(columns, rows)


def _number(v: Any, axis: dict) -> str:
    """A value as its axis shows it: a percentage where the axis is one, else four significant digits."""
    fmt, suffix = str(axis.get("tickformat") or ""), str(axis.get("ticksuffix") or "")
    if not suffix and _title(axis).endswith("(%)"):  # percentages drawn as numbers, said by the axis title
        suffix = "%"
    if "%" in fmt:
        return f"{100 * float(v):.1f}%"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f"{float(v):.4g}{suffix}"
    return text_of(v)


def _numeric(vs: Sequence[Any]) -> bool:
    return bool(vs) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vs)


def _colorbar(layout: dict, t: dict) -> dict:
    """A heat map's colour bar (its own, or its shared colour axis's): its title names the values, its tick
    format says how they are shown."""
    bar = t.get("colorbar")
    if not bar and t.get("coloraxis"):
        bar = (layout.get(t["coloraxis"]) or {}).get("colorbar")
    return bar or {}


def _sentence(spec: dict, t: dict, name: str, panel: str) -> str | None:
    layout = spec.get("layout") or {}
    xa, ya = _axis(layout, t.get("xaxis"), "x"), _axis(layout, t.get("yaxis"), "y")
    who = name + (f" ({panel})" if panel and panel != name else "")
    kind = t.get("type", "scatter")
    if kind in _GRIDS:
        cells = [(x, y, v) for x, y, v in _cells(t) if isinstance(v, (int, float)) and math.isfinite(v)]
        if not cells:
            return None
        lo, hi = min(cells, key=lambda c: c[2]), max(cells, key=lambda c: c[2])
        bar = _colorbar(layout, t)
        row, col = _title(ya) or "row", _title(xa) or "column"

        def at(c: tuple) -> str:
            return f"{_number(c[2], bar)} ({row} {text_of(c[1])}, {col} {text_of(c[0])})"

        return f"{who}: values from {at(lo)} to {at(hi)}"
    points = _points(t)
    if not points:
        return None
    horizontal = t.get("orientation") == "h"
    cat_axis, val_axis = (ya, xa) if horizontal else (xa, ya)
    pairs = [(y, x) for x, y in points] if horizontal else points  # (category or x, value)
    values = [v for _, v in pairs]
    if not _numeric(values):
        return None
    xtitle = _title(cat_axis)
    where = (lambda c: f"{xtitle} {_number(c, cat_axis)}") if xtitle and _numeric([c for c, _ in pairs]) \
        else (lambda c: _number(c, cat_axis))
    if all(text_of(c) == "" for c, _ in pairs):  # one bar without a category (a stacked share)
        return f"{who}: {', '.join(_number(v, val_axis) for v in values)}"
    hi = max(pairs, key=lambda p: p[1])
    lo = min(pairs, key=lambda p: p[1])
    if len(pairs) == 1:
        return f"{who}: {_number(hi[1], val_axis)} at {where(hi[0])}"
    if kind == "bar" or not _numeric([c for c, _ in pairs]):
        return f"{who}: highest {_number(hi[1], val_axis)} at {where(hi[0])}, lowest {_number(lo[1], val_axis)} " \
               f"at {where(lo[0])}"
    last = pairs[-1]
    return (f"{who}: ends at {_number(last[1], val_axis)} ({where(last[0])}); highest {_number(hi[1], val_axis)} "
            f"at {where(hi[0])}, lowest {_number(lo[1], val_axis)} at {where(lo[0])}")


def _row(layout: dict, t: dict) -> str:
    """The title of a trace's row of subplots: its y axis's, or that of another y axis on the same row."""
    ya = _axis(layout, t.get("yaxis"), "y")
    if _title(ya) or not ya.get("domain"):
        return _title(ya)
    return next((_title(a) for k, a in layout.items() if k.startswith("yaxis") and isinstance(a, dict)
                 and a.get("domain") == ya["domain"] and _title(a)), "")


def _pictures(spec: dict, traces: Sequence[dict], title: str) -> str:
    """A figure of pictures (a strip of heat maps over an image) said as what each row shows."""
    rows: dict[str, list[str]] = {}
    layout = spec.get("layout") or {}
    for t in traces:
        rows.setdefault(_row(layout, t), []).append(_name(spec, t))
    said = "; ".join(f"{row + ': ' if row else ''}{', '.join(names)}" for row, names in rows.items())
    return f"{title + ': ' if title else ''}{len(traces)} picture{'s' if len(traces) != 1 else ''} — {said}."


def figure_summary(fig: Any, max_sentences: int = MAX_SENTENCES) -> str:
    """The figure in a few sentences, read from its own data (:func:`_sentence` per series): where each line
    ends and peaks, each bar series' highest and lowest bar, each heat map's extremes. Beyond ``max_sentences``
    series it says how many more the table holds; an empty figure says so."""
    spec = _spec(fig)
    traces = list(_drawn(spec))
    title = _title(spec.get("layout") or {})
    if traces and all(t.get("type") == "image" for t in traces):
        return _pictures(spec, traces, title)
    panels = [_panel(spec.get("layout") or {}, t) for t in traces]
    if len(set(panels)) < 2:  # one panel: its name is the figure's
        panels = [""] * len(traces)
    said = [s for s in (_sentence(spec, t, n, p) for t, n, p in zip(traces, _names(spec, traces), panels)) if s]
    if not said:
        return "No data drawn yet."
    lead = f"{title}. " if title and not all(x.startswith(title) for x in said) else ""  # said once
    more = len(said) - max_sentences
    text = lead + ". ".join(said[:max_sentences]) + "."
    if more > 0:
        text += f" {more} more series in the table."
    return text


def curves_table(runs: Sequence[RunCurves]) -> ChartTable:
    """The training curves' numbers: one row per logged point of every run (run, what, step, epoch, value)."""
    rows = [(text_of(r.label) + (" (plain)" if r.plain and "plain" not in r.label else ""), _METRICS.get(k, k),
             step, epoch, value if math.isfinite(value) else None)
            for r in runs for k, points in r.metrics.items() for step, epoch, value in points]
    return ChartTable(("run", "what", "step", "epoch", "value"), rows)


def _best(points: Sequence[tuple[int, float, float]]) -> tuple[int, float, float] | None:
    finite = [p for p in points if math.isfinite(p[2])]
    return max(finite, key=lambda p: p[2]) if finite else None


def curves_summary(runs: Sequence[RunCurves]) -> str:
    """The training curves in a sentence per pair: each run's best validation accuracy and the epoch it was
    reached at (the highest point of its dashed accuracy line), a plain twin said beside its ResNet; a run
    without a validation yet says its last training loss, or that it is waiting."""
    by_key: dict[Any, list[RunCurves]] = {}
    for r in runs:
        by_key.setdefault(r.key if r.key is not None else r.label, []).append(r)
    sentences = []
    for group in by_key.values():
        parts = []
        for r in sorted(group, key=lambda r: r.plain):
            name = text_of(r.label) + (" (plain twin)" if r.plain and "plain" not in r.label.lower() else "")
            best = _best(_spread(list(r.metrics.get("val/acc") or ()), "epoch"))  # the points the chart draws
            loss = [p for p in r.metrics.get("train/loss") or () if math.isfinite(p[2])]
            if best is not None:
                parts.append(f"{name} reached {100 * best[2]:.1f}% validation accuracy at epoch {best[1]:.3g}")
            elif loss:
                parts.append(f"{name}: training loss {loss[-1][2]:.3g} at epoch {loss[-1][1]:.3g}, no validation yet")
            else:
                parts.append(f"{name}: no step logged yet")
        sentences.append("; ".join(parts))
    return (". ".join(sentences) + ".") if sentences else "No runs to draw."


__all__ = ["ChartTable", "curves_summary", "curves_table", "figure_summary", "figure_table", "text_of"]
