"""The live panel of the Train and Fine-tune pages: the status, progress, queue place, controls and curves of
the jobs a session watches (or of the newest job of the page's kinds), refreshing itself at the pace of what it
shows (see :mod:`resnet_lab.ui.session` for what keeps it cheap)."""

from __future__ import annotations

import streamlit as st

from ..identity import Identity
from ..store import RESUMABLE, Job, Run, Store
from .common import plain
from .curves import curves_for, show_curves
from .identity import me, owner_label
from .job_card import job_card, show_error
from .runs_table import table_rows
from .session import live_fragment, pump, store


def _default_job(s: Store, kinds: tuple[str, ...], who: Identity) -> Job | None:
    """The newest job of this page's kinds (not one an experiment launched): this person's own, or when they
    have none, anyone's — what the class is training now."""
    for owner in (who.owner, None):
        found = [j for j in s.jobs.list(kinds=kinds, owner=owner, limit=50) if j.origin is None]
        if found:
            return found[0]
    return None


def _groups(s: Store, watch_key: str, kinds: tuple[str, ...], who: Identity) -> list[tuple[Job, list[Run]]]:
    """The jobs the panel shows, each with its runs: those of the watched runs, else the default job."""
    job_ids: list[int] = []
    watched = st.session_state.get(watch_key)
    for rid in watched or []:
        try:
            job_id = s.runs.get(rid).job_id
        except (KeyError, TypeError):
            continue
        if job_id is not None and job_id not in job_ids:
            job_ids.append(job_id)
    if not watched:
        job = _default_job(s, kinds, who)
        job_ids = [job.id] if job is not None else []
    groups = []
    for job_id in job_ids:
        try:
            job = s.jobs.get(job_id)
        except KeyError:
            continue
        runs = s.runs.of_job(job_id)
        if runs:
            groups.append((job, runs))
    if watched and not groups:  # the watched runs are gone: back to the default
        st.session_state.pop(watch_key, None)
        return _groups(s, watch_key, kinds, who)
    return groups


def _panel(watch_key: str, empty_text: str, title: str, kinds: tuple[str, ...]) -> list[str]:
    """One tick of the live panel; returns the statuses of the jobs it showed."""
    s = store()
    pump(s)
    who = me()
    groups = _groups(s, watch_key, kinds, who)
    if not groups:
        n = len(table_rows(s)[0])  # runs of other kinds (an experiment's, a fine-tuning's) are runs too
        st.info(empty_text if not n else f"Nothing started from this page to follow yet. The {n} run"
                f"{'s' if n != 1 else ''} below came from elsewhere (an experiment, another page): select "
                "rows there and press **Watch** to follow them here, or start one above.", icon=":material/info:")
        return []
    error_key = f"{watch_key}_error"
    show_error(error_key)
    if len(groups) == 1:
        job, runs = groups[0]
        whose = "" if job.owner == who.owner else f" — {plain(owner_label(job.owner, job.owner_name, who))}'s"
        st.subheader(f"{title}Run #{runs[0].id}: {plain(runs[0].name)}"
                     + (" and its plain twin" if len(runs) > 1 else "") + whose)
    else:
        st.subheader(f"{title}{len(groups)} runs side by side")
    all_runs = [r for _, runs in groups for r in runs]
    for job, runs in groups:
        job_card(s, job, who, error_key, [(r.status, f"#{r.id} {plain(r.name)}") for r in runs])
        for r in runs:
            if r.error:
                (st.warning if r.status in RESUMABLE else st.error)(f"{plain(r.name)}: {plain(r.error, 2000)}")
    best = [f"{plain(r.name)}: best val acc **{r.best['val/acc']:.1%}**" for r in all_runs if "val/acc" in r.best]
    if best:
        st.markdown(" · ".join(best))
    show_curves(curves_for(s, all_runs), key=f"live_curves_{watch_key}")
    return [job.status for job, _ in groups]


def live_panel(watch_key: str, empty_text: str, title: str = "", kinds: tuple[str, ...] = ("train",)) -> None:
    """Progress, queue place, controls and curves of the watched runs' jobs (``st.session_state[watch_key]``:
    run ids), or of the newest job of this page's ``kinds`` (this person's own first); ``empty_text`` when the
    server has no run at all (with runs of other kinds only, a line pointing at the table). Refreshes itself at
    the pace of what it shows (:func:`live_fragment`)."""
    s = store()
    pump(s)  # a job left queued (say, by the CLI) starts now, and the pace below sees it running
    statuses = [job.status for job, _ in _groups(s, watch_key, kinds, me())]
    live_fragment(_panel, statuses, watch_key, empty_text, title, kinds)
