"""One job as every page shows it: its status icon, whose it is, its Stop and Resume buttons (for whoever may
press them), a refusal kept for a few seconds, and — before a job exists — where it would stand in the queue."""

from __future__ import annotations

import time
from typing import Any, Callable

import streamlit as st

from .. import jobs
from ..identity import Identity, NotAllowed
from ..jobs.eta import forecast
from ..jobs.slots import resolve_device
from ..store import RESUMABLE, Job, Store
from .common import plain
from .identity import me, owner_label
from .session import store

STATUS_ICON = {"queued": ":material/schedule:", "running": ":material/directions_run:",
               "done": ":material/check_circle:", "stopped": ":material/stop_circle:", "failed": ":material/error:",
               "diverged": ":material/trending_up:", "interrupted": ":material/warning:"}


def not_yours(job: Job, who: Identity) -> str | None:
    """Why ``who`` may not stop, resume or delete ``job`` (None: they may). The jobs layer refuses anyway."""
    if who.may_manage(job.owner):
        return None
    return f"Only {owner_label(job.owner, job.owner_name, who)} (whose job it is) or a teacher may change it."


def act(action: Callable[..., Any], job_id: int, s: Store, who: Identity, error_key: str) -> bool:
    """Do one of ``jobs.stop/resume/delete`` as ``who``; a refusal is kept under ``error_key`` for
    :func:`show_error` (the page reruns after an action)."""
    try:
        action(job_id, s, by=who)
    except (NotAllowed, ValueError, KeyError) as e:
        st.session_state[error_key] = (f"Job {job_id}: {e}", time.monotonic())
        return False
    st.session_state.pop(error_key, None)
    return True


def show_error(error_key: str, for_s: float = 10.0) -> None:
    """The refusal :func:`act` kept, for ``for_s`` seconds (a live view redraws itself meanwhile)."""
    kept = st.session_state.get(error_key)
    if not isinstance(kept, tuple) or time.monotonic() - kept[1] > for_s:
        st.session_state.pop(error_key, None)
        return
    st.error(kept[0], icon=":material/error:")


def job_controls(s: Store, job: Job, who: Identity, error_key: str) -> None:
    """Stop (or Resume) for whoever may; someone else's job shows whose it is instead of a button."""
    why = not_yours(job, who)
    if why is not None:
        if job.active or job.status in RESUMABLE:
            st.caption(f":material/lock: {plain(why)}")
        return
    cols = st.columns([1, 4])
    if job.active:
        if cols[0].button("Stop", icon=":material/stop:", key=f"stop_{job.id}", disabled=job.stop_requested):
            act(jobs.stop, job.id, s, who, error_key)
            st.rerun(scope="fragment")
        if job.stop_requested:
            cols[1].caption("Stopping: finishing the step and saving a checkpoint…")
    elif job.status in RESUMABLE:
        if cols[0].button("Resume", icon=":material/replay:", key=f"resume_{job.id}"):
            act(jobs.resume, job.id, s, who, error_key)
            st.rerun(scope="fragment")


def queue_preview(device: str, estimate_s: float | None, what: str = "A new run") -> None:
    """Before the button is pressed: where a job for ``device`` would stand in the queue now."""
    try:
        where = resolve_device(device)
    except ValueError as e:
        st.caption(f":material/warning: {e}")
        return
    f = forecast(store(), new={"device": where, "estimate_s": estimate_s, "owner": me().owner})[None]
    st.caption(f":material/schedule: {what} on {where}: {f.describe()}.")
