from pathlib import Path
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from resnet_lab.models.presets import PRESET_GROUPS, PRESETS, plain_name
from resnet_lab.models.snippet import python_snippet
from resnet_lab.models.summary import (MAX_BATCH, MAX_INPUT_SIZE, MIN_INPUT_SIZE, ShapeBreak, format_bytes,
                                       format_count, shape_break)
from resnet_lab.spec import BLOCKS, MAX_JSON_BYTES, NORMS, SHORTCUTS, STEMS, ModelSpec
from resnet_lab.ui.charts import show_chart
from resnet_lab.ui.choose import choose_panel
from resnet_lab.ui import state as S
from resnet_lab.ui.cache import cached_dot, cached_summary
from resnet_lab.ui.common import plain
from resnet_lab.ui.lesson import hidden
from resnet_lab.viz.summary import stage_cost_figure
from resnet_lab.ui.widgets import choice

W = S.W
SHORTCUT_HELP = {"A": "A · zero-pad identity (no parameters)", "B": "B · projection when the shape changes",
                 "C": "C · projection on every block"}

st.title("Build")
st.caption("Pick a preset or change any part of the network; its plain twin — the same network without "
           "skip connections — is built alongside for comparison.")

url_error = S.sync_from_url()
S.ensure_widget_state()
S.write_url()
if url_error:
    st.error(url_error, icon=":material/link_off:")

# --- choose -----------------------------------------------------------------------------------
preset_options = [S.CUSTOM]
for names in PRESET_GROUPS.values():
    for name in names:
        preset_options += [n for n in (name, plain_name(name)) if n in PRESETS]


def _preset_label(name: str) -> str:
    return "custom (edited below)" if name == S.CUSTOM else f"{name} — {PRESETS[name].describe()}"


top = st.columns([3, 1, 1])
choice(top[0].selectbox, "Preset", preset_options, key=W + "preset", format_func=_preset_label,
                 on_change=S.on_preset_change, help="torchvision's ImageNet ResNets, the paper's CIFAR ResNets "
                 "(6n+2 layers, option A), pre-activation ResNet-18, and the plain twin of each.")
spec = S.current_spec()
top[1].number_input("Input size (px)", min_value=MIN_INPUT_SIZE, max_value=MAX_INPUT_SIZE,
                    step=8, key=W + "input_size", on_change=S.on_input_size_change,
                    help="Side of the square input image: 224 for ImageNet stems, 32 for CIFAR stems. Too small "
                         "a size shows the layer where the network runs out of pixels.")
top[2].number_input("Batch (for memory)", min_value=1, max_value=MAX_BATCH, value=128, step=16, key=W + "batch",
                    help="Only used to estimate activation memory during training.")

if not hidden("custom_model"):  # a lesson may offer presets only
    with st.expander("Customise the architecture", expanded=st.session_state[W + "preset"] == S.CUSTOM):
        c = st.columns(4)
        c[0].radio("Stem", STEMS, key=W + "stem", on_change=S.on_field_change, horizontal=True,
                   help="imagenet: 7×7/2 conv + 3×3/2 max-pool. cifar: one 3×3 conv, no pooling.")
        c[1].radio("Block", BLOCKS, key=W + "block", on_change=S.on_field_change, horizontal=True,
                   help="basic: two 3×3 convs. bottleneck: 1×1 → 3×3 → 1×1 with 4× expansion.")
        choice(c[2].radio, "Normalization", NORMS, key=W + "norm", on_change=S.on_field_change, horizontal=True,
                   format_func=lambda n: {"batch": "BatchNorm", "none": "none"}[n])
        c[3].toggle("Skip connections", key=W + "skip", on_change=S.on_field_change,
                    help="Off gives the plain net: no shortcut module and no addition in forward.")
        c = st.columns(4)
        c[0].radio("Shortcut option", SHORTCUTS, key=W + "shortcut", on_change=S.on_field_change,
                   format_func=lambda o: SHORTCUT_HELP[o], disabled=not st.session_state[W + "skip"],
                   help="He et al. 2015, sec. 3.3.")
        c[1].toggle("Pre-activation (v2)", key=W + "preact", on_change=S.on_field_change,
                    help="BN → ReLU → conv inside each block (He et al. 2016, Identity Mappings).")
        c[1].toggle("Zero-init residuals", key=W + "zero_init_residual", on_change=S.on_field_change,
                    help="Each residual block starts as an identity (Goyal et al. 2017, arXiv:1706.02677).")
        c[2].number_input("Input channels", *S.LIMITS["in_channels"], key=W + "in_channels",
                          on_change=S.on_field_change)
        c[3].number_input("Classes", *S.LIMITS["num_classes"], key=W + "num_classes", on_change=S.on_field_change)

        n_stages = st.slider("Stages", *S.LIMITS["stages"], key=W + "stages", on_change=S.on_field_change)
        cols = st.columns(n_stages)
        for i, col in enumerate(cols):
            col.number_input(f"layer{i + 1} blocks", *S.LIMITS["depth"], key=W + f"depth_{i}",
                             on_change=S.on_field_change)
            col.number_input(f"layer{i + 1} width", *S.LIMITS["width"], key=W + f"width_{i}",
                             on_change=S.on_field_change, help="Base channels; bottleneck blocks output 4× this.")

if S.ERROR_KEY in st.session_state:
    st.error(f"That combination is not a valid network, so the model below is unchanged: "
             f"{st.session_state[S.ERROR_KEY]}", icon=":material/error:")

# --- compare with the twin --------------------------------------------------------------------
spec = S.current_spec()
size = S.current_input_size()
batch = int(st.session_state[W + "batch"])


@st.cache_data(max_entries=64, show_spinner=False)
def _shape_break(spec_json: str, input_size: int) -> ShapeBreak | None:
    return shape_break(ModelSpec.from_json(spec_json), input_size)


def _use_size(n: int) -> None:
    st.session_state[W + "input_size"] = n
    S.on_input_size_change()


def _show_break(brk: ShapeBreak) -> None:
    """Too small an input: the layer where the map runs out of pixels, the shapes on the way there, a fix."""
    st.error(f"**At {brk.input_size} px this model runs out of pixels.** {brk.message()}", icon=":material/crop_free:")
    rows = []
    for step in brk.steps:
        side_in, side_out = step.in_shape[1], step.out_shape[1]
        if step.name == brk.layer:
            what = f"cannot halve {side_in} px"
        elif step.stride > 1:
            what = f"halves {side_in} → {side_out} px"
        else:
            what = f"keeps {side_out} px"
        rows.append({"layer": step.name, "type": step.type, "input": " × ".join(map(str, step.in_shape)),
                     "output": " × ".join(map(str, step.out_shape)), "what happens": what})
    st.markdown(f"Shapes (channels × height × width) from the input up to **{brk.layer}**, where it breaks:")
    broken = "background-color: rgba(255, 75, 75, 0.2)"
    st.dataframe(pd.DataFrame(rows).style.apply(lambda r: [broken if r["layer"] == brk.layer else ""] * len(r),
                                                axis=1),
                 hide_index=True, width="stretch", placeholder="—")
    st.button(f"Use {brk.min_input_size} px", on_click=_use_size, args=(brk.min_input_size,), type="primary",
              icon=":material/open_in_full:", key=W + "use_min_size",
              help="The smallest side at which every downsampling layer still has at least 2 pixels to halve.")


def _delta(a: int, b: int | None, fmt: str) -> str | None:
    """Metric delta text against the other model: None for the left column, 'same' when equal."""
    if b is None:
        return None
    return "same" if a == b else fmt.format(a - b)


def _compare() -> None:
    """The model and its twin side by side: numbers, diagrams, stage tables, cost per stage, layer table."""
    twin = spec.twin()
    with st.spinner("Summarising…"):
        summary, twin_summary = cached_summary(spec, size, batch), cached_summary(twin, size, batch)
    left, right = st.columns(2, gap="large")
    for col, s, other, label in ((left, summary, None, "This model"),
                                 (right, twin_summary, summary, "Plain twin" if spec.skip else "Residual twin")):
        with col:
            st.markdown(f"**{label}** · {s.spec.describe()}")
            m = st.columns(2) + st.columns(2)
            for slot, name, value, other_value, help_text in (
                (m[0], "Parameters", s.params, other and other.params, f"{s.params:,} parameters"),
                (m[1], "Multiply-adds", s.macs, other and other.macs,
                 f"{s.macs:,} per image at {size}×{size} ({format_count(s.flops)} FLOPs)"),
            ):
                delta = _delta(value, other_value, "{:+,}")
                slot.metric(name, format_count(value), delta, delta_color="off", help=help_text,
                            delta_arrow="off" if delta == "same" else "auto")
            m[2].metric("Depth", s.depth, help="Weighted layers on the main path, counted as the paper does.")
            m[3].metric("Activations", format_bytes(s.activation_bytes),
                        help=f"float32 layer outputs kept for backward, batch of {batch}")
            st.graphviz_chart(cached_dot(s.spec, size), width="content")
            st.dataframe(
                pd.DataFrame([{"stage": r.name, "blocks": r.blocks, "output": "×".join(map(str, r.output_shape)),
                               "params": r.params, "MACs": format_count(r.macs)} for r in s.stages]),
                hide_index=True, width="stretch", placeholder="—",
            )

    show_chart(stage_cost_figure(summary, twin_summary), key="build_stage_cost")

    with st.expander("Per-layer table"):
        st.dataframe(
            pd.DataFrame([{"layer": r.name, "type": r.type, "output": "×".join(map(str, r.output_shape)),
                           "params": r.params, "MACs": r.macs} for r in summary.layers]),
            hide_index=True, width="stretch", height=400, placeholder="—",
        )


st.subheader(spec.describe())
brk = _shape_break(spec.to_json(indent=None), size)
if brk is not None:
    _show_break(brk)
else:
    _compare()
    choose_panel(spec, size)


def _share_link(query: dict[str, str]) -> str:
    """The full address of this page with ``query``: the browser's own URL when it sent one, else built from
    the Host header (behind a proxy that terminates TLS, X-Forwarded-Proto says https)."""
    base = st.context.url
    if not base:
        host = st.context.headers.get("Host")
        proto = st.context.headers.get("X-Forwarded-Proto", "http").split(",")[0].strip()
        base = f"{proto if proto in ('http', 'https') else 'http'}://{host}/{Path(__file__).stem}" if host else ""
    return f"{base}?{urlencode(query, safe=':,')}"


# --- share, export, import --------------------------------------------------------------------
st.subheader("Share and export")
if hidden("custom_model"):  # a lesson may offer presets only: nothing to import
    share, export, imp = (*st.tabs(["Share link", "Export"]), None)
else:
    share, export, imp = st.tabs(["Share link", "Export", "Import"])
with share:
    query = S.spec_to_query(spec, st.session_state.get(S.SIZE_KEY))
    if "lesson" in st.query_params:  # the class's lesson, never the personal `me` token
        query["lesson"] = st.query_params["lesson"]
    link = _share_link(query)
    st.markdown("A link to exactly this model (the copy button is at its right) — paste it to a class, or into "
                "any browser that reaches this server.")
    st.code(link, language=None, wrap_lines=True)
    if not link.startswith("http"):
        st.caption("This browser did not say which address it uses: put this after the app's address "
                   "(the address bar holds the whole link).")
with export:
    st.download_button("Download spec JSON", spec.to_json(), file_name="model_spec.json", mime="application/json",
                       icon=":material/download:")
    st.code(spec.to_json(), language="json")
    st.markdown("Rebuild it in Python:")
    st.code(python_snippet(spec), language="python")


def _import_text() -> None:
    st.session_state["build_import_error"] = S.import_spec_text(st.session_state.get(W + "import_text", ""))


def _import_file() -> None:
    upload = st.session_state.get(W + "import_file")
    if upload is None:
        return
    if upload.size > MAX_JSON_BYTES:
        st.session_state["build_import_error"] = (f"{plain(upload.name)} is {upload.size:,} bytes; a spec is at most "
                                                  f"{MAX_JSON_BYTES:,}")
        return
    st.session_state["build_import_error"] = S.import_spec_text(upload.getvalue())


if imp is not None:
    with imp:
        st.file_uploader("Spec JSON file", type=["json"], key=W + "import_file", on_change=_import_file,
                         max_upload_size=1)
        st.text_area("…or paste spec JSON", key=W + "import_text", height=150, placeholder='{"stem": "cifar", ...}')
        st.button("Import", on_click=_import_text, icon=":material/upload:")
        err = st.session_state.get("build_import_error")
        if err:
            st.error(f"Could not import that spec — nothing changed. {err}", icon=":material/error:")

st.divider()
if st.button("Use this model →", type="primary", help="Carry this spec to the Train page."):
    st.session_state[S.TRAIN_SPEC_KEY] = spec
    st.switch_page("app_pages/train.py")
