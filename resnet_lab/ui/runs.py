"""The live run panel and the runs table, shared by the Train and Fine-tune pages.

Both are fragments that poll the store (``run_every``): a page never computes, it reads what the
worker processes write. Each tick also pumps the queue (reaping dead workers, starting queued jobs).
:func:`queue_preview` says where a job would stand before its button is pressed.
"""

from __future__ import annotations

import uuid

import pandas as pd
import streamlit as st

from .. import jobs
from ..jobs.eta import forecast
from ..jobs.slots import resolve_device
from ..spec import ModelSpec
from ..store import RESUMABLE, Job, Run, Store
from ..viz.training import RunCurves, curves_figure

MAX_POINTS = 400  # per curve and chart update: long runs are decimated so a refresh stays small
STATUS_ICON = {"queued": ":material/schedule:", "running": ":material/directions_run:",
               "done": ":material/check_circle:", "stopped": ":material/stop_circle:", "failed": ":material/error:",
               "diverged": ":material/trending_up:", "interrupted": ":material/warning:"}


def store() -> Store:
    """This browser session's connection to the run database."""
    if "lab_store" not in st.session_state:
        st.session_state["lab_store"] = Store()
    return st.session_state["lab_store"]


def session_token() -> str:
    return st.session_state.setdefault("lab_session", uuid.uuid4().hex)


def _curves(runs: list[Run]) -> list[RunCurves]:
    s = store()
    # colour from identity, the same in the live panel and the compare view: a plain twin takes its
    # ResNet's id and is drawn in a grey shade of that colour
    return [RunCurves(label=f"#{r.id} {r.name}", plain=r.kind == "plain",
                      key=r.partner_id if r.kind == "plain" and r.partner_id is not None else r.id,
                      metrics=s.runs.metrics(r.id, max_points=MAX_POINTS)) for r in runs]


def _describe(spec_dict: dict) -> str:
    try:
        return ModelSpec.from_dict(spec_dict).describe()
    except ValueError:
        return "?"


def queue_text(job: Job, where: dict) -> str:
    """Where a queued or running job stands ("3 jobs ahead, starts in about 4 min"), or ""."""
    f = where.get(job.id)
    return f.describe() if f is not None and job.active else ""


def queue_preview(device: str, estimate_s: float | None, what: str = "A new run") -> None:
    """Before the button is pressed: where a job for ``device`` would stand in the queue now."""
    try:
        where = resolve_device(device)
    except ValueError as e:
        st.caption(f":material/warning: {e}")
        return
    f = forecast(store(), new={"device": where, "estimate_s": estimate_s})[None]
    st.caption(f":material/schedule: {what} on {where}: {f.describe()}.")


def _job_controls(s: Store, job: Job) -> None:
    cols = st.columns([1, 4])
    if job.active:
        if cols[0].button("Stop", icon=":material/stop:", key=f"stop_{job.id}", disabled=job.stop_requested):
            jobs.stop(job.id, s)
            st.rerun(scope="fragment")
        if job.stop_requested:
            cols[1].caption("Stopping: finishing the step and saving a checkpoint…")
    elif job.status in RESUMABLE:
        if cols[0].button("Resume", icon=":material/replay:", key=f"resume_{job.id}"):
            jobs.resume(job.id, s)
            st.rerun(scope="fragment")


def live_panel(watch_key: str, empty_text: str, title: str = "", kinds: tuple[str, ...] = ("train",)) -> None:
    """Progress, queue place, controls and curves of the watched runs' jobs (``st.session_state[watch_key]``:
    run ids), or of the newest job of this page's ``kinds`` (not one an experiment launched) when none is
    watched. Refreshes itself every 1.5 s."""

    @st.fragment(run_every=1.5)
    def panel() -> None:
        s = store()
        jobs.pump(s)
        watched = st.session_state.get(watch_key)
        job_ids: list[int] = []
        for rid in watched or []:
            try:
                job_id = s.runs.get(rid).job_id
            except KeyError:
                continue
            if job_id is not None and job_id not in job_ids:
                job_ids.append(job_id)
        if not watched:
            latest = [j for j in s.jobs.list(kinds=kinds, limit=50) if j.origin is None]
            if not latest:
                st.info(empty_text, icon=":material/info:")
                return
            job_ids = [latest[0].id]
        groups = [(s.jobs.get(j), s.runs.of_job(j)) for j in job_ids]
        groups = [(job, runs) for job, runs in groups if runs]
        if not groups:
            st.session_state.pop(watch_key, None)
            return
        if len(groups) == 1:
            job, runs = groups[0]
            st.subheader(f"{title}Run #{runs[0].id}: {runs[0].name}" + (" and its plain twin" if len(runs) > 1
                                                                        else ""))
        else:
            st.subheader(f"{title}{len(groups)} runs side by side")
        where = forecast(s) if any(job.active for job, _ in groups) else {}
        all_runs = [r for _, runs in groups for r in runs]
        for job, runs in groups:
            st.markdown(" · ".join(f"{STATUS_ICON.get(r.status, '')} #{r.id} {r.name}: **{r.status}**"
                                   for r in runs))
            place = queue_text(job, where)
            st.progress(job.fraction, text=f"step {job.progress} of {job.total or '?'}" + (f" · {place}" if place
                                                                                          else ""))
            _job_controls(s, job)
            for r in runs:
                if r.error:
                    (st.warning if r.status in RESUMABLE else st.error)(f"{r.name}: {r.error}")
        best = [f"{r.name}: best val acc **{r.best['val/acc']:.1%}**" for r in all_runs if "val/acc" in r.best]
        if best:
            st.markdown(" · ".join(best))
        st.plotly_chart(curves_figure(_curves(all_runs)), key=f"live_curves_{watch_key}", width="stretch")

    panel()


def runs_table(watch_key: str) -> None:
    """Every run on this server, newest first; select rows to compare, watch, resume or delete."""

    @st.fragment(run_every=5)
    def table() -> None:
        s = store()
        runs = s.runs.list()
        st.subheader("Runs")
        if not runs:
            st.caption("Runs you and others launch on this server appear here.")
            return
        df = pd.DataFrame([{
            "id": r.id, "status": r.status, "name": r.name, "model": _describe(r.spec),
            "data": f"{r.data.get('name')} {r.data.get('image_size')}px",
            "best val acc": r.best.get("val/acc"), "step": f"{r.step}/{r.total_steps or '?'}",
            "duration (s)": round(r.duration_s, 1) if r.duration_s is not None else None, "device": r.device,
            "twin": r.partner_id,
        } for r in runs])
        event = st.dataframe(df, key=f"runs_table_{watch_key}", on_select="rerun", selection_mode="multi-row",
                             hide_index=True, width="stretch", column_config={
                                 "best val acc": st.column_config.ProgressColumn(min_value=0, max_value=1,
                                                                                 format="percent")})
        chosen = [runs[i] for i in event.selection.rows] if event and event.selection else []
        if not chosen:
            st.caption("Select rows to compare their curves, watch, resume or delete them.")
            return
        chosen_jobs = sorted({r.job_id for r in chosen if r.job_id is not None})
        a = st.columns(4)
        if a[0].button("Watch", key=f"act_watch_{watch_key}"):
            st.session_state[watch_key] = [r.id for r in chosen]
            st.rerun()
        if a[1].button("Resume", key=f"act_resume_{watch_key}", disabled=not all(
                r.status in RESUMABLE for r in chosen)):
            for job_id in chosen_jobs:
                jobs.resume(job_id, s)
            st.rerun()
        if a[2].button("Delete", key=f"act_delete_{watch_key}", disabled=any(r.active for r in chosen)):
            for job_id in chosen_jobs:
                s.jobs.delete(job_id)
            st.session_state.pop(watch_key, None)
            st.rerun()
        st.markdown("**Compare**")
        st.plotly_chart(curves_figure(_curves(chosen)), key=f"compare_curves_{watch_key}", width="stretch")

    table()
