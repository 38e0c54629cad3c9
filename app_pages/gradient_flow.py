"""Gradient flow page: per-layer gradient norms and the forward signal by depth, a ResNet beside its plain twin
(same initialization seed, same batch) — live at initialization for any depth, at a run's checkpoint, and as a
layer × step heat map of the norms logged while it trained."""

import json
import math

import streamlit as st
import torch

from resnet_lab.analysis.gradflow import (DEPTHS, GradFlow, cifar_spec, depth_sweep, flow_batch, flow_data,
                                          gradient_flow, init_flow)
from resnet_lab.analysis.learned import inconclusive
from resnet_lab.analysis.subject import Subject
from resnet_lab.data.registry import DataConfig, dataset_info
from resnet_lab.device import pick_device
from resnet_lab.experiments.learned import check_runs
from resnet_lab.spec import ModelSpec
from resnet_lab.ui.charts import show_chart
from resnet_lab.ui.cache import shared_results
from resnet_lab.ui.common import PAGES, plain
from resnet_lab.ui.compute import Keyed, on_models
from resnet_lab.ui.inspect import cached_dataset, inspectable_runs, loaded_subjects, pick_run
from resnet_lab.ui.session import store
from resnet_lab.ui.state import TRAIN_SPEC_KEY, current_spec
from resnet_lab.viz.gradflow import FlowSeries, activation_figure, grad_heatmap_figure, grad_norm_figure, spread_figure

DATA_NAMES = ("shapes", "digits")  # built in, nothing to download
BATCH_RANGE = (8, 256)  # images per batch, the widget's range
BADGE = {"healthy": ":green-badge[:material/check: healthy]", "vanishing": ":orange-badge[:material/south: vanishing]",
         "exploding": ":red-badge[:material/north: exploding]"}
SWEEP_KEY = "gf_sweep_shown"  # session key: the sweep settings whose chart is shown

st.title(PAGES["app_pages/gradient_flow.py"][0])
st.caption("Why do deep plain networks train worse than shallow ones (He et al. 2015, *degradation*)? Follow one "
           "batch's gradient back through the network: the size of the gradient every conv and linear weight "
           "receives, from the input side (left) to the output (right). Through a ResNet's identity shortcuts it "
           "arrives at every layer with a similar size; its plain twin — same layers, same initial weights, no "
           "shortcuts — has to pass it through every layer, and the norms drift apart exponentially with depth "
           "(Balduzzi et al. 2017, *shattered gradients*). The forward signal (the std of every block's output) is "
           "measured in the same pass. Train mode, as the first training step: BatchNorm uses the batch statistics.")


def short(spec: ModelSpec) -> str:
    """'ResNet-56', 'Plain-56', 'PreAct-ResNet-18'."""
    return spec.describe().split(" (")[0]


def fmt_factor(v: float | None) -> str:
    if v is None or v != v:
        return "n/a"
    if v == float("inf"):
        return "∞"
    return f"{v:,.3g}×" if v < 1e5 else f"{v:.2g}×"


def series(flows: list[tuple[str, ModelSpec, GradFlow]], what: str) -> list[FlowSeries]:
    if what == "grad":
        return [FlowSeries(label, f.names, f.grad_norms, plain=not spec.skip) for label, spec, f in flows]
    return [FlowSeries(label, f.act_names, f.act_stds, plain=not spec.skip) for label, spec, f in flows]


def show_flows(flows: list[tuple[str, ModelSpec, GradFlow]], key: str) -> None:
    """The two charts side by side, then per model: first/last ratio, conv spread, loss and the verdict."""
    c = st.columns(2)
    with c[0]:
        show_chart(grad_norm_figure(series(flows, "grad")), key=f"{key}_grad_chart", width="stretch")
    with c[1]:
        show_chart(activation_figure(series(flows, "act")), key=f"{key}_act_chart", width="stretch")
    for col, (label, _spec, f) in zip(st.container(key=f"{key}_verdicts").columns(len(flows)), flows):
        with col:
            v = f.verdict()
            st.markdown(f"**{plain(label)}** {BADGE[v.word]}")
            m = st.columns(3)
            m[0].metric("First / last", fmt_factor(f.first_last_ratio),
                        help="First / last conv gradient: ‖dL/dW‖ of the first conv layer divided by the last "
                             "conv layer's. Below 1: the gradient shrinks on its way to the input; above 1: it grows.")
            m[1].metric("Conv spread", fmt_factor(f.conv_spread),
                        help="Conv spread (max / min): the largest conv gradient norm divided by the smallest; "
                             "1 is perfectly even.")
            m[2].metric("Loss", f"{f.loss:.3f}" if f.loss == f.loss else "n/a",
                        help="Cross-entropy of the batch (train mode).")
            st.caption(v.sentence)


def init_batch(data_json: str, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed, class-balanced batch of ``batch`` training images of the data, on the computing device."""
    ds = cached_dataset(DataConfig.from_dict(json.loads(data_json)))
    x, y = flow_batch(ds, batch, seed=0)
    device = pick_device()
    return x.to(device), y.to(device)


@st.cache_data(max_entries=64, show_spinner=False)
def init_pair(spec_json: str, data_json: str, batch: int, seed: int) -> tuple[GradFlow, GradFlow]:
    """Gradient flow at initialization of the spec and its twin: same seed, same batch."""
    spec = ModelSpec.from_json(spec_json)
    x, y = init_batch(data_json, batch)
    return init_flow(spec, x, y, seed), init_flow(spec.twin(), x, y, seed)


def checkpoint_flows(subjects: tuple[Subject, ...], x: torch.Tensor, y: torch.Tensor) -> tuple[GradFlow, ...]:
    """Gradient flow of each checkpoint on the same batch (run by on_models with the subjects' locks held:
    gradient_flow works on a copy of the shared model, and the lock keeps other sessions' hooks out of it)."""
    return tuple(gradient_flow(s.model, x.to(s.device), y.to(s.device)) for s in subjects)


# --- 1. at initialization, any depth ---------------------------------------------------------------
st.subheader("At initialization: depth")
c = st.columns([3, 2, 1, 1])
use_build = c[0].toggle("Use the Build page's model", value=False, key="gf_use_build",
                        help="Instead of the CIFAR family. Off: He et al.'s CIFAR ResNets of depth 6n+2 (option A "
                             "shortcuts, 16-32-64 channels). On: the model you assembled on the Build page, and its twin.")
depth = int(c[0].select_slider("Depth (weighted layers)", DEPTHS, value=20, key="gf_depth", disabled=use_build,
                               help="He et al. (2015) compare plain and residual nets of 20, 32, 44, 56 and 110 "
                                    "layers on CIFAR-10."))
data_name = c[1].selectbox("Images", DATA_NAMES, key="gf_data",
                           help="The batch comes from this dataset's training images (built in, nothing downloaded).")
batch = int(c[2].number_input("Batch", *BATCH_RANGE, value=64, step=8, key="gf_batch",
                              help="Images in the fixed, class-balanced batch (the same for both models)."))
seed = int(c[3].number_input("Seed", 0, 10_000, value=0, key="gf_seed",
                             help="Initialization seed: both models are built right after torch.manual_seed(seed), "
                                  "as the trainer does, so they start from the same weights."))

info = dataset_info(data_name)
try:
    if use_build:
        base = st.session_state.get(TRAIN_SPEC_KEY) or current_spec()
        spec = info.fit(base)
    else:
        spec = cifar_spec(depth, num_classes=info.num_classes, in_channels=info.in_channels)
    data = flow_data(data_name, spec)
    data_json = json.dumps(data.to_dict(), sort_keys=True)
    with st.spinner(f"Forward and backward through {short(spec)} and {short(spec.twin())}…"):
        first, second = init_pair(spec.to_json(indent=None), data_json, batch, seed)
except (ValueError, RuntimeError, OSError) as e:
    st.error(f"The gradient flow could not be computed: {e}", icon=":material/error:")
else:
    st.caption(f"**{spec.describe()}** and its twin **{short(spec.twin())}**, fresh weights from seed {seed}, on the "
               f"same {batch} {data_name} training images ({data.image_size} px, class-balanced).")
    show_flows([(short(spec), spec, first), (short(spec.twin()), spec.twin(), second)], "gf")

    # --- the sweep: spread vs depth ---
    st.markdown("**All depths at once.** The conv spread (largest / smallest per-layer gradient norm) of the CIFAR "
                "ResNet and its plain twin at every depth, same seed and batch.")
    c = st.columns([3, 1], vertical_alignment="bottom")
    top = int(c[0].select_slider("Sweep up to depth", DEPTHS, value=DEPTHS[-1], key="gf_sweep_max",
                                 help="The deepest nets cost the most (a 110-layer pair takes seconds on a CPU)."))
    sweep_json = json.dumps(flow_data(data_name).to_dict(), sort_keys=True)
    depths = [d for d in DEPTHS if d <= top]
    sweep_key = (sweep_json, batch, seed, top)
    if c[1].button("Sweep all depths", key="gf_sweep_go", icon=":material/stacked_line_chart:"):
        st.session_state[SWEEP_KEY] = sweep_key
    if st.session_state.get(SWEEP_KEY) == sweep_key:
        swept = shared_results("gradient_flow.sweep", 16)  # finished sweeps, shared by every session
        points = swept.get(sweep_key)
        if points is None:
            bar = st.progress(0.0, text=f"ResNet-{depths[0]} and plain-{depths[0]}…")

            def tick(done: int, total: int) -> None:
                d = depths[min(done // 2, len(depths) - 1)]
                bar.progress(done / total, text=f"ResNet-{d} and plain-{d}…")

            try:
                x, y = init_batch(sweep_json, batch)
                points = swept.put(sweep_key, depth_sweep(depths, x, y, info.num_classes, seed, progress=tick))
            except (ValueError, RuntimeError, OSError) as e:
                st.error(f"The sweep stopped: {e}", icon=":material/error:")
            bar.empty()
        if points:
            show_chart(spread_figure([p.depth for p in points], [p.resnet.conv_spread for p in points],
                                     [p.plain.conv_spread for p in points], resnet_label="ResNet",
                                     plain_label="plain"),
                       key="gf_sweep_chart", width="stretch")
            st.caption(" · ".join(f"{p.depth}: ResNet {p.resnet.verdict().word}, plain {p.plain.verdict().word}"
                                  for p in points))
    elif st.session_state.get(SWEEP_KEY) is not None:
        st.caption("The settings changed since the last sweep: press **Sweep all depths** again.")

# --- 2. a trained run ------------------------------------------------------------------------------
st.subheader("A trained run")
st.caption("The same measurement at a run's checkpoint, on a batch of its own training images (the same batch for "
           "the run and the run trained beside it), and the per-layer gradient norms the trainer logged every "
           "`grad_norm_every` steps while it trained: one row per layer (input at the top), one column per logged "
           "step, colour = log₁₀ of the norm on one shared scale.")
runs = inspectable_runs()
if not runs:
    st.info("No run has a checkpoint yet. Train one on the **Train** page (a minute on `shapes` is enough, with its "
            "plain twin) to see how the gradients changed while it learned.", icon=":material/info:")
    st.stop()
run, mate = pick_run(st.selectbox, runs, "gf_run")
chosen = [run] if mate is None else [run, mate]
if mate is None:
    st.caption("This run was trained alone (no twin): it is shown by itself.")
subjects = loaded_subjects(chosen) or st.stop()
main = subjects[0]
if main.data is None:
    st.warning("This checkpoint does not say which data it was trained on, so there is no batch to measure on.",
               icon=":material/warning:")
else:
    try:
        ds = cached_dataset(main.data)
        n = min(batch, len(ds.y_train))
        x, y = flow_batch(ds, n, seed=0, mean=main.mean, std=main.std)
        batch_key = ("flow_batch", n, 0, json.dumps(main.data.to_dict(), sort_keys=True), tuple(main.mean),
                     tuple(main.std))  # what flow_batch made the batch from: no need to hash it on every rerun
        flows = on_models("gradient_flow.checkpoint", subjects, checkpoint_flows, Keyed(x, ("x",) + batch_key),
                          Keyed(y, ("y",) + batch_key), spinner="Forward and backward at the checkpoint…")
    except (ValueError, RuntimeError, OSError) as e:
        st.error(f"The gradient flow could not be computed: {e}", icon=":material/error:")
    else:
        st.caption(f"At the checkpoint, on {n} {main.data.name} training images (class-balanced).")
        why = inconclusive(check_runs(store(), chosen))  # a trained net's gradients only once it has learned
        if why is not None:
            st.warning(why[0].upper() + why[1:] + " The gradients below are those of nets that have not learned "
                       "their task: they say nothing yet about how trained ResNets and plain nets differ.",
                       icon=":material/help:")
        show_flows([(f"#{r.id} {short(s.spec)}", s.spec, f) for r, s, f in zip(chosen, subjects, flows)], "gf_run")

logged = [store().runs.grad_norms(r.id) for r in chosen]
values = [v for _, _, norms in logged for row in norms for v in row if v is not None and 0 < v < float("inf")]
if values:
    zrange = (math.log10(min(values)), math.log10(max(values)))
else:
    zrange = None
for i, (col, r, (names, steps, norms)) in enumerate(zip(st.columns(len(chosen)), chosen, logged)):
    with col:
        kind = r.kind
        if not names or not steps:
            st.info(f"Run #{r.id} ({kind}) logged no gradient norms: it was trained with `grad_norm_every = 0`, or "
                    "it stopped before its first snapshot.", icon=":material/info:")
            continue
        show_chart(grad_heatmap_figure(names, steps, norms, f"#{r.id} {r.name} ({kind})", zrange=zrange),
                   key=f"gf_heat_{i}", width="stretch")
        st.caption(f"{len(steps)} snapshot{'s' if len(steps) != 1 else ''} of {len(names)} layers, steps "
                   f"{steps[0]}–{steps[-1]}.")
