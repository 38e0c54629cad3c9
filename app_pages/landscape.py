"""Loss landscape page: filter-normalized 1D/2D slices of the training loss around a run and its twin, the
training path on the plane of its PCA directions, and the straight line from the initial (or another run's)
weights to the trained ones — each computed as a background job (cost estimated before it starts, live
progress, stop), results kept with the run and drawn side by side."""

import json
import math
import time
from pathlib import Path

import pandas as pd
import streamlit as st

from resnet_lab.analysis.landscape import (MAX_BATCHES, MAX_EXTEND, MAX_RESOLUTION, MAX_SPAN, MAX_STEPS,
                                           InterpolationParams, LandscapeParams, estimate_cost, interpolation_summary,
                                           summary, time_forward)
from resnet_lab.analysis.learned import inconclusive
from resnet_lab.checks import MAX_SEED
from resnet_lab.experiments.landscape import (INTERPOLATION, KIND, MIN_PATH, basin_sentence, concerns, describe_job,
                                              initial_source, interpolation_sentence, job_mode, kept_steps,
                                              landscape_jobs, load_interpolation, load_result, same_architecture,
                                              submit_interpolation, submit_landscape)
from resnet_lab.experiments.learned import check_runs
from resnet_lab.jobs.slots import default_device
from resnet_lab.store import Job, Run
from resnet_lab.ui.charts import show_chart
from resnet_lab.ui.common import PAGES, plain
from resnet_lab.ui.compute import on_models
from resnet_lab.ui.inspect import cached_dataset, inspectable_runs, loaded_subjects, partner_of, run_label
from resnet_lab.ui.identity import me
from resnet_lab.ui.job_card import job_card, show_error
from resnet_lab.ui.session import live_fragment, pump, session_token, store
from resnet_lab.viz.landscape import interpolation_figure, landscape_1d_figure, landscape_2d_figure
from resnet_lab.ui.widgets import choice

PAGE = "app_pages/landscape.py"
TASK_KEY = "ls_task"  # session key: the job this session started (watched by the live panel)
PICK_KEY = "ls_pick"  # session key: a result to select on the next full run (a job that just finished)
STOP_ERROR_KEY = "ls_stop_error"
BATCH_SIZES = [8, 16, 32, 64, 128, 256, 512, 1024]
RANDOM, PATH = "Random (filter-normalized)", "Training path (PCA)"
FROM_INIT, FROM_RUN = "its initial weights", "another run of the same model"
NA = "n/a"
SENTENCE_CHARS = 2000  # a computed sentence quotes run names: escaped whole, not cut at plain()'s default


# --- helpers: everything they use comes in as arguments ----------------------------------------------------


def training_images(subject) -> int | None:
    """How many training images the subject's dataset has (None: unknown or not loadable)."""
    if subject.data is None:
        return None
    try:
        return len(cached_dataset(subject.data).y_train)
    except (OSError, ValueError):
        return None


def time_models(subjects, input_shape: tuple, batch_size: int, device: str) -> list[float]:
    """Seconds per forward pass of one batch, per model (on private copies: ``time_forward`` copies)."""
    return [time_forward(s.model, input_shape, batch_size, device) for s in subjects]


def forward_seconds(subjects, input_shape: tuple, batch_size: int, device: str) -> list[float]:
    """:func:`time_models`, once per server for these checkpoints, batch size and device."""
    return on_models("landscape.forward", subjects, time_models, input_shape, batch_size, device,
                     spinner="Timing one forward pass…")


def jobs_of(s, run: Run, statuses: list[str], mode: str | None = None) -> list[Job]:
    """Landscape jobs of ``mode`` that include ``run`` (as the run, or as its twin), newest first."""
    return landscape_jobs(s, run, statuses, mode)


def finished_jobs(s, run: Run, mode: str) -> dict[int, Job]:
    """Done or stopped jobs of ``mode`` with a result file on disk, newest first, by id."""
    return {t.id: t for t in jobs_of(s, run, ["done", "stopped"], mode)
            if t.result_path and Path(t.result_path).is_file()}


def shown_job(s, run: Run, watched: int | None) -> Job | None:
    """The landscape job the live panel shows: the one this session started (``watched``), else an active one."""
    if watched is not None:
        try:
            job = s.jobs.get(watched)
        except KeyError:
            st.session_state.pop(TASK_KEY, None)
        else:
            if concerns(job, run.id):
                return job
    active = jobs_of(s, run, ["queued", "running"])
    return active[0] if active else None


def live(run: Run) -> list[str]:
    """One tick of the live panel; returns the status of the job it showed (see ``live_fragment``)."""
    s = store()
    pump(s)
    job = shown_job(s, run, st.session_state.get(TASK_KEY))
    if job is None:
        return []
    what = "Interpolation" if job_mode(job) == INTERPOLATION else "Landscape"
    show_error(STOP_ERROR_KEY)
    job_card(s, job, me(), STOP_ERROR_KEY, [(job.status, f"{what} job #{job.id} ({describe_job(job)})")], key="ls_",
             resumable=False)  # a stopped study keeps what it computed; a new one starts afresh
    if job.status == "failed":
        st.error(f"The {what.lower()} failed: {job.error}", icon=":material/error:")
    elif job.status in ("stopped", "interrupted"):
        st.warning(job.error or f"The {what.lower()} was {job.status}.", icon=":material/warning:")
    seen = st.session_state.setdefault("ls_seen", [])
    if not job.active and job.id not in seen:
        seen.append(job.id)
        if job.result_path and st.session_state.get(TASK_KEY) == job.id:
            st.session_state[PICK_KEY] = job.id
            st.rerun(scope="app")  # show the new result below
    return [job.status]


def result_label(job: Job) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(job.finished_at or job.created_at))
    return f"#{job.id} · {describe_job(job)} · {when}" + (" · partial (stopped)" if job.status == "stopped" else "")


def pick(results: dict[int, Job], key: str) -> None:
    """Select a job that just finished in the ``key`` selectbox (before it is drawn)."""
    if st.session_state.get(PICK_KEY) in results:
        st.session_state[key] = st.session_state.pop(PICK_KEY)


@st.cache_data(max_entries=16, show_spinner=False)
def read_result(path: str, mtime: float):
    return load_result(path)


@st.cache_data(max_entries=16, show_spinner=False)
def read_interpolation(path: str, mtime: float):
    return load_interpolation(path)


def cell(value, fmt: str) -> str:
    """A number as the table shows it, or "n/a" for a missing one (never "None")."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return NA
    return fmt.format(value)


def runs_behind(s, run_ids) -> list[Run]:
    """The runs behind these ids (those still in the store)."""
    out = []
    for rid in run_ids:
        try:
            out.append(s.runs.get(rid))
        except KeyError:
            pass
    return out


def missing_paths(chosen: list[Run]) -> list[tuple[Run, int]]:
    """The chosen runs without enough kept weights for a training path, with how many they kept."""
    counts = [(r, len(kept_steps(r.id))) for r in chosen]
    return [(r, n) for r, n in counts if n < MIN_PATH]


# --- sections ------------------------------------------------------------------------------------------------


def slice_settings(chosen: list[Run]) -> tuple[LandscapeParams | None, list[tuple[Run, int]]]:
    """The slice widgets; (settings or None when they cannot be used, runs lacking a training path)."""
    c = st.columns([2, 1, 2, 2])
    way = c[0].radio("Directions", [RANDOM, PATH], key="ls_dirs", horizontal=True,
                     help="Random: Gaussian directions rescaled filter by filter (Li et al. sec. 4), centred on the "
                          "best checkpoint. Training path: the first two PCA directions of the weights kept during "
                          "training (sec. 7), centred on the last kept weights, with the path drawn over the slice.")
    pca = way == PATH
    shape = c[1].radio("Slice", ["2D", "1D"], key="ls_dims", horizontal=True, disabled=pca,
                       help="1D: the loss along one direction δ. 2D: over a plane spanned by δ and η. The training "
                            "path needs 2D.")
    dims = 2 if pca or shape == "2D" else 1
    steps = int(c[2].slider("Grid points per axis", 3, MAX_STEPS, 11, step=2, key="ls_steps",
                            help="Odd, so the trained weights (α = β = 0) are on the grid. A 2D slice has steps² "
                                 "points."))
    span = float(c[3].slider("Span", 0.1, MAX_SPAN, 1.0, 0.1, key="ls_span",
                             help="Random directions: α, β in [-span, span]; 1 moves every filter by its own norm. "
                                  "Training path: multiples of the path's reach along each axis (1 just covers it)."))
    c = st.columns([2, 2, 1])
    batches = int(c[0].slider("Batches", 1, MAX_BATCHES, 2, key="ls_batches",
                              help="Training batches (no augmentation) averaged at every grid point."))
    batch_size = int(c[1].select_slider("Batch size", BATCH_SIZES, 128, key="ls_bs"))
    seed = int(c[2].number_input("Direction seed", 0, MAX_SEED, 0, key="ls_seed",
                                 help="Seeds the random directions and the choice of training images."))
    lacking = missing_paths(chosen) if pca else []
    for r, n in lacking:
        kept = "kept no weights along its training" if n == 0 else f"kept only {n} snapshot{'s' if n > 1 else ''}"
        st.info(f"Run #{r.id} {plain(r.name)} {kept}, so it has no training path to draw: train with 'Keep weights "
                "every k steps' on (**Train** page › Training settings), then come back.", icon=":material/route:")
    try:
        return LandscapeParams(dims=dims, steps=steps, span=span, batches=batches, batch_size=batch_size, seed=seed,
                               directions="pca" if pca else "random"), lacking
    except ValueError as e:
        st.error(f"These settings cannot be used: {e}", icon=":material/error:")
        return None, lacking


def cost_line(subjects, params, n_train: int | None, input_shape: tuple, device: str):
    """Estimate and state the cost of ``params`` on these models; returns the estimate."""
    cost = estimate_cost([s.model for s in subjects], input_shape, params, device=device, n_train=n_train,
                         forward_seconds=forward_seconds(subjects, input_shape, params.batch_size, device))
    want = params.batches * params.batch_size
    images = min(n_train, want) if n_train is not None else want
    st.markdown(f":material/timer: **Cost:** {cost.describe()} (plus a few seconds to start the worker). "
                f"Every point averages the loss over {images:,} training images.")
    if n_train is not None and want > n_train:
        st.caption(f"The training split has only {n_train:,} images, so {cost.batches} batch"
                   f"{'es are' if cost.batches > 1 else ' is'} used.")
    return cost


def slice_section(run: Run, chosen: list[Run], subjects, twin: bool, n_train, input_shape, device) -> None:
    params, lacking = slice_settings(chosen)
    if params is None:
        return
    cost = cost_line(subjects, params, n_train, input_shape, device)
    if st.button("Start", key="ls_start", icon=":material/play_arrow:", type="primary", disabled=bool(lacking)):
        request = f"{session_token()}|{KIND}|{run.id}|{twin}|{json.dumps(params.to_dict(), sort_keys=True)}"
        try:
            st.session_state[TASK_KEY] = submit_landscape(run.id, params, twin=twin, store=store(),
                                                          request_key=request, estimate_s=cost.seconds, owner=me())
        except (ValueError, KeyError) as e:
            st.error(f"The landscape could not be started: {e}", icon=":material/error:")


def slices_table(surfaces) -> list[dict]:
    """The numbers of each surface as a table: missing ones read "n/a", with a tooltip saying why."""
    rows = [summary(s) for s in surfaces]
    stopped = "n/a: the job was stopped before this point was computed."
    st.dataframe(pd.DataFrame([{
        "model": r["label"], "centre loss": cell(r["center_loss"], "{:.4f}"),
        "centre accuracy": cell(r["center_acc"] * 100 if math.isfinite(r["center_acc"]) else None, "{:.1f}%"),
        "lowest loss": cell(r["min_loss"], "{:.4f}"), "highest loss": cell(r["max_loss"], "{:.4f}"),
        "rise at ½ span": cell(r["rise_at_half_span"], "{:.4f}"), "images": f"{r['images']:,}"} for r in rows]),
        hide_index=True, width="stretch", key="ls_table",
        column_config={"centre loss": st.column_config.TextColumn(help=f"Loss at α = β = 0. {stopped}"),
                       "centre accuracy": st.column_config.TextColumn(help=f"Accuracy at α = β = 0. {stopped}"),
                       "lowest loss": st.column_config.TextColumn(help="n/a: no point was computed."),
                       "highest loss": st.column_config.TextColumn(help="n/a: no point was computed."),
                       "rise at ½ span": st.column_config.TextColumn(
                           help="Mean loss at half the span along each axis minus the centre loss. n/a: the job was "
                                "stopped before the points at ±½ span (or the centre) were computed.")},
        placeholder="n/a")
    return rows


def finished_slices(run: Run) -> None:
    st.subheader("Slices of this run")
    s = store()
    results = finished_jobs(s, run, "slice")
    if not results:
        st.caption("Nothing yet: choose the settings above and press **Start**. Results are kept with the run.")
        return
    pick(results, "ls_result")
    tid = choice(st.selectbox, "Landscape", list(results), format_func=lambda i: result_label(results[i]), key="ls_result")
    try:
        path = results[tid].result_path
        result = read_result(path, Path(path).stat().st_mtime)
    except (OSError, ValueError) as e:
        st.error(f"This result could not be read: {e}", icon=":material/error:")
        return
    surfaces = list(result.surfaces)
    has_path = any(x.path is not None for x in surfaces)
    if result.params.dims == 2:
        kind = st.radio("Show as", ["Contour", "Surface"], key="ls_kind", horizontal=True,
                        help="Contour: levels evenly spaced in log(loss), as in the paper (the training path is drawn "
                             "here). Surface: 3D, height = loss.")
        fig = landscape_2d_figure(surfaces, kind=kind.lower())
        if has_path and kind == "Surface":
            st.caption("The training path is drawn on the contour view.")
    else:
        fig = landscape_1d_figure(surfaces)
    show_chart(fig, key="ls_chart", width="stretch")
    if not result.complete:
        st.caption("This job was stopped: points it did not reach are left blank.")
    rows = slices_table(surfaces)
    if has_path:
        st.caption("*Centre*: the last kept weights (the end of training), where the path ends. The red line joins "
                   "the kept weights projected on the plane of the path's first two PCA directions (not "
                   "filter-normalized, as in Li et al. sec. 7); each axis says its share of the path's variance. "
                   f"The grid reaches ±{result.params.span:g}× the path along each axis; BN uses the last kept "
                   "weights' running statistics.")
    else:
        st.caption("*Centre*: the trained weights (α = β = 0). *Rise at ½ span*: the mean loss at "
                   f"±{result.params.span / 2:g} along each direction minus the centre loss — small for a wide, "
                   f"flat basin, large for a sharp one. Each point averages {rows[0]['images']:,} training images; "
                   "BN uses its running statistics (eval mode), biases and BN parameters are not moved. Random "
                   "directions: another seed gives another slice.")
    why = inconclusive(check_runs(s, runs_behind(s, [x.run_id for x in surfaces])))  # only nets that learned
    if why is not None:
        st.warning(why[0].upper() + why[1:], icon=":material/help:")
    elif basin_sentence(surfaces):
        st.markdown(plain(basin_sentence(surfaces), SENTENCE_CHARS))


def interpolation_section(run: Run, mate: Run | None, runs: list[Run], subjects, twin: bool, n_train, input_shape,
                          device) -> None:
    st.subheader("Linear interpolation")
    st.caption("Goodfellow et al. (2015) walked the straight line θ(α) = (1−α)·θ_start + α·θ_trained and found the "
               "loss of many nets falls steadily from the initial to the trained weights. Here each model takes its "
               "own line (α beyond 0 and 1 too). They had no BatchNorm: its statistics are recomputed at every α "
               "by default (interpolated statistics would not match the interpolated weights).")
    c = st.columns([2, 3])
    start = c[0].radio("From", [FROM_INIT, FROM_RUN], key="ls_i_from", horizontal=True)
    other = None
    if start == FROM_RUN:
        candidates = same_architecture(runs, run, mate if twin else None)
        if not candidates:
            c[1].info("No other run of this very model" + (" with its twin" if twin else "") + " yet: train it again "
                      "with another seed (**Train** page › Training settings › Seed).", icon=":material/info:")
            return
        other = choice(c[1].selectbox, "Start run", [r.id for r in candidates], key="ls_i_other",
                               format_func=lambda i: run_label(next(r for r in candidates if r.id == i)))
    else:
        said = []
        for r in ([run, mate] if twin else [run]):
            try:
                said.append(f"#{r.id}: {initial_source(r)}")
            except ValueError as e:
                c[1].warning(plain(str(e)), icon=":material/warning:")
                return
        c[1].caption(" · ".join(said))
    c = st.columns([2, 2, 2, 2, 1])
    resolution = int(c[0].slider("Points per unit of α", 2, MAX_RESOLUTION, 10, key="ls_i_res"))
    extend = float(c[1].slider("Beyond the ends", 0.0, MAX_EXTEND, 0.5, 0.25, key="ls_i_extend",
                               help="α runs from −this to 1 + this."))
    batches = int(c[2].slider("Batches", 1, MAX_BATCHES, 2, key="ls_i_batches"))
    batch_size = int(c[3].select_slider("Batch size", BATCH_SIZES, 128, key="ls_i_bs"))
    seed = int(c[4].number_input("Seed", 0, MAX_SEED, 0, key="ls_i_seed", help="Seeds the choice of training images."))
    recompute = st.toggle("Recompute BatchNorm statistics at each α", value=True, key="ls_i_bn",
                          help="On: reset and re-estimate BN's running mean/variance on the same training batches "
                               "(as torch's swa_utils.update_bn). Off: interpolate them like the weights.")
    try:
        params = InterpolationParams(resolution=resolution, extend=extend, batches=batches, batch_size=batch_size,
                                     seed=seed, bn="recompute" if recompute else "interpolate")
    except ValueError as e:
        st.error(f"These settings cannot be used: {e}", icon=":material/error:")
        return
    cost = cost_line(subjects, params, n_train, input_shape, device)
    if st.button("Start the interpolation", key="ls_i_start", icon=":material/linear_scale:", type="primary"):
        kind = "init" if other is None else "run"
        request = (f"{session_token()}|{KIND}|line|{run.id}|{twin}|{kind}|{other}|"
                   f"{json.dumps(params.to_dict(), sort_keys=True)}")
        try:
            st.session_state[TASK_KEY] = submit_interpolation(run.id, params, twin=twin, start=kind, from_run=other,
                                                              store=store(), request_key=request,
                                                              estimate_s=cost.seconds, owner=me())
        except (ValueError, KeyError) as e:
            st.error(f"The interpolation could not be started: {e}", icon=":material/error:")


def finished_interpolations(run: Run) -> None:
    s = store()
    results = finished_jobs(s, run, INTERPOLATION)
    if not results:
        st.caption("No interpolation of this run yet.")
        return
    pick(results, "ls_i_result")
    tid = choice(st.selectbox, "Interpolation", list(results), format_func=lambda i: result_label(results[i]),
                       key="ls_i_result")
    try:
        path = results[tid].result_path
        result = read_interpolation(path, Path(path).stat().st_mtime)
    except (OSError, ValueError) as e:
        st.error(f"This result could not be read: {e}", icon=":material/error:")
        return
    show_chart(interpolation_figure(result.curves), key="ls_i_chart", width="stretch")
    if not result.complete:
        st.caption("This job was stopped: points it did not reach are left blank.")
    rows = [interpolation_summary(c) for c in result.curves]
    st.dataframe(pd.DataFrame([{
        "model": r["label"], "from": r["start"], "loss at start (α = 0)": cell(r["loss_start"], "{:.4f}"),
        "loss trained (α = 1)": cell(r["loss_end"], "{:.4f}"), "climbs on the way": cell(r["climb"], "{:.4f}"),
        "above the straight line": cell(r["barrier"], "{:.4f}")} for r in rows]),
        hide_index=True, width="stretch", key="ls_i_table",
        column_config={"climbs on the way": st.column_config.TextColumn(
            help="The largest rise of the loss between α = 0 and α = 1 (0: it only falls, as Goodfellow et al. saw "
                 "from the initial weights). n/a: the job was stopped before α = 1."),
            "above the straight line": st.column_config.TextColumn(
                help="The most the loss gets above the straight line between its values at α = 0 and α = 1 (the "
                     "loss barrier of Entezari et al. 2022; 0: never above). n/a: the job was stopped before α = 1.")},
        placeholder="n/a")
    sentence = interpolation_sentence(result.curves)
    if sentence:
        st.markdown(plain(sentence, SENTENCE_CHARS))


# --- the page ------------------------------------------------------------------------------------------------

st.title(PAGES[PAGE][0])
st.caption("How does the training loss change as the weights move away from where training left them? "
           "Following Li et al. (2018), the weights θ of a trained run are moved along random directions δ (and η) "
           "whose every filter is rescaled to the norm of the matching weight filter (*filter normalization*, "
           "so nets of different scales compare), and the loss L(θ + αδ + βη) is measured on a grid. "
           "Li et al. found that skip connections keep the basin wide and smooth where deep plain nets get sharp, "
           "chaotic landscapes; below the slices, what these two models show. A run that kept its weights while "
           "training can also show its *training path*, and any run the straight line from its initial weights.")

all_runs = inspectable_runs()
if not all_runs:
    st.info("No run has a checkpoint yet. Train one with its plain twin on the **Train** page (a minute on "
            "`shapes` is enough), then come back to slice its loss landscape.", icon=":material/info:")
    st.stop()
by_id = {r.id: r for r in all_runs}

c = st.columns([3, 2])
rid = choice(c[0].selectbox, "Run", list(by_id), format_func=lambda i: run_label(by_id[i]), key="ls_run")
the_run = by_id[rid]
the_mate = partner_of(the_run, all_runs)
with_twin = c[1].toggle(f"With its twin (#{the_mate.id})" if the_mate else "With its twin (none: trained alone)",
                        value=the_mate is not None, disabled=the_mate is None, key="ls_twin",
                        help="Slice the run trained beside it too (its plain twin, or the ResNet it is the twin of), "
                             "with the same direction seed and the same training images.")
with_twin = bool(with_twin and the_mate is not None)
picked = [the_run, the_mate] if with_twin else [the_run]
picked_subjects = list(loaded_subjects(picked) or st.stop())
head = picked_subjects[0]
where = default_device()
images_here = training_images(head)
shape_in = (head.in_channels, head.image_size, head.image_size)

slice_section(the_run, picked, picked_subjects, with_twin, images_here, shape_in, where)
panel = st.container()  # the live panel: filled last, once both Start buttons have been handled
finished_slices(the_run)
st.divider()
interpolation_section(the_run, the_mate, all_runs, picked_subjects, with_twin, images_here, shape_in, where)
finished_interpolations(the_run)
with panel:
    first = shown_job(store(), the_run, st.session_state.get(TASK_KEY))
    # fast while a job runs, slower while it waits, a slow look otherwise (one started in another tab shows up)
    live_fragment(live, [first.status] if first is not None else [], the_run)
