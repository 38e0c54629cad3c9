"""The class gallery (every finished run, whose it is, how well it did), shared by the Gallery and Teacher
pages. Everyone may *view* every run; names typed by people are shown as text."""

from __future__ import annotations

import time
from functools import partial

import pandas as pd
import streamlit as st

from ..analysis.subject import checkpoint_of
from ..export import export_run, zip_name
from ..identity import Identity
from ..models.presets import model_label
from ..store import Run, Store
from .identity import owner_label
from .runs_table import owner_names
from .session import store
from .widgets import ACCURACY_COLUMN, RUN_TEXT_COLUMNS, choice

GALLERY_STATUSES = ("done", "stopped")  # finished runs; a stopped one counts when it kept a checkpoint


def ago(t: float | None, now: float | None = None) -> str:
    """"just now", "4 min ago", "2 h ago", "3 days ago" (or "" without a time)."""
    if t is None:
        return ""
    s = max(0.0, (time.time() if now is None else now) - t)
    if s < 60:
        return "just now"
    if s < 5400:
        return f"{round(s / 60)} min ago"
    if s < 48 * 3600:
        return f"{round(s / 3600)} h ago"
    return f"{round(s / 86400)} days ago"


def gallery_rows(s: Store, who: Identity, mine_only: bool = False) -> list[tuple[Run, dict]]:
    """(run, its row) for every finished run with a checkpoint, newest first."""
    names = owner_names(s)
    rows = []
    for r in s.runs.list(statuses=GALLERY_STATUSES, limit=2000):
        if mine_only and r.owner != who.owner:
            continue
        if checkpoint_of(r) is None:
            continue
        acc = r.best.get("val/acc")
        rows.append((r, {
            "run": r.id, "owner": owner_label(r.owner, names.get(r.job_id, ""), who), "name": r.name,
            "model": model_label(r.spec), "data": f"{r.data.get('name', '?')} {r.data.get('image_size', '?')}px",
            "best val acc": acc if isinstance(acc, (int, float)) else None, "status": r.status,
            "finished": ago(r.finished_at),
        }))
    return rows


def gallery(key: str, who: Identity) -> None:
    """The gallery table with a "Mine only" toggle and a link that opens a run in Predictions."""
    s = store()
    mine = st.toggle("Mine only", key=f"{key}_mine", help="Only the runs you trained.")
    rows = gallery_rows(s, who, mine_only=mine)
    if not rows:
        st.info("No finished run yet" + (" of yours" if mine else "") + ": runs appear here when they finish.",
                icon=":material/photo_library:")
        return
    st.dataframe(pd.DataFrame([row for _, row in rows]), key=f"{key}_table", hide_index=True, width="stretch",
                 placeholder="—",
                 column_config={"best val acc": ACCURACY_COLUMN, **RUN_TEXT_COLUMNS})
    by_id = {r.id: row for r, row in rows}
    c = st.columns([3, 2, 2])
    rid = choice(c[0].selectbox, "Open a run", list(by_id), key=f"{key}_open", format_func=lambda i: (
        f"#{i} {by_id[i]['name']} — {by_id[i]['owner']}"))
    with c[1]:
        st.write("")  # line the link up with the select box
        st.page_link("app_pages/predictions.py", label="Open in Predictions", icon=":material/label:",
                     query_params={"run": str(rid)})
    with c[2]:
        st.write("")
        take_home(rid, by_id[rid]["name"], key=f"{key}_take_home")


def _zip_bytes(run_id: int) -> bytes:
    return export_run(run_id).data


def take_home(run_id: int, name: str, key: str) -> None:
    """The "Take it home" download of a finished run: the zip is built only when the button is clicked."""
    st.download_button("Take it home (.zip)", data=partial(_zip_bytes, run_id), file_name=zip_name(run_id, name),
                       mime="application/zip", on_click="ignore", icon=":material/download:", key=key,
                       help="The weights (safetensors), a manifest (classes, input size, normalization, settings, "
                            "accuracy, versions) and a Python file that loads them with ResNet Lab — and a second "
                            "one for torchvision's own ResNet when it can hold them.")
