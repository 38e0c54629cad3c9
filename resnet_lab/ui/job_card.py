"""One job as every page shows it (:func:`job_card`: the Train and Fine-tune live panel, the Degradation and
Landscape pages): its status, its progress with its place in the queue and time left, its Stop and Resume buttons
for whoever may press them (Resume for a failed job too where its kind resumes it: :func:`resume_offer`), a
refusal kept for a few seconds — and, before a job exists, where it would stand in the queue
(:func:`queue_preview`)."""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import streamlit as st

from .. import jobs
from ..identity import Identity, NotAllowed
from ..fmt import format_bytes, format_duration
from ..jobs.eta import forecast, pace
from ..jobs.launch import host_label
from ..jobs.slots import resolve_device
from ..store import RESUMABLE, Job, Store
from .common import plain
from .identity import me, owner_label
from .session import queue_place, store

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


def progress_text(job: Job, label: str = "") -> str:
    """What a job's progress bar says: "step 120 of 400" for training, "36 of 81 evaluations" for other units
    (without a total: "step 120"), "41.2 MiB of 162.6 MiB · 3.1 MiB/s · about 40 s left" for a download, after
    ``label``."""
    if job.unit == "bytes":
        text = f"{label}{format_bytes(job.progress)}" + (f" of {format_bytes(job.total)}" if job.total else "")
        moving = pace(job)
        if moving is not None:
            rate, left = moving
            text += f" · {format_bytes(rate)}/s" + (f" · about {format_duration(left)} left" if left else "")
        return text
    done = f"step {job.progress}" if job.unit == "steps" else f"{job.progress}"
    of = f" of {job.total}" if job.total else ""
    unit = "" if job.unit == "steps" else f" {job.unit}"
    return f"{label}{done}{of}{unit}"


def job_card(s: Store, job: Job, who: Identity, error_key: str, parts: Sequence[tuple[str, str]],
             label: str = "", key: str = "", resumable: bool = True) -> None:
    """One job as every page shows it: a status line (``parts``: (status, plain text) per thing the job runs — its
    runs, or the job itself — each with its icon), a progress bar in the job's unit with its place in the queue and
    time left (:func:`resnet_lab.ui.session.queue_place`: the queue's forecast, in words by
    :func:`resnet_lab.fmt.format_duration`), and Stop (or Resume, when ``resumable``) for whoever may press them —
    someone else's job says whose it is instead. Buttons are keyed ``{key}stop_{job id}`` and
    ``{key}resume_{job id}``; a refusal is kept under ``error_key`` for :func:`show_error`."""
    st.markdown(" · ".join(f"{STATUS_ICON.get(status, '')} {text}: **{status}**" for status, text in parts))
    place = queue_place(s, job)
    when = f" · {place.describe()}" if place is not None else ""
    host = host_label(job.host) if job.active else None  # a worker on another machine (a cluster's node)
    where = f" · on {plain(host)}" if host else ""
    st.progress(job.fraction, text=progress_text(job, label) + when + where)
    can_resume, refusal = resume_offer(s, job) if resumable else (False, None)
    why = not_yours(job, who)
    if why is not None:  # someone else's: whose it is, no button (the jobs layer would refuse anyway)
        if job.active or can_resume:
            st.caption(f":material/lock: {plain(why)}")
        return
    if refusal is not None:
        st.caption(f":material/block: {plain(refusal)}")
    cols = st.columns([1, 4])
    if job.active:
        saving = "finishing the step and saving a checkpoint" if resumable else "saving what has been computed"
        cols[0].button("Stop", icon=":material/stop:", key=f"{key}stop_{job.id}", disabled=job.stop_requested,
                       on_click=act, args=(jobs.stop, job.id, s, who, error_key),
                       help=f"Stops the job, {saving}." + (" Resume continues." if resumable else ""))
        if job.stop_requested:
            cols[1].caption(f"Stopping: {saving}…")
    elif can_resume:
        cols[0].button("Resume", icon=":material/replay:", key=f"{key}resume_{job.id}",
                       on_click=act, args=(jobs.resume, job.id, s, who, error_key))


def resume_offer(s: Store, job: Job) -> tuple[bool, str | None]:
    """(whether to offer Resume for ``job``, why not when it is a failed job whose kind resumes failed jobs): a
    stopped or interrupted job is offered it; a failed training job too when its checkpoints are intact
    (:func:`resnet_lab.jobs.resume_refusal`), else the reason is shown instead."""
    if job.status in RESUMABLE:
        return True, None
    if job.status != "failed" or not jobs.resumes_after_failure(job.kind):
        return False, None
    refusal = jobs.resume_refusal(job, s)
    return refusal is None, refusal


def queue_preview(device: str, estimate_s: float | None, what: str = "A new run") -> None:
    """Before the button is pressed: where a job for ``device`` would stand in the queue now."""
    try:
        where = resolve_device(device)
    except ValueError as e:
        st.caption(f":material/warning: {e}")
        return
    f = forecast(store(), new={"device": where, "estimate_s": estimate_s, "owner": me().owner})[None]
    st.caption(f":material/schedule: {what} on {where}: {f.describe()}.")
