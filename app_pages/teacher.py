"""The teacher page: every job by owner (stop, move to the back, delete), the queue in turn order with
ETAs, the devices, the class's people and the gallery. Refused to anyone who is not a teacher — the
navigation hides it from students, and the page checks again when opened by its URL; the jobs layer
checks a third time on every action (``by=``)."""

import pandas as pd
import streamlit as st

from resnet_lab import jobs
from resnet_lab.classroom.lessons import lesson_problems, list_lessons
from resnet_lab.fmt import format_bytes
from resnet_lab.identity import NotAllowed
from resnet_lab.jobs.eta import format_duration, forecast
from resnet_lab.jobs.slots import devices_status
from resnet_lab.store import ACTIVE, Job
from resnet_lab.train import launcher
from resnet_lab.ui.common import PAGES, plain
from resnet_lab.ui.gallery import ago, gallery, owner_label
from resnet_lab.ui.identity import app_root, current_identity, current_mode, settings
from resnet_lab.ui.runs import STATUS_ICON, store

ERROR_KEY = "teacher_error"
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


def _act(action: str, job_id: int) -> None:
    """One of stop / back / delete on a job, as this teacher: the jobs layer decides."""
    s = store()
    st.session_state.pop(ERROR_KEY, None)
    try:
        if action == "stop":
            jobs.stop(job_id, s, by=who)
        elif action == "back":
            jobs.move_to_back(job_id, s, by=who)
        elif action == "delete":
            runs = s.runs.of_job(job_id)
            if runs:  # a training job: its checkpoints and logs go with its records
                launcher.delete_run(runs[0].id, s, by=who)
            else:
                jobs.delete(job_id, s, by=who)
        else:
            raise ValueError(f"unknown action {action!r}")
    except (NotAllowed, ValueError, KeyError) as e:
        st.session_state[ERROR_KEY] = f"Job {job_id}: {e}"


def _job_line(job: Job, place: str) -> str:
    progress = f"{job.progress}/{job.total}" if job.total else ""
    return " · ".join(x for x in (f"{STATUS_ICON.get(job.status, '')} #{job.id} {job.kind}", plain(job.name),
                                  f"**{job.status}**", job.slot or job.device, progress, place) if x)


@st.fragment(run_every=5)
def jobs_by_owner() -> None:
    s = store()
    jobs.pump(s)
    if st.session_state.get(ERROR_KEY):
        st.error(st.session_state[ERROR_KEY], icon=":material/error:")
    recent = s.jobs.list(limit=300)
    if not recent:
        st.info("No jobs yet.", icon=":material/info:")
        return
    where = forecast(s) if any(j.active for j in recent) else {}
    owners: dict[str, list[Job]] = {}
    for job in recent:
        owners.setdefault(job.owner, []).append(job)
    # the owners with work waiting or running first, then the most recent
    order = sorted(owners, key=lambda o: (not any(j.active for j in owners[o]), -max(j.id for j in owners[o])))
    for owner in order:
        mine = owners[owner]
        name = owner_label(owner, next((j.owner_name for j in mine if j.owner_name), ""), who)
        counts = {st_: sum(j.status == st_ for j in mine) for st_ in ("running", "queued")}
        shown = [j for j in mine if j.active] + [j for j in mine if not j.active][:FINISHED_SHOWN]
        with st.expander(f"{plain(name)} — {counts['running']} running, {counts['queued']} queued, "
                         f"{len(mine)} in all", expanded=bool(counts["running"] or counts["queued"])):
            if len(shown) < len(mine):
                st.caption(f"The {FINISHED_SHOWN} most recent finished jobs are listed; every finished run is in "
                           "the Gallery tab.")
            for job in shown:
                f = where.get(job.id)
                place = f.describe() if f is not None and job.active else ago(job.finished_at)
                c = st.columns([6, 1, 1, 1])
                c[0].markdown(_job_line(job, place))
                c[1].button("Stop", key=f"t_stop_{job.id}", on_click=_act, args=("stop", job.id),
                            disabled=job.status not in ACTIVE or job.stop_requested, icon=":material/stop:")
                c[2].button("Back", key=f"t_back_{job.id}", on_click=_act, args=("back", job.id),
                            disabled=job.status != "queued", icon=":material/low_priority:",
                            help="Move to the back of the queue: everyone else's waiting jobs go first.")
                c[3].button("Delete", key=f"t_delete_{job.id}", on_click=_act, args=("delete", job.id),
                            disabled=job.status in ACTIVE, icon=":material/delete:")


@st.fragment(run_every=5)
def queue_and_devices() -> None:
    s = store()
    running = s.jobs.list(statuses=["running"], oldest_first=True)
    queued = s.jobs.turn_order()  # the scheduler's own order: owners take turns
    where = forecast(s) if running or queued else {}
    st.subheader("Queue")
    if not running and not queued:
        st.caption("Nothing running or waiting.")
    else:
        def when(job: Job, field: str) -> str:
            f = where.get(job.id)
            value = getattr(f, field) if f is not None else None
            return format_duration(value) if value is not None else "?"

        rows = [{"turn": "running" if job.status == "running" else turn, "job": job.id,
                 "owner": owner_label(job.owner, job.owner_name, who), "name": job.name, "kind": job.kind,
                 "device": job.slot or job.device,
                 "starts in": "now" if job.status == "running" else when(job, "start_in_s"),
                 "ends in": when(job, "end_in_s")}
                for turn, job in [(0, j) for j in running] + list(enumerate(queued, 1))]
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch", key="teacher_queue", placeholder="—")
        st.caption("Owners take turns: each round starts the next job of every owner with one waiting, the one "
                   "served least recently first. “Back” moves a job behind everything waiting now.")
    st.subheader("Devices")
    dev_rows = []
    for d in devices_status(running):
        dev_rows.append({"slot": d.slot, "device": d.name,
                         "utilisation": d.utilisation if d.utilisation is not None else None,
                         "memory": (f"{format_bytes(d.memory_used)} of {format_bytes(d.memory_total)}"
                                    if d.memory_used is not None and d.memory_total else "?"),
                         "jobs": f"{d.jobs} of {d.capacity}"})
    st.dataframe(pd.DataFrame(dev_rows), hide_index=True, width="stretch", key="teacher_devices",
                 column_config={"utilisation": st.column_config.ProgressColumn(
                     min_value=0, max_value=1, format="percent",
                     help="GPU: busy time. CPU: 1-minute load average per core.")})


tab_jobs, tab_queue, tab_people, tab_lessons, tab_gallery = st.tabs(
    ["Jobs by owner", "Queue and devices", "People", "Lessons", "Gallery"])
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
with tab_gallery:
    gallery("teacher_gallery", who)
