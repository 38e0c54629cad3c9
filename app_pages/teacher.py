"""The teacher page: every job by owner (stop, resume, move to the back, delete — a delete asks first), the
queue in turn order with ETAs, the devices, the class's people and the gallery. Refused to anyone who is not a
teacher — the navigation hides it from students, and the page checks again when opened by its URL; the jobs
layer checks a third time on every action (``by=``). Every action says what it did; the owner's group it was
done in stays open. Jobs are named as every other page names them: by their run number (#N)."""

import hashlib
import os
import time

import pandas as pd
import streamlit as st

from resnet_lab import jobs
from resnet_lab.classroom.lessons import lesson_problems, list_lessons
from resnet_lab.data import fetch
from resnet_lab.downloads import class_needs, prepare
from resnet_lab.fmt import format_bytes, format_load
from resnet_lab.identity import NotAllowed
from resnet_lab.jobs.eta import Forecast, forecast
from resnet_lab.jobs.launch import launcher as job_launcher
from resnet_lab.jobs.slots import devices_status
from resnet_lab.store import ACTIVE, RESUMABLE, Job, Store
from resnet_lab.train import launcher
from resnet_lab.ui.challenges import teacher_tab as challenges_tab
from resnet_lab.ui.common import PAGES, plain
from resnet_lab.ui.gallery import ago, gallery
from resnet_lab.ui.identity import app_root, current_identity, current_mode, owner_label, settings
from resnet_lab.ui.job_card import STATUS_ICON, progress_text, resume_offer
from resnet_lab.ui.session import store
from resnet_lab.ui.widgets import choice

ERROR_KEY = "teacher_error"
DONE_KEY = "teacher_done"  # (what the last action did, when): shown for NOTE_S seconds
CONFIRM_KEY = "teacher_confirm_delete"  # the job whose delete waits for a second click
OPEN_KEY = "teacher_open"  # the owners whose group the teacher acted in: kept open
NOTE_S = 10.0
FINISHED_SHOWN = 5  # finished jobs listed per owner (every finished run is in the gallery)

st.title(PAGES["app_pages/teacher.py"][0])
who = current_identity()
if not who.teacher:
    st.error("This page is the teacher's. Your own runs are on the **Train** and **Gallery** pages.",
             icon=":material/lock:")
    st.stop()

conf = settings()
if conf.class_name:
    st.text(conf.class_name)  # typed by the teacher, shown as text all the same
mode = current_mode()
st.caption({"single": "Single-user mode: no class is set up, everything is this machine's.",
            "class": "Class mode: students join with the class code and keep a personal link.",
            "login": "Login mode: people sign in with the class's identity provider.",
            "proxy": "Proxy mode: the reverse proxy names each person."}.get(mode, mode))
bounds_lines = conf.bounds.describe()
if bounds_lines:
    st.caption("Class bounds — " + " · ".join(bounds_lines))
if conf.queue.max_queued_per_owner or conf.queue.max_running_per_owner:
    st.caption(f"Queue caps per student — waiting or running: {conf.queue.max_queued_per_owner or 'no cap'}, "
               f"running at once: {conf.queue.max_running_per_owner or 'no cap'}")


def job_label(job: Job, run_ids: dict[int, list[int]]) -> str:
    """A job as the other pages name it: "run #12" (with its twin "runs #12 and #13"), an analysis "landscape of
    run #12", anything else "job 7"."""
    runs = run_ids.get(job.id, [])
    if runs:
        return f"run #{runs[0]}" if len(runs) == 1 else f"runs #{runs[0]} and #{runs[1]}" if len(runs) == 2 \
            else f"runs #{runs[0]}–#{runs[-1]}"
    if job.run_id is not None:
        return f"{job.kind} of run #{job.run_id}"
    return f"job {job.id}"


def runs_by_job(s: Store) -> dict[int, list[int]]:
    """{job id: its runs' numbers, oldest first} for the recent jobs (one query)."""
    out: dict[int, list[int]] = {}
    for r in sorted(s.runs.list(limit=5000), key=lambda r: r.id):
        if r.job_id is not None:
            out.setdefault(r.job_id, []).append(r.id)
    return out


def _act(action: str, job_id: int, label: str, owner: str) -> None:
    """One of stop / back / resume / delete (after a confirm) on a job, as this teacher: the jobs layer decides.
    What happened is kept for the page to say; the owner's group stays open."""
    s = store()
    st.session_state.pop(ERROR_KEY, None)
    st.session_state.setdefault(OPEN_KEY, set()).add(owner)
    if action == "delete":  # the first click only asks
        st.session_state[CONFIRM_KEY] = job_id
        return
    st.session_state.pop(CONFIRM_KEY, None)
    if action == "cancel":
        return
    try:
        if action == "stop":
            done = {"stopped": f"Stopped {label} (it was waiting).",
                    "stopping": f"Stopping {label}: it finishes its step and saves a checkpoint."}.get(
                jobs.stop(job_id, s, by=who), f"{label} had already ended.")
        elif action == "back":
            jobs.move_to_back(job_id, s, by=who)
            done = f"Moved {label} to the back of the queue."
        elif action == "resume":
            jobs.resume(job_id, s, by=who)
            done = f"Resumed {label}: it is queued again and continues from its last checkpoint."
        elif action == "confirm_delete":
            runs = s.runs.of_job(job_id)
            if runs:  # a training job: its checkpoints and logs go with its records
                gone = launcher.delete_run(runs[0].id, s, by=who)
                done = f"Deleted {label}: {'its runs' if len(gone) > 1 else 'its run'}, checkpoints and logs."
            else:
                jobs.delete(job_id, s, by=who)
                done = f"Deleted {label} and its results."
        else:
            raise ValueError(f"unknown action {action!r}")
    except (NotAllowed, ValueError, KeyError) as e:
        st.session_state[ERROR_KEY] = f"{label[:1].upper()}{label[1:]}: {e}"
        return
    st.session_state[DONE_KEY] = (done, time.monotonic(), False)


def _job_line(job: Job, label: str, place: str) -> str:
    progress = f"{job.progress}/{job.total}" if job.total else ""
    return " · ".join(x for x in (f"{STATUS_ICON.get(job.status, '')} **{label}** {job.kind}", plain(job.name),
                                  f"**{job.status}**", job.slot or job.device, progress, place) if x)


def _job_buttons(job: Job, label: str) -> None:
    """The job's actions in a row under its summary (each as wide as its label), or the delete's confirmation."""
    args = (job.id, label, job.owner)
    if st.session_state.get(CONFIRM_KEY) == job.id:
        with st.container(horizontal=True, gap="small"):
            st.caption(f"Delete {label} with its checkpoints and logs? This cannot be undone.")
            st.button("Delete", key=f"t_confirm_{job.id}", on_click=_act, args=("confirm_delete", *args),
                      type="primary", icon=":material/delete_forever:", width="content")
            st.button("Cancel", key=f"t_cancel_{job.id}", on_click=_act, args=("cancel", *args), width="content")
        return
    offer, why_not = resume_offer(store(), job) if job.status == "failed" else (job.status in RESUMABLE, None)
    with st.container(horizontal=True, gap="small"):
        if offer:
            st.button("Resume", key=f"t_resume_{job.id}", on_click=_act, args=("resume", *args),
                      icon=":material/replay:", width="content",
                      help="Queue it again: it continues from its last intact checkpoint.")
        elif job.status == "failed":
            st.button("Resume", key=f"t_resume_{job.id}", disabled=True, icon=":material/replay:", width="content",
                      help=why_not or "A failed job of this kind does not resume: start it again.")
        else:
            st.button("Stop", key=f"t_stop_{job.id}", on_click=_act, args=("stop", *args), width="content",
                      disabled=job.status not in ACTIVE or job.stop_requested, icon=":material/stop:")
        st.button("Back", key=f"t_back_{job.id}", on_click=_act, args=("back", *args), width="content",
                  disabled=job.status != "queued", icon=":material/low_priority:",
                  help="Move to the back of the queue: everyone else's waiting jobs go first.")
        st.button("Delete", key=f"t_delete_{job.id}", on_click=_act, args=("delete", *args), width="content",
                  disabled=job.status in ACTIVE, icon=":material/delete:", help="Asks before it deletes.")


def _notes() -> None:
    """The refusal or what the last action did (for NOTE_S seconds: the view redraws itself meanwhile)."""
    if st.session_state.get(ERROR_KEY):
        st.error(st.session_state[ERROR_KEY], icon=":material/error:")
    done = st.session_state.get(DONE_KEY)
    if not isinstance(done, tuple) or time.monotonic() - done[1] > NOTE_S:
        st.session_state.pop(DONE_KEY, None)
        return
    st.success(done[0], icon=":material/check_circle:")
    if not done[2]:  # a toast once, seen wherever the teacher has scrolled to
        st.toast(done[0], icon=":material/check_circle:")
        st.session_state[DONE_KEY] = (*done[:2], True)


@st.fragment(run_every=5)
def jobs_by_owner() -> None:
    s = store()
    jobs.pump(s)
    _notes()
    recent = s.jobs.list(limit=300)
    if not recent:
        st.info("No jobs yet.", icon=":material/info:")
        return
    where = forecast(s) if any(j.active for j in recent) else {}
    run_ids = runs_by_job(s)
    owners: dict[str, list[Job]] = {}
    for job in recent:
        owners.setdefault(job.owner, []).append(job)
    kept_open = st.session_state.get(OPEN_KEY, set())
    # the owners with work waiting or running first, then the most recent
    order = sorted(owners, key=lambda o: (not any(j.active for j in owners[o]), -max(j.id for j in owners[o])))
    for owner in order:
        mine = owners[owner]
        name = owner_label(owner, next((j.owner_name for j in mine if j.owner_name), ""), who)
        counts = {st_: sum(j.status == st_ for j in mine) for st_ in ("running", "queued")}
        shown = [j for j in mine if j.active] + [j for j in mine if not j.active][:FINISHED_SHOWN]
        # keyed by the owner, so the group keeps its place when its counts change; open while it has work or
        # the teacher acted in it
        with st.expander(f"{plain(name)} — {counts['running']} running, {counts['queued']} queued, "
                         f"{len(mine)} in all", expanded=bool(counts["running"] or counts["queued"])
                         or owner in kept_open, key="t_owner_" + hashlib.sha1(owner.encode()).hexdigest()[:12]):
            if len(shown) < len(mine):
                st.caption(f"The {FINISHED_SHOWN} most recent finished jobs are listed; every finished run is in "
                           "the Gallery tab.")
            for job in shown:
                f = where.get(job.id)
                place = f.describe() if f is not None and job.active else ago(job.finished_at)
                label = job_label(job, run_ids)
                st.markdown(_job_line(job, label, place))
                _job_buttons(job, label)


def when(f: Forecast | None, which: str) -> str:
    """A queue table cell: "now", "about 4 min", "about 3–6 min", or a dash with the reason — one type: text."""
    if f is None:
        return "—"
    text = f.start_text() if which == "start" else f.end_text()
    return text or (f"— {f.why}" if f.why else "—")


def queue_rows(s: Store) -> list[dict]:
    """The queue table: the running jobs, then the waiting ones in turn order; every column of one type (text)."""
    running = s.jobs.list(statuses=["running"], oldest_first=True)
    queued = jobs.turns.queue_order(s)  # the scheduler's own order: owners take turns
    if not running and not queued:
        return []
    where = forecast(s)
    run_ids = runs_by_job(s)
    return [{"turn": "running" if job.status == "running" else str(turn), "job": job_label(job, run_ids),
             "owner": owner_label(job.owner, job.owner_name, who), "name": job.name, "kind": job.kind,
             "device": job.slot or job.device, "starts in": when(where.get(job.id), "start"),
             "ends in": when(where.get(job.id), "end")}
            for turn, job in [(0, j) for j in running] + list(enumerate(queued, 1))]


def device_rows(s: Store) -> list[dict]:
    """The devices table: a CPU's load as cores busy of those it has (never past 100%), a GPU's busy time."""
    cores = os.cpu_count() or 1
    rows = []
    for d in devices_status(s.jobs.list(statuses=["running"], oldest_first=True)):
        if d.utilisation is None:
            use = "—"
        elif d.slot == "cpu":
            use = format_load(d.utilisation * cores, cores)
        else:
            use = f"{d.utilisation:.0%} busy"
        rows.append({"slot": d.slot, "device": d.name, "utilisation": use,
                     "busy": None if d.utilisation is None else min(1.0, d.utilisation),
                     "memory": (f"{format_bytes(d.memory_used)} of {format_bytes(d.memory_total)}"
                                if d.memory_used is not None and d.memory_total else "—"),
                     "jobs": f"{d.jobs} of {d.capacity}"})
    return rows


def machine_rows(s: Store) -> list[dict]:
    """The machines table: each machine the jobs run on (this one, or every node of the Ray cluster) with its GPUs,
    the share of them the lab's jobs hold now, and the running jobs whose worker is there."""
    rows = []
    for m in job_launcher().machines(s.jobs.list(statuses=["running"], oldest_first=True)):
        rows.append({"machine": m.name, "state": "up" if m.alive else "lost", "GPUs": f"{m.gpus:g}",
                     "GPUs held": m.gpus_held / m.gpus if m.gpus_held is not None and m.gpus else None,
                     "CPUs": f"{m.cpus:g}", "jobs": ", ".join(f"#{j}" for j in m.jobs) or "—"})
    return rows


@st.fragment(run_every=5)
def queue_and_devices() -> None:
    s = store()
    st.subheader("Queue")
    rows = queue_rows(s)
    if not rows:
        st.caption("Nothing running or waiting.")
    else:
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="teacher_queue", placeholder="—")
        st.caption("Owners take turns: each round starts the next job of every owner with one waiting, the one "
                   "served least recently first. “Back” moves a job behind everything waiting now. Times come from "
                   "jobs like it that this lab finished on that device; a range until it has timed one.")
    st.subheader("Devices")
    st.dataframe(pd.DataFrame(device_rows(s)), hide_index=True, width="stretch", key="teacher_devices",
                 placeholder="—", column_config={"busy": st.column_config.ProgressColumn(
                     min_value=0, max_value=1, format="percent",
                     help="GPU: busy time. CPU: 1-minute load average over its cores, at most all of them.")})
    st.subheader("Machines")
    st.dataframe(pd.DataFrame(machine_rows(s)), hide_index=True, width="stretch", key="teacher_machines",
                 placeholder="—", column_config={"GPUs held": st.column_config.ProgressColumn(
                     min_value=0, max_value=1, format="percent",
                     help="The share of the machine's GPUs the lab's running jobs hold now (Ray's books on a "
                          "cluster).")})
    st.caption("Where the jobs run: this machine, or each node of the Ray cluster the lab hands its jobs to "
               "(RESNET_LAB_RAY); a lost node's jobs are interrupted and resume on another.")


PREPARE_KEY = "teacher_prepare"  # the entries ticked for Prepare for class
PREPARE_NOTE = "teacher_prepare_note"  # (what Prepare for class did or why it was refused, is it an error)


def _prepare(names: list[str]) -> None:
    try:
        queued = prepare(store(), who, names=names, settings=conf)
    except (NotAllowed, ValueError) as e:
        st.session_state[PREPARE_NOTE] = (f"Prepare for class: {e}", True)
        return
    started = [n for n, j in queued.items() if j is not None]
    st.session_state[PREPARE_NOTE] = ((f"Downloading {', '.join(started)} for the class." if started
                                       else "Everything ticked is already here."), False)


@st.fragment(run_every=2)
def downloads_tab() -> None:
    """Prepare for class: every dataset and weights file the class's bounds and lessons allow, what is here, and
    the downloads running (one per file for the whole class)."""
    note = st.session_state.get(PREPARE_NOTE)
    if note:
        (st.error if note[1] else st.info)(plain(note[0], 1000), icon=":material/download:")
    needs = class_needs(store(), conf)
    missing = [w for w in needs if not w.present]
    st.caption(("Everything your class may train on is fetched before the lesson, once for the whole class, each "
                "file verified against its publisher's checksum. ")
               + ("" if mode == "single" else
                  "Students may start downloads themselves too ([downloads] students_may_start)."
                  if conf.students_may_download else "Students cannot start downloads: they wait on yours."))
    rows = []
    for w in needs:
        job = w.job
        state = ("here" if w.present else progress_text(job) if job is not None and job.active
                 else f"{job.status}: {job.error or ''}"[:120] if job is not None and job.status != "done"
                 else "missing")
        rows.append({"what": w.title, "state": state, "size": format_bytes(w.bytes), "why": w.reason,
                     "name": w.name, "from": w.source})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="teacher_downloads", placeholder="—")
    if fetch.offline():
        st.caption(f":material/cloud_off: This lab is offline ({fetch.OFFLINE_ENV}=1): put the files in place by "
                   "hand (`python -m resnet_lab datasets list` says where).")
        return
    if not missing:
        st.success("Everything the class may use is here.", icon=":material/check_circle:")
        return
    names = {w.name: f"{w.title} ({format_bytes(w.bytes)})" for w in missing}
    chosen = choice(st.multiselect, "To fetch", list(names), default=list(names), format_func=names.get,
                    key=PREPARE_KEY)
    total = sum(w.bytes for w in missing if w.name in chosen)
    st.button(f"Prepare for class ({format_bytes(total)})", icon=":material/download:", type="primary",
              disabled=not chosen, on_click=_prepare, args=(chosen,), key="teacher_prepare_go")


tab_jobs, tab_queue, tab_people, tab_lessons, tab_challenges, tab_downloads, tab_gallery = st.tabs(
    ["Jobs by owner", "Queue and devices", "People", "Lessons", "Challenges", "Downloads", "Gallery"])
with tab_jobs:
    jobs_by_owner()
with tab_queue:
    queue_and_devices()
with tab_people:
    people = store().people.list()
    if not people:
        st.caption("Nobody has joined with the class code yet.")
    else:
        per_owner: dict[str, int] = {}
        for job in store().jobs.list(limit=2000):
            per_owner[job.owner] = per_owner.get(job.owner, 0) + 1
        st.dataframe(pd.DataFrame([{"name": p.name, "joined": ago(p.created_at), "last seen": ago(p.last_seen),
                                    "jobs": per_owner.get(f"class:{p.id}", 0)} for p in people]),
                     hide_index=True, width="stretch", key="teacher_people", placeholder="—")
with tab_lessons:
    lessons, problems = list_lessons(conf), lesson_problems(conf)
    if not lessons and not problems:
        st.caption("No lesson files found. Put `<id>.toml` files in " + ", ".join(f"`{d}`" for d in conf.lessons_dirs)
                   + " (see `lessons/` in the repository).")
    for lesson in lessons:
        with st.container(border=True):
            st.text(lesson.title)
            steps = [PAGES[f"app_pages/{p}.py"][0] for p in lesson.page_ids if f"app_pages/{p}.py" in PAGES]
            st.caption(" → ".join(steps) + (" · hides: " + ", ".join(sorted(lesson.hide)) if lesson.hide else ""))
            st.code(f"{app_root()}?lesson={lesson.id}", language=None)
    for lesson_id, why in problems.items():
        st.error(f"Lesson `{lesson_id}` does not open: {plain(why, 1000)}", icon=":material/error:")
with tab_challenges:
    challenges_tab(who)
with tab_downloads:
    downloads_tab()
with tab_gallery:
    gallery("teacher_gallery", who)
