import math

import streamlit as st

from resnet_lab.analysis import Evaluation, Subject, predict
from resnet_lab.ui.common import plain
from resnet_lab.ui.inspect import as_seen, cached_evaluation, feed, pick_image, pick_models
from resnet_lab.viz.inspect import confusion_figure, per_class_figure, to_pil, topk_figure

PAGE_SIZE = 24  # gallery images per page
THUMB = 128  # gallery thumbnails, px (32 px validation images upscaled 4x with nearest neighbours: crisp)
BIG_THUMB = 160  # confident mistakes, px
FILTERS = ("All", "Wrong", "One class")

st.title("Predictions")
st.caption("What the network answers, image by image and over the whole validation split: accuracy, the "
           "confusion matrix, accuracy per class and its most confident mistakes, beside its plain twin.")

picked = pick_models("pred")
if picked is None:
    st.stop()
subjects = picked.subjects
main = picked.main


def short(subject: Subject) -> str:
    """A short name for captions: "ResNet" / "plain", or the run number when both are the same kind."""
    kinds = [s.spec.kind for s in subjects]
    kind = subject.spec.kind
    if len(set(kinds)) == len(kinds):
        return kind
    return f"#{subject.run_id}" if subject.run_id is not None else subject.label


def verdict(subject: Subject, cls: int, p: float, label: int | None) -> str:
    said = f"**{plain(subject.class_name(cls))}** with {p:.1%}"
    if label is None or subject.class_names != main.class_names:
        return f"Predicts {said}."
    if cls == label:
        return f":green-badge[:material/check: right] predicts {said}."
    return f":red-badge[:material/close: wrong] predicts {said}; the true class is **{plain(main.class_name(label))}**."


# --- 1. one image ---------------------------------------------------------------------------------
st.subheader("Top-k for one image")
img = pick_image("pred", picked)
if img is None:
    st.info("Choose an image file or take a picture to see what the models answer.", icon=":material/image:")
else:
    top = st.columns([2, 1], vertical_alignment="bottom")
    top[0].caption(img.caption)
    most = min(10, max(len(s.class_names) for s in subjects))
    k = top[1].slider("Top k", 1, most, min(5, most), key="pred_k") if most > 1 else 1
    true_name = main.class_name(img.label) if img.label is not None else None
    for i, (col, subject) in enumerate(zip(st.columns(len(subjects)), subjects)):
        with col:
            st.markdown(f"**{plain(subject.label)}**")
            try:
                seen = as_seen(subject, img.image)
                with subject.lock:
                    probs, classes = predict(subject.model, feed(subject, img.image), k)
            except (ValueError, RuntimeError) as e:
                st.error(f"This model cannot take this image: {e}", icon=":material/error:")
                continue
            st.image(to_pil(seen, size=224), caption=f"what it sees ({subject.image_size} px)")
            names = [subject.class_name(int(c)) for c in classes[0]]
            st.plotly_chart(topk_figure(probs[0], names, title=f"top {len(names)}", highlight=true_name),
                            width="stretch", key=f"pred_topk_{i}")
            st.markdown(verdict(subject, int(classes[0, 0]), float(probs[0, 0]), img.label))
    if img.label is not None:
        st.caption("The true class is drawn in green when it is among the top k. An untrained model spreads its "
                   "probability almost evenly; a well-trained one is confident, sometimes even when it is wrong.")

# --- 2. the validation images ---------------------------------------------------------------------
ds = picked.dataset
if ds is None:
    st.stop()

st.subheader("On the validation images")
evals: list[tuple[Subject, Evaluation]] = []
idx = None
for subject in subjects:
    if subject is not main and (subject.class_names != main.class_names or subject.in_channels != ds.in_channels
                                or subject.image_size != ds.x_val.shape[-1]):
        trained_on = subject.data.name if subject.data is not None else "unknown data"
        st.warning(f"**{plain(subject.label)}** was trained on other images than {plain(main.label)} ({trained_on}, "
                   f"{len(subject.class_names)} classes, {subject.image_size} px): it is left out of the comparison "
                   "on these validation images.", icon=":material/warning:")
        continue
    ev, idx = cached_evaluation(subject, ds, picked.data)
    evals.append((subject, ev))

total = len(ds.y_val)
if len(idx) < total:
    st.caption(f"Evaluated on {len(idx):,} of the {total:,} validation images of **{picked.data.name}**: a "
               "stratified sample (every class in proportion), the same images for every model.")
else:
    st.caption(f"All {total:,} validation images of **{picked.data.name}**.")

accs = [ev.accuracy for _, ev in evals]
cols = st.columns(len(evals) + (1 if len(evals) == 2 else 0))
for col, (subject, ev) in zip(cols, evals):
    wrong = len(ev.select("wrong"))
    col.metric(f"Accuracy · {plain(subject.label)}", f"{ev.accuracy:.1%}", border=True,
               help=f"{len(ev.labels) - wrong:,} of {len(ev.labels):,} right, {wrong:,} wrong")
if len(evals) == 2:
    cols[2].metric(f"Difference ({short(evals[0][0])} − {short(evals[1][0])})",
                   f"{100 * (accs[0] - accs[1]):+.1f} pts", border=True,
                   help="Accuracy of the first model minus the second, in percentage points.")
    wrongs = [len(ev.select("wrong")) for _, ev in evals]
    if wrongs[0] != wrongs[1]:
        worse = 0 if wrongs[0] > wrongs[1] else 1
        per_class = [ev.per_class_accuracy().tolist() for _, ev in evals]
        gaps = [(per_class[1 - worse][c] - per_class[worse][c], c) for c in range(len(main.class_names))
                if not (math.isnan(per_class[0][c]) or math.isnan(per_class[1][c]))]
        gap, c = max(gaps) if gaps else (0.0, 0)
        where = (f", most on **{plain(main.class_name(c))}** ({per_class[worse][c]:.0%} right against "
                 f"{per_class[1 - worse][c]:.0%})" if gap > 0 else "")
        st.caption(f"**{plain(evals[worse][0].label)}** makes {abs(wrongs[0] - wrongs[1]):,} more mistakes{where}. "
                   "Look at that row of its confusion matrix: the off-diagonal cells are the classes it takes them "
                   "for.")
    else:
        st.caption("Both make as many mistakes; the confusion matrices show whether they are the same ones.")

normalize = st.toggle("Normalize rows", value=True, key="pred_norm",
                      help="Each row as shares of its true class (the diagonal is that class's accuracy) "
                           "instead of image counts.")
for i, (col, (subject, ev)) in enumerate(zip(st.columns(len(evals)), evals)):
    col.plotly_chart(confusion_figure(ev.confusion(), main.class_names, normalize=normalize, title=subject.label),
                     width="stretch", key=f"pred_cm_{i}")
st.caption("Rows are the true class, columns the prediction: a perfect model has everything on the diagonal.")

st.plotly_chart(per_class_figure({s.label: ev.per_class_accuracy() for s, ev in evals}, main.class_names,
                                 title="Accuracy per class"), width="stretch", key="pred_per_class")


# --- 3. galleries ----------------------------------------------------------------------------------
def caption(ev: Evaluation, pos: int) -> str:
    true, pred = int(ev.labels[pos]), int(ev.preds[pos])
    return f"{main.class_name(true)} → {main.class_name(pred)} ({float(ev.confidence[pos]):.0%})"


st.subheader("Validation images")
whose = 0
if len(evals) == 2:
    whose = st.radio("Predictions of", [0, 1], format_func=lambda i: plain(evals[i][0].label), horizontal=True,
                     key="pred_whose")
subject, ev = evals[whose]
f = st.columns([2, 2, 3])
which = f[0].radio("Show", FILTERS, horizontal=True, key="pred_filter")
cls = None
if which == "One class":
    cls = f[1].selectbox("True class", range(len(main.class_names)), format_func=main.class_name, key="pred_class")
positions = ev.select({"All": "all", "Wrong": "wrong", "One class": "class"}[which], cls)
if not positions:
    st.info("No mistakes among these images." if which == "Wrong" else "No validation image matches this filter.",
            icon=":material/filter_alt_off:")
else:
    pages = math.ceil(len(positions) / PAGE_SIZE)
    page_key = f"pred_page_{whose}_{which}_{cls}"
    if st.session_state.get(page_key, 1) > pages:
        st.session_state[page_key] = 1
    page = st.pagination(pages, key=page_key) if pages > 1 else 1
    shown = positions[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    st.caption(f"{len(positions):,} images · page {page} of {pages} · each captioned "
               "“true class → predicted class (confidence)”.")
    with st.grid(8, min_column_width=100, gap="xsmall", key="pred_gallery"):
        for pos in shown:
            st.image(to_pil(ds.x_val[int(idx[pos])], size=THUMB), caption=caption(ev, pos), width="stretch")

st.subheader("Most confident mistakes")
mistakes = ev.confident_mistakes(12)
others = [(s, e) for s, e in evals if s is not subject]
if not mistakes:
    st.success(f"No mistakes: {plain(subject.label)} gets every evaluated validation image right.",
               icon=":material/check_circle:")
else:
    st.caption("Wrong answers given with the highest confidence. Often the image is ambiguous or the label is hard "
               "to see; sometimes the model has learned a shortcut"
               + (f". Under each, what **{plain(others[0][0].label)}** answered." if others else "."))
    with st.grid(6, min_column_width=140, gap="xsmall", key="pred_mistakes"):
        for pos in mistakes:
            text = caption(ev, pos)
            for other, oev in others:
                mark = "right" if int(oev.preds[pos]) == int(oev.labels[pos]) else "wrong too"
                text += (f" · {short(other)}: {main.class_name(int(oev.preds[pos]))} "
                         f"({float(oev.confidence[pos]):.0%}), {mark}")
            st.image(to_pil(ds.x_val[int(idx[pos])], size=BIG_THUMB), caption=text, width="stretch")
