import hashlib
import json
import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from resnet_lab.data.folders import DatasetRejected, FolderReport, dataset_path, import_zip, list_user_datasets, \
    scan_folder
from resnet_lab.data.images import decode_image
from resnet_lab.data.registry import DATASETS, FOLDER_PREFIX, DataConfig, dataset_info
from resnet_lab.models.presets import PRESETS
from resnet_lab.models.pretrained import IMAGENET_WEIGHTS, load_imagenet, top_k, weights_path
from resnet_lab.train import launcher
from resnet_lab.train.config import TrainConfig
from resnet_lab.train.finetune import STRATEGY_HELP, FinetuneConfig
from resnet_lab.train.recipes import recipe_for
from resnet_lab.ui.runs import live_panel, queue_preview, runs_table, session_token, store

WATCH_KEY = "ft_watch_jobs"
FLIPS = ("Yes — flips keep the label (photos of objects, animals, scenes)",
         "No — a mirror image may be another class (letters, digits, arrows)")
STRATEGIES = ("linear", "last:1", "last:2", "full")

st.title("Fine-tune")
st.caption("Start from ImageNet weights, a finished lab run, or scratch; adapt to a built-in dataset or your "
           "own images; compare strategies side by side in one click.")


@st.cache_data(max_entries=64, show_spinner="Checking the images…")
def _report(path: str, stamp: float) -> FolderReport:
    return scan_folder(path)


def show_report(report: FolderReport) -> None:
    """Classes and counts, skipped files with reasons, warnings — before any training."""
    counts = pd.DataFrame({"class": list(report.counts), "images": list(report.counts.values())})
    c = st.columns([2, 3])
    c[0].dataframe(counts, hide_index=True, width="stretch")
    c[1].bar_chart(counts, x="class", y="images", height=220)
    for w in report.warnings:
        st.warning(w, icon=":material/warning:")
    if report.error:
        st.error(report.error, icon=":material/error:")
    if report.skipped:
        with st.expander(f"{len(report.skipped)} file(s) skipped"):
            st.dataframe(pd.DataFrame([{"file": s.path, "why": s.reason} for s in report.skipped]),
                         hide_index=True, width="stretch")


# --- 1. where to start ------------------------------------------------------------------------
st.subheader("1 · Start from")
kind = st.radio("Start from", ["ImageNet weights", "A lab run", "Scratch"], horizontal=True, key="ft_kind",
                label_visibility="collapsed")
source = None
allow_download = False
if kind == "ImageNet weights":
    name = st.selectbox("Model", list(IMAGENET_WEIGHTS), key="ft_imagenet")
    path = weights_path(name)
    if path.is_file():
        st.success(f"Using torchvision's ImageNet weights from {path}.", icon=":material/check_circle:")
        with st.expander("Try it on a photo: ImageNet top-5"):
            photo = st.file_uploader("A photo", type=["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"],
                                     key="ft_photo")
            if photo is not None:
                try:
                    image = decode_image(photo.getvalue())
                    pre = load_imagenet(name)
                    st.image(image.permute(1, 2, 0).numpy(), width=224)
                    st.dataframe(pd.DataFrame(top_k(pre.model, image, pre.categories), columns=["class", "p"]),
                                 hide_index=True, column_config={"p": st.column_config.ProgressColumn(
                                     min_value=0, max_value=1, format="percent")})
                except ValueError as e:
                    st.error(f"That image cannot be used: {e}", icon=":material/error:")
    else:
        st.warning(f"The weights file {path.name} is not in {path.parent}. Put it there (torchvision's own "
                   "cache, $TORCH_HOME/hub/checkpoints), or let torchvision download it if this machine is online.",
                   icon=":material/cloud_off:")
        allow_download = st.checkbox("Let torchvision download it", key="ft_download")
    source = f"imagenet:{name}"
elif kind == "A lab run":
    finished = [r for r in store().runs.list(statuses=["done", "stopped"]) if r.ckpt_best or r.ckpt_last]
    if not finished:
        st.info("No finished run with a checkpoint yet: train one on the Train page first.", icon=":material/info:")
    else:
        run = st.selectbox("Run", finished, key="ft_run", format_func=lambda r: f"#{r.id} {r.name} — best val acc "
                           + (f"{r.best['val/acc']:.1%}" if "val/acc" in r.best else "?"))
        source = f"run:{run.id}"
else:
    preset = st.selectbox("Model", [n for n, s in PRESETS.items() if s.skip], key="ft_scratch",
                          index=list(n for n, s in PRESETS.items() if s.skip).index("resnet20"))
    source = f"scratch:{preset}"

# --- 2. data ----------------------------------------------------------------------------------------
st.subheader("2 · Data")
data_kind = st.radio("Data", ["Built-in", "Your images"], horizontal=True, key="ft_data_kind",
                     label_visibility="collapsed")
data_name = None
if data_kind == "Built-in":
    data_name = st.selectbox("Dataset", list(DATASETS), key="ft_builtin", index=list(DATASETS).index("digits"))
    st.caption(DATASETS[data_name])
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
                import_zip(zpath, name, hflip=flips == FLIPS[0])
            except DatasetRejected as e:
                st.session_state["ft_import_error"] = f"{name} was not imported: {e}"
                st.session_state["ft_import_report"] = e.report
                return
            except ValueError as e:
                st.session_state["ft_import_error"] = f"That archive was not imported: {e}"
                return
        st.session_state["ft_folder"] = name

    with st.expander("Import a zip of class folders (one folder per class)", expanded=not list_user_datasets()):
        st.file_uploader("Zip file", type=["zip"], key="ft_zip")
        st.text_input("Name for the dataset", key="ft_zip_name", placeholder="e.g. my-flowers",
                      help="Lower-case letters, digits, - and _ (up to 40).")
        st.radio("Is a mirror image of one of your pictures still the same class?", FLIPS, index=None,
                 key="ft_zip_flips", help="Training shows the model mirrored copies only if it is: a flipped cat "
                                          "is a cat, but a flipped “b” is a “d”. Kept with the dataset.")
        st.button("Import", key="ft_import", on_click=_import, icon=":material/upload:")
        if st.session_state.get("ft_import_error"):
            st.error(st.session_state["ft_import_error"], icon=":material/error:")
        if st.session_state.get("ft_import_report") is not None:
            show_report(st.session_state["ft_import_report"])
    names = list_user_datasets()
    if names:
        if st.session_state.get("ft_folder") not in names:
            st.session_state["ft_folder"] = names[0]
        folder = st.selectbox("Your dataset", names, key="ft_folder")
        p = dataset_path(folder)
        report = _report(str(p), max(f.stat().st_mtime for f in [p, *p.iterdir()]))
        st.markdown(f"**{folder}**: {sum(report.counts.values())} usable images in {len(report.class_names)} classes")
        show_report(report)
        data_name = FOLDER_PREFIX + folder if report.ok else None

if data_name:
    info = dataset_info(data_name)
    c = st.columns(3)
    family = PRESETS["resnet18" if kind == "ImageNet weights" else "resnet20"]
    default_size = recipe_for(data_name, family).image_size if data_name.startswith(FOLDER_PREFIX) else \
        min(max(64 if kind == "ImageNet weights" else 32, info.min_size), info.max_size)
    size = c[0].number_input("Image size (px)", info.min_size, info.max_size, default_size, step=8, key="ft_size",
                             help="Your own images default to their own size (the median shorter side), rounded "
                                  "to the model's stride and at most 128 px for a short run.")
    subset = c[1].number_input("Training images (0 = all)", 0, 1_000_000, 0, step=500, key="ft_subset")
    augment = c[2].toggle("Augment", value=True, key="ft_augment", help="Not used by the linear probe (its "
                          "features are computed once).")

# --- 3. strategy ----------------------------------------------------------------------------------
st.subheader("3 · Strategy")
strategies = st.multiselect("Strategies (one run each, side by side)", STRATEGIES, default=["linear", "full"],
                            key="ft_strategies",
                            help="\n\n".join(f"**{k}**: {v}" for k, v in STRATEGY_HELP.items()))
c = st.columns(4)
epochs = c[0].number_input("Epochs", 1, 500, 3, key="ft_epochs")
batch = c[1].number_input("Batch size", 2, 4096, 64, step=16, key="ft_batch")
lr = c[2].number_input("Learning rate (head)", 1e-5, 5.0, 0.05, format="%.4g", key="ft_lr")
mult = c[3].number_input("Backbone lr ×", 0.001, 1.0, 0.1, format="%.3g", key="ft_mult",
                         help="Discriminative fine-tuning: the backbone learns slower than the new head.")


def _launch() -> None:
    st.session_state.pop("ft_error", None)
    try:
        if source is None or data_name is None:
            raise ValueError("Choose where to start from and a dataset that can train first.")
        if not strategies:
            raise ValueError("Choose at least one strategy.")
        data = DataConfig(name=data_name, image_size=int(size), train_subset=int(subset) or None, augment=augment)
        cfg = TrainConfig(epochs=int(epochs), batch_size=int(batch), lr=float(lr), schedule="cosine")
        ids = []
        for strategy in strategies:
            ft = FinetuneConfig(source=source, strategy=strategy, backbone_lr_mult=float(mult))
            key = hashlib.sha1(json.dumps([ft.to_dict(), data.to_dict(), cfg.to_dict()], sort_keys=True).encode())
            ids += launcher.submit_finetune(ft, data, cfg, store=store(), allow_download=allow_download,
                                            request_key=f"{session_token()}:{key.hexdigest()[:16]}")
    except ValueError as e:
        st.session_state["ft_error"] = str(e)
        return
    st.session_state[WATCH_KEY] = ids


st.button("Fine-tune", type="primary", icon=":material/tune:", on_click=_launch)
if st.session_state.get("ft_error"):
    st.error(st.session_state["ft_error"], icon=":material/error:")
queue_preview("auto", None, f"Fine-tuning ({len(strategies)} run{'s' if len(strategies) != 1 else ''})")

live_panel(WATCH_KEY, "No runs yet: choose a start, data and strategies, then press Fine-tune.", kinds=("finetune",))
runs_table(WATCH_KEY)
