"""The Choose panel on Build: which ResNet for my budget. Published accuracy against cost (torchvision's ImageNet
weights, the paper's Table 6) with the model being built on the same axes, this lab's runs with their Pareto front,
and the budget question. Every chart goes through :func:`resnet_lab.ui.charts.show_chart` (its sentence, its
numbers and a CSV). The panel is an expander whose body runs only while it is open, and of its tabs only the one
shown runs; nothing in it times a model:
speeds come from the speed job's records, handed in as ``speeds`` (preset -> its measured speed on this device);
without them the time limits answer "not measured" and a button (``measure``, wired by whoever has the job) asks
for a measurement.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import pandas as pd
import streamlit as st

from ..experiments.budget import DEFAULT_TRAIN_IMAGES, NOT_MEASURED, Budget, answer, answer_sentence
from ..experiments.choose import AXES, datasets_of, front_of, run_points
from ..experiments.speed import lab_device_name, measured
from ..fmt import csv_text
from ..models.presets import model_label
from ..models.published import TABLE6, TABLE6_SOURCE, TORCHVISION_SOURCE, imagenet_rows
from ..spec import ModelSpec
from ..viz.choose import (Built, published_figure, published_summary, published_table, runs_figure, runs_summary,
                          runs_table, table6_figure, table6_summary, table6_table)
from .cache import cached_summary
from .charts import show_chart
from .identity import me, owner_label
from .session import store
from .speed import measure_missing, speed_panel
from .widgets import choice

KEY = "build_choose"
PANEL_LABEL = "Choose: which ResNet for my budget?"
NOT_MEASURED_TEXT = "not measured on this device yet"
TABS = ("Published", "Your runs", "Budget", "Speed on this device")


def _built(spec: ModelSpec, size: int) -> list[Built]:
    out = []
    for s in (spec, spec.twin()):
        summary = cached_summary(s, size)
        label = model_label(s.to_dict())
        out.append(Built(label=label if len(label) <= 40 else ("this model" if s is spec else "its twin"),
                         kind="ResNet" if s.skip else "plain", gmacs=summary.macs / 1e9, params=summary.params,
                         input_size=size))
    return out


def _published(built: list[Built]) -> None:
    rows = imagenet_rows()
    show_chart(published_figure(rows, built, TORCHVISION_SOURCE), key=f"{KEY}_published",
               summary=published_summary(rows, built, TORCHVISION_SOURCE),
               table=published_table(rows, built, TORCHVISION_SOURCE))
    show_chart(table6_figure(TABLE6, [b for b in built if b.input_size <= 64], TABLE6_SOURCE), key=f"{KEY}_table6",
               summary=table6_summary(TABLE6, TABLE6_SOURCE), table=table6_table(TABLE6, TABLE6_SOURCE))


def _runs() -> None:
    points = run_points(store())
    if not points:
        st.info("No finished run yet: train one (and its plain twin) on the Train page, and it shows here as a point.",
                icon=":material/scatter_plot:")
        return
    c = st.columns(2)
    dataset = choice(c[0].selectbox, "Dataset", datasets_of(points), key=f"{KEY}_dataset")
    axis = choice(c[1].radio, "Cost", list(AXES), format_func=lambda a: AXES[a].label, key=f"{KEY}_axis",
                  horizontal=True)
    mine = [p for p in points if p.dataset == dataset]
    who = me()
    names = {p.run_id: owner_label(p.owner, p.owner_name, who) for p in mine}
    f = front_of(mine, axis)
    if not f.points:
        st.info(f"None of these runs logged its {AXES[axis].label}: choose another cost.", icon=":material/info:")
        return
    if f.sentence:
        st.markdown(f"**{f.sentence}**")
    show_chart(runs_figure(f, names), key=f"{KEY}_runs", summary=runs_summary(f), table=runs_table(f, names))


def _number(where: Any, label: str, key: str, help: str, step: float) -> float | None:
    v = where.number_input(label, min_value=0.0, value=0.0, step=step, key=key, help=help + " 0: no limit.")
    return float(v) if v else None


def _budget(points: list, speeds: Mapping[str, Any], device_name: str | None,
            measure: Callable[[], None] | None) -> None:
    where = f" on {device_name}" if device_name else ""
    if not speeds:
        st.info(f"Speeds are {NOT_MEASURED_TEXT}{where}: the time limits answer \"{NOT_MEASURED}\" until they are.",
                icon=":material/speed:")
    st.button("Measure the presets' speed on this device" if not speeds else "Measure the presets not measured yet",
              key=f"{KEY}_measure", on_click=measure, disabled=measure is None, icon=":material/timer:",
              help="A short background job on the one queue; the page never times anything itself."
              if measure is not None else "The speed measurement is not available in this lab yet.")
    c = st.columns(3)
    max_ms = _number(c[0], f"At most ms per image{where}", f"{KEY}_ms", "Batch-1 inference latency.", 1.0)
    max_mb = _number(c[1], "At most MB of weights", f"{KEY}_mb", "float32 weights: parameters × 4 bytes.", 10.0)
    max_min = _number(c[2], "At most minutes of training", f"{KEY}_min", "At the measured training speed.", 5.0)
    c = st.columns(2)
    epochs = int(c[0].number_input("Epochs", min_value=1, max_value=10_000, value=10, key=f"{KEY}_epochs"))
    images = int(c[1].number_input("Training images", min_value=1, max_value=100_000_000,
                                   value=DEFAULT_TRAIN_IMAGES // 10, key=f"{KEY}_images",
                                   help="The size of your training set (CIFAR-10: 50,000)."))
    fits = answer(Budget(max_ms=max_ms, max_mb=max_mb, max_minutes=max_min, train_images=epochs * images),
                  speeds, points)
    st.markdown(answer_sentence(fits))
    columns = ("preset", "verdict", "why", "size MB", "ms per image", "training min", "published", "your runs")
    rows = [(f.preset, f.verdict, f.why, round(f.size_mb, 2), f.latency_ms,
             round(f.train_minutes, 2) if f.train_minutes is not None else None, f.published, f.lab) for f in fits]
    st.dataframe(pd.DataFrame(rows, columns=list(columns)), hide_index=True, width="stretch", key=f"{KEY}_answer",
                 placeholder="—")
    st.download_button("Download CSV", data=csv_text(columns, rows), file_name="budget.csv", mime="text/csv",
                       key=f"{KEY}_answer_csv", icon=":material/download:", on_click="ignore")


def _this_device() -> tuple[dict[str, Any], str, Callable[[], None]]:
    """The presets' speeds measured on the lab's device, its name, and the callback that queues the speed job for
    the presets not measured yet (:mod:`resnet_lab.experiments.speed`: the page only reads its records)."""
    from ..jobs import slots

    name = lab_device_name(slots.default_device())
    return measured(store(), name), name, lambda: measure_missing(None, False)


def choose_panel(spec: ModelSpec, size: int, speeds: Mapping[str, Any] | None = None,
                 device_name: str | None = None, measure: Callable[[], None] | None = None) -> None:
    """The panel, closed until opened (see the module docstring). ``speeds``: preset -> measured speed on this
    device (objects with ``latency_ms`` and ``train_images_per_s``); ``device_name``: that device in words;
    ``measure``: the measure button's callback (None: shown disabled)."""
    panel = st.expander(PANEL_LABEL, key=KEY, on_change="rerun", icon=":material/balance:")
    if not panel.open:
        return
    with panel:
        st.caption("Accuracy against cost: what others published, what your runs reached, and which presets fit "
                   "your limits.")
        published, runs, budget, speed = st.tabs(TABS, key=f"{KEY}_tab", on_change="rerun")  # only the open one runs
        if published.open:
            with published:
                _published(_built(spec, size))
        if runs.open:
            with runs:
                _runs()
        if budget.open:
            with budget:
                if speeds is None:  # this device's measured speeds (the speed job's records), and its button
                    speeds, device_name, measure = _this_device()
                _budget(run_points(store()), speeds, device_name, measure)
        if speed.open:
            with speed:
                speed_panel(key=f"{KEY}_")


__all__ = ["KEY", "NOT_MEASURED_TEXT", "PANEL_LABEL", "choose_panel"]
