"""The current model spec in session state, its widgets, and the shareable URL.

``SPEC_KEY`` holds the last *valid* ModelSpec. Widgets never own it: their callbacks rebuild a spec
from all widget values and either accept it (and update the URL) or keep the old one and record an
error to show. The URL is read once per distinct value, so our own URL writes never loop back.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from ..models.presets import PRESETS, get_preset, preset_name
from ..models.summary import min_input_size
from ..spec import MAX_CLASSES, MAX_IN_CHANNELS, MAX_STAGE_DEPTH, MAX_STAGES, MAX_WIDTH, ModelSpec
from ..urlcodec import spec_from_query, spec_to_query

SPEC_KEY = "lab_spec"  # current valid ModelSpec
SIZE_KEY = "lab_input_size"  # input side for summaries (None: the stem's default)
TRAIN_SPEC_KEY = "lab_train_spec"  # spec carried to the Train page by "Use this model"
ERROR_KEY = "build_error"  # last rejected widget combination, shown once
URL_SEEN_KEY = "build_url_seen"  # the query string last applied (or written) by us
DEFAULT_PRESET = "resnet20"
CUSTOM = "(custom)"

W = "build_"  # widget key prefix
SCALAR_FIELDS = ("stem", "block", "skip", "shortcut", "preact", "norm", "zero_init_residual",
                 "in_channels", "num_classes")
LIMITS = {"depth": (1, MAX_STAGE_DEPTH), "width": (1, MAX_WIDTH), "stages": (1, MAX_STAGES),
          "in_channels": (1, MAX_IN_CHANNELS), "num_classes": (1, MAX_CLASSES)}


def current_spec() -> ModelSpec:
    if SPEC_KEY not in st.session_state:
        st.session_state[SPEC_KEY] = PRESETS[DEFAULT_PRESET]
    return st.session_state[SPEC_KEY]


def current_input_size() -> int:
    size = st.session_state.get(SIZE_KEY)
    return current_spec().default_input_size if size is None else size


def _widget_values(spec: ModelSpec) -> dict[str, Any]:
    values: dict[str, Any] = {W + f: getattr(spec, f) for f in SCALAR_FIELDS}
    values[W + "stages"] = len(spec.depths)
    for i in range(MAX_STAGES):
        # stages beyond the spec keep a sensible value ready for when the user adds them
        values[W + f"depth_{i}"] = spec.depths[min(i, len(spec.depths) - 1)]
        doubled = spec.widths[-1] * 2 ** max(0, i - len(spec.widths) + 1)
        values[W + f"width_{i}"] = spec.widths[i] if i < len(spec.widths) else min(doubled, MAX_WIDTH)
    values[W + "preset"] = preset_name(spec) or CUSTOM
    return values


def set_spec(spec: ModelSpec, input_size: int | None = None) -> None:
    """Make ``spec`` current and point every widget at it. Call before widgets render, or in a callback."""
    st.session_state[SPEC_KEY] = spec
    st.session_state[SIZE_KEY] = input_size
    for key, value in _widget_values(spec).items():
        st.session_state[key] = value
    st.session_state[W + "input_size"] = input_size or spec.default_input_size
    st.session_state.pop(ERROR_KEY, None)


def ensure_widget_state() -> None:
    """Widget values are dropped when the user visits another page; restore them from the spec."""
    spec = current_spec()
    for key, value in _widget_values(spec).items():
        st.session_state.setdefault(key, value)
    st.session_state.setdefault(W + "input_size", current_input_size())


def spec_from_widgets() -> ModelSpec:
    """Build a spec from the widget values (raises ValueError for an invalid combination)."""
    ss = st.session_state
    n = int(ss[W + "stages"])
    return ModelSpec(
        **{f: ss[W + f] for f in SCALAR_FIELDS},
        depths=tuple(int(ss[W + f"depth_{i}"]) for i in range(n)),
        widths=tuple(int(ss[W + f"width_{i}"]) for i in range(n)),
    )


def on_preset_change() -> None:
    name = st.session_state[W + "preset"]
    if name != CUSTOM:
        set_spec(get_preset(name))


def on_field_change() -> None:
    try:
        spec = spec_from_widgets()
    except ValueError as e:
        st.session_state[ERROR_KEY] = str(e)
        return
    st.session_state[SPEC_KEY] = spec
    st.session_state[W + "preset"] = preset_name(spec) or CUSTOM
    size = st.session_state.get(SIZE_KEY)
    if size is not None and size < min_input_size(spec):
        size = st.session_state[SIZE_KEY] = None
    if size is None:  # follow the stem's own size (224 or 32) until the user picks one
        st.session_state[W + "input_size"] = spec.default_input_size
    st.session_state.pop(ERROR_KEY, None)


def on_input_size_change() -> None:
    size = int(st.session_state[W + "input_size"])
    st.session_state[SIZE_KEY] = None if size == current_spec().default_input_size else size


def import_spec_text(text: str | bytes) -> str | None:
    """Apply spec JSON from the user; return an error message (and change nothing) when it is bad."""
    try:
        spec = ModelSpec.from_json(text)
    except ValueError as e:
        return str(e)
    set_spec(spec)
    return None


def sync_from_url() -> str | None:
    """Apply the model named in the URL, once per distinct URL. Returns an error message for a bad link."""
    params = {k: st.query_params.get_all(k) for k in ("model", "spec", "size") if k in st.query_params}
    token = repr(sorted(params.items()))
    if not params or st.session_state.get(URL_SEEN_KEY) == token:
        return None
    st.session_state[URL_SEEN_KEY] = token
    try:
        decoded = spec_from_query(params)
    except ValueError as e:
        return f"The link's model could not be opened: {e}"
    if decoded is not None:
        set_spec(*decoded)
    return None


KEPT_PARAMS = ("me", "lesson")  # who this is and which lesson: the URL keeps them whatever the page writes


def write_url() -> None:
    """Put the current spec in the URL so the address bar is a shareable link (the personal token and the
    lesson stay in it: see :mod:`resnet_lab.ui.identity`)."""
    query = spec_to_query(current_spec(), st.session_state.get(SIZE_KEY))
    want = {**query, **{k: st.query_params[k] for k in KEPT_PARAMS if k in st.query_params}}
    if {k: st.query_params.get(k) for k in st.query_params} != want:
        st.query_params.from_dict(want)
    st.session_state[URL_SEEN_KEY] = repr(sorted((k, [v]) for k, v in query.items()))
