"""Loss landscape page: filter-normalized 1D/2D slices of the training loss around a run and its twin,
computed as a background job (cost estimated before it starts, live progress, stop), results kept with
the run and drawn side by side."""

import json
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from resnet_lab.checks import MAX_SEED
from resnet_lab import jobs
from resnet_lab.analysis.landscape import (MAX_BATCHES, MAX_SPAN, MAX_STEPS, LandscapeParams, basin_sentence,
                                           estimate_cost, summary, time_forward)
from resnet_lab.analysis.learned import inconclusive
from resnet_lab.fmt import finite_or_none
from resnet_lab.experiments.landscape import KIND, concerns, landscape_jobs, load_result, submit_landscape
from resnet_lab.experiments.learned import check_runs
from resnet_lab.jobs.slots import default_device
from resnet_lab.store import Job
from resnet_lab.ui.common import PAGES, plain
from resnet_lab.ui.inspect import cached_dataset, cached_subject, inspectable_runs, partner_of, run_label
from resnet_lab.ui.runs import (STATUS_ICON, act, live_fragment, me, not_yours, pump, queue_place, session_token,
                                show_error, store)
from resnet_lab.viz.landscape import landscape_1d_figure, landscape_2d_figure

PAGE = "app_pages/landscape.py"
TASK_KEY = "ls_task"  # session key: the job this session started (watched by the live panel)
PICK_KEY = "ls_pick"  # session key: a result to select on the next full run (a job that just finished)
BATCH_SIZES = [8, 16, 32, 64, 128, 256, 512, 1024]

st.title(PAGES[PAGE][0])
st.caption("How does the training loss change as the weights move away from where training left them? "
           "Following Li et al. (2018), the weights θ of a trained run are moved along random directions δ (and η) "
           "whose every filter is rescaled to the norm of the matching weight filter (*filter normalization*, "
           "so nets of different scales compare), and the loss L(θ + αδ + βη) is measured on a grid. "
           "Li et al. found that skip connections keep the basin wide and smooth where deep plain nets get sharp, "
           "chaotic landscapes; below the slices, what these two models show.")

runs = inspectable_runs()
if not runs:
    st.info("No run has a checkpoint yet. Train one with its plain twin on the **Train** page (a minute on "
            "`shapes` is enough), then come back to slice its loss landscape.", icon=":material/info:")
    st.stop()
by_id = {r.id: r for r in runs}
ids = list(by_id)

# --- what to slice, and how ----------------------------------------------------------------------
c = st.columns([3, 2])
rid = c[0].selectbox("Run", ids, format_func=lambda i: run_label(by_id[i]), key="ls_run")
run = by_id[rid]
mate = partner_of(run, runs)
twin = c[1].toggle(f"With its twin (#{mate.id})" if mate else "With its twin (none: trained alone)",
                   value=mate is not None, disabled=mate is None, key="ls_twin",
                   help="Slice the run trained beside it too (its plain twin, or the ResNet it is the twin of), "
                        "with the same direction seed and the same training images.")
twin = bool(twin and mate is not None)

c = st.columns([1, 2, 2])
shape = c[0].radio("Slice", ["2D", "1D"], key="ls_dims", horizontal=True,
                   help="1D: the loss along one direction δ. 2D: over a plane spanned by δ and η.")
dims = 2 if shape == "2D" else 1
steps = int(c[1].slider("Grid points per axis", 3, MAX_STEPS, 11, step=2, key="ls_steps",
                        help="Odd, so the trained weights (α = β = 0) are on the grid. A 2D slice has steps² "
                             "points."))
span = float(c[2].slider("Span", 0.1, MAX_SPAN, 1.0, 0.1, key="ls_span",
                         help="The grid covers α, β in [-span, span]; 1 moves every filter by its own norm."))
c = st.columns([2, 2, 1])
batches = int(c[0].slider("Batches", 1, MAX_BATCHES, 2, key="ls_batches",
                          help="Training batches (no augmentation) averaged at every grid point."))
batch_size = int(c[1].select_slider("Batch size", BATCH_SIZES, 128, key="ls_bs"))
seed = int(c[2].number_input("Direction seed", 0, MAX_SEED, 0, key="ls_seed",
                             help="Seeds the random directions and the choice of training images."))
try:
    params = LandscapeParams(dims=dims, steps=steps, span=span, batches=batches, batch_size=batch_size, seed=seed)
except ValueError as e:
    st.error(f"These settings cannot be used: {e}", icon=":material/error:")
    st.stop()

chosen = [run, mate] if twin else [run]
try:
    subjects = [cached_subject(r) for r in chosen]
except (OSError, ValueError, RuntimeError, KeyError) as e:
    st.error(f"The checkpoint could not be loaded: {e}", icon=":material/error:")
    st.stop()
main = subjects[0]
device = default_device()


@st.cache_data(max_entries=32, show_spinner="Timing one forward pass…")
def forward_seconds(key: str, _subjects, input_shape: tuple, batch_size: int, device: str) -> list[float]:
    """Seconds per forward pass of one batch, per model (timed once per checkpoint, batch size and device)."""
    out = []
    for s in _subjects:
        with s.lock:
            out.append(time_forward(s.model, input_shape, batch_size, device))
    return out


n_train = None
if main.data is not None:
    try:
        n_train = len(cached_dataset(main.data).y_train)
    except (OSError, ValueError):
        n_train = None
input_shape = (main.in_channels, main.image_size, main.image_size)
key = "|".join(f"{s.label}:{id(s.model)}" for s in subjects)
cost = estimate_cost([s.model for s in subjects], input_shape, params, device=device, n_train=n_train,
                     forward_seconds=forward_seconds(key, subjects, input_shape, batch_size, device))
images = min(n_train, batches * batch_size) if n_train is not None else batches * batch_size
st.markdown(f":material/timer: **Cost:** {cost.describe()} (plus a few seconds to start the worker). "
            f"Every point averages the loss over {images:,} training images.")
if n_train is not None and batches * batch_size > n_train:
    st.caption(f"The training split has only {n_train:,} images, so {cost.batches} batch"
               f"{'es are' if cost.batches > 1 else ' is'} used.")

if st.button("Start", key="ls_start", icon=":material/play_arrow:", type="primary"):
    request = f"{session_token()}|{KIND}|{rid}|{twin}|{json.dumps(params.to_dict(), sort_keys=True)}"
    try:
        st.session_state[TASK_KEY] = submit_landscape(rid, params, twin=twin, store=store(), request_key=request,
                                                      estimate_s=cost.seconds, owner=me())
    except (ValueError, KeyError) as e:
        st.error(f"The landscape could not be started: {e}", icon=":material/error:")


def jobs_of(run_id: int, statuses: list[str]) -> list:
    """Landscape jobs that sliced ``run_id`` (as the run, or as its twin), newest first."""
    return landscape_jobs(store(), by_id[run_id], statuses)


# --- live progress -------------------------------------------------------------------------------
STOP_ERROR_KEY = "ls_stop_error"


def shown_job(s, run_id: int) -> Job | None:
    """The landscape job the live panel shows: the one this session started, else an active one of the run."""
    watched = st.session_state.get(TASK_KEY)
    if watched is not None:
        try:
            job = s.jobs.get(watched)
        except KeyError:
            st.session_state.pop(TASK_KEY, None)
        else:
            if concerns(job, run_id):
                return job
    active = jobs_of(run_id, ["queued", "running"])
    return active[0] if active else None


def live(run_id: int) -> list[str]:
    """One tick of the live panel; returns the status of the job it showed (see ``live_fragment``)."""
    s = store()
    pump(s)
    job = shown_job(s, run_id)
    if job is None:
        return []
    who = me()
    p = LandscapeParams.from_dict({k: v for k, v in job.params.items() if k != "runs"})
    st.markdown(f"{STATUS_ICON.get(job.status, '')} Landscape job #{job.id} ({p.describe()}): **{job.status}**")
    eta = ""
    if job.status == "running" and job.progress and job.total and job.started_at:
        left = (time.time() - job.started_at) / job.progress * (job.total - job.progress)
        eta = f" · about {left:.0f} s left"
    if job.status == "queued":
        place = queue_place(s, job)
        eta = f" · {place.describe()}" if place is not None else ""
    st.progress(job.fraction, text=f"{job.progress} of {job.total or '?'} grid evaluations{eta}")
    show_error(STOP_ERROR_KEY)
    if job.active:
        why = not_yours(job, who)
        if why is not None:  # someone else's: whose it is, no button (the jobs layer would refuse anyway)
            st.caption(f":material/lock: {plain(why)}")
        elif st.button("Stop", key="ls_stop", icon=":material/stop:", disabled=job.stop_requested):
            act(jobs.stop, job.id, s, who, STOP_ERROR_KEY)
            job = s.jobs.get(job.id)  # shown as stopping (or stopped, if it was still queued) right away
        if job.stop_requested:
            st.caption("Stopping: saving what has been computed…")
    elif job.status == "failed":
        st.error(f"The landscape failed: {job.error}", icon=":material/error:")
    elif job.status in ("stopped", "interrupted"):
        st.warning(job.error or f"The landscape was {job.status}.", icon=":material/warning:")
    seen = st.session_state.setdefault("ls_seen", [])
    if not job.active and job.id not in seen:
        seen.append(job.id)
        if job.result_path and st.session_state.get(TASK_KEY) == job.id:
            st.session_state[PICK_KEY] = job.id
            st.rerun(scope="app")  # show the new result below
    return [job.status]


# fast while a job runs, slower while it waits, a slow look otherwise (one started in another tab shows up)
first = shown_job(store(), rid)
live_fragment(live, [first.status] if first is not None else [], rid)

# --- finished landscapes -------------------------------------------------------------------------
st.subheader("Landscapes of this run")
finished = [t for t in jobs_of(rid, ["done", "stopped"]) if t.result_path and Path(t.result_path).is_file()]
if not finished:
    st.caption("None yet: choose the settings above and press **Start**. Results are kept with the run.")
    st.stop()
results = {t.id: t for t in finished}
if st.session_state.get(PICK_KEY) in results:
    st.session_state["ls_result"] = st.session_state.pop(PICK_KEY)


def result_label(tid: int) -> str:
    t = results[tid]
    p = LandscapeParams.from_dict({k: v for k, v in t.params.items() if k != "runs"})
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(t.finished_at or t.created_at))
    return f"#{t.id} · {p.describe()} · {when}" + (" · partial (stopped)" if t.status == "stopped" else "")


tid = st.selectbox("Landscape", list(results), format_func=result_label, key="ls_result")


@st.cache_data(max_entries=16, show_spinner=False)
def read_result(path: str, mtime: float):
    return load_result(path)


try:
    path = results[tid].result_path
    result = read_result(path, Path(path).stat().st_mtime)
except (OSError, ValueError) as e:
    st.error(f"This result could not be read: {e}", icon=":material/error:")
    st.stop()

surfaces = list(result.surfaces)
if result.params.dims == 2:
    kind = st.radio("Show as", ["Contour", "Surface"], key="ls_kind", horizontal=True,
                    help="Contour: levels evenly spaced in log(loss), as in the paper. Surface: 3D, height = loss.")
    fig = landscape_2d_figure(surfaces, kind=kind.lower())
else:
    fig = landscape_1d_figure(surfaces)
st.plotly_chart(fig, key="ls_chart", width="stretch")
if not result.complete:
    st.caption("This job was stopped: points it did not reach are left blank.")


rows = [summary(s) for s in surfaces]
st.dataframe(pd.DataFrame([{
    "model": r["label"], "centre loss": finite_or_none(r["center_loss"]),
    "centre accuracy": finite_or_none(r["center_acc"]),
    "lowest loss": finite_or_none(r["min_loss"]), "highest loss": finite_or_none(r["max_loss"]),
    "rise at ½ span": finite_or_none(r["rise_at_half_span"]), "images": r["images"]} for r in rows]),
    hide_index=True, width="stretch", key="ls_table",
    column_config={"centre accuracy": st.column_config.NumberColumn(format="percent"),
                   **{k: st.column_config.NumberColumn(format="%.4f")
                      for k in ("centre loss", "lowest loss", "highest loss", "rise at ½ span")}})
st.caption("*Centre*: the trained weights (α = β = 0). *Rise at ½ span*: the mean loss at "
           f"±{result.params.span / 2:g} "
           "along each direction minus the centre loss — small for a wide, flat basin, large for a sharp one. "
           f"Each point averages {rows[0]['images']:,} training images; BN uses its running statistics (eval mode), "
           "biases and BN parameters are not moved. Random directions: another seed gives another slice.")


def sliced_runs() -> list:
    """The runs behind the surfaces (those still in the store)."""
    out = []
    for s in surfaces:
        try:
            out.append(store().runs.get(s.run_id))
        except KeyError:
            pass
    return out


why = inconclusive(check_runs(store(), sliced_runs()))  # a basin says something only about a net that learned
if why is not None:
    st.warning(why[0].upper() + why[1:], icon=":material/help:")
elif basin_sentence(surfaces):
    st.markdown(basin_sentence(surfaces))
