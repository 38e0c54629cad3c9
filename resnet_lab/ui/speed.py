"""The presets' speed on this device, for a page: a table read from the store (:func:`resnet_lab.experiments.speed.
measured`), the device's name above it, and a **Measure on this device** button that queues the ``speed`` job — with
that job live (progress, Stop) while it runs. The page never times anything itself: the job does, in a worker.
"""

from __future__ import annotations

import time
from typing import Sequence

import streamlit as st

from ..experiments.speed import check_presets, lab_device_name, measured, submit_speed
from ..experiments.speed.jobs import KIND
from ..fmt import csv_text
from ..store import Job, QueueFull
from .common import plain
from .identity import me
from .job_card import job_card, show_error
from .session import live_fragment, pump, store

ERROR_KEY = "speed_error"
NOT_MEASURED = "not measured on this device yet"
COLUMNS = ("preset", "train images/s", "latency ms (batch 1)", "images/s (batch 64)", "train batch", "px", "measured")


def speed_rows(speeds: dict, presets: Sequence[str]) -> list[tuple]:
    """One row per preset of ``presets`` for the table: its figures, or empty cells and "not measured on this device
    yet" in the last column where there are none (numbers and words never share a column)."""
    rows: list[tuple] = []
    for name in presets:
        s = speeds.get(name)
        if s is None:
            rows.append((name, None, None, None, None, None, NOT_MEASURED))
            continue
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.measured_at))
        rows.append((name, round(s.train_images_per_s, 1), round(s.latency_ms, 2), round(s.images_per_s, 1),
                     s.batch, s.image_size, when))
    return rows


def _latest_job(presets: Sequence[str], device_name: str) -> Job | None:
    for job in store().jobs.list(kinds=[KIND], limit=50):
        if job.params.get("device_name") == device_name and set(job.params.get("presets", ())) & set(presets):
            return job
    return None


def measure_missing(presets: Sequence[str] | None, remeasure: bool) -> None:
    """A button's callback: queue the speed job for ``presets`` (None: all) as this person; a refusal is shown."""
    try:
        submit_speed(store(), presets, owner=me(), remeasure=remeasure)
    except (QueueFull, ValueError) as e:
        st.session_state[ERROR_KEY] = (str(e), time.monotonic())
        return
    st.session_state.pop(ERROR_KEY, None)


def _live(presets: Sequence[str], device_name: str, key: str) -> list[str]:
    s = store()
    pump(s)
    job = _latest_job(presets, device_name)
    if job is None:
        return []
    job_card(s, job, me(), ERROR_KEY, [(job.status, "speed measurement")], key=f"{key}speed_", resumable=False)
    if job.status == "failed" and job.error:
        st.error(plain(job.error, 1500), icon=":material/error:")
    return [job.status]


def speed_panel(presets: Sequence[str] | None = None, key: str = "") -> None:
    """The speed table of ``presets`` (default: all) on the lab's device, the button that measures the missing ones
    (or, when all are there, measures them again), and the measuring job live while there is one."""
    from ..jobs import slots

    kind = slots.default_device()
    names = check_presets(list(presets) if presets is not None else None, kind)
    device_name = lab_device_name(kind)
    speeds = measured(store(), device_name)
    st.caption(f"Measured on **{plain(device_name, 120)}**: training images/s at each preset's recipe batch, "
               "the median time of one image, and images/s in batches of 64 (random images, after a warm-up). "
               "On a machine busy with other work the figures are lower.")
    rows = speed_rows(speeds, names)
    st.dataframe({c: [r[i] for r in rows] for i, c in enumerate(COLUMNS)}, hide_index=True, key=f"{key}speed_table",
                 placeholder="—")
    st.download_button("Download as CSV", csv_text(COLUMNS, rows), file_name="speeds.csv", mime="text/csv",
                       key=f"{key}speed_csv")
    missing = [n for n in names if n not in speeds]
    show_error(ERROR_KEY)
    job = _latest_job(names, device_name)
    if job is not None and job.active:
        live_fragment(_live, [job.status], tuple(names), device_name, key)
        return
    if missing:
        st.info(f"{len(missing)} of {len(names)} presets are not measured on this device yet.")
    label = "Measure on this device" if missing else "Measure again on this device"
    st.button(label, icon=":material/speed:", key=f"{key}speed_measure", on_click=measure_missing,
              args=(list(presets) if presets is not None else None, not missing),
              help="Queues a short job that times each preset in a worker (about two minutes for all of them on a "
                   "2-core CPU); the page only reads its results.")
