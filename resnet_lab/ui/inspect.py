"""What the three Inspect pages share: the model picker (a run and what to compare it with, or an
untrained spec), cached read-only subjects and datasets, and the image picker (validation image,
upload or camera, all through the safe image door).

The selection lives in session keys that do not belong to any widget, so it survives switching
between the Predictions, Feature maps and Grad-CAM pages; ``?run=ID&vs=ID`` deep-links a choice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st
import torch

from ..analysis import Evaluation, Subject, evaluate, from_checkpoint, from_spec
from ..analysis.subject import checkpoint_of, require_checkpoint
from ..data.images import IMAGE_EXTENSIONS, ImageRejected
from ..data.registry import DATASETS, DataConfig, Dataset, load_dataset, stratified_order
from ..spec import ModelSpec
from ..store import Run
from .common import plain
from .compute import Keyed, on_model
from .session import store
from .state import TRAIN_SPEC_KEY, current_spec
from .widgets import choice

MAX_EVAL = 2000  # validation images evaluated for the Predictions page (a stratified subset beyond this)
NONE = "(nothing: one model)"
TWIN = "its plain twin (same spec, no skips)"
KEEP = "_insp_keep"  # session key: {"source", "run", "vs", "spec_data"} kept across pages


@dataclass(frozen=True)
class Picked:
    """The models a page shows (one or two) and the data they are fed."""

    subjects: tuple[Subject, ...]  # 1 or 2; the first is "the model"
    dataset: Dataset | None  # its validation images (None: could not be loaded; see the page's message)
    data: DataConfig | None
    runs: tuple[Run | None, ...]  # the run behind each subject (None for an untrained spec)

    @property
    def main(self) -> Subject:
        return self.subjects[0]


# --- cached, read-only loaders ------------------------------------------------------------------


@st.cache_resource(max_entries=8, show_spinner="Loading the checkpoint…")
def _subject(path: str, stamp: float, label: str, run_id: int | None) -> Subject:
    return from_checkpoint(path, label=label, run_id=run_id)


def cached_subject(run: Run) -> Subject:
    path = require_checkpoint(run)
    return _subject(path, Path(path).stat().st_mtime, f"#{run.id} {run.name} ({run.kind})", run.id)


@st.cache_resource(max_entries=4, show_spinner="Building the untrained model…")
def _spec_subject(spec_json: str, data_json: str, seed: int) -> Subject:
    data = DataConfig.from_dict(json.loads(data_json))
    return from_spec(ModelSpec.from_json(spec_json), _dataset(data_json), data, seed=seed)


@st.cache_resource(max_entries=4, show_spinner="Loading the validation images…")
def _dataset(data_json: str) -> Dataset:
    return load_dataset(DataConfig.from_dict(json.loads(data_json)))


def cached_dataset(data: DataConfig) -> Dataset:
    return _dataset(json.dumps(data.to_dict(), sort_keys=True))


def eval_indices(labels: torch.Tensor, limit: int = MAX_EVAL) -> torch.Tensor:
    """All validation indices, or a stratified subset of ``limit`` (sorted) when there are more."""
    if len(labels) <= limit:
        return torch.arange(len(labels))
    return stratified_order(labels, 0)[:limit].sort().values


def _evaluate(subject: Subject, x_val: torch.Tensor, y_val: torch.Tensor) -> Evaluation:
    idx = eval_indices(y_val)
    return evaluate(subject.model, subject.normalize(x_val[idx]), y_val[idx])


def cached_evaluation(subject: Subject, dataset: Dataset, data: DataConfig) -> tuple[Evaluation, torch.Tensor]:
    """(evaluation of the subject on its validation images, the dataset indices evaluated)."""
    key = json.dumps(data.to_dict(), sort_keys=True)
    ev = on_model("evaluate", subject, _evaluate, Keyed(dataset.x_val, ("x_val", key)),
                  Keyed(dataset.y_val, ("y_val", key)), spinner="Evaluating on the validation images…")
    return ev, eval_indices(dataset.y_val)


# --- the model picker ---------------------------------------------------------------------------


def inspectable_runs() -> list[Run]:
    """Runs with a checkpoint on disk, newest job first; within a job the ResNet before its plain twin.
    Runs that have a twin with a checkpoint come first, so a page opens on a pair it can compare."""
    runs = [r for r in store().runs.list(limit=200) if checkpoint_of(r) is not None]
    ids = {r.id for r in runs}
    first_seen: dict[int, int] = {}
    for i, r in enumerate(runs):
        first_seen.setdefault(r.job_id or -r.id, i)
    return sorted(runs, key=lambda r: (r.partner_id not in ids, first_seen[r.job_id or -r.id], r.kind != "ResNet",
                                       r.id))


def partner_of(run: Run, runs: list[Run]) -> Run | None:
    """The run's twin (its plain net, or the ResNet it is the plain net of) among ``runs``, or None."""
    return next((r for r in runs if r.id == run.partner_id), None)


def pick_run(widget: Any, runs: list[Run], key: str, **kwargs: Any) -> tuple[Run, Run | None]:
    """A "Run" choice among ``runs`` (made with ``widget``, e.g. ``st.selectbox`` or a column's); returns the
    chosen run and its twin among ``runs`` (None: trained alone, or its twin has no checkpoint)."""
    by_id = {r.id: r for r in runs}
    rid = choice(widget, "Run", list(by_id), format_func=lambda i: run_label(by_id[i]), key=key, **kwargs)
    return by_id[rid], partner_of(by_id[rid], runs)


def loaded_subjects(runs: list[Run]) -> tuple[Subject, ...] | None:
    """The runs' subjects (:func:`cached_subject`, in order), or None after saying why a checkpoint could not be
    loaded."""
    try:
        return tuple(cached_subject(r) for r in runs)
    except (OSError, ValueError, RuntimeError, KeyError) as e:
        st.error(f"The checkpoint could not be loaded: {e}", icon=":material/error:")
        return None


def run_label(run: Run) -> str:
    acc = run.best.get("val/acc")
    score = f" · val {acc:.1%}" if isinstance(acc, (int, float)) else ""
    return f"#{run.id} {run.name} ({run.kind}, {run.data.get('name', '?')}){score}"


def _query_int(key: str) -> int | None:
    raw = st.query_params.get(key)
    if raw is None or not isinstance(raw, str) or not raw.isdigit() or len(raw) > 9:
        return None
    return int(raw)


def _link_problems(ids: set[int]) -> list[str]:
    """What the link's ``?run=`` / ``?vs=`` ask for that cannot be shown: not a run number, or no run with a
    checkpoint here (``ids``). The value is quoted as the link has it (the caller shows it as text)."""
    problems = []
    for key in ("run", "vs"):
        raw = st.query_params.get(key)
        if raw is None:
            continue
        number = _query_int(key)
        if number is None:
            shown = raw if len(raw) <= 40 else raw[:40] + "…"
            problems.append(f"The link's {key}={shown} is not a run number, so it was not opened.")
        elif number not in ids:
            problems.append(f"The link's {key}={number} names no run with a checkpoint here (it does not exist, "
                            "or it has not saved one yet), so it was not opened.")
    return problems


def _keep() -> dict:
    return st.session_state.setdefault(KEEP, {})


def pick_models(key: str, allow_pair: bool = True) -> Picked | None:
    """The sidebar-free picker at the top of each Inspect page. Returns None (after saying why) when
    there is nothing to inspect yet."""
    keep = _keep()
    q_run, q_vs = _query_int("run"), _query_int("vs")
    if q_run is not None and keep.get("url_seen") != (q_run, q_vs):
        keep.update(source="run", run=q_run, url_seen=(q_run, q_vs))
        if q_vs is None:
            keep.pop("vs", None)  # ?run=ID alone: side by side with its own twin, as when picked by hand
        else:
            keep["vs"] = q_vs
    runs = inspectable_runs()
    for problem in _link_problems({r.id for r in runs}):  # a deep link that cannot be followed is said, not dropped
        st.warning(plain(problem, 300), icon=":material/link_off:")
    sources = ["A finished run", "An untrained model (from Build)"]
    default_source = 0 if keep.get("source", "run" if runs else "spec") == "run" else 1
    source = choice(st.radio, "Inspect", sources, index=default_source, horizontal=True, key=f"{key}_source")
    keep["source"] = "run" if source == sources[0] else "spec"
    if keep["source"] == "run":
        return _pick_runs(key, runs, keep, allow_pair)
    return _pick_spec(key, keep, allow_pair)


def _pick_runs(key: str, runs: list[Run], keep: dict, allow_pair: bool) -> Picked | None:
    if not runs:
        st.info("No run has a checkpoint yet. Train one on the **Train** page (a minute on `shapes` is "
                "enough), or inspect an untrained model from **Build** above.", icon=":material/info:")
        return None
    by_id = {r.id: r for r in runs}
    ids = list(by_id)
    first = keep.get("run") if keep.get("run") in by_id else ids[0]
    cols = st.columns(2 if allow_pair else 1)
    rid = choice(cols[0].selectbox, "Run", ids, index=ids.index(first), format_func=lambda i: run_label(by_id[i]),
                            key=f"{key}_run")
    run = by_id[rid]
    mate = partner_of(run, runs)
    if keep.get("run") != rid:
        keep["run"] = rid
        keep.pop("vs", None)  # a new run: default to its own twin again
        st.session_state[f"{key}_vs"] = mate.id if mate else NONE  # the widget would keep the old choice
    partner = None
    if allow_pair:
        others = [i for i in ids if i != rid]
        options = [NONE, *others]
        want = keep.get("vs", mate.id if mate else None)
        if st.session_state.get(f"{key}_vs") not in options:
            st.session_state[f"{key}_vs"] = want if want in options else NONE
        vs = choice(cols[1].selectbox, "Side by side with", options, key=f"{key}_vs",
                               format_func=lambda i: i if isinstance(i, str) else run_label(by_id[i]),
                               help="By default the run trained beside it: its plain twin, or the ResNet it "
                                    "is the twin of. Pick any run (e.g. before and after fine-tuning).")
        keep["vs"] = None if vs == NONE else vs
        partner = None if vs == NONE else by_id[vs]
    chosen = [run] if partner is None else [run, partner]
    subjects = loaded_subjects(chosen)
    if subjects is None:
        return None
    data = subjects[0].data
    dataset = _load_or_say(data)
    return Picked(subjects, dataset, data, tuple(chosen))


def _pick_spec(key: str, keep: dict, allow_pair: bool) -> Picked | None:
    spec = st.session_state.get(TRAIN_SPEC_KEY) or current_spec()
    first = ("shapes", "digits")
    builtin = [n for n in DATASETS if n in first] + [n for n in DATASETS if n not in first]
    cols = st.columns([2, 1, 1])
    name = choice(cols[0].selectbox, "Images from", builtin, key=f"{key}_spec_data",
                             index=builtin.index(keep.get("spec_data", "shapes")) if keep.get("spec_data", "shapes")
                             in builtin else 0)
    keep["spec_data"] = name
    seed = int(cols[1].number_input("Seed", 0, 10_000, int(keep.get("seed", 0)), key=f"{key}_seed"))
    keep["seed"] = seed
    pair = allow_pair and cols[2].toggle("With its plain twin", value=keep.get("spec_pair", True), key=f"{key}_pair")
    keep["spec_pair"] = pair
    st.caption(f"**{spec.describe()}** from the Build page, with fresh (seeded) weights: what a network "
               "looks like before it learns anything.")
    data = DataConfig(name=name, image_size=32 if name != "digits" else 16, seed=0)
    dataset = _load_or_say(data)
    if dataset is None:
        return None
    spec = spec.replace(num_classes=dataset.num_classes, in_channels=dataset.in_channels)
    data_json = json.dumps(data.to_dict(), sort_keys=True)
    specs = [spec, spec.twin()] if pair else [spec]
    subjects = tuple(_spec_subject(s.to_json(indent=None), data_json, seed) for s in specs)
    return Picked(subjects, dataset, data, tuple(None for _ in subjects))


def _load_or_say(data: DataConfig | None) -> Dataset | None:
    if data is None:
        st.warning("This checkpoint does not say which data it was trained on; only uploaded images can be used.",
                   icon=":material/warning:")
        return None
    try:
        return cached_dataset(data)
    except (OSError, ValueError) as e:
        st.warning(f"The validation images of **{data.name}** are not available here: {e}",
                   icon=":material/warning:")
        return None


# --- the image picker ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PickedImage:
    image: torch.Tensor  # C x S x S in [0, 1], preprocessed like the main subject's training images
    label: int | None  # the true class, when known (validation images)
    caption: str
    index: int | None = None  # validation index


def pick_image(key: str, picked: Picked) -> PickedImage | None:
    """A validation image, an upload or a camera snapshot; bad files give a message, never a traceback."""
    subject, ds = picked.main, picked.dataset
    options = (["Validation image"] if ds is not None else []) + ["Upload", "Camera"]
    how = choice(st.radio, "Image", options, horizontal=True, key=f"{key}_how")
    if how == "Validation image":
        n = len(ds.y_val)
        i = int(st.number_input(f"Validation image (0 … {n - 1})", 0, n - 1, min(int(_keep().get("img", 0)), n - 1),
                                key=f"{key}_idx"))
        _keep()["img"] = i
        y = int(ds.y_val[i])
        x = ds.x_val[i]
        return PickedImage(x, y, f"validation #{i} · true class **{plain(subject.class_name(y))}**", i)
    if how == "Upload":
        f = st.file_uploader("An image (JPEG, PNG, GIF, BMP, WEBP, TIFF)",
                             type=[e.lstrip(".") for e in IMAGE_EXTENSIONS], key=f"{key}_upload")
    else:
        f = st.camera_input("Take a picture", key=f"{key}_camera")
    if f is None:
        return None
    return decode_upload(subject, f.getvalue(), getattr(f, "name", "camera"))


def as_seen(subject: Subject, image: torch.Tensor) -> torch.Tensor:
    """One C x H x W image in [0, 1] -> the C x S x S image in [0, 1] that ``subject`` is fed (resized and
    converted to its channels when it was trained on other images than the main model); for display."""
    x = image
    if x.shape[0] != subject.in_channels or x.shape[-1] != subject.image_size or x.shape[-2] != subject.image_size:
        rgb = x.expand(3, -1, -1) if x.shape[0] == 1 else x
        x = subject.prepare(rgb)
    return x


def feed(subject: Subject, image: torch.Tensor) -> torch.Tensor:
    """One C x H x W image in [0, 1] -> a normalized 1 x C x S x S batch for ``subject`` (see ``as_seen``)."""
    return subject.normalize(as_seen(subject, image)[None])


def decode_upload(subject: Subject, raw: bytes, name: str) -> PickedImage | None:
    """An uploaded (or camera) file through the safe door and ``subject``'s preprocessing, as a
    :class:`PickedImage`; a refused file, or one this model cannot take, gives an ``st.error`` naming the
    file (escaped: file names are user text) and None, never a traceback."""
    shown = plain(name, 120)
    try:
        x = subject.load_image(raw)
    except ImageRejected as e:
        st.error(f"**{shown}** was not used: {plain(e, 400)}.", icon=":material/image_not_supported:")
        return None
    except ValueError as e:  # the image is fine but this model cannot be fed it (e.g. an odd channel count)
        st.error(f"**{shown}** cannot be fed to this model: {plain(e, 400)}.", icon=":material/error:")
        return None
    return PickedImage(x, None, f"{shown} · resized to {subject.image_size} px like the training images")
