import json

import streamlit as st
import torch

from resnet_lab.analysis import Subject, activation_stats, feature_maps, layer_tree, map_stats, top_channels
from resnet_lab.analysis.features import compare_responses
from resnet_lab.analysis.learned import inconclusive
from resnet_lab.experiments.learned import check_runs
from resnet_lab.store import Run
from resnet_lab.ui.charts import show_chart
from resnet_lab.ui.common import plain
from resnet_lab.ui.compute import Keyed, on_model
from resnet_lab.ui.inspect import feed, pick_image, pick_models
from resnet_lab.ui.session import store
from resnet_lab.viz.inspect import STAT_TITLES, feature_grid_figure, layer_stats_figure, to_pil
from resnet_lab.ui.widgets import choice

RESPONSE_IMAGES = 64  # validation images behind the layer-response chart
COLORSCALES = ("Viridis", "Turbo", "Greys")
STATS = ("branch_std", "std", "mean", "zero_frac")  # branch_std first: the ResNet paper's Fig. 7
INDENT = "\u3000"  # an ideographic space: selectboxes keep it, so the options read as a tree
SHOWN = {  # which term of the block's equation the grid shows
    "": "out, the block's output",
    "out": "out, after the addition",
    "x": "x, the block's input",
    "branch": "F(x), the residual branch before the addition",
    "shortcut": "the shortcut term (x, or its projection)",
}
SHOWN_PLAIN = {  # a plain block has no shortcut and no addition: out is its layers' output
    **SHOWN,
    "out": "out, the block's output",
    "branch": "F(x), the block's layers (a plain net adds nothing to them)",
}

st.title("Feature maps")
st.caption("Look inside any residual block: its input x, the residual branch F(x), what the shortcut adds, and "
           "the output after the addition, for the ResNet and its plain twin side by side. Below, how strongly "
           "each layer responds across depth (He et al. 2015, Fig. 7).")

picked = pick_models("fm")
if picked is None:
    st.stop()
img = pick_image("fm", picked)
subjects = picked.subjects


def formula(subject: Subject) -> str:
    """What a block of this subject computes, as the paper writes it."""
    if subject.spec.preact:
        return "out = F(x) + shortcut" if subject.spec.skip else "out = F(x)"
    return "out = ReLU(F(x) + shortcut)" if subject.spec.skip else "out = ReLU(F(x))"


def unique_labels(subs: tuple[Subject, ...]) -> list[str]:
    labels = [s.label for s in subs]
    return [f"{lab} [{i + 1}]" if labels.count(lab) > 1 else lab for i, lab in enumerate(labels)]


def model_batch(subject: Subject, images: torch.Tensor) -> torch.Tensor:
    """N x C x H x W images in [0, 1] -> the subject's normalized batch (resized/converted when its inputs differ)."""
    if tuple(images.shape[1:]) == (subject.in_channels, subject.image_size, subject.image_size):
        return subject.normalize(images)
    return torch.cat([feed(subject, im) for im in images])


def layer_stats(subject: Subject, images: torch.Tensor) -> list[dict]:
    """activation_stats of one subject over a batch of images in [0, 1] (run by on_model, under its lock)."""
    return activation_stats(subject.model, model_batch(subject, images))


def maps_at(subject: Subject, image: torch.Tensor, layer: str) -> torch.Tensor:
    """C x H x W (or C) activations of one image at ``layer`` (run by on_model, under the subject's lock)."""
    return feature_maps(subject.model, feed(subject, image), [layer])[layer][0].float().cpu()


# --- where to look --------------------------------------------------------------------------------
tree = layer_tree(picked.main.model)
nodes = {n.name: n for n in tree}
names = list(nodes)
blocks = [n.name for n in tree if n.kind == "block"]
default = "layer1.0:branch" if "layer1.0:branch" in nodes else (blocks[0] if blocks else names[0])
if st.session_state.get("fm_layer") not in nodes:  # another model was picked: its tree differs
    st.session_state.pop("fm_layer", None)

st.subheader("Inside the network", divider="gray")
c = st.columns([3, 2, 1.2, 1.4])
layer = choice(c[0].selectbox, "Layer (stem → stages → blocks → block parts)", names, index=names.index(default),
                       key="fm_layer", format_func=lambda n: INDENT * nodes[n].level + nodes[n].label,
                       help="A block's parts: its input x, the residual branch F(x) (before the addition), "
                            "the shortcut (x itself, or its projection) and the output after the addition.")
n_channels = c[1].slider("Channels shown (most active first)", 4, 32, 16, step=4, key="fm_channels")
colorscale = c[2].selectbox("Colour scale", COLORSCALES, key="fm_colors")
shared = c[3].toggle("Shared scale", value=True, key="fm_shared",
                     help="On: one colour range for all maps (compare strengths). Off: each map stretched to "
                          "its own range (compare patterns).")

node = nodes[layer]
block_name = layer.partition(":")[0] if node.kind in ("block", "part") else None

if img is None:
    st.info("Pick a validation image, or upload or snap one, to see its feature maps.", icon=":material/image:")
else:
    left, right = st.columns([1, 5])
    left.image(to_pil(img.image, size=128), caption=None, alt="The input image whose feature maps are shown")
    right.caption(img.caption)
    cols = st.columns(len(subjects))
    for i, (col, subject, label) in enumerate(zip(cols, subjects, unique_labels(subjects))):
        col.markdown(f"**{plain(label)}**")
        other_nodes = {n.name: n for n in layer_tree(subject.model)} if i else nodes
        if layer not in other_nodes:
            if layer.endswith(":shortcut") and block_name in other_nodes and not subject.spec.skip:
                col.info(f"the plain twin has no shortcut here: {block_name} only computes {formula(subject)}.",
                         icon=":material/block:")
            else:
                col.info(f"This model has no point **{layer}** (its architecture differs).",
                         icon=":material/block:")
            continue
        try:  # shared with other sessions: read only
            maps = on_model("feature_maps.maps", subject, maps_at, img.image, layer, spinner=None, max_entries=16)
        except (ValueError, RuntimeError) as e:
            col.error(f"The feature maps at {layer} could not be computed: {e}", icon=":material/error:")
            continue
        if maps.dim() != 3:
            col.warning(f"{layer} does not give spatial maps (shape {tuple(maps.shape)}).", icon=":material/warning:")
            continue
        channels = top_channels(maps, n_channels)
        fig = feature_grid_figure(maps[channels], channels, colorscale=colorscale, shared_scale=shared, cols=4)
        show_chart(fig, key=f"fm_grid_{i}", where=col)
        ch, h, w = maps.shape
        stats = map_stats(maps)
        col.caption(f"{ch} × {h} × {w} (channels × height × width) · showing the {len(channels)} most active · "
                    f"mean {stats['mean']:.3g} · std {stats['std']:.3g} · zeros {stats['zero_frac']:.1%}")
        if block_name is not None:
            shown = (SHOWN if subject.spec.skip else SHOWN_PLAIN)[layer.partition(":")[2]]
            col.markdown(f"{block_name}: `{formula(subject)}` · shown: {shown}")

# --- layer responses across depth ---------------------------------------------------------------------
st.subheader("Layer responses across depth", divider="gray")
if picked.dataset is not None:
    first = picked.dataset.x_val[:RESPONSE_IMAGES]
    where = f"the first {len(first)} validation images"
    # the dataset's config names these images: no need to hash them on every rerun
    batch = first if picked.data is None else Keyed(
        first, ("x_val", RESPONSE_IMAGES, json.dumps(picked.data.to_dict(), sort_keys=True)))
elif img is not None:
    batch = img.image[None]
    where = "the picked image"
else:
    st.info("Pick or upload an image to measure the layer responses.", icon=":material/image:")
    st.stop()

c = st.columns([2, 1])
stat = c[0].selectbox("Statistic", STATS, key="fm_stat", format_func=lambda s: STAT_TITLES[s])
sort = c[1].toggle("Sort by magnitude", value=False, key="fm_sort",
                   help="Each model's values sorted from largest to smallest (the paper's lower panel).")
try:
    stats = {label: on_model("feature_maps.stats", s, layer_stats, batch, spinner="Measuring layer responses…")
             for s, label in zip(subjects, unique_labels(subjects))}
except (ValueError, RuntimeError) as e:
    st.error(f"The layer responses could not be measured: {e}", icon=":material/error:")
    st.stop()
title = f"{STAT_TITLES[stat]}, over {where}"
show_chart(layer_stats_figure(stats, stat, title=title, sort=sort), width="stretch", key="fm_stats_chart")
st.caption("What is measured: with BN after each branch's last layer, the std of the residual branch F(x) measures "
           "how much a block changes its input (He et al. 2015, sec. 4.2, Fig. 7, compare it between ResNets and "
           "plain nets). The fraction of zero outputs shows how many units a ReLU switched off.")


def fig7_finding(subjects: tuple[Subject, ...], stats: dict[str, list[dict]], runs: tuple[Run | None, ...]) -> None:
    """The Fig. 7 comparison, computed from the measured stds (``stats``: one list per subject, in order):
    only for a ResNet beside its plain twin, only for trained runs that learned."""
    kinds = [s.spec.skip for s in subjects]
    if sorted(kinds) != [False, True]:
        return
    rows = dict(zip(kinds, stats.values()))
    comparison = compare_responses(rows[True], rows[False])
    if comparison is None:
        return
    if any(r is None for r in runs):
        st.info("These models have fresh, untrained weights: He et al.'s Fig. 7 is about trained networks, so "
                "their finding is not tested here. Pick trained runs to compare.", icon=":material/info:")
        return
    why = inconclusive(check_runs(store(), runs))
    if why is not None:
        st.warning(why[0].upper() + why[1:], icon=":material/help:")
    else:
        st.markdown(comparison.sentence)


fig7_finding(subjects, stats, picked.runs)
