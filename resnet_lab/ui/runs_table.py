"""The runs table of the Train and Fine-tune pages: every run on this server, newest first, with whose it is;
select rows to compare their curves, watch, resume or delete them. Rebuilt only when one cheap query says a run
changed, and shared by every tab of this server (see :mod:`resnet_lab.ui.session`)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from .. import jobs
from ..models.presets import model_label
from ..store import RESUMABLE, Run, Store
from .cache import SharedResults
from .curves import curves_for, show_curves
from .identity import me, owner_label
from .job_card import act, resume_offer, show_error
from .session import IDLE_S, TABLE_S, store
from .widgets import ACCURACY_COLUMN, RUN_TEXT_COLUMNS

TABLE_LIMIT = 500
RUNS_COLUMNS = {"best val acc": ACCURACY_COLUMN, **RUN_TEXT_COLUMNS,
                "took": st.column_config.NumberColumn(format="%.1f s", help="Training time, in seconds")}
_tables = SharedResults(2)  # (lab, runs' signature) -> the runs table's rows (older signatures are of no use)

_SIGNATURE_SQL = ("SELECT id, job_id, partner_id, name, status, step, total_steps, best_json, device, started_at,"
                  " finished_at, owner FROM runs ORDER BY id DESC LIMIT ?")


def runs_signature(s: Store, limit: int = TABLE_LIMIT) -> int:
    """A fingerprint of what the runs table shows: one indexed read of small columns (about a millisecond
    for 500 runs), so the table (and its JSON, model descriptions, owners) is rebuilt only when it changed."""
    return hash(tuple(tuple(row) for row in s.db.con.execute(_SIGNATURE_SQL, (limit,))))


def owner_names(s: Store, limit: int = 10 * TABLE_LIMIT) -> dict[int, str]:
    """{job id: the display name its owner gave when it was queued} of the newest ``limit`` training and
    fine-tuning jobs: a run's owner name is its job's (the runs table and the gallery both ask here)."""
    return {j.id: j.owner_name for j in s.jobs.list(kinds=("train", "finetune"), limit=limit)}


def status_text(r: Run) -> str:
    """A run's status, with its step where it stopped part-way ("running · 12/180"): a step column said
    "180/180" on every finished run and pushed the table past a 1280-px window."""
    if r.total_steps and 0 < r.step < r.total_steps:
        return f"{r.status} · {r.step}/{r.total_steps}"
    return r.status


def table_rows(s: Store) -> tuple[list[Run], list[dict], list[str]]:
    """(runs, their table rows, their owners' names), newest first; shared by every tab of this server."""
    def build() -> tuple[list[Run], list[dict], list[str]]:
        runs = s.runs.list(limit=TABLE_LIMIT)
        names = owner_names(s)
        rows = [{"id": r.id, "status": status_text(r), "name": r.name, "model": model_label(r.spec),
                 "data": f"{r.data.get('name')} {r.data.get('image_size')}px",
                 "best val acc": r.best.get("val/acc"),
                 "took": round(r.duration_s, 1) if r.duration_s is not None else None, "device": r.device,
                 "twin": r.partner_id} for r in runs]
        return runs, rows, [names.get(r.job_id, "") if r.job_id is not None else "" for r in runs]

    return _tables.get_or_make((str(s.path), runs_signature(s)), build)


def _table(watch_key: str) -> list[str]:
    """One tick of the runs table; returns the statuses of the runs it lists."""
    s = store()
    who = me()
    runs, rows, names = table_rows(s)
    st.subheader("Runs")
    if not runs:
        st.caption("Runs you and others launch on this server appear here.")
        return []
    shared = who.source != "local" or any(r.owner != who.owner for r in runs)
    shown = list(range(len(runs)))
    if shared:
        if st.toggle("Mine only", key=f"runs_mine_{watch_key}", help="Only the runs you launched."):
            shown = [i for i in shown if runs[i].owner == who.owner]
        if not shown:
            st.caption("You have no runs yet: press Train above.")
            return [r.status for r in runs]
    table = [{**rows[i], **({"owner": owner_label(runs[i].owner, names[i], who)} if shared else {})} for i in shown]
    devices = sorted({row["device"] for row in table if row["device"]})
    one_device = len(devices) <= 1  # a column that says the same on every row is left out, and said once below
    order = ["id", "status", "name", *(["owner"] if shared else []), "model", "data", "best val acc", "took",
             *([] if one_device else ["device"]), "twin"]
    event = st.dataframe(pd.DataFrame(table, columns=order), key=f"runs_table_{watch_key}", on_select="rerun",
                         selection_mode="multi-row", hide_index=True, width="stretch", placeholder="—",
                         column_config=RUNS_COLUMNS)
    if devices and one_device:
        st.caption(f"Every run listed ran on {devices[0]}.")
    picked = [i for i in (event.selection.rows if event and event.selection else []) if 0 <= i < len(shown)]
    chosen = [runs[shown[i]] for i in picked]
    if not chosen:
        st.caption("Select rows to compare their curves, watch, resume or delete them.")
        return [r.status for r in runs]
    chosen_jobs = sorted({r.job_id for r in chosen if r.job_id is not None})
    theirs = [r for r in chosen if not who.may_manage(r.owner)]
    why = "Only their owner or a teacher may change runs that are not yours." if theirs else None
    error_key = f"runs_table_error_{watch_key}"
    a = st.columns(4)
    if a[0].button("Watch", key=f"act_watch_{watch_key}"):
        st.session_state[watch_key] = [r.id for r in chosen]
        st.rerun()
    # a failed run's job resumes when what it saved is intact (the job card's rule); the reason shows when not
    offers = [resume_offer(s, s.jobs.get(j)) for j in sorted({r.job_id for r in chosen if r.status == "failed"}
                                                             - {None})]
    resumable = all(r.status in RESUMABLE or (r.status == "failed" and r.job_id is not None) for r in chosen) \
        and all(ok for ok, _ in offers)
    refusal = next((reason for ok, reason in offers if not ok and reason), None)
    if a[1].button("Resume", key=f"act_resume_{watch_key}", help=why or refusal,
                   disabled=bool(theirs) or not resumable):
        for job_id in chosen_jobs:
            act(jobs.resume, job_id, s, who, error_key)
        st.rerun()
    if a[2].button("Delete", key=f"act_delete_{watch_key}", help=why,
                   disabled=bool(theirs) or any(r.active for r in chosen)):
        for job_id in chosen_jobs:
            act(jobs.delete, job_id, s, who, error_key)
        st.session_state.pop(watch_key, None)
        st.rerun()
    show_error(error_key)
    st.markdown("**Compare**")
    show_curves(curves_for(s, chosen), key=f"compare_curves_{watch_key}")
    return [r.status for r in runs]


def runs_table(watch_key: str) -> None:
    """Every run on this server, newest first (with whose it is, and a "Mine only" filter when the lab is
    shared); select rows to compare, watch, resume or delete. Refreshes every :data:`TABLE_S` while a run is
    active, every :data:`IDLE_S` otherwise, and rebuilds only when a run changed."""
    runs, _, _ = table_rows(store())
    every = TABLE_S if any(r.active for r in runs) else IDLE_S
    st.fragment(run_every=every)(_table)(watch_key)
