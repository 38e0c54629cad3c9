import hashlib
import json
import time
import uuid

import pandas as pd
import streamlit as st

from resnet_lab.data.registry import DATASETS, DataConfig, dataset_info
from resnet_lab.models.presets import PRESETS
from resnet_lab.store import Store
from resnet_lab.train import launcher
from resnet_lab.train.config import OPTIMIZERS, SCHEDULES, TrainConfig
from resnet_lab.ui.state import TRAIN_SPEC_KEY
from resnet_lab.viz.training import RunCurves, curves_figure

WATCH_KEY = "train_watch_job"
MAX_POINTS = 400  # per curve and chart update: long runs are decimated so a refresh stays small


def store() -> Store:
    if "train_store" not in st.session_state:
        st.session_state["train_store"] = Store()
    return st.session_state["train_store"]


def session_token() -> str:
    return st.session_state.setdefault("train_session", uuid.uuid4().hex)


st.title("Train")
st.caption("Short runs in a background process: closing the tab or reloading never disturbs them. "
           "“Train with plain twin” trains the ResNet and its plain twin on the very same batches.")

# --- what to train ----------------------------------------------------------------------------
carried = st.session_state.get(TRAIN_SPEC_KEY)
c = st.columns([2, 1])
source = "Preset"
if carried is not None:
    source = c[1].radio("Model from", ["From Build", "Preset"], horizontal=True, key="train_source")
if source == "From Build":
    spec = carried
    c[0].markdown(f"**Model:** {spec.describe()}")
else:
    default = list(PRESETS).index("resnet20")
    name = c[0].selectbox("Model", list(PRESETS), index=default, key="train_preset",
                          format_func=lambda n: f"{n} — {PRESETS[n].describe()}")
    spec = PRESETS[name]
if carried is None:
    st.caption("Tip: shape any model on the Build page and press “Use this model” to train it here.")



def _data_defaults(name: str) -> dict:
    info = dataset_info(name)
    size = 32 if name == "shapes" else info.native_size
    return {"train_size": min(max(size, info.min_size), info.max_size), "train_subset": 2000 if name == "shapes" else 0,
            "train_val_fraction": 0.2}


def _on_data_change() -> None:
    st.session_state.update(_data_defaults(st.session_state["train_data"]))


for key, value in _data_defaults(st.session_state.get("train_data", "shapes")).items():
    st.session_state.setdefault(key, value)

d = st.columns([3, 2, 3, 2, 3])
data_name = d[0].selectbox("Dataset", list(DATASETS), key="train_data", on_change=_on_data_change,
                           help="\n\n".join(f"**{k}**: {v}" for k, v in DATASETS.items()))
info = dataset_info(data_name)
image_size = d[1].number_input("Image size (px)", info.min_size, info.max_size, step=4, key="train_size")
subset = d[2].number_input("Training images (0 = all)", 0, 1_000_000, step=500, key="train_subset",
                           help="Fewer images make a faster run. For shapes, how many to generate.")
val_fraction = d[3].number_input("Validation split", 0.01, 0.5, step=0.05, key="train_val_fraction",
                                 disabled=info.official_val,
                                 help="Share held out for validation; datasets with an official test split use it.")
augment = d[4].toggle("Augment (pad-crop" + (" + flip)" if info.hflip else ")"), value=True, key="train_augment")
st.caption(DATASETS[data_name])

with st.expander("Training settings", expanded=False):
    h = st.columns(5)
    epochs = h[0].number_input("Epochs", 1, 1000, 5, key="train_epochs")
    batch = h[1].number_input("Batch size", 2, 8192, 128, step=16, key="train_batch")
    optimizer = h[2].selectbox("Optimizer", OPTIMIZERS, key="train_opt")
    lr = h[3].number_input("Learning rate", 1e-6, 10.0, 0.1 if optimizer == "sgd" else 0.002, format="%.4g",
                           key=f"train_lr_{optimizer}")
    schedule = h[4].selectbox("Schedule", SCHEDULES, key="train_schedule")
    h = st.columns(5)
    warmup = h[0].number_input("Warm-up epochs", 0.0, float(epochs), 0.0, step=0.5, key="train_warmup",
                               disabled=schedule == "onecycle", help="One-cycle has its own warm-up.")
    wd = h[1].number_input("Weight decay", 0.0, 1.0, 5e-4 if optimizer == "sgd" else 0.05, format="%.4g",
                           key=f"train_wd_{optimizer}")
    smoothing = h[2].number_input("Label smoothing", 0.0, 0.5, 0.0, step=0.05, key="train_smoothing")
    seed = h[3].number_input("Seed", 0, 2**31 - 1, 0, key="train_seed")
    device = h[4].selectbox("Device", ["auto", "cpu", "cuda"], key="train_device",
                            help="auto: the GPU when there is one.")


def _launch(twin: bool) -> None:
    try:
        data = DataConfig(name=data_name, image_size=int(image_size), train_subset=int(subset) or None,
                          val_fraction=float(val_fraction), augment=augment, seed=int(seed))
        cfg = TrainConfig(epochs=int(epochs), batch_size=int(batch), optimizer=optimizer, lr=float(lr),
                          schedule=schedule, warmup_epochs=float(warmup), weight_decay=float(wd),
                          label_smoothing=float(smoothing), seed=int(seed), device=device)
        fingerprint = hashlib.sha1(json.dumps([spec.to_dict(), data.to_dict(), cfg.to_dict(), twin],
                                              sort_keys=True).encode()).hexdigest()[:16]
        ids = launcher.submit(spec, data, cfg, twin=twin, request_key=f"{session_token()}:{fingerprint}",
                              store=store())
    except ValueError as e:
        st.session_state["train_error"] = str(e)
        return
    st.session_state.pop("train_error", None)
    st.session_state[WATCH_KEY] = ids[0]


b = st.columns([1, 1, 3])
b[0].button("Train", icon=":material/play_arrow:", on_click=_launch, args=(False,), width="stretch")
b[1].button("Train with plain twin", type="primary", icon=":material/compare:", on_click=_launch, args=(True,),
            width="stretch")
if st.session_state.get("train_error"):
    st.error(st.session_state["train_error"], icon=":material/error:")


# --- the live panel -------------------------------------------------------------------------------
def _curves(runs) -> list[RunCurves]:
    s = store()
    return [RunCurves(label=f"#{r.id} {r.name}", plain=not r.spec.get("skip", True) and len(runs) > 1,
                      metrics=s.metrics(r.id, max_points=MAX_POINTS)) for r in runs]


def _eta(run) -> str:
    if not run.total_steps or not run.step or run.started_at is None:
        return ""
    elapsed = time.time() - run.started_at
    left = elapsed / run.step * (run.total_steps - run.step)
    return f" · about {left:.0f} s left" if left < 120 else f" · about {left / 60:.0f} min left"


STATUS_ICON = {"queued": ":material/schedule:", "running": ":material/directions_run:", "done": ":material/check_circle:",
               "stopped": ":material/stop_circle:", "failed": ":material/error:", "diverged": ":material/trending_up:",
               "interrupted": ":material/warning:"}


@st.fragment(run_every=1.5)
def live_panel() -> None:
    s = store()
    launcher.pump(s)
    job_id = st.session_state.get(WATCH_KEY)
    if job_id is None:
        latest = [r for r in s.runs(limit=50) if r.twin_of is None]
        if not latest:
            st.info("No runs yet: choose a model and a dataset, then press Train.", icon=":material/info:")
            return
        job_id = latest[0].id
    try:
        runs = s.job_runs(job_id)
    except KeyError:
        runs = []
    if not runs:
        st.session_state.pop(WATCH_KEY, None)
        return
    job = runs[0]
    st.subheader(f"Run #{job.id}: {job.name}" + (" and its plain twin" if len(runs) > 1 else ""))
    frac = (job.step / job.total_steps) if job.total_steps else 0.0
    statuses = " · ".join(f"{STATUS_ICON.get(r.status, '')} {r.name}: **{r.status}**" for r in runs)
    st.markdown(statuses)
    st.progress(min(1.0, frac), text=f"step {job.step} of {job.total_steps or '?'}" + (
        _eta(job) if job.status == "running" else ""))
    cols = st.columns([1, 1, 4])
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
    for r in runs:
        if r.error:
            (st.warning if r.status in ("interrupted", "stopped") else st.error)(f"{r.name}: {r.error}")
    best = [f"{r.name}: best val acc **{r.best['val/acc']:.1%}**" for r in runs if "val/acc" in r.best]
    if best:
        st.markdown(" · ".join(best))
    st.plotly_chart(curves_figure(_curves(runs)), key="live_curves", width="stretch")


live_panel()


# --- all runs -----------------------------------------------------------------------------------
@st.fragment(run_every=5)
def runs_table() -> None:
    s = store()
    runs = s.runs()
    st.subheader("Runs")
    if not runs:
        st.caption("Runs you and others launch on this server appear here.")
        return
    df = pd.DataFrame([{
        "id": r.id, "status": r.status, "name": r.name,
        "model": r.spec and _describe(r.spec), "data": f"{r.data.get('name')} {r.data.get('image_size')}px",
        "best val acc": r.best.get("val/acc"), "step": f"{r.step}/{r.total_steps or '?'}",
        "duration (s)": round(r.duration_s, 1) if r.duration_s is not None else None, "device": r.device,
        "twin of": r.twin_of,
    } for r in runs])
    event = st.dataframe(df, key="runs_table", on_select="rerun", selection_mode="multi-row", hide_index=True,
                         width="stretch", column_config={
                             "best val acc": st.column_config.ProgressColumn(min_value=0, max_value=1, format="percent")})
    chosen = [runs[i] for i in event.selection.rows] if event and event.selection else []
    if not chosen:
        st.caption("Select rows to compare their curves, watch, resume or delete them.")
        return
    a = st.columns(4)
    if a[0].button("Watch", key="act_watch", disabled=len(chosen) != 1):
        st.session_state[WATCH_KEY] = chosen[0].twin_of or chosen[0].id
        st.rerun()
    if a[1].button("Resume", key="act_resume", disabled=not all(r.status in ("stopped", "interrupted")
                                                                 and r.twin_of is None for r in chosen)):
        for r in chosen:
            launcher.resume(r.id, s)
        st.rerun()
    if a[2].button("Delete", key="act_delete", disabled=any(r.active for r in chosen)):
        for r in chosen:
            if r.twin_of is None or r.twin_of not in {c.id for c in chosen}:
                s.delete(r.twin_of or r.id)
        st.session_state.pop(WATCH_KEY, None)
        st.rerun()
    st.markdown("**Compare**")
    st.plotly_chart(curves_figure(_curves(chosen)), key="compare_curves", width="stretch")


def _describe(spec_dict: dict) -> str:
    from resnet_lab.spec import ModelSpec

    try:
        return ModelSpec.from_dict(spec_dict).describe()
    except ValueError:
        return "?"


runs_table()
