import streamlit as st

from resnet_lab.checks import MAX_SEED
from resnet_lab.data.registry import DATASETS, DataConfig, dataset_info
from resnet_lab.identity import NotAllowed
from resnet_lab.jobs.slots import gpu_count
from resnet_lab.models.presets import PRESETS, preset_name
from resnet_lab.models.summary import min_input_size
from resnet_lab.train import launcher
from resnet_lab.train.config import MAX_KEEP_BUDGET_MB, MAX_KEEP_EVERY, OPTIMIZERS, SCHEDULES, TrainConfig
from resnet_lab.train.recipes import recipe_for
from resnet_lab.train.reproducible import reproducibility_note
from resnet_lab.ui.common import plain
from resnet_lab.ui.downloads import download_panel
from resnet_lab.ui.gallery import ago
from resnet_lab.ui.identity import current_identity, owner_label
from resnet_lab.ui.job_card import queue_preview
from resnet_lab.ui.lesson import current_bounds, current_lesson, hidden
from resnet_lab.ui.live import live_panel
from resnet_lab.ui.runs_table import runs_table
from resnet_lab.ui.session import session_token, store
from resnet_lab.ui.state import TRAIN_SPEC_KEY
from resnet_lab.urlcodec import open_link
from resnet_lab.ui.widgets import choice

WATCH_KEY = "train_watch_job"
DEFAULT_PRESET = "resnet20"
URL_SEEN_KEY = "train_url_seen"  # the model link (?model= / ?spec= / ?size=) last applied, so each is read once

who = current_identity()
bounds = current_bounds()

st.title("Train")
st.caption("Short runs in a background process: closing the tab or reloading never disturbs them. "
           "“Train with plain twin” trains the ResNet and its plain twin on the very same batches.")

# what this class (and lesson) allows: only those presets and datasets are offered
presets = [n for n in PRESETS if bounds.allows_preset(n)]
datasets = [n for n in DATASETS if bounds.allows_dataset(n)]
if not presets or not datasets:
    st.info("This class trains only " + ("on your own images: use the **Fine-tune** page." if not datasets
                                         else "the models the teacher chose, and none is available here."),
            icon=":material/info:")
    st.stop()
default_preset = DEFAULT_PRESET if DEFAULT_PRESET in presets else presets[0]
if st.session_state.get("train_preset") not in presets:
    st.session_state["train_preset"] = default_preset
if st.session_state.get("train_data", "shapes") not in datasets:
    st.session_state["train_data"] = "shapes" if "shapes" in datasets else datasets[0]


def _recipe_settings(recipe) -> dict:
    """The widgets' values for a recipe (a dataset and model's default settings)."""
    return {"train_size": recipe.image_size, "train_subset": recipe.train_subset or 0, "train_val_fraction": 0.2,
            "train_augment": recipe.augment, "train_epochs": recipe.epochs, "train_batch": recipe.batch_size,
            "train_lr_sgd": recipe.lr, "train_schedule": recipe.schedule, "train_wd_sgd": recipe.weight_decay,
            "train_smoothing": recipe.label_smoothing, "train_opt": "sgd", "train_warmup": 0.0}


def _open_model_link() -> list[str]:
    """Apply the model a link names (``?model=`` or ``?spec=``, and ``?size=``: a Build page's share link) once per
    distinct link, before the widgets draw. Returns what to tell about it: each part of the link that could not be
    used as it was, and what is used instead (the page always opens)."""
    params = {k: st.query_params.get_all(k) for k in ("model", "spec", "size") if k in st.query_params}
    token = repr(sorted(params.items()))
    if not params or st.session_state.get(URL_SEEN_KEY) == token:
        return []
    st.session_state[URL_SEEN_KEY] = token
    named = ", ".join(f"{k}={v[0] if len(v) == 1 else v}" for k, v in params.items() if k != "size")
    try:
        opened = open_link(params)
    except ValueError as e:
        return [f"The link's model ({named[:80]}) cannot be opened: {e}. The page opens with its usual model."]
    if opened is None:  # only a size: it says nothing without a model
        return [f"The link gives a size (size={params['size'][0][:20]}) but no model (model= or spec=): ignored."]
    spec, notes = opened.spec, [opened.note] if opened.note else []
    name = preset_name(spec)
    if name in presets:
        st.session_state["train_preset"] = name
        if st.session_state.get(TRAIN_SPEC_KEY) is not None:  # a model carried from Build waits under the radio
            st.session_state["train_source"] = "Preset"
    elif name is None and bounds.allows_custom and not hidden("custom_model"):
        st.session_state[TRAIN_SPEC_KEY] = spec
        st.session_state["train_source"] = "From Build"
    else:
        what = name or f"a custom model ({spec.describe()})"
        return [f"The link's model ({what}) is not offered here: this page trains "
                f"{', '.join(presets)}. The page opens with its usual model."]
    data_name = st.session_state.get("train_data", "shapes")
    st.session_state.update(_recipe_settings(recipe_for(data_name, spec)))
    if opened.input_size is not None:
        info = dataset_info(data_name)
        lo = min_input_size(spec, info)  # the one smallest size: the widget below and the launcher agree
        lo, hi = bounds.limit("image_size", lo, max(lo, info.max_size))
        size = min(max(opened.input_size, lo), hi)
        if size != opened.input_size:
            notes.append(f"{opened.input_size} px is outside the sizes {data_name} trains this model at here "
                         f"({lo}..{hi} px): {size} px is used.")
        st.session_state["train_size"] = size
    return notes


# --- what to train ----------------------------------------------------------------------------
link_notes = _open_model_link()
for note in link_notes:
    st.warning(plain(note[:1].upper() + note[1:], 800), icon=":material/link_off:")
carried = st.session_state.get(TRAIN_SPEC_KEY)
if not bounds.allows_custom or hidden("custom_model"):
    carried = None  # a lesson or a class with a preset allowlist trains presets only
c = st.columns([2, 1])
source = "Preset"
if carried is not None:
    source = c[1].radio("Model from", ["From Build", "Preset"], horizontal=True, key="train_source")
if source == "From Build":
    spec = carried
    c[0].markdown(f"**Model:** {spec.describe()}")
else:
    name = choice(c[0].selectbox, "Model", presets, key="train_preset", on_change=lambda: _apply_recipe(),
                          format_func=lambda n: f"{n} — {PRESETS[n].describe()}")
    spec = PRESETS[name]
if carried is None and bounds.allows_custom and not hidden("custom_model"):
    st.caption("Tip: shape any model on the Build page and press “Use this model” to train it here.")


def _chosen_spec():
    """The model the page is set to, read from the widgets' state (callbacks run before the script)."""
    if carried is not None and st.session_state.get("train_source", "From Build") == "From Build":
        return carried
    return PRESETS[st.session_state.get("train_preset", default_preset)]


def _apply_recipe() -> None:
    """A new dataset or model: every setting goes back to that pair's recipe."""
    st.session_state.update(_recipe_settings(recipe_for(st.session_state.get("train_data", "shapes"), _chosen_spec())))


for key, value in {**_recipe_settings(recipe_for(st.session_state.get("train_data", "shapes"), _chosen_spec())),
                   "train_lr_adamw": 0.002, "train_wd_adamw": 0.05, "train_seed": 0, "train_device": "auto"}.items():
    st.session_state.setdefault(key, value)


def limits(key: str, field: str | None, lo, hi):
    """The widget's range within the bound on ``field``, with the value it holds moved inside (a recipe, or
    an earlier choice, may be outside it: Streamlit would refuse to draw the widget)."""
    if field is not None:
        lo, hi = bounds.limit(field, lo, hi)
    value = st.session_state.get(key)
    if isinstance(value, (int, float)) and not lo <= value <= hi:
        st.session_state[key] = type(value)(min(max(value, lo), hi))
    return lo, hi


def control(name: str, key: str, draw):
    """A control a lesson may hide: hidden, it keeps the value it has (the recipe's), unseen."""
    return st.session_state.get(key) if hidden(name) else draw()


d = st.columns([3, 2, 3, 2, 3])
data_name = choice(d[0].selectbox, "Dataset", datasets, key="train_data", on_change=_apply_recipe,
                           help="\n\n".join(f"**{k}**: {v}" for k, v in DATASETS.items() if k in datasets))
info = dataset_info(data_name)
size_lo = min_input_size(spec, info)  # the model's and the dataset's smallest size, as the launcher checks
image_size = d[1].number_input("Image size (px)", *limits("train_size", "image_size", size_lo,
                                                          max(size_lo, info.max_size)),
                               step=4, key="train_size")
subset = d[2].number_input("Training images (0 = all)", *limits("train_subset", "train_images", 0, 1_000_000),
                           step=500, key="train_subset",
                           help="Fewer images make a faster run. For shapes, how many to generate.")
val_fraction = d[3].number_input(
    "Validation split", 0.01, 0.5, step=0.05, key="train_val_fraction", disabled=info.official_val,
    help=(f"Greyed out: {data_name} comes with its official test split, and that split is the validation set here "
          "(no share of the training images is held out)." if info.official_val else
          "Share of the training images held out for validation."))
augment = d[4].toggle("Augment", key="train_augment",
                      help="Pad-crop" + (" and horizontal flips." if info.hflip else
                                         " only, no flips: for this dataset a mirror image may change the label."))
st.caption(DATASETS[data_name])
missing = launcher.missing_data(data_name)  # said now, when picked, not after pressing Train
if missing:
    download_panel(data_name, missing, key="train_")
recipe = recipe_for(data_name, spec)

with st.expander("Training settings", expanded=False):
    h = st.columns(5)
    epochs = h[0].number_input("Epochs", *limits("train_epochs", "epochs", 1, 1000), key="train_epochs")
    batch = h[1].number_input("Batch size", *limits("train_batch", "batch_size", 2, 8192), step=16, key="train_batch")
    optimizer = control("optimizer", "train_opt", lambda: h[2].selectbox("Optimizer", OPTIMIZERS, key="train_opt"))
    lr = h[3].number_input("Learning rate", 1e-6, 10.0, format="%.4g", key=f"train_lr_{optimizer}")
    schedule = control("schedule", "train_schedule",
                       lambda: h[4].selectbox("Schedule", SCHEDULES, key="train_schedule"))
    h = st.columns(5)
    warmup = h[0].number_input("Warm-up epochs", *limits("train_warmup", None, 0.0, float(epochs)), step=0.5,
                               key="train_warmup", disabled=schedule == "onecycle",
                               help="One-cycle has its own warm-up.")
    wd = h[1].number_input("Weight decay", 0.0, 1.0, format="%.4g", key=f"train_wd_{optimizer}")
    smoothing = h[2].number_input("Label smoothing", 0.0, 0.5, step=0.05, key="train_smoothing")
    seed = control("seed", "train_seed", lambda: h[3].number_input("Seed", 0, MAX_SEED, key="train_seed"))
    device = control("device", "train_device", lambda: h[4].selectbox(
        "Device", ["auto", "cpu", "cuda"], key="train_device", help="auto: the GPU when there is one."))
    gpus_here = gpu_count()
    world_size = 1
    if gpus_here > 1 and not hidden("device"):  # several GPUs: one run may use several (DistributedDataParallel)
        world_size = int(choice(st.select_slider, 
            "GPUs for one run", list(range(1, gpus_here + 1)), value=1, key="train_world_size",
            help="DistributedDataParallel: each GPU takes its share of every batch (the batch size is the total); "
                 "the run takes that many GPU slots of the queue."))
    h = st.columns(5)
    keep_every = h[0].number_input(
        "Keep weights every k steps", 0, MAX_KEEP_EVERY, 0, key="train_keep_every",
        help="0: off. Otherwise the weights are saved at step 0, every k steps and at the end (no optimizer state), "
             "so the Loss landscape page can draw the training path (PCA of the kept weights) and interpolate from "
             "the initial weights.")
    st.session_state.setdefault("train_keep_budget", TrainConfig.keep_weights_budget_mb)
    keep_budget = h[1].number_input(  # within the class's bound on it (the launcher refuses more)
        "Kept weights budget (MB)", *limits("train_keep_budget", "keep_weights_mb", 1.0, MAX_KEEP_BUDGET_MB),
        step=50.0, key="train_keep_budget", disabled=not keep_every,
        help="Disk the kept weights of this training (the model and its twin together) may take: if every k steps "
             "would not fit, every 2k, 4k, … steps are kept instead; if not even the first and last fit, the "
             "training is refused.")
    deterministic = h[2].checkbox(
        "Deterministic", key="train_deterministic",
        help="Deterministic algorithms: on a GPU the same settings give the same numbers every time, a little "
             "slower; on the CPU they do already.")
    st.caption(":material/repeat: " + reproducibility_note(device, deterministic))
    st.button("Back to the recipe", key="train_recipe_reset", on_click=_apply_recipe, icon=":material/restart_alt:",
              help="Every setting above as the recipe for this dataset and model has it.")
as_recipe = (int(image_size), int(subset) or None, int(epochs), int(batch), optimizer, float(lr), schedule,
             float(wd), float(smoothing), bool(augment)) == (recipe.image_size, recipe.train_subset, recipe.epochs,
                                                            recipe.batch_size, "sgd", recipe.lr, recipe.schedule,
                                                            recipe.weight_decay, recipe.label_smoothing,
                                                            recipe.augment)
st.caption(f":material/tune: **Recipe** — {recipe.why}. {recipe.describe().capitalize()}; {recipe.budget}."
           + ("" if as_recipe else " **You changed some settings** (Training settings › Back to the recipe)."))
bound_lines = bounds.describe()
if bound_lines and current_lesson() is None:  # a lesson's banner says them already
    st.caption(":material/rule: **Limits here** — " + " · ".join(plain(x) for x in bound_lines))


def _settings() -> tuple[DataConfig, TrainConfig]:
    data = DataConfig(name=data_name, image_size=int(image_size), train_subset=int(subset) or None,
                      val_fraction=float(val_fraction), augment=augment, seed=int(seed))
    cfg = TrainConfig(epochs=int(epochs), batch_size=int(batch), optimizer=optimizer, lr=float(lr),
                      schedule=schedule, warmup_epochs=float(warmup), weight_decay=float(wd),
                      label_smoothing=float(smoothing), seed=int(seed), device=device,
                      keep_weights_every=int(keep_every), keep_weights_budget_mb=float(keep_budget),
                      deterministic=bool(deterministic))
    return data, cfg


def _launch(twin: bool) -> None:
    try:
        data, cfg = _settings()
        bounds.check_training(spec, data, cfg)  # said here at once; the launcher checks again
        fingerprint = launcher.fingerprint(spec, data, cfg, twin=twin, world_size=world_size)
        ids = launcher.submit(spec, data, cfg, twin=twin, request_key=f"{session_token()}:{fingerprint}",
                              world_size=world_size, store=store(), owner=who, lesson=current_lesson())
    except (ValueError, NotAllowed) as e:  # OutOfBounds and QueueFull are ValueErrors too
        st.session_state["train_error"] = str(e)
        return
    st.session_state.pop("train_error", None)
    st.session_state[WATCH_KEY] = [ids[0]]


def _watch(run_ids: list[int]) -> None:
    st.session_state.pop("train_error", None)
    st.session_state[WATCH_KEY] = run_ids


def shared_offer(data: DataConfig, cfg: TrainConfig) -> None:
    """The same job already finished (anyone's): offer its runs at once instead of training a copy."""
    for twin in (True, False):
        job = launcher.shared_result(store(), spec, data, cfg, twin=twin, world_size=world_size)
        if job is not None:
            break
    else:
        return
    runs = store().runs.of_job(job.id)
    if not runs:
        return
    accs = [r.best["val/acc"] for r in runs if isinstance(r.best.get("val/acc"), (int, float))]
    by = owner_label(job.owner, job.owner_name, who)
    with st.container(border=True, key="train_shared_offer"):
        st.markdown(f":material/recycling: **Already trained** — by {plain(by)} {ago(job.finished_at)}"
                    + (f": best val acc **{max(accs):.1%}**" if accs else "")
                    + (" (with its plain twin)" if twin else "") + ". The very same model, data, settings and seed.")
        with st.container(horizontal=True):  # each button as wide as its label
            st.button("Open these runs", key="train_open_shared", type="primary", icon=":material/visibility:",
                      on_click=_watch, args=([r.id for r in runs],))
            st.button("Train a fresh one anyway", key="train_fresh", icon=":material/refresh:", on_click=_launch,
                      args=(twin,))


try:
    preview_data, preview_cfg = _settings()
    preview_error = None
    bounds.check_training(spec, preview_data, preview_cfg)
except ValueError as e:  # the same message comes back, in red, if a button is pressed
    preview_error = str(e)
else:
    if not missing:
        shared_offer(preview_data, preview_cfg)
why_not = f"Not yet: {missing.splitlines()[0]} Get it above, or put the files where it says." if missing else None
with st.container(horizontal=True, key="train_buttons"):  # each button as wide as its label
    st.button("Train", icon=":material/play_arrow:", on_click=_launch, args=(False,), disabled=bool(missing),
              help=why_not)
    st.button("Train with plain twin", type="primary", icon=":material/compare:", on_click=_launch, args=(True,),
              disabled=bool(missing), help=why_not)
if st.session_state.get("train_error"):
    st.error(st.session_state["train_error"], icon=":material/error:")
if preview_error:
    st.caption(f":material/warning: {preview_error}")
elif not missing:
    try:
        preview_estimate = launcher.estimate(store(), spec, preview_data, preview_cfg, twin=True)
    except ValueError as e:
        st.caption(f":material/warning: {e}")
    else:
        queue_preview(preview_cfg.device, preview_estimate, "A run with its plain twin")


live_panel(WATCH_KEY, "No runs yet: choose a model and a dataset, then press Train.")
runs_table(WATCH_KEY)
