"""The Predictions page: top-k for one image, accuracy and confusion matrices on the validation images,
filtered galleries, the one-model and untrained-model views, the ?run= deep link, a confusion-matrix cell
opened (through its keyboard fallback, the cell list) and where the two models disagree."""

import json
import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

from resnet_lab.analysis import Evaluation, evaluate, from_run
from resnet_lab.analysis.predict import cell_indices, disagreements, mcnemar_exact, nonempty_cells
from resnet_lab.data.registry import load_dataset
from resnet_lab.store import Store
from resnet_lab.ui.inspect import NONE, eval_indices

PAGE = "app_pages/predictions.py"
APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGE_SIZE = 24


def _errors(at: AppTest) -> list[str]:
    return [e.message for e in at.exception] + [e.value for e in at.error]


def _direct_evaluations(run_ids: list[int]) -> dict[int, object]:
    """Each run evaluated straight from its checkpoint, on the images the page says it evaluates."""
    store = Store()
    try:
        runs = {r.id: r for r in store.runs.list(limit=50)}
    finally:
        store.close()
    out = {}
    for rid in run_ids:
        subject = from_run(runs[rid])
        ds = load_dataset(subject.data)
        idx = eval_indices(ds.y_val)
        out[rid] = evaluate(subject.model, subject.normalize(ds.x_val[idx]), ds.y_val[idx])
    return out


def _topk_charts(at: AppTest) -> list:
    return [c for c in at.get("plotly_chart") if "pred_topk_" in (c.proto.id or "")]


def unescaped(markdown: str) -> str:
    """Markdown as it reads: run names are backslash-escaped where they meet Markdown (see ui.common.plain)."""
    return re.sub(r"\\(.)", r"\1", markdown)


def _confusion_charts(at: AppTest) -> list:
    return [c for c in at.get("plotly_chart") if "pred_cm_" in (c.proto.id or "")]


def test_finished_run_shows_both_accuracies_as_evaluated_from_the_checkpoints(finished_run, open_app_page):
    resnet_id, plain_id = finished_run
    at = open_app_page(PAGE)
    assert not _errors(at)
    assert at.title[0].value == "Predictions"
    assert at.selectbox(key="pred_run").value == resnet_id
    assert at.selectbox(key="pred_vs").value == plain_id  # its plain twin by default
    expected = _direct_evaluations([resnet_id, plain_id])
    shown = {unescaped(m.label): m.value for m in at.metric}
    for rid in (resnet_id, plain_id):
        (value,) = [v for label, v in shown.items() if label.startswith(f"Accuracy · #{rid} ")]
        assert value == f"{expected[rid].accuracy:.1%}"
    diff = expected[resnet_id].accuracy - expected[plain_id].accuracy
    assert any(label.startswith("Difference") and v == f"{100 * diff:+.1f} pts" for label, v in shown.items())
    assert len(_confusion_charts(at)) == 2
    assert any("pred_per_class" in (c.proto.id or "") for c in at.get("plotly_chart"))
    # the most confident mistakes say what the twin answered, or there are none
    mistakes = at.get_by_key("pred_mistakes").image if expected[resnet_id].confident_mistakes(1) else []
    assert all(" · plain: " in c for el in mistakes for c in el.captions)
    if not mistakes:
        assert any("No mistakes" in s.value for s in at.success)


def test_top_k_bars_for_a_validation_image(finished_run, open_app_page):
    at = open_app_page(PAGE)
    assert at.radio(key="pred_how").value == "Validation image"
    charts = _topk_charts(at)
    assert len(charts) == 2
    at.slider(key="pred_k").set_value(3).run()
    assert not _errors(at)
    for chart in _topk_charts(at):
        bars = chart.proto.spec
        assert '"orientation":"h"' in bars.replace(" ", "")
    # what each model sees, upscaled to 224 px, and a verdict that knows the true class
    assert any("what it sees" in c for el in at.image for c in el.captions)
    verdicts = " ".join(m.value for m in at.markdown)
    assert "right]" in verdicts or "wrong]" in verdicts


def test_top_k_slider_sets_the_number_of_bars(finished_run, open_app_page):
    import json

    at = open_app_page(PAGE)
    at.slider(key="pred_k").set_value(3).run()
    for chart in _topk_charts(at):
        fig = json.loads(chart.proto.spec)
        assert len(fig["data"][0]["y"]) == 3


def test_wrong_filter_shows_only_wrong_predictions(finished_run, open_app_page):
    resnet_id, _ = finished_run
    ev = _direct_evaluations([resnet_id])[resnet_id]
    n_wrong = int((ev.preds != ev.labels).sum())
    at = open_app_page(PAGE)
    gallery = at.get_by_key("pred_gallery")
    assert sum(len(el.captions) for el in gallery.image) == min(PAGE_SIZE, len(ev.labels))
    at.radio(key="pred_filter").set_value("Wrong").run()
    assert not _errors(at)
    if n_wrong == 0:
        assert any("No mistakes" in i.value for i in at.info)
        return
    captions = [c for el in at.get_by_key("pred_gallery").image for c in el.captions]
    assert len(captions) == min(PAGE_SIZE, n_wrong)
    for c in captions:
        true, rest = c.split(" → ")
        assert true != rest.rsplit(" (", 1)[0]


def test_one_class_filter_shows_that_class_only(finished_run, open_app_page):
    at = open_app_page(PAGE)
    at.radio(key="pred_filter").set_value("One class").run()
    at.selectbox(key="pred_class").set_value(2).run()
    assert not _errors(at)
    captions = [c for el in at.get_by_key("pred_gallery").image for c in el.captions]
    assert captions and all(c.startswith("triangle → ") for c in captions)


def test_one_model_leaves_one_column_and_one_confusion_matrix(finished_run, open_app_page):
    at = open_app_page(PAGE)
    at.selectbox(key="pred_vs").set_value(NONE).run()
    assert not _errors(at)
    assert len(_topk_charts(at)) == 1
    assert len(_confusion_charts(at)) == 1
    assert len(at.metric) == 1
    assert not [r for r in at.radio if r.key == "pred_whose"]


def test_no_runs_says_how_to_get_one(open_app_page):
    at = open_app_page(PAGE)
    assert not at.exception
    # with nothing trained the picker starts on an untrained model; asking for runs explains what to do
    assert at.radio(key="pred_source").value == "An untrained model (from Build)"
    at.radio(key="pred_source").set_value("A finished run").run()
    assert not at.exception
    assert any("No run has a checkpoint yet" in i.value for i in at.info)
    assert not at.metric and not at.get("plotly_chart")


def test_untrained_spec_shows_top_k_for_the_model_and_its_twin(finished_run, open_app_page):
    at = open_app_page(PAGE)
    at.radio(key="pred_source").set_value("An untrained model (from Build)").run()
    assert not _errors(at)
    charts = _topk_charts(at)
    assert len(charts) == 2
    labels = [m.label for m in at.metric]
    assert len(labels) == 3 and all("untrained" in label for label in labels[:2])


def test_run_query_param_selects_that_run(finished_run):
    resnet_id, plain_id = finished_run
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["run"] = str(plain_id)
    at.run()
    at.switch_page(PAGE).run()
    assert not _errors(at)
    assert at.selectbox(key="pred_run").value == plain_id
    assert at.selectbox(key="pred_vs").value == resnet_id  # the ResNet it is the twin of
    assert any(unescaped(m.label).startswith(f"Accuracy · #{plain_id} ") for m in at.metric)


# --- opening a cell, and the disagreements ----------------------------------------------------------------------

CARDS = 24


def _evaluated_indices(run_id: int) -> list[int]:
    """The dataset indices the page evaluates, straight from the run's data."""
    store = Store()
    try:
        run = next(r for r in store.runs.list(limit=50) if r.id == run_id)
    finally:
        store.close()
    return eval_indices(load_dataset(from_run(run).data).y_val).tolist()


def _card_indices(at: AppTest, key: str) -> list[int]:
    """The validation indices of the image cards in a grid, in order (each card is captioned "validation #i")."""
    captions = [c for el in at.get_by_key(key).image for c in el.captions]
    assert all(re.fullmatch(r"validation #\d+", c) for c in captions), captions
    return [int(c.split("#")[1]) for c in captions]


def _texts(at: AppTest) -> list[str]:
    return [unescaped(e.value) for kind in (at.markdown, at.caption, at.info, at.success) for e in kind]


def _open_cell(at: AppTest, ev, idx: list[int], model: int, name: str, right_too: bool) -> None:
    """Pick the biggest mistake cell of ``ev`` (and, with ``right_too``, a cell of right answers) in the cell list,
    and check that exactly its images are shown, most confident first, with the cell's count and the other model's
    answer."""
    cells = nonempty_cells(ev)
    box = at.selectbox(key="pred_cell")
    assert len(box.options) == len(cells) + 1  # "(none …)" and every non-empty cell
    picks = [c for c in cells if c.mistake][:1] + [c for c in cells if not c.mistake][:int(right_too)]
    picks = picks or cells[:1]  # a model without mistakes still has a cell to open
    for c in picks:
        at.selectbox(key="pred_cell").set_value((c.true, c.pred)).run()
        assert not _errors(at)
        positions = cell_indices(ev, c.true, c.pred)
        assert len(positions) == c.count == int(ev.confusion()[c.true, c.pred])
        assert _card_indices(at, "pred_cell_cards") == [idx[p] for p in positions[:CARDS]]
        noun = "image" if c.count == 1 else "images"
        assert any(t.startswith(f"**{c.count:,} {noun}** of ") for t in
                   (unescaped(m.value) for m in at.markdown)), "the cell's count is stated"
        if c.count > CARDS:
            assert any(f"showing {CARDS} of {c.count:,}" in t for t in _texts(at))
        cards = at.get_by_key("pred_cell_cards")
        answers = [unescaped(m.value) for m in cards.markdown]
        assert len(answers) == min(CARDS, c.count)
        # each card: what this model said first, then what the other one answered
        other = "plain" if name == "ResNet" else "ResNet"
        assert all(f"\n{name}: " in a and f"\n{other}: " in a and a.index(f"{name}: ") < a.index(f"{other}: ")
                   for a in answers)
        chart = json.loads([ch for ch in _confusion_charts(at) if f"pred_cm_{model}" in ch.proto.id][0].proto.spec)
        (shape,) = chart["layout"]["shapes"]  # the open cell is outlined on this model's matrix
        assert (shape["x0"], shape["y0"]) == (c.pred - 0.5, c.true - 0.5)


def test_a_cell_picked_from_the_list_shows_exactly_that_cells_images_for_either_model(finished_run, open_app_page):
    resnet_id, plain_id = finished_run
    evs = _direct_evaluations([resnet_id, plain_id])
    idx = _evaluated_indices(resnet_id)
    at = open_app_page(PAGE)
    assert at.selectbox(key="pred_cell").value is None
    assert any(t.startswith("Pick a cell to see exactly those images") for t in _texts(at))  # nothing open yet
    _open_cell(at, evs[resnet_id], idx, 0, "ResNet", right_too=True)
    at.radio(key="pred_cell_model").set_value(1).run()  # the twin's own cells
    assert not _errors(at)
    _open_cell(at, evs[plain_id], idx, 1, "plain", right_too=False)


def test_disagreement_counts_and_images_equal_a_direct_count(finished_run, open_app_page):
    resnet_id, plain_id = finished_run
    evs = _direct_evaluations([resnet_id, plain_id])
    d = disagreements(evs[resnet_id], evs[plain_id])
    idx = _evaluated_indices(resnet_id)
    at = open_app_page(PAGE)
    texts = _texts(at)
    assert any(t.startswith(f"**ResNet right, plain wrong: {len(d.a_only):,}** · "
                            f"**plain right, ResNet wrong: {len(d.b_only):,}**") for t in texts)
    if d.a_only or d.b_only:
        p = mcnemar_exact(len(d.a_only), len(d.b_only))
        assert any(f"p = {p:.2g} (McNemar" in t for t in texts)
    assert at.radio(key="pred_dis_side").value == 0  # "ResNet right, plain wrong" first
    for side, positions in ((0, d.a_only), (1, d.b_only)):
        if side:
            at.radio(key="pred_dis_side").set_value(side).run()
            assert not _errors(at)
        if positions:
            assert _card_indices(at, "pred_dis_cards") == [idx[i] for i in positions[:CARDS]]
        else:
            assert any(i.value.startswith("No such image") for i in at.info)


def test_counts_read_right_when_the_twin_makes_exactly_one_more_mistake(finished_run, open_app_page, monkeypatch):
    """The twin's evaluation is made the ResNet's with one right answer turned wrong: one more mistake, one
    disagreement, and every count on the page in the singular where it is 1."""
    import resnet_lab.ui.inspect as inspect_ui

    real = inspect_ui.cached_evaluation
    seen: dict[str, object] = {}

    def one_more_mistake(subject, dataset, data):
        ev, idx = real(subject, dataset, data)
        if subject.spec.skip:
            seen["resnet"] = ev
            return ev, idx
        base = seen["resnet"]
        pos = int((base.preds == base.labels).nonzero()[0, 0])
        probs = base.probs.clone()
        probs[pos] = 0.0
        probs[pos, (int(base.labels[pos]) + 1) % base.num_classes] = 1.0
        seen["pos"] = pos
        return Evaluation(probs=probs, labels=base.labels.clone()), idx

    monkeypatch.setattr(inspect_ui, "cached_evaluation", one_more_mistake)
    at = open_app_page(PAGE)
    assert not _errors(at)
    texts = _texts(at)
    assert any(re.search(r"\(plain\)\*\* makes 1 more mistake\b(?!s)", t) for t in texts)
    assert any(t.startswith("**ResNet right, plain wrong: 1** · **plain right, ResNet wrong: 0**") for t in texts)
    assert any("the 1 image where they disagree" in t for t in texts)
    assert _card_indices(at, "pred_dis_cards") == [_evaluated_indices(finished_run[0])[seen["pos"]]]
    assert at.radio(key="pred_dis_side").options == ["ResNet right, plain wrong (1)", "plain right, ResNet wrong (0)"]
    for t in texts:  # no "1 images", "1 more mistakes", "1 validation images" anywhere on the page
        assert not re.search(r"(?<![\d,.])1 (more |validation )?(images|mistakes)\b", t), t
