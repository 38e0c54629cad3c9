"""The live run panel and the runs table, shared by the Train and Fine-tune pages.

Both are fragments that poll the store (``run_every``): a page never computes, it reads what the
worker processes write. Each tick also pumps the queue (reaping dead workers, starting queued jobs).
"""

from __future__ import annotations

import time
import uuid

import pandas as pd
import streamlit as st

from ..spec import ModelSpec
from ..store import Run, Store
from ..train import launcher
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
    return [RunCurves(label=f"#{r.id} {r.name}", plain=not r.spec.get("skip", True) and len(runs) > 1,
                      metrics=s.metrics(r.id, max_points=MAX_POINTS)) for r in runs]


def _eta(run: Run) -> str:
    if not run.total_steps or not run.step or run.started_at is None:
        return ""
    elapsed = time.time() - run.started_at
    left = elapsed / run.step * (run.total_steps - run.step)
    return f" · about {left:.0f} s left" if left < 120 else f" · about {left / 60:.0f} min left"


def _describe(spec_dict: dict) -> str:
    try:
        return ModelSpec.from_dict(spec_dict).describe()
    except ValueError:
        return "?"


def _job_controls(s: Store, job: Run) -> None:
    cols = st.columns([1, 4])
    if job.status in ("queued", "running"):
        if cols[0].button("Stop", icon=":material/stop:", key=f"stop_{job.id}", disabled=job.stop_requested):
            launcher.stop(job.id, s)
            st.rerun(scope="fragment")
        if job.stop_requested:
            cols[1].caption("Stopping: finishing the step and saving a checkpoint…")
    elif job.status in ("stopped", "interrupted"):
        if cols[0].button("Resume", icon=":material/replay:", key=f"resume_{job.id}"):
            launcher.resume(job.id, s)
            st.rerun(scope="fragment")


def live_panel(watch_key: str, empty_text: str, title: str = "") -> None:
    """Progress, controls and curves of the watched jobs (``st.session_state[watch_key]``: job ids),
    or of the newest job when none is watched. Refreshes itself every 1.5 s."""

    @st.fragment(run_every=1.5)
    def panel() -> None:
        s = store()
        launcher.pump(s)
        job_ids = st.session_state.get(watch_key)
        if not job_ids:
            latest = [r for r in s.runs(limit=50) if r.twin_of is None]
            if not latest:
                st.info(empty_text, icon=":material/info:")
                return
            job_ids = [latest[0].id]
        jobs = []
        for job_id in job_ids:
            try:
                runs = s.job_runs(job_id)
            except KeyError:
                runs = []
            if runs:
                jobs.append(runs)
        if not jobs:
            st.session_state.pop(watch_key, None)
            return
        if len(jobs) == 1:
            job = jobs[0][0]
            st.subheader(f"{title}Run #{job.id}: {job.name}" + (" and its plain twin" if len(jobs[0]) > 1 else ""))
        else:
            st.subheader(f"{title}{len(jobs)} runs side by side")
        all_runs = [r for runs in jobs for r in runs]
        for runs in jobs:
            job = runs[0]
            st.markdown(" · ".join(f"{STATUS_ICON.get(r.status, '')} #{r.id} {r.name}: **{r.status}**"
                                   for r in runs))
            frac = (job.step / job.total_steps) if job.total_steps else 0.0
            st.progress(min(1.0, frac), text=f"step {job.step} of {job.total_steps or '?'}" + (
                _eta(job) if job.status == "running" else ""))
            _job_controls(s, job)
            for r in runs:
                if r.error:
                    (st.warning if r.status in ("interrupted", "stopped") else st.error)(f"{r.name}: {r.error}")
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
        runs = s.runs()
        st.subheader("Runs")
        if not runs:
            st.caption("Runs you and others launch on this server appear here.")
            return
        df = pd.DataFrame([{
            "id": r.id, "status": r.status, "name": r.name, "model": _describe(r.spec),
            "data": f"{r.data.get('name')} {r.data.get('image_size')}px",
            "best val acc": r.best.get("val/acc"), "step": f"{r.step}/{r.total_steps or '?'}",
            "duration (s)": round(r.duration_s, 1) if r.duration_s is not None else None, "device": r.device,
            "twin of": r.twin_of,
        } for r in runs])
        event = st.dataframe(df, key=f"runs_table_{watch_key}", on_select="rerun", selection_mode="multi-row",
                             hide_index=True, width="stretch", column_config={
                                 "best val acc": st.column_config.ProgressColumn(min_value=0, max_value=1,
                                                                                 format="percent")})
        chosen = [runs[i] for i in event.selection.rows] if event and event.selection else []
        if not chosen:
            st.caption("Select rows to compare their curves, watch, resume or delete them.")
            return
        a = st.columns(4)
        if a[0].button("Watch", key=f"act_watch_{watch_key}"):
            st.session_state[watch_key] = sorted({r.twin_of or r.id for r in chosen})
            st.rerun()
        if a[1].button("Resume", key=f"act_resume_{watch_key}", disabled=not all(
                r.status in ("stopped", "interrupted") and r.twin_of is None for r in chosen)):
            for r in chosen:
                launcher.resume(r.id, s)
            st.rerun()
        if a[2].button("Delete", key=f"act_delete_{watch_key}", disabled=any(r.active for r in chosen)):
            for job_id in sorted({r.twin_of or r.id for r in chosen}):
                s.delete(job_id)
            st.session_state.pop(watch_key, None)
            st.rerun()
        st.markdown("**Compare**")
        st.plotly_chart(curves_figure(_curves(chosen)), key=f"compare_curves_{watch_key}", width="stretch")

    table()
