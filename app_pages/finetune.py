import hashlib
import json
import math
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from resnet_lab.classroom.bounds import full_train_images
from resnet_lab.classroom.uploads import import_dataset, remove_dataset
from resnet_lab.data.folders import FolderReport, dataset_path, list_user_datasets, scan_folder
from resnet_lab.data.images import decode_image
from resnet_lab.data.registry import DATASETS, FOLDER_PREFIX, DataConfig, dataset_info
from resnet_lab.data.zip_import import DatasetRejected
from resnet_lab.identity import NotAllowed
from resnet_lab.models.presets import PRESETS
from resnet_lab.models.pretrained import IMAGENET_WEIGHTS, load_imagenet, top_k, weights_path
from resnet_lab.models.summary import min_input_size
from resnet_lab.spec import ModelSpec
from resnet_lab.train import launcher
from resnet_lab.train.config import TrainConfig
from resnet_lab.train.finetune import MIN_STEPS, STRATEGY_HELP, FinetuneConfig, optimizer_steps, sized_schedule
from resnet_lab.train.recipes import recipe_for
from resnet_lab.ui.common import plain
from resnet_lab.ui.downloads import download_panel
from resnet_lab.ui.gallery import ago
from resnet_lab.ui.identity import current_identity, owner_label
from resnet_lab.ui.job_card import queue_preview
from resnet_lab.ui.lesson import current_bounds, current_lesson, hidden
from resnet_lab.ui.live import live_panel
from resnet_lab.ui.runs_table import runs_table
from resnet_lab.ui.session import session_token, store
from resnet_lab.ui.widgets import choice

WATCH_KEY = "ft_watch_jobs"
FLIPS = ("Yes — flips keep the label (photos of objects, animals, scenes)",
         "No — a mirror image may be another class (letters, digits, arrows)")
STRATEGIES = ("linear", "last:1", "last:2", "full")

who = current_identity()
bounds = current_bounds()

st.title("Fine-tune")
st.caption("Start from ImageNet weights, a finished lab run, or scratch; adapt to a built-in dataset or your "
           "own images; compare strategies side by side in one click.")


@st.cache_data(max_entries=64, show_spinner="Checking the images…")
def _report(path: str, stamp: float) -> FolderReport:
    return scan_folder(path)


def show_report(report: FolderReport) -> None:
    """Classes and counts, skipped files with reasons, warnings — before any training. Class and file names
    come from someone's zip: they are shown as text (tables, or escaped)."""
    counts = pd.DataFrame({"class": list(report.counts), "images": list(report.counts.values())})
    c = st.columns([2, 3])
    c[0].dataframe(counts, hide_index=True, width="stretch", placeholder="—")
    c[1].bar_chart(counts, x="class", y="images", height=220)
    for w in report.warnings:
        st.warning(plain(w, 500), icon=":material/warning:")
    if report.error:
        st.error(plain(report.error, 500), icon=":material/error:")
    if report.skipped:
        with st.expander(f"{len(report.skipped)} file(s) skipped"):
            st.dataframe(pd.DataFrame([{"file": s.path, "why": s.reason} for s in report.skipped]),
                         hide_index=True, width="stretch", placeholder="—")


def _allowed_spec(spec_dict: dict) -> bool:
    try:
        bounds.check_spec(ModelSpec.from_dict(spec_dict))
    except ValueError:
        return False
    return True


def number(container, label: str, key: str, default, field: str | None, lo, hi, **kw):
    """A number input whose range is clipped by the bound on ``field``; its value is kept inside the range."""
    if field is not None:
        lo, hi = bounds.limit(field, lo, hi)
    value = st.session_state.setdefault(key, default)
    if isinstance(value, (int, float)) and not lo <= value <= hi:
        st.session_state[key] = type(value)(min(max(value, lo), hi))
    return container.number_input(label, lo, hi, key=key, **kw)


# --- 1. where to start ------------------------------------------------------------------------
st.subheader("1 · Start from")
imagenet_models = [n for n in IMAGENET_WEIGHTS if bounds.allows_preset(n)]
scratch_models = [n for n, s in PRESETS.items() if s.skip and bounds.allows_preset(n)]
kinds = (["ImageNet weights"] if imagenet_models else []) + ["A lab run"] + (["Scratch"] if scratch_models else [])
kind = choice(st.radio, "Start from", kinds, horizontal=True, key="ft_kind", label_visibility="collapsed")
source = None
base_spec = None
not_ready = None  # why Fine-tune cannot start yet (a weights file or a dataset's files missing), said at pick time
if kind == "ImageNet weights":
    name = choice(st.selectbox, "Model", imagenet_models, key="ft_imagenet")
    base_spec = PRESETS[name]
    path = weights_path(name)
    if path.is_file():
        st.success(f"Using torchvision's ImageNet weights from {path}.", icon=":material/check_circle:")
        with st.expander("Try it on a photo: ImageNet top-5"):
            photo = st.file_uploader("A photo", type=["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"],
                                     key="ft_photo")
            if photo is not None:
                try:
                    image = decode_image(photo.getvalue(), shrink_to=256)
                    pre = load_imagenet(name)
                    st.image(image.permute(1, 2, 0).numpy(), width=224, alt="Your photo, as the model receives it")
                    st.dataframe(pd.DataFrame(top_k(pre.model, image, pre.categories), columns=["class", "p"]),
                                 hide_index=True, column_config={"p": st.column_config.ProgressColumn(
                                     min_value=0, max_value=1, format="percent")}, placeholder="—")
                except ValueError as e:
                    st.error(f"That image cannot be used: {plain(e, 500)}", icon=":material/error:")
    else:
        download_panel(name, key="ft_weights_")
        not_ready = f"Not yet: the weights file {path.name} is not on this machine (Get it above)."
    source = f"imagenet:{name}"
elif kind == "A lab run":
    finished = [r for r in store().runs.list(statuses=["done", "stopped"])
                if (r.ckpt_best or r.ckpt_last) and _allowed_spec(r.spec)]
    if not finished:
        st.info("No finished run with a checkpoint yet: train one on the Train page first.", icon=":material/info:")
    else:
        run = choice(st.selectbox, "Run", finished, key="ft_run", format_func=lambda r: f"#{r.id} {r.name} — best val acc "
                           + (f"{r.best['val/acc']:.1%}" if "val/acc" in r.best else "?"))
        source = f"run:{run.id}"
        base_spec = ModelSpec.from_dict(run.spec)
else:
    if st.session_state.get("ft_scratch") not in scratch_models:
        st.session_state["ft_scratch"] = "resnet20" if "resnet20" in scratch_models else scratch_models[0]
    preset = choice(st.selectbox, "Model", scratch_models, key="ft_scratch")
    source = f"scratch:{preset}"
    base_spec = PRESETS[preset]

# --- 2. data ----------------------------------------------------------------------------------------
st.subheader("2 · Data")
builtin = [n for n in DATASETS if bounds.allows_dataset(n)]
own_allowed = bounds.datasets is None or any(d.startswith(FOLDER_PREFIX) for d in bounds.datasets)
data_kinds = (["Built-in"] if builtin else []) + (["Your images"] if own_allowed else [])
data_kind = choice(st.radio, "Data", data_kinds, horizontal=True, key="ft_data_kind", label_visibility="collapsed")
data_name = None
n_train = None  # training images the chosen data gives (None: not known)
if data_kind == "Built-in":
    if st.session_state.get("ft_builtin") not in builtin:
        st.session_state["ft_builtin"] = "digits" if "digits" in builtin else builtin[0]
    data_name = choice(st.selectbox, "Dataset", builtin, key="ft_builtin")
    st.caption(DATASETS[data_name])
    missing = launcher.missing_data(data_name)  # said now, when picked, not after pressing Fine-tune
    if missing:
        download_panel(data_name, missing, key="ft_data_")
        not_ready = not_ready or f"Not yet: {missing.splitlines()[0]} Get it above, or put the files where it says."
else:
    def _import() -> None:
        upload = st.session_state.get("ft_zip")
        name = (st.session_state.get("ft_zip_name") or "").strip()
        st.session_state.pop("ft_import_error", None)
        st.session_state.pop("ft_import_report", None)
        if upload is None:
            st.session_state["ft_import_error"] = "Choose a zip file first."
            return
        flips = st.session_state.get("ft_zip_flips")
        if flips is None:
            st.session_state["ft_import_error"] = ("Say whether a mirror image keeps its label: the lab cannot guess "
                                                   "it for your images.")
            return
        with tempfile.TemporaryDirectory() as tmp:
            zpath = Path(tmp) / "upload.zip"
            zpath.write_bytes(upload.getvalue())
            try:
                import_dataset(zpath, name, owner=who, bounds=bounds, hflip=flips == FLIPS[0], store=store())
            except DatasetRejected as e:
                st.session_state["ft_import_error"] = f"{name} was not imported: {e}"
                st.session_state["ft_import_report"] = e.report
                return
            except ValueError as e:  # an unsafe archive, a bad name, or over this person's upload cap
                st.session_state["ft_import_error"] = f"That archive was not imported: {e}"
                return
        st.session_state["ft_folder"] = name

    def _remove(name: str) -> None:
        st.session_state.pop("ft_remove_error", None)
        try:
            remove_dataset(name, by=who, store=store())
        except (NotAllowed, ValueError, OSError) as e:
            st.session_state["ft_remove_error"] = str(e)
            return
        st.session_state.pop("ft_folder", None)

    names = [n for n in list_user_datasets() if bounds.allows_dataset(FOLDER_PREFIX + n)]
    if not hidden("upload"):
        with st.expander("Import a zip of class folders (one folder per class)", expanded=not names):
            cap = bounds.max_upload_mb
            st.file_uploader("Zip file", type=["zip"], key="ft_zip",
                             max_upload_size=math.ceil(cap) if cap is not None and not who.teacher else None,
                             help=(f"Up to {cap:g} MB of uploads per person in this class." if cap is not None
                                   and not who.teacher else None))
            st.text_input("Name for the dataset", key="ft_zip_name", placeholder="e.g. my-flowers",
                          help="Lower-case letters, digits, - and _ (up to 40).")
            st.radio("Is a mirror image of one of your pictures still the same class?", FLIPS, index=None,
                     key="ft_zip_flips", help="Training shows the model mirrored copies only if it is: a "
                                              "flipped cat is a cat, but a flipped “b” is a “d”. Kept with the "
                                              "dataset.")
            st.button("Import", key="ft_import", on_click=_import, icon=":material/upload:")
            if st.session_state.get("ft_import_error"):
                st.error(plain(st.session_state["ft_import_error"], 1000), icon=":material/error:")
            if st.session_state.get("ft_import_report") is not None:
                show_report(st.session_state["ft_import_report"])
    if st.session_state.get("ft_remove_error"):
        st.error(st.session_state["ft_remove_error"], icon=":material/error:")
    if names:
        if st.session_state.get("ft_folder") not in names:
            st.session_state["ft_folder"] = names[0]
        folder = choice(st.selectbox, "Your dataset", names, key="ft_folder")
        p = dataset_path(folder)
        report = _report(str(p), max(f.stat().st_mtime for f in [p, *p.iterdir()]))
        owner, owner_name = store().datasets.owner_of(folder)
        st.markdown(f"**{plain(folder)}**: {sum(report.counts.values())} usable images in "
                    f"{len(report.class_names)} classes · imported by {plain(owner_label(owner, owner_name, who))}")
        show_report(report)
        if who.may_manage(owner):
            st.button("Delete this dataset", key="ft_remove", on_click=_remove, args=(folder,),
                      icon=":material/delete:", help="Removes its images from the server (runs trained on it stay).")
        data_name = FOLDER_PREFIX + folder if report.ok else None

if data_name:
    info = dataset_info(data_name)
    c = st.columns(3)
    family = PRESETS["resnet18" if kind == "ImageNet weights" else "resnet20"]
    default_size = recipe_for(data_name, family).image_size if data_name.startswith(FOLDER_PREFIX) else \
        min(max(64 if kind == "ImageNet weights" else 32, info.min_size), info.max_size)
    smallest = min_input_size(base_spec, info) if base_spec is not None else info.min_size  # the lab's one number
    size = number(c[0], "Image size (px)", "ft_size", max(default_size, smallest), "image_size", smallest,
                  max(smallest, info.max_size),
                  step=8, help="Your own images default to their own size (the median shorter side), rounded "
                               "to the model's stride and at most 128 px for a short run.")
    subset = number(c[1], "Training images (0 = all)", "ft_subset", 0, "train_images", 0, 1_000_000, step=500)
    if data_name.startswith(FOLDER_PREFIX):  # the usable images the report counted, less the validation share
        usable = sum(report.counts.values())
        n_train = usable - round(usable * DataConfig.val_fraction)
    else:
        n_train = full_train_images(DataConfig(name=data_name, image_size=int(size)))
    if n_train is not None and subset:
        n_train = min(n_train, int(subset))
    augment = True if hidden("augment") else c[2].toggle(
        "Augment", value=True, key="ft_augment", help="Not used by the linear probe (its features are computed once).")

# --- 3. strategy ----------------------------------------------------------------------------------
st.subheader("3 · Strategy")
strategies = st.multiselect("Strategies (one run each, side by side)", STRATEGIES, default=["linear", "full"],
                            key="ft_strategies",
                            help="\n\n".join(f"**{k}**: {v}" for k, v in STRATEGY_HELP.items()))
sized = (3, 64)  # epochs and batch size before any data is chosen
if n_train:  # sized to the data: a few dozen images still get enough optimizer steps to learn
    sized = sized_schedule(n_train, max_epochs=int(bounds.limit("epochs", 1, 500)[1]),
                           max_batch=int(bounds.limit("batch_size", 2, 4096)[1]))
    if st.session_state.get("ft_sized_for") != (data_name, n_train):  # new data: the defaults follow it
        st.session_state["ft_sized_for"] = (data_name, n_train)
        st.session_state["ft_epochs"], st.session_state["ft_batch"] = sized
c = st.columns(4)
epochs = number(c[0], "Epochs", "ft_epochs", sized[0], "epochs", 1, 500,
                help=f"Starts sized to the data: at least {MIN_STEPS} optimizer steps where the limits allow.")
batch = sized[1] if hidden("batch_size") else number(c[1], "Batch size", "ft_batch", sized[1], "batch_size", 2, 4096,
                                                     step=16)
if hidden("lr"):
    lr, mult = 0.05, 0.1
else:
    lr = number(c[2], "Learning rate (head)", "ft_lr", 0.05, None, 1e-5, 5.0, format="%.4g")
    mult = number(c[3], "Backbone lr ×", "ft_mult", 0.1, None, 0.001, 1.0, format="%.3g",
                  help="Discriminative fine-tuning: the backbone learns slower than the new head.")
if n_train:
    steps = optimizer_steps(n_train, int(epochs), int(batch))
    if steps < MIN_STEPS:
        better = optimizer_steps(n_train, *sized)
        st.warning(f"At {int(epochs)} epoch{'s' if epochs != 1 else ''} over {n_train:,} training images in batches "
                   f"of {min(int(batch), n_train)}, training makes only {steps} optimizer "
                   f"step{'s' if steps != 1 else ''}: fewer than {MIN_STEPS}, so accuracy may barely move from where "
                   "it starts. "
                   + (f"{sized[0]} epochs in batches of {sized[1]} make {better}." if better > steps else
                      "More images would help: the limits here allow no more steps."),
                   icon=":material/speed:")
bound_lines = bounds.describe()
if bound_lines and current_lesson() is None:  # a lesson's banner says them already
    st.caption(":material/rule: **Limits here** — " + " · ".join(plain(x) for x in bound_lines))


def _configs() -> tuple[DataConfig, TrainConfig, list[FinetuneConfig]]:
    """What the Fine-tune button would queue: the data, the training settings, one fine-tuning per strategy."""
    if source is None or data_name is None:
        raise ValueError("Choose where to start from and a dataset that can train first.")
    if not strategies:
        raise ValueError("Choose at least one strategy.")
    data = DataConfig(name=data_name, image_size=int(size), train_subset=int(subset) or None, augment=augment)
    cfg = TrainConfig(epochs=int(epochs), batch_size=int(batch), lr=float(lr), schedule="cosine")
    return data, cfg, [FinetuneConfig(source=source, strategy=s, backbone_lr_mult=float(mult)) for s in strategies]


def _launch() -> None:
    st.session_state.pop("ft_error", None)
    try:
        data, cfg, fts = _configs()
        bounds.check_training(base_spec, data, cfg)  # said here at once; the launcher checks again
        ids = []
        for ft in fts:
            key = hashlib.sha1(json.dumps([ft.to_dict(), data.to_dict(), cfg.to_dict()], sort_keys=True).encode())
            ids += launcher.submit_finetune(ft, data, cfg, store=store(),
                                            request_key=f"{session_token()}:{key.hexdigest()[:16]}", owner=who,
                                            lesson=current_lesson())
    except (ValueError, NotAllowed) as e:  # OutOfBounds and QueueFull are ValueErrors too
        st.session_state["ft_error"] = str(e)
        return
    st.session_state[WATCH_KEY] = ids


def _watch(run_ids: list[int]) -> None:
    st.session_state.pop("ft_error", None)
    st.session_state[WATCH_KEY] = run_ids


def shared_offer() -> None:
    """Strategies whose very same fine-tuning already finished (anyone's): their runs, at once."""
    try:
        data, cfg, fts = _configs()
        bounds.check_training(base_spec, data, cfg)
    except ValueError:
        return
    found = [(ft, launcher.shared_result(store(), None, data, cfg, finetune=ft)) for ft in fts]
    found = [(ft, job) for ft, job in found if job is not None]
    if not found:
        return
    run_ids = [r.id for _, job in found for r in store().runs.of_job(job.id)]
    lines = []
    for ft, job in found:
        accs = [r.best["val/acc"] for r in store().runs.of_job(job.id) if isinstance(r.best.get("val/acc"),
                                                                                    (int, float))]
        lines.append(f"*{ft.strategy}* by {plain(owner_label(job.owner, job.owner_name, who))} {ago(job.finished_at)}"
                     + (f" (best val acc **{max(accs):.1%}**)" if accs else ""))
    with st.container(border=True, key="ft_shared_offer"):
        st.markdown(":material/recycling: **Already fine-tuned** with these very settings — " + "; ".join(lines)
                    + ". Fine-tune below trains fresh ones anyway.")
        st.button("Open these runs", key="ft_open_shared", type="primary", icon=":material/visibility:",
                  on_click=_watch, args=(run_ids,))


shared_offer()
st.button("Fine-tune", type="primary", icon=":material/tune:", on_click=_launch, disabled=not_ready is not None,
          help=not_ready)
if st.session_state.get("ft_error"):
    st.error(st.session_state["ft_error"], icon=":material/error:")
queue_preview("auto", None, f"Fine-tuning ({len(strategies)} run{'s' if len(strategies) != 1 else ''})")

live_panel(WATCH_KEY, "No runs yet: choose a start, data and strategies, then press Fine-tune.", kinds=("finetune",))
runs_table(WATCH_KEY)
