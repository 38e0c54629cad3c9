"""Grad-CAM page: where each model looks, side by side and at every depth, how well that matches the object
(shapes masks), whether the maps can be trusted (deletion / insertion curves, infidelity), and whether they
depend on the learned weights at all (cascading randomization).

Everything computed on a model goes through :mod:`resnet_lab.ui.compute` (shared, keyed by what it depends
on); the long studies run only when their button is pressed (:func:`pressed`)."""

import json
from typing import Any, Callable, Hashable, Sequence

import pandas as pd
import streamlit as st
import torch

from resnet_lab.analysis import (METHODS, Subject, attribute, cam_layers, cascading_randomization, grad_cam_depth,
                                 localization, localization_by_depth, predict, trust)
from resnet_lab.analysis.attributions import LAYER_METHODS
from resnet_lab.analysis.trust import REFERENCES, STEPS
from resnet_lab.ui.charts import show_chart
from resnet_lab.ui.common import plain
from resnet_lab.ui.compute import Keyed, on_model, on_models, result_key
from resnet_lab.ui.inspect import as_seen, feed, pick_image, pick_models
from resnet_lab.viz.explain import depth_localization_figure, depth_strip_figure, trust_curves_figure
from resnet_lab.viz.inspect import heatmap_grid_figure, localization_figure, overlay
from resnet_lab.ui.widgets import choice

PREDICTED, TRUE, CHOOSE = "predicted class", "true class", "choose"
SIZE = 256  # px, the side of each overlay
RAND_STEPS = 6  # layer groups re-initialized in the sanity check (fc, then blocks from the top)
DONE_KEY = "cam_done"  # session key: {study name: (result key, result)} of the studies run by button
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


# --- what the page computes (no page globals: everything comes in as arguments) ---------------------


def layer_for(subject: Subject, layer: str) -> str:
    """``layer`` where the subject has it, else its deepest stage."""
    own = cam_layers(subject.model)
    return layer if layer in own else own[0]


def explain(subject: Subject, image: torch.Tensor, target: int | None, method: str, layer: str
            ) -> tuple[torch.Tensor, dict[int, float]]:
    """(heat map H x W in [0, 1], {class: probability}) of one subject on one image."""
    x = feed(subject, image)
    heat = attribute(subject.model, x, target, method, layer)
    probs, classes = predict(subject.model, x, k=len(subject.class_names))
    return heat[0].cpu(), dict(zip(classes[0].tolist(), probs[0].tolist()))


def depth_maps(subject: Subject, image: torch.Tensor, target: int | None):
    """Grad-CAM of one image at every block and stage, shallow to deep (one forward and backward pass)."""
    return grad_cam_depth(subject.model, feed(subject, image), target)


def scored_localization(subjects, x, masks, y, layers: tuple[str, ...], method: str, tick) -> dict:
    """{label: (Localization, layer)} of each subject on the same images."""
    out = {}
    for i, (s, layer) in enumerate(zip(subjects, layers)):
        tick(i, len(subjects))
        out[s.label] = (localization(s.model, s.normalize(x), masks, target=y, layer=layer, method=method), layer)
    tick(len(subjects), len(subjects))
    return out


def scored_depth(subjects, x, masks, y, tick) -> dict:
    """{label: DepthLocalization} of Grad-CAM at every layer of each subject, on the same images."""
    out = {}
    for i, s in enumerate(subjects):
        out[s.label] = localization_by_depth(s.model, s.normalize(x), masks, y,
                                             tick=lambda d, t, i=i: tick(i * t + d, len(subjects) * t))
    return out


def scored_trust(subjects, x, y, masks, layers: tuple[str, ...], steps: int, tick) -> dict:
    """{label: (Trust per method, then the references)} of each subject on the same images and classes."""
    out = {}
    for i, (s, layer) in enumerate(zip(subjects, layers)):
        out[s.label] = trust(s.model, s.normalize(x), y, tuple(METHODS), layer, masks=masks, steps=steps,
                             tick=lambda d, t, i=i: tick(i * t + d, len(subjects) * t))
    return out


def randomized(subject: Subject, image: torch.Tensor, target: int | None, layer: str, method: str):
    return cascading_randomization(subject.model, feed(subject, image), target, layer, method, groups=RAND_STEPS)


def validation(ds, data_json: str, n: int, with_masks: bool) -> tuple:
    """The first ``n`` validation images, their true classes (and masks), keyed by the data, not their bytes."""
    out = (Keyed(ds.x_val[:n], ("x_val", n, data_json)), Keyed(ds.y_val[:n], ("y_val", n, data_json)))
    return out + ((Keyed(ds.mask_val[:n], ("mask_val", n, data_json)),) if with_masks else ())


def pressed(name: str, go: bool, subjects: Sequence[Subject], work: Callable[..., Any], *inputs: Any,
            params: Hashable = (), **options: Any) -> tuple[Any, bool]:
    """A study run by a button: computed (through on_models) when ``go``, then shown again on every rerun while
    its models, inputs and params stay the same. Returns (result or None, whether an older result is stale)."""
    done = st.session_state.setdefault(DONE_KEY, {})
    key = result_key(name, subjects, inputs, params)
    if go:
        done[name] = (key, on_models(name, subjects, work, *inputs, params=params, **options))
    kept = done.get(name)
    if kept is not None and kept[0] == key:
        return kept[1], False
    return None, kept is not None


def depth_sentence(results: dict) -> str:
    """"run 1 … localises best at `layer2.1` (energy 41%, …); run 2 … at …", computed from the scores."""
    parts = []
    for i, (label, res) in enumerate(results.items()):
        layer, best = res.best()
        deepest, last = res.layers[-1], res.scores[-1]
        tail = "" if layer == deepest else f"; its deepest layer `{deepest}`: {last.energy:.0%}"
        verb = "localises best at" if i == 0 else "at"
        parts.append(f"**{plain(label)}** {verb} `{layer}` (energy {best.energy:.0%}, pointing game "
                     f"{best.pointing:.0%}{tail})")
    first = next(iter(results.values())).scores[0]
    return "; ".join(parts) + f". A uniform map scores {first.baseline:.0%} on these {first.n} images."


def trust_sentence(label: str, report) -> str:
    """What the areas say for one model, computed from them."""
    methods = [r for r in report if r.method in METHODS]
    refs = {r.method: r for r in report if r.method in REFERENCES}
    best_del = min(methods, key=lambda r: r.deletion.auc)
    best_ins = max(methods, key=lambda r: r.insertion.auc)
    rand = refs["random"]
    beat = sum(r.deletion.auc < rand.deletion.auc for r in methods)
    text = (f"**{plain(label)}**: {best_del.label} deletes the class fastest (area {best_del.deletion.auc:.3f}), "
            f"{best_ins.label} brings it back fastest (insertion area {best_ins.insertion.auc:.3f}); "
            f"{beat} of {len(methods)} methods beat a random order at deletion ({rand.deletion.auc:.3f})")
    if "mask" in refs:
        text += f", and the object mask reaches {refs['mask'].deletion.auc:.3f}"
    low = min((r for r in methods if r.infidelity is not None), key=lambda r: r.infidelity, default=None)
    if low is not None:
        text += f". Lowest infidelity: {low.label} ({low.infidelity:.3g})"
    return text + "."


# --- page ----------------------------------------------------------------------------------------

st.title("Grad-CAM")
st.caption("Where does the network look when it decides? Grad-CAM and four other attribution methods for a "
           "ResNet and its plain twin on the same image, at every depth, a localization score against the true "
           "object masks, a test of how far each map can be trusted, and a sanity check that the maps really "
           "depend on what the network learned.")

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
layer = choice(c[1].selectbox, "Layer", layers, key="cam_layer", disabled=method not in LAYER_METHODS,
                       help="Where Grad-CAM reads the activations: a stage or a block, deepest first. "
                            "Deeper layers see more of the image but at a coarser resolution."
                       if method in LAYER_METHODS else f"{METHODS[method]} explains the input pixels directly.")
options = [PREDICTED, *([TRUE] if img.label is not None else []), CHOOSE]
how = choice(c[2].radio, "Explain", options, horizontal=True, key="cam_target")
if how == CHOOSE:
    classes = list(range(len(main.class_names)))
    default = img.label if img.label is not None and img.label < len(classes) else 0
    chosen = choice(c[2].selectbox, "Class", classes, index=default, format_func=main.class_name, key="cam_class")
    target = int(chosen)
elif how == TRUE:
    target = int(img.label)
else:
    target = None
alpha = c[3].slider("Opacity", 0.0, 1.0, 0.5, 0.05, key="cam_alpha", help="How strongly the map covers the image.")
st.caption(EXPLAIN[method])

# --- side by side --------------------------------------------------------------------------------
if target is None:
    st.caption("Each model explains **its own prediction**, so the two maps may be about different classes.")
else:
    st.caption(f"Both models explain the class **{plain(main.class_name(target))}**.")
cols = st.columns(len(picked.subjects))
main_pred = None
for col, subject in zip(cols, picked.subjects):
    lay = layer_for(subject, layer)
    col.markdown(f"**{plain(subject.label)}**")
    try:
        heat, probs = on_model("cam.explain", subject, explain, img.image, target, method, lay,
                               spinner="Computing the maps…")
    except ValueError as e:
        col.error(f"{METHODS[method]} could not be computed for this model: {e}", icon=":material/error:")
        continue
    pred = max(probs, key=probs.get)
    if subject is main:
        main_pred = pred
    cls = pred if target is None else target
    where = f" at `{lay}`" if method in LAYER_METHODS else ""
    col.image(overlay(img.image, heat, alpha, size=SIZE), output_format="PNG",
              caption=f"{METHODS[method]}{where} for {subject.class_name(cls)}",
              alt=f"{METHODS[method]} heat map of {subject.label} over the image, explaining class "
                  f"{subject.class_name(cls)}")
    col.caption(f"Explains **{plain(subject.class_name(cls))}** (p = {probs.get(cls, 0.0):.1%}) · "
                f"predicts **{plain(subject.class_name(pred))}** ({probs[pred]:.1%})")
    if method in LAYER_METHODS and lay != layer:
        col.caption(f"This model has no `{layer}`: its deepest stage `{lay}` is shown.")
st.caption(img.caption)

# --- across depth --------------------------------------------------------------------------------
st.subheader("Across depth")
strip_target = target if target is not None else main_pred
if strip_target is None:
    st.caption("Grad-CAM of each model's own prediction at every block, from the first (left) to the last (right).")
else:
    st.caption(f"Grad-CAM of the class **{plain(main.class_name(strip_target))}** for every model, at every block "
               "output from the first (left) to the last (right); a stage's output is its last block's. Shallow "
               "layers see small patches at full resolution, deep ones the whole object at a coarse one.")
rows, failed = [], []
for subject in picked.subjects:
    try:
        depth = on_model("cam.depth", subject, depth_maps, img.image, strip_target,
                         spinner="Grad-CAM at every layer…")
    except ValueError as e:
        failed.append(f"**{plain(subject.label)}**: {e}")
        continue
    cells = [(f"{name} · {depth.sizes[i][0]}×{depth.sizes[i][1]}", depth.maps[i][0]) for name, i in depth.columns()]
    rows.append((subject.label, as_seen(subject, img.image), cells))
for msg in failed:
    st.error(f"Grad-CAM across depth could not be computed for {msg}", icon=":material/error:")
if rows:
    who = (f"class {main.class_name(strip_target)}" if strip_target is not None else "each model's prediction")
    show_chart(depth_strip_figure(rows, alpha, title=f"Grad-CAM of {who}, shallow → deep"),
               width="stretch", key="cam_depth_chart")

# --- studies on the validation images (by button) ------------------------------------------------
ds = picked.dataset
fits: list[Subject] = []
data_json = ""
if ds is not None and picked.data is not None:
    data_json = json.dumps(picked.data.to_dict(), sort_keys=True)
    size = tuple(ds.x_val.shape[1:])
    fits = [s for s in picked.subjects if (s.in_channels, s.image_size, s.image_size) == size]
    for s in picked.subjects:
        if s not in fits:
            st.warning(f"**{plain(s.label)}** takes other images than the validation images ({s.in_channels} × "
                       f"{s.image_size} px), so the studies below leave it out.", icon=":material/warning:")
has_masks = bool(fits) and picked.data.name == "shapes" and ds.mask_val is not None


if has_masks:
    st.markdown("##### Which depth finds the object?")
    st.caption("Grad-CAM at every layer of each model on the same validation images, each explained for its true "
               "class, scored against the objects' masks (energy inside the mask, pointing game).")
    total = len(ds.y_val)
    lo, hi = min(16, total), min(512, total)
    c = st.columns([3, 1])
    n_depth = int(c[0].slider("Validation images", lo, hi, min(128, hi), key="cam_depth_n")) if hi > lo else hi
    go = c[1].button("Score every depth", key="cam_depth_go", icon=":material/stacked_line_chart:")
    x, y, m = validation(ds, data_json, n_depth, True)
    try:
        by_depth, stale = pressed("cam.by_depth", go, fits, scored_depth, x, m, y, params=("gradcam",),
                                  copy_models=True, progress="Scoring every layer")
    except ValueError as e:
        st.error(f"Localization by depth could not be scored: {e}", icon=":material/error:")
        by_depth, stale = None, False
    if by_depth is not None:
        show_chart(depth_localization_figure({label: r.as_dict() for label, r in by_depth.items()},
                                             title=f"Grad-CAM localization by depth on {n_depth} images"),
                   width="stretch", key="cam_depth_loc_chart")
        st.caption(depth_sentence(by_depth))
    elif stale:
        st.caption("The settings changed since the last score: press **Score every depth** again.")

if fits:
    st.subheader("Can I trust this map?")
    st.caption("Deletion and insertion (Petsiuk et al. 2018): remove the pixels in the order the map ranks them, "
               "most important first, and follow the probability of the true class; then start from a blurred "
               "image and put them back in that order. A faithful map makes the probability fall fast (small "
               "deletion area) and come back fast (large insertion area). Removed pixels take the dataset's mean "
               f"colour; {STEPS} steps; ties in a fixed random order. Infidelity (captum, Yeh et al. 2019): how "
               "badly the map predicts the score's change under small Gaussian noise, lower is better."
               + (" On shapes, *object mask* orders the pixels by the true object, what a map that marks exactly the "
                  "object reaches; it is no bound: a deleted shape leaves its silhouette in the mean colour, and "
                  "maps that take its outline first can do better." if has_masks else ""))
    total = len(ds.y_val)
    lo, hi = min(4, total), min(64, total)
    c = st.columns([3, 1])
    n_trust = int(c[0].slider("Images", lo, hi, min(16, hi), key="cam_trust_n",
                              help="Each image costs every method's map and two curves of "
                                   f"{STEPS + 1} forward passes per model.")) if hi > lo else hi
    go = c[1].button("Measure", key="cam_trust_go", icon=":material/fact_check:")
    inputs = validation(ds, data_json, n_trust, has_masks)
    x, y, m = inputs if has_masks else (*inputs, None)
    lays = tuple(layer_for(s, layer) for s in fits)
    try:
        report, stale = pressed("cam.trust", go, fits, scored_trust, x, y, m, lays, STEPS, copy_models=True,
                                progress="Deleting and inserting pixels")
    except ValueError as e:
        st.error(f"The maps could not be measured: {e}", icon=":material/error:")
        report, stale = None, False
    if report is not None:
        show_chart(trust_curves_figure({label: [t.as_dict(curves=True) for t in r] for label, r in report.items()},
                                       title=f"Deletion and insertion on {n_trust} images"),
                   width="stretch", key="cam_trust_chart")
        st.dataframe(pd.DataFrame([{"model": label, "method": t.label, "deletion area": t.deletion.auc,
                                    "insertion area": t.insertion.auc, "infidelity": t.infidelity}
                                   for label, r in report.items() for t in r]),
                     hide_index=True, width="stretch",
                     column_config={"deletion area": st.column_config.NumberColumn(format="%.3f"),
                                    "insertion area": st.column_config.NumberColumn(format="%.3f"),
                                    "infidelity": st.column_config.NumberColumn(
                                        format="%.3g", help="captum's infidelity (lower: better); — for the random "
                                        "and object-mask orders, which are references, not attributions")},
                     placeholder="—")
        for label, r in report.items():
            st.caption(trust_sentence(label, r))
        st.caption(f"Grad-CAM and Guided Grad-CAM read {', '.join(f'`{v}`' for v in dict.fromkeys(lays))}. "
                   "Infidelity is in squared logits: compare methods of one model rather than two models.")
    elif stale:
        st.caption("The settings changed since the last measurement: press **Measure** again.")

# --- localization on shapes ----------------------------------------------------------------------
if has_masks:
    st.subheader("Localization on shapes")
    st.caption("The shapes dataset knows where each object is. *Energy*: the share of the map inside the object's "
               "mask; *pointing game*: how often the map's peak falls on the object. Each image is explained for "
               "its true class. The dashed line is what a uniform map scores (the objects' mean area).")
    total = len(ds.y_val)
    lo, hi = min(16, total), min(512, total)
    c = st.columns([3, 1])
    n = int(c[0].slider("Validation images", lo, hi, min(128, hi), key="cam_loc_n")) if hi > lo else hi
    go = c[1].button("Score localization", key="cam_loc_go", icon=":material/my_location:")
    x, y, m = validation(ds, data_json, n, True)
    lays = tuple(layer_for(s, layer) for s in fits)
    try:
        scores, stale = pressed("cam.localization", go, fits, scored_localization, x, m, y, lays, method,
                                progress=f"Scoring {METHODS[method]} on {n} images")
    except ValueError as e:
        st.error(f"Localization could not be scored: {e}", icon=":material/error:")
        scores, stale = None, False
    if scores is not None:
        first_score = next(iter(scores.values()))[0]
        show_chart(localization_figure({label: sc.as_dict() for label, (sc, _) in scores.items()},
                                       baseline=first_score.baseline,
                                       title=f"{METHODS[method]} localization on {first_score.n} images"),
                   width="stretch", key="cam_loc_chart")
        st.dataframe(pd.DataFrame([{"model": label, "layer": lay if method in LAYER_METHODS else "(input)",
                                    "energy inside mask": sc.energy, "pointing game": sc.pointing,
                                    "uniform map": sc.baseline, "images": sc.n}
                                   for label, (sc, lay) in scores.items()]),
                     hide_index=True, width="stretch",
                     column_config={k: st.column_config.NumberColumn(format="percent")
                                    for k in ("energy inside mask", "pointing game", "uniform map")},
                     placeholder="—")
    elif stale:
        st.caption("The settings changed since the last score: press **Score localization** again.")

# --- cascading randomization ---------------------------------------------------------------------
st.subheader("Sanity check: cascading randomization")
st.caption("Adebayo et al. (2018): re-initialize the weights from the top (fc, then block by block downwards) and "
           "explain the same image again. A faithful map changes as the weights are destroyed; maps that stay "
           "similar (rank correlation ρ near 1) explain the image, not the model. "
           f"Runs on **{plain(main.label)}**.")
go = st.button("Randomize layer by layer", key="cam_rand_go", icon=":material/shuffle:")
try:
    steps, _ = pressed("cam.randomize", go, (main,),
                       lambda subjects, image, t, lay, meth: randomized(subjects[0], image, t, lay, meth),
                       img.image, target, layer_for(main, layer), method,
                       spinner="Destroying the weights one group at a time…")
except ValueError as e:
    st.error(f"The sanity check could not run: {e}", icon=":material/error:")
    steps = None
if steps is not None:
    titles = [("trained" if i == 0 else f"{s.randomized} randomized" if i == 1 else f"+ {s.randomized}")
              + f" · ρ={s.rank_corr:.2f}" for i, s in enumerate(steps)]
    show_chart(heatmap_grid_figure(torch.stack([s.heat[0] for s in steps]), titles, cols=min(4, len(steps)),
                                   title=f"{METHODS[method]} as the weights are destroyed"),
               width="stretch", key="cam_rand_chart")
    st.line_chart(pd.DataFrame({"layers randomized (from the top)": range(len(steps)),
                                "rank correlation ρ": [s.rank_corr for s in steps]}),
                  x="layers randomized (from the top)", y="rank correlation ρ", height=240)
    st.caption("ρ: rank correlation with the trained model's map. Step 0 is the trained model; step k has the "
               "top k layer groups re-initialized. "
               + " · ".join(f"{i}: {s.randomized}" for i, s in enumerate(steps) if i))
