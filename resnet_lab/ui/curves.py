"""The training curves a live view draws: built when their runs have new data, once for every tab of this
server (at most once a :data:`FIGURE_EVERY_S` while they train), with their numbers rounded to what the chart
shows (half the bytes to send), as the finished dict ``st.plotly_chart`` sends (:class:`ReadyFigure`: about a
millisecond to build, nothing copied or validated again on a tick)."""

from __future__ import annotations

import json
import threading
import time
from typing import Sequence

from plotly.basedatatypes import BaseFigure

from ..store import Run, Store
from ..viz.tables import ChartTable, curves_summary, curves_table
from ..viz.training import RunCurves, curves_spec
from .cache import SharedResults
from .charts import show_chart

MAX_POINTS = 200  # per curve and chart update (a panel of the chart is ~300 px wide): long runs are decimated
FIGURE_EVERY_S = 1.0  # a running job's curves are built at most this often per server (its worker writes every 0.5 s)

# Kept small: what a cache holds is walked by the garbage collection after every run until the heap is settled
_figures = SharedResults(64)  # (lab, run ids) -> (built when, runs' progress, curves figure): the newest of those
_build_lock = threading.Lock()


def _rounded(points: list[tuple[int, float, float]]) -> list[tuple[int, float, float]]:
    """Points as the chart shows them (hover: 4 significant digits) with a digit to spare: the JSON sent to
    every tab on every update shrinks by half."""
    return [(step, round(epoch, 4), float(f"{value:.5g}")) for step, epoch, value in points]


def _curves(s: Store, runs: Sequence[Run]) -> list[RunCurves]:
    # colour from identity, the same in the live panel and the compare view: a plain twin takes its
    # ResNet's id and is drawn in a darker shade of that colour
    return [RunCurves(label=f"#{r.id} {r.name}", plain=r.kind == "plain",
                      key=r.partner_id if r.kind == "plain" and r.partner_id is not None else r.id,
                      metrics={k: _rounded(v) for k, v in s.runs.metrics(r.id, max_points=MAX_POINTS).items()})
            for r in runs]


def progress_key(runs: Sequence[Run]) -> tuple:
    """What the curves of ``runs`` depend on. A worker writes a batch of metrics, then the runs' step; an
    evaluation also updates ``last``; a resumed run truncates its metrics and steps back."""
    return tuple((r.id, r.name, r.kind, r.partner_id, r.status, r.step, r.total_steps,
                  json.dumps(r.last, sort_keys=True)) for r in runs)


class ReadyFigure(BaseFigure):
    """A figure already in the form ``st.plotly_chart`` sends: a plotly figure dict that is never changed.
    ``st.plotly_chart`` takes a Figure's ``to_dict()`` — for a real one a deep copy of every point, ~3 ms — and
    validates a plain dict anew (~50 ms): this one hands over its dict as it is, so a tick that draws the same
    curves again costs the JSON only. (Not a full Figure: it is only drawn.)"""

    def __init__(self, spec: dict, curves: Sequence[RunCurves] = ()) -> None:  # noqa: D107 — BaseFigure.__init__
        self._spec = spec  # would validate the whole figure
        self._curves = tuple(curves)  # what it draws, for its sentence and its table (resnet_lab.viz.tables);
        self._summary = curves_summary(self._curves)  # (BaseFigure refuses public attributes it does not know)

    @property
    def summary(self) -> str:
        return self._summary

    def to_dict(self) -> dict:
        return self._spec

    def table(self) -> ChartTable:
        """Its numbers (built when asked: only while someone has them open)."""
        return curves_table(self._curves)


def show_curves(figure: ReadyFigure, key: str) -> None:
    """Curves from :func:`curves_for` through the one chart helper: their sentence, their numbers on a click."""
    show_chart(figure, key=key, summary=figure.summary, table=figure.table)


def curves_for(s: Store, runs: Sequence[Run]) -> ReadyFigure:
    """The training curves of ``runs`` (:func:`resnet_lab.viz.training.curves_spec`): built once per new data
    and shared by every tab of this server. While they train, at most once a :data:`FIGURE_EVERY_S`: a tab
    looks every ``FAST_S`` anyway, and the worker writes twice a second, so thirty tabs would otherwise
    each find new data. A run that changes status is drawn anew at once."""
    which, key = (str(s.path), tuple(r.id for r in runs)), progress_key(runs)

    def fresh() -> ReadyFigure | None:
        newest = _figures.get(which)
        if newest is None:
            return None
        built, newest_key, figure = newest
        same_statuses = [k[4] for k in newest_key] == [k[4] for k in key]
        return figure if newest_key == key or (same_statuses and time.monotonic() - built < FIGURE_EVERY_S) else None

    figure = fresh()
    if figure is None:
        with _build_lock:  # tabs asking at once: one builds, the others take its figure
            figure = fresh()
            if figure is None:
                curves = _curves(s, runs)
                figure = ReadyFigure(curves_spec(curves), curves)
                _figures.put(which, (time.monotonic(), key, figure))
    return figure
