import functools
import json
import math
from collections.abc import Sequence

import streamlit as st
import torch

from resnet_lab.analysis import Evaluation, Subject, attribute, cam_layers, predict
from resnet_lab.analysis.predict import cell_indices, disagreements, nonempty_cells
from resnet_lab.ui.charts import show_chart
from resnet_lab.ui.common import plain
from resnet_lab.ui.compute import Keyed, on_model
from resnet_lab.ui.inspect import as_seen, cached_evaluation, feed, pick_image, pick_models
from resnet_lab.ui.widgets import choice
from resnet_lab.viz.errors import agreement_figure, card_image, picked_cell, topk_bars
from resnet_lab.viz.inspect import confusion_figure, per_class_figure, to_pil, topk_figure

PAGE_SIZE = 24  # gallery images per page
THUMB = 128  # gallery thumbnails, px (32 px validation images upscaled 4x with nearest neighbours: crisp)
BIG_THUMB = 160  # confident mistakes, px
FILTERS = ("All", "Wrong", "One class")
CARDS = 24  # image cards shown for one confusion-matrix cell, or one side of the disagreements
CARD_PX = 96  # each panel of a card (the image, its Grad-CAM), px
TICK_CHARS = 16  # class names on the confusion matrices' axes are cut to this (the hover names them in full)
CELL, CELL_MODEL, CELL_EMPTY = "pred_cell", "pred_cell_model", "pred_cell_empty"  # session keys of the open cell

st.title("Predictions")
st.caption("What the network answers, image by image and over the whole validation split: accuracy, the "
           "confusion matrix, accuracy per class and its most confident mistakes, beside its plain twin.")

picked = pick_models("pred")
if picked is None:
    st.stop()
subjects = picked.subjects
main = picked.main


def tag(subject: Subject) -> str:
    """The shortest name that still tells runs apart, for a metric's label: "#3 ResNet" or "untrained plain"."""
    return f"#{subject.run_id} {subject.spec.kind}" if subject.run_id is not None else f"untrained {subject.spec.kind}"


def short(subject: Subject) -> str:
    """A short name for captions: "ResNet" / "plain", or the run number when both are the same kind."""
    kinds = [s.spec.kind for s in subjects]
    kind = subject.spec.kind
    if len(set(kinds)) == len(kinds):
        return kind
    return f"#{subject.run_id}" if subject.run_id is not None else subject.label


def count(n: int, noun: str, nouns: str | None = None) -> str:
    """"1 image", "2 images", "1,204 images": a number with its noun in the right number."""
    return f"{n:,} {noun if n == 1 else (nouns or noun + 's')}"


def _topk(subject: Subject, x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    return tuple(t.cpu() for t in predict(subject.model, x, k))


def _cams(subject: Subject, x: torch.Tensor) -> tuple[str, torch.Tensor] | None:
    """(layer, Grad-CAM of each image's predicted class at the model's deepest stage, N x H x W on the CPU)."""
    layers = cam_layers(subject.model)
    if not layers:
        return None
    return layers[0], attribute(subject.model, subject.normalize(x), None, "gradcam", layers[0]).cpu()


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
                probs, classes = on_model("predictions.topk", subject, _topk, feed(subject, img.image), k,
                                          spinner=None)
            except (ValueError, RuntimeError) as e:
                st.error(f"This model cannot take this image: {e}", icon=":material/error:")
                continue
            st.image(to_pil(seen, size=224), caption=f"what it sees ({subject.image_size} px)",
                     alt=f"The image as {subject.label} sees it, {subject.image_size} pixels square")
            names = [subject.class_name(int(c)) for c in classes[0]]
            show_chart(topk_figure(probs[0], names, title=f"top {len(names)}", highlight=true_name),
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
        st.warning(f"**{plain(subject.label)}** was trained on other images than {plain(main.label)} "
                   f"({plain(trained_on)}, {count(len(subject.class_names), 'class', 'classes')}, "
                   f"{subject.image_size} px): it is left out of the comparison on these validation images.",
                   icon=":material/warning:")
        continue
    ev, idx = cached_evaluation(subject, ds, picked.data)
    evals.append((subject, ev))

total = len(ds.y_val)
data_json = json.dumps(picked.data.to_dict(), sort_keys=True)
if len(idx) < total:
    st.caption(f"Evaluated on {len(idx):,} of the {count(total, 'validation image')} of "
               f"**{plain(picked.data.name)}**: a stratified sample (every class in proportion), the same images for "
               "every model.")
else:
    st.caption(f"All {count(total, 'validation image')} of **{plain(picked.data.name)}**.")

accs = [ev.accuracy for _, ev in evals]
cols = st.columns(len(evals) + (1 if len(evals) == 2 else 0))
for col, (subject, ev) in zip(cols, evals):
    wrong = len(ev.select("wrong"))
    col.metric(f"Accuracy · {plain(tag(subject))}", f"{ev.accuracy:.1%}", border=True,
               help=f"{plain(subject.label)}: {len(ev.labels) - wrong:,} of {len(ev.labels):,} right, {wrong:,} wrong")
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
        st.caption(f"**{plain(evals[worse][0].label)}** makes {count(abs(wrongs[0] - wrongs[1]), 'more mistake')}"
                   f"{where}. "
                   "Look at that row of its confusion matrix: the off-diagonal cells are the classes it takes them "
                   "for.")
    else:
        st.caption("Both make as many mistakes; the confusion matrices show whether they are the same ones.")


# --- 2b. open a cell of a confusion matrix ---------------------------------------------------------
def cell_text(true: int, pred: int, n: int | None = None) -> str:
    """"circle → square (5)": a cell as a person reads it (for a select box: plain text, not Markdown)."""
    return f"{main.class_name(true)} → {main.class_name(pred)}" + (f" ({n:,})" if n is not None else "")


def _clicked(model: int, counts: list[list[int]]) -> None:
    """A click on a cell of model ``model``'s matrix: open that cell (or say it is empty)."""
    event = st.session_state.get(f"pred_cm_{model}")
    cell = picked_cell(event.selection.points, len(counts)) if event is not None else None
    if cell is None:
        return
    if counts[cell[0]][cell[1]] == 0:
        st.session_state[CELL_EMPTY] = (model, *cell)
        return
    st.session_state[CELL_MODEL] = model
    st.session_state[CELL] = cell


def open_cell() -> tuple[int, tuple[int, int] | None, list[tuple[int, int] | None]]:
    """(model index, open cell or None, the cells that can be opened) from the session, before any widget: a cell
    that model does not have (say after switching models) is closed."""
    model = st.session_state.get(CELL_MODEL, 0)
    if model not in range(len(evals)):
        model = st.session_state[CELL_MODEL] = 0
    options = [None] + [(c.true, c.pred) for c in nonempty_cells(evals[model][1])]
    if st.session_state.get(CELL) not in options:
        st.session_state[CELL] = None
    return model, st.session_state.get(CELL), options


normalize = st.toggle("Normalize rows", value=True, key="pred_norm",
                      help="Each row as shares of its true class (the diagonal is that class's accuracy) "
                           "instead of image counts.")
cell_model, cell, cell_options = open_cell()
for i, (col, (subject, ev)) in enumerate(zip(st.columns(len(evals)), evals)):
    cm = ev.confusion()
    show_chart(confusion_figure(cm, main.class_names, normalize=normalize, title=subject.label, clickable=True,
                                picked=cell if i == cell_model else None, tick_chars=TICK_CHARS),
               where=col, key=f"pred_cm_{i}", on_select=functools.partial(_clicked, i, cm.tolist()),
               selection_mode=("points",))
st.caption("Rows are the true class, columns the prediction: a perfect model has everything on the diagonal. "
           "**Click a cell** to see its images below.")


def answer(m: int, pos: int) -> str:
    """What model ``m`` answered for the image at evaluation position ``pos``, as Markdown."""
    subject, ev = evals[m]
    pred = int(ev.preds[pos])
    mark = ":green[right]" if pred == int(ev.labels[pos]) else ":red[wrong]"
    who = f"{plain(short(subject))}: " if len(evals) > 1 else ""
    return f"{who}**{plain(main.class_name(pred))}** {float(ev.confidence[pos]):.0%} · {mark}"


def bars(m: int, pos: int) -> str:
    """Model ``m``'s top 3 for one image as text bars, one line each (Markdown)."""
    rows = topk_bars(evals[m][1].probs[pos], 3)
    who = f" of {plain(short(evals[m][0]))}" if len(evals) > 1 else ""
    return f"top 3{who}:  \n" + "  \n".join(f"`{bar}` {p:.0%} {plain(main.class_name(c))}" for c, p, bar in rows)


def show_cards(key: str, positions: Sequence[int], cam_models: Sequence[int], bars_of: int,
               answers: Sequence[int]) -> None:
    """At most CARDS image cards, in a grid: each image beside the Grad-CAM of its predicted class by each model
    in ``cam_models``, its dataset index and true class, what each model in ``answers`` said, and the top 3 of
    model ``bars_of``."""
    shown = [int(p) for p in positions[:CARDS]]
    rows = [int(idx[p]) for p in shown]
    x = ds.x_val[rows]
    cams = []
    for m in cam_models:
        subject = evals[m][0]
        try:
            cams.append(on_model("predictions.cell_cams", subject, _cams, Keyed(x, ("x_val", data_json, tuple(rows))),
                                 spinner="Grad-CAM of these images…"))
        except (ValueError, RuntimeError) as e:
            st.warning(f"No Grad-CAM for **{plain(subject.label)}**: {e}", icon=":material/warning:")
            cams.append(None)
    layers = [(evals[m][0], c[0]) for m, c in zip(cam_models, cams) if c is not None]
    if layers:
        st.caption("Each card: the image, then " + ", then ".join(
            f"Grad-CAM of **{plain(s.label)}**'s answer at `{plain(layer)}`" for s, layer in layers)
            + " (its deepest stage: where the evidence for that answer lies).")
    grid = st.grid(4, min_column_width=230, gap="small", border=True, key=key)
    for n, (pos, row) in enumerate(zip(shown, rows)):
        with grid.cell():
            st.image(card_image(x[n], [c[1][n] for c in cams if c is not None], size=CARD_PX),
                     caption=f"validation #{row}", width="stretch",
                     alt=f"Validation image #{row} with the models' Grad-CAM maps beside it")
            st.markdown(f"true **{plain(main.class_name(int(ds.y_val[row])))}**  \n"
                        + "  \n".join(answer(m, pos) for m in answers))
            st.caption(bars(bars_of, pos))


st.subheader("Open a cell")
pick = st.columns([1, 2]) if len(evals) == 2 else [st.container(), st.container()]
if len(evals) == 2:
    choice(pick[0].radio, "Cells of", range(len(evals)), format_func=lambda i: plain(evals[i][0].label), key=CELL_MODEL)
cell_subject, cell_ev = evals[cell_model]
cell_counts = cell_ev.confusion()
choice(pick[1].selectbox, "Cell (true → predicted, images)", cell_options, key=CELL,
                  format_func=lambda c: "(none: click a cell of a matrix, or pick one here)" if c is None
                  else cell_text(*c, int(cell_counts[c[0], c[1]])),
                  help="Every cell that holds an image: the mistakes first, the biggest first, then the right "
                       "answers. The same as clicking that cell of the matrix.")
empty = st.session_state.pop(CELL_EMPTY, None)
if empty is not None:
    st.info(f"No validation image of **{plain(main.class_name(empty[1]))}** was predicted as "
            f"**{plain(main.class_name(empty[2]))}** by **{plain(evals[empty[0]][0].label)}**: that cell is empty.",
            icon=":material/grid_off:")
if cell is None:
    st.caption("Pick a cell to see exactly those images, each beside the Grad-CAM of the model's answer"
               + (", with what the other model answered." if len(evals) == 2 else "."))
else:
    true, pred = cell
    positions = cell_indices(cell_ev, true, pred)
    shown_n = min(CARDS, len(positions))
    who = f"**{plain(cell_subject.label)}**"
    head = f"**{count(len(positions), 'image')}** of **{plain(main.class_name(true))}** " + (
        f"taken for **{plain(main.class_name(pred))}** by {who}" if true != pred else f"that {who} gets right")
    if shown_n < len(positions):
        head += f" · showing {shown_n} of {len(positions):,}, the most confident first"
    st.markdown(head + ".")
    show_cards("pred_cell_cards", positions, [cell_model], cell_model,
               [cell_model] + [m for m in range(len(evals)) if m != cell_model])

show_chart(per_class_figure({s.label: ev.per_class_accuracy() for s, ev in evals}, main.class_names,
                            title="Accuracy per class"), width="stretch", key="pred_per_class")

# --- 2c. where the two models disagree --------------------------------------------------------------
if len(evals) == 2:
    st.subheader("Where they disagree")
    (sa, ev_a), (sb, ev_b) = evals
    na, nb = plain(short(sa)), plain(short(sb))
    dis = disagreements(ev_a, ev_b)
    st.markdown(f"**{na} right, {nb} wrong: {len(dis.a_only):,}** · **{nb} right, {na} wrong: {len(dis.b_only):,}**"
                f" (of {count(dis.total, 'image')}; both right on {dis.both_right:,}, both wrong on "
                f"{dis.both_wrong:,}).")
    show_chart(agreement_figure(dis.both_right, len(dis.a_only), len(dis.b_only), dis.both_wrong,
                                short(sa), short(sb)), width="stretch", key="pred_agree")
    split = len(dis.a_only) + len(dis.b_only)
    if split:
        p = dis.p_value
        verdict_text = ("so a split this uneven is unlikely to be chance" if p < 0.05 else
                        "so on these images the difference could well be chance")
        st.caption(f"If both models were equally often right, the {count(split, 'image')} where they disagree "
                   f"would split like coin flips; a split at least this uneven would then happen with probability "
                   f"p = {p:.2g} (McNemar's exact test), {verdict_text}.")
    side = choice(st.radio, "Images where", [0, 1], horizontal=True, key="pred_dis_side",
                    format_func=lambda i: (f"{na} right, {nb} wrong ({len(dis.a_only):,})" if i == 0 else
                                           f"{nb} right, {na} wrong ({len(dis.b_only):,})"))
    positions = dis.a_only if side == 0 else dis.b_only
    if not positions:
        st.info("No such image: " + (f"whatever {na} gets right, {nb} gets right too." if side == 0 else
                                     f"whatever {nb} gets right, {na} gets right too."),
                icon=":material/filter_alt_off:")
    else:
        if len(positions) > CARDS:
            st.caption(f"Showing {CARDS} of {len(positions):,}, those the wrong model is surest of first.")
        show_cards("pred_dis_cards", positions, [0, 1], 1 - side, [0, 1])


# --- 3. galleries ----------------------------------------------------------------------------------
def caption(ev: Evaluation, pos: int) -> str:
    true, pred = int(ev.labels[pos]), int(ev.preds[pos])
    return f"{plain(main.class_name(true))} → {plain(main.class_name(pred))} ({float(ev.confidence[pos]):.0%})"


def alt_text(ev: Evaluation, pos: int) -> str:
    """What an image of the validation split shows, for a screen reader (an ``alt`` is text, never Markdown)."""
    true, pred = int(ev.labels[pos]), int(ev.preds[pos])
    return (f"A validation image of class {main.class_name(true)}, predicted {main.class_name(pred)} "
            f"with {float(ev.confidence[pos]):.0%} confidence")


st.subheader("Validation images")
whose = 0
if len(evals) == 2:
    whose = choice(st.radio, "Predictions of", [0, 1], format_func=lambda i: plain(evals[i][0].label), horizontal=True,
                     key="pred_whose")
subject, ev = evals[whose]
f = st.columns([2, 2, 3])
which = f[0].radio("Show", FILTERS, horizontal=True, key="pred_filter")
cls = None
if which == "One class":
    cls = choice(f[1].selectbox, "True class", range(len(main.class_names)), format_func=main.class_name,
                 key="pred_class")
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
    st.caption(f"{count(len(positions), 'image')} · page {page} of {pages} · each captioned "
               "“true class → predicted class (confidence)”.")
    with st.grid(8, min_column_width=100, gap="xsmall", key="pred_gallery"):
        for pos in shown:
            st.image(to_pil(ds.x_val[int(idx[pos])], size=THUMB), caption=caption(ev, pos), width="stretch",
                     alt=alt_text(ev, pos))

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
                text += (f" · {plain(short(other))}: {plain(main.class_name(int(oev.preds[pos])))} "
                         f"({float(oev.confidence[pos]):.0%}), {mark}")
            st.image(to_pil(ds.x_val[int(idx[pos])], size=BIG_THUMB), caption=text, width="stretch",
                     alt=alt_text(ev, pos))
