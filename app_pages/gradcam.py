"""Grad-CAM page: where each model looks, side by side, how well that matches the object (shapes
masks), and whether the maps depend on the learned weights at all (cascading randomization)."""

import hashlib

import pandas as pd
import streamlit as st
import torch

from resnet_lab.analysis import METHODS, attribute, cam_layers, cascading_randomization, localization, predict
from resnet_lab.analysis.attributions import LAYER_METHODS
from resnet_lab.ui.common import plain
from resnet_lab.ui.inspect import feed, pick_image, pick_models
from resnet_lab.viz.inspect import heatmap_grid_figure, localization_figure, overlay

PREDICTED, TRUE, CHOOSE = "predicted class", "true class", "choose"
SIZE = 256  # px, the side of each overlay
RAND_STEPS = 6  # layer groups re-initialized in the sanity check (fc, then blocks from the top)
LOC_KEY = "cam_loc_results"  # session key: {(models, layer, method, N): {label: Localization}}
RAND_KEY = "cam_rand_results"  # session key: {(model, image, target, layer, method): [RandomizationStep]}
EXPLAIN = {
    "gradcam": "Grad-CAM weighs a layer's channels by the mean gradient of the class score and keeps the "
               "positive sum: a coarse map of the regions that raise the score (Selvaraju et al. 2017).",
    "guided_gradcam": "Guided Grad-CAM multiplies Grad-CAM by guided backpropagation: pixel-sharp edges, "
                      "only inside the regions Grad-CAM picked.",
    "integrated_gradients": "Integrated Gradients sums the input gradients along a straight path from a "
                            "blank (mean) image to this one, so the attributions add up to the score's change "
                            "(Sundararajan et al. 2017).",
    "saliency": "Saliency is the size of the score's gradient at each pixel: which pixels would change the "
                "score most if nudged (Simonyan et al. 2014).",
    "occlusion": "Occlusion slides a grey patch over the image and records how much the class score drops "
                 "where it covers: slow, but it needs no gradients at all.",
}

st.title("Grad-CAM")
st.caption("Where does the network look when it decides? Grad-CAM and four other attribution methods for a "
           "ResNet and its plain twin on the same image, a localization score against the true object masks, "
           "and a sanity check that the maps really depend on what the network learned.")

picked = pick_models("cam")
if picked is None:
    st.stop()
img = pick_image("cam", picked)
if img is None:
    st.info("Pick a validation image, or upload or photograph one.", icon=":material/image:")
    st.stop()
main = picked.main
layers = cam_layers(main.model)
if not layers:
    st.error("This model has no stages or blocks to read a map from.", icon=":material/error:")
    st.stop()

# --- controls ------------------------------------------------------------------------------------
c = st.columns([2, 2, 3, 2])
method = c[0].selectbox("Method", list(METHODS), format_func=METHODS.get, key="cam_method",
                        help=" ".join(EXPLAIN.values()))
layer = c[1].selectbox("Layer", layers, key="cam_layer", disabled=method not in LAYER_METHODS,
                       help="Where Grad-CAM reads the activations: a stage or a block, deepest first. "
                            "Deeper layers see more of the image but at a coarser resolution."
                       if method in LAYER_METHODS else f"{METHODS[method]} explains the input pixels directly.")
options = [PREDICTED, *([TRUE] if img.label is not None else []), CHOOSE]
how = c[2].radio("Explain", options, horizontal=True, key="cam_target")
if how == CHOOSE:
    classes = list(range(len(main.class_names)))
    default = img.label if img.label is not None and img.label < len(classes) else 0
    chosen = c[2].selectbox("Class", classes, index=default, format_func=main.class_name, key="cam_class")
    target = int(chosen)
elif how == TRUE:
    target = int(img.label)
else:
    target = None
alpha = c[3].slider("Opacity", 0.0, 1.0, 0.5, 0.05, key="cam_alpha", help="How strongly the map covers the image.")
st.caption(EXPLAIN[method])


def layer_for(subject) -> str:
    """The chosen layer where the subject has it, else its deepest stage."""
    own = cam_layers(subject.model)
    return layer if layer in own else own[0]


def image_key() -> str:
    return hashlib.sha1(img.image.numpy().tobytes()).hexdigest()


@st.cache_data(max_entries=64, show_spinner="Computing the maps…")
def explain(key: str, _subject, _image: torch.Tensor, target: int | None, layer: str, method: str
            ) -> tuple[torch.Tensor, dict[int, float]]:
    """(heat map H x W in [0, 1], {class: probability}) of one subject on one image."""
    x = feed(_subject, _image)
    with _subject.lock:
        heat = attribute(_subject.model, x, target, method, layer)
        probs, classes = predict(_subject.model, x, k=len(_subject.class_names))
    return heat[0].cpu(), dict(zip(classes[0].tolist(), probs[0].tolist()))


# --- side by side --------------------------------------------------------------------------------
if target is None:
    st.caption("Each model explains **its own prediction**, so the two maps may be about different classes.")
else:
    st.caption(f"Both models explain the class **{plain(main.class_name(target))}**.")
cols = st.columns(len(picked.subjects))
img_key = image_key()
for col, subject in zip(cols, picked.subjects):
    lay = layer_for(subject)
    key = f"{subject.label}|{id(subject.model)}|{img_key}"
    col.markdown(f"**{plain(subject.label)}**")
    try:
        heat, probs = explain(key, subject, img.image, target, lay, method)
    except ValueError as e:
        col.error(f"{METHODS[method]} could not be computed for this model: {e}", icon=":material/error:")
        continue
    pred = max(probs, key=probs.get)
    cls = pred if target is None else target
    where = f" at `{lay}`" if method in LAYER_METHODS else ""
    col.image(overlay(img.image, heat, alpha, size=SIZE), output_format="PNG",
              caption=f"{METHODS[method]}{where} for {subject.class_name(cls)}")
    col.caption(f"Explains **{plain(subject.class_name(cls))}** (p = {probs.get(cls, 0.0):.1%}) · "
                f"predicts **{plain(subject.class_name(pred))}** ({probs[pred]:.1%})")
    if method in LAYER_METHODS and lay != layer:
        col.caption(f"This model has no `{layer}`: its deepest stage `{lay}` is shown.")
st.caption(img.caption)

# --- localization on shapes ----------------------------------------------------------------------
ds = picked.dataset
if picked.data is not None and picked.data.name == "shapes" and ds is not None and ds.mask_val is not None:
    st.subheader("Localization on shapes")
    st.caption("The shapes dataset knows where each object is. *Energy*: the share of the map inside the object's "
               "mask; *pointing game*: how often the map's peak falls on the object. Each image is explained for "
               "its true class. The dashed line is what a uniform map scores (the objects' mean area).")
    total = len(ds.y_val)
    lo, hi = min(16, total), min(512, total)
    c = st.columns([3, 1])
    n = int(c[0].slider("Validation images", lo, hi, min(128, hi), key="cam_loc_n")) if hi > lo else hi
    run_loc = c[1].button("Score localization", key="cam_loc_go", icon=":material/my_location:")
    size = tuple(ds.x_val.shape[1:])
    fits = [s for s in picked.subjects if (s.in_channels, s.image_size, s.image_size) == size]
    for s in picked.subjects:
        if s not in fits:
            st.warning(f"**{plain(s.label)}** takes other images than these ({s.in_channels} × {s.image_size} px), "
                       "so it is not scored.", icon=":material/warning:")
    loc_key = (tuple((s.label, id(s.model)) for s in fits), layer, method, n)
    results = st.session_state.setdefault(LOC_KEY, {})
    if run_loc and fits:
        scores = {}
        bar = st.progress(0.0)
        try:
            with st.spinner(f"Scoring {METHODS[method]} on {n} images…"):
                for i, s in enumerate(fits):
                    bar.progress(i / len(fits), text=f"{s.label}…")
                    with s.lock:
                        scores[s.label] = (localization(s.model, s.normalize(ds.x_val[:n]), ds.mask_val[:n],
                                                        target=ds.y_val[:n], layer=layer_for(s), method=method),
                                           layer_for(s))
            results[loc_key] = scores
        except ValueError as e:
            st.error(f"Localization could not be scored: {e}", icon=":material/error:")
        bar.empty()
    if loc_key in results:
        scores = results[loc_key]
        first = next(iter(scores.values()))[0]
        st.plotly_chart(localization_figure({label: sc.as_dict() for label, (sc, _) in scores.items()},
                                            baseline=first.baseline,
                                            title=f"{METHODS[method]} localization on {first.n} images"),
                        width="stretch", key="cam_loc_chart")
        st.dataframe(pd.DataFrame([{"model": label, "layer": lay if method in LAYER_METHODS else "(input)",
                                    "energy inside mask": sc.energy, "pointing game": sc.pointing,
                                    "uniform map": sc.baseline, "images": sc.n}
                                   for label, (sc, lay) in scores.items()]),
                     hide_index=True, width="stretch",
                     column_config={k: st.column_config.NumberColumn(format="percent")
                                    for k in ("energy inside mask", "pointing game", "uniform map")})
    elif results and not run_loc:
        st.caption("The settings changed since the last score: press **Score localization** again.")

# --- cascading randomization ---------------------------------------------------------------------
st.subheader("Sanity check: cascading randomization")
st.caption("Adebayo et al. (2018): re-initialize the weights from the top (fc, then block by block downwards) and "
           "explain the same image again. A faithful map changes as the weights are destroyed; maps that stay "
           "similar (rank correlation ρ near 1) explain the image, not the model. "
           f"Runs on **{plain(main.label)}**.")
rand_key = (main.label, id(main.model), img_key, target, layer_for(main), method)
rand = st.session_state.setdefault(RAND_KEY, {})
if st.button("Randomize layer by layer", key="cam_rand_go", icon=":material/shuffle:"):
    try:
        with st.spinner("Destroying the weights one group at a time…"), main.lock:
            rand.clear()  # one result at a time per session: these hold a map per step
            rand[rand_key] = cascading_randomization(main.model, feed(main, img.image), target, layer_for(main),
                                                     method, groups=RAND_STEPS)
    except ValueError as e:
        st.error(f"The sanity check could not run: {e}", icon=":material/error:")
if rand_key in rand:
    steps = rand[rand_key]
    titles = [("trained" if i == 0 else f"{s.randomized} randomized" if i == 1 else f"+ {s.randomized}")
              + f" · ρ={s.rank_corr:.2f}" for i, s in enumerate(steps)]
    st.plotly_chart(heatmap_grid_figure(torch.stack([s.heat[0] for s in steps]), titles, cols=min(4, len(steps)),
                                        title=f"{METHODS[method]} as the weights are destroyed"),
                    width="stretch", key="cam_rand_chart")
    st.line_chart(pd.DataFrame({"layers randomized (from the top)": range(len(steps)),
                                "rank correlation ρ": [s.rank_corr for s in steps]}),
                  x="layers randomized (from the top)", y="rank correlation ρ", height=240)
    st.caption("ρ: rank correlation with the trained model's map. Step 0 is the trained model; step k has the "
               "top k layer groups re-initialized. "
               + " · ".join(f"{i}: {s.randomized}" for i, s in enumerate(steps) if i))
