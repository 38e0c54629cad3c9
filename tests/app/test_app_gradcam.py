"""The Grad-CAM page: two overlays that are exactly the analysis' maps, every method, a chosen target, the depth
strip, localization (by depth too) and trust numbers equal to the analysis', and the cascading-randomization check."""

import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

from resnet_lab.analysis import (METHODS, cam_layers, cascading_randomization, from_run, grad_cam, localization,
                                 localization_by_depth, predict, trust)
from resnet_lab.data.registry import load_dataset
from resnet_lab.store import Store
from resnet_lab.viz.inspect import overlay

PAGE = "app_pages/gradcam.py"


@pytest.fixture
def media(monkeypatch):
    """Every media file the app stores this test, by file id (the last part of an st.image URL)."""
    files: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):
        file_id = original(self, path_or_data, mimetype, kind, filename)
        files[file_id] = path_or_data
        return file_id

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    return files


@pytest.fixture
def subjects(finished_run):
    """(ResNet subject, plain subject, their validation data), built outside the app."""
    store = Store()
    resnet, plain = (from_run(store.runs.get(i)) for i in finished_run)
    store.close()
    return resnet, plain, load_dataset(resnet.data)


def images(at) -> list[str]:
    return [url for el in at.get("image") for url in el.value]


def pixels(media: dict[str, bytes], url: str) -> np.ndarray:
    file_id = url.rsplit("/", 1)[-1].split(".")[0]
    return np.asarray(Image.open(io.BytesIO(media[file_id])).convert("RGB"))


def captions(at) -> str:
    return " ".join(c.value for c in at.caption)


def charts(at, key: str = "") -> list[dict]:
    """The plotly figures on the page (only those of the widget key ``key`` when given)."""
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart") if not key or c.proto.id.endswith(key)]


def no_trouble(at) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_default_overlays_are_the_grad_cam_of_each_model(open_app_page, finished_run, media, subjects):
    at = open_app_page(PAGE)
    no_trouble(at)
    assert at.title[0].value == "Grad-CAM"
    assert at.selectbox(key="cam_method").value == "gradcam"
    urls = images(at)
    assert len(urls) == 2
    resnet, plain, ds = subjects
    shown = [pixels(media, u) for u in urls]
    x = ds.x_val[0]
    for subject, got in zip((resnet, plain), shown):
        layer = cam_layers(subject.model)[0]
        assert at.selectbox(key="cam_layer").value == layer
        heat = grad_cam(subject.model, subject.normalize(x[None]), None, layer)
        want = np.asarray(overlay(x, heat[0], 0.5, size=256))
        assert got.shape == (256, 256, 3)
        np.testing.assert_array_equal(got, want)
        probs, classes = predict(subject.model, subject.normalize(x[None]), k=1)
        name = subject.class_name(int(classes[0, 0]))
        assert f"predicts **{name}** ({float(probs[0, 0]):.1%})" in captions(at)
    assert not np.array_equal(shown[0], shown[1])  # two models, two maps
    assert "its own prediction" in captions(at)


def test_opacity_changes_the_overlay(open_app_page, finished_run, media):
    at = open_app_page(PAGE)
    before = images(at)
    at.slider(key="cam_alpha").set_value(1.0).run()
    no_trouble(at)
    after = images(at)
    assert len(after) == 2 and set(after).isdisjoint(before)


def test_every_method_renders_two_different_maps(open_app_page, finished_run):
    at = open_app_page(PAGE)
    seen = set()
    for method in METHODS:
        at.selectbox(key="cam_method").set_value(method).run()
        no_trouble(at)
        urls = images(at)
        assert len(urls) == 2, method
        assert at.selectbox(key="cam_layer").disabled == (method not in ("gradcam", "guided_gradcam"))
        assert all(c.startswith(METHODS[method]) for i in at.get("image") for c in i.captions)
        seen.update(urls)
    assert len(seen) == 2 * len(METHODS)  # each method draws its own maps


def test_a_shallower_layer_is_used_by_both_models(open_app_page, finished_run, media, subjects):
    at = open_app_page(PAGE)
    at.selectbox(key="cam_layer").set_value("layer2").run()
    no_trouble(at)
    assert all("Grad-CAM at `layer2` for " in c for i in at.get("image") for c in i.captions)
    resnet, _, ds = subjects
    x = ds.x_val[0]
    heat = grad_cam(resnet.model, resnet.normalize(x[None]), None, "layer2")
    np.testing.assert_array_equal(pixels(media, images(at)[0]), np.asarray(overlay(x, heat[0], 0.5, size=256)))
    at.selectbox(key="cam_method").set_value("saliency").run()
    at.selectbox(key="cam_method").set_value("gradcam").run()
    assert at.selectbox(key="cam_layer").value == "layer2"  # a detour through a layer-free method keeps it


def test_a_chosen_class_is_explained_by_both_models(open_app_page, finished_run, media, subjects):
    at = open_app_page(PAGE)
    at.radio(key="cam_target").set_value("choose").run()
    at.selectbox(key="cam_class").set_value(3).run()
    no_trouble(at)
    assert captions(at).count("Explains **cross**") == 2
    assert "Both models explain the class **cross**" in captions(at)
    resnet, _, ds = subjects
    x = ds.x_val[0]
    heat = grad_cam(resnet.model, resnet.normalize(x[None]), 3, cam_layers(resnet.model)[0])
    np.testing.assert_array_equal(pixels(media, images(at)[0]), np.asarray(overlay(x, heat[0], 0.5, size=256)))


def test_the_true_class_is_offered_for_a_validation_image(open_app_page, finished_run, subjects):
    at = open_app_page(PAGE)
    _, _, ds = subjects
    assert "true class" in at.radio(key="cam_target").options
    at.radio(key="cam_target").set_value("true class").run()
    no_trouble(at)
    truth = ("circle", "square", "triangle", "cross", "ring", "star")[int(ds.y_val[0])]
    assert captions(at).count(f"Explains **{truth}**") == 2


def test_localization_scores_are_the_analysis_scores(open_app_page, finished_run, subjects):
    at = open_app_page(PAGE)
    assert not charts(at, "cam_loc_chart")
    at.slider(key="cam_loc_n").set_value(16).run()
    at.button(key="cam_loc_go").click().run()
    no_trouble(at)
    resnet, plain, ds = subjects
    (fig,) = charts(at, "cam_loc_chart")
    bars = {t["name"]: t["y"] for t in fig["data"] if t["type"] == "bar"}
    assert len(bars) == 2
    for subject, label in zip((resnet, plain), bars):
        want = localization(subject.model, subject.normalize(ds.x_val[:16]), ds.mask_val[:16], target=ds.y_val[:16],
                            layer=cam_layers(subject.model)[0], method="gradcam")
        assert bars[label] == pytest.approx([want.energy, want.pointing], abs=1e-6)
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 2
    at.slider(key="cam_alpha").set_value(0.3).run()  # an unrelated rerun keeps the scores
    assert len(charts(at, "cam_loc_chart")) == 1
    at.selectbox(key="cam_method").set_value("saliency").run()  # other settings: not these scores
    assert not charts(at, "cam_loc_chart")
    assert "press **Score localization** again" in " ".join(c.value for c in at.caption)


def test_randomization_shows_a_map_per_step_with_its_rank_correlation(open_app_page, finished_run, subjects):
    at = open_app_page(PAGE)
    at.button(key="cam_rand_go").click().run()
    no_trouble(at)
    resnet, _, ds = subjects
    layer = cam_layers(resnet.model)[0]
    steps = cascading_randomization(resnet.model, resnet.normalize(ds.x_val[:1]), None, layer, "gradcam", groups=6)
    (fig,) = charts(at, "cam_rand_chart")
    titles = sorted(a["text"] for a in fig["layout"]["annotations"])  # facets are laid out bottom-up
    want = ["trained · ρ=1.00", f"fc randomized · ρ={steps[1].rank_corr:.2f}",
            *(f"+ {s.randomized} · ρ={s.rank_corr:.2f}" for s in steps[2:])]
    assert titles == sorted(want)
    assert len(steps) == 6  # fc, layer3.0, layer2.0, layer1.0, stem: fewer groups than the 6 allowed
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")
    assert "explain the image, not the model" in captions(at)
    assert not torch.equal(steps[0].heat, steps[-1].heat)


def test_an_untrained_model_and_its_twin_are_explained_too(open_app_page):
    at = open_app_page(PAGE)  # no runs yet: the picker starts on the Build page's spec, fresh weights
    no_trouble(at)
    assert len(images(at)) == 2
    assert any(s.value == "Localization on shapes" for s in at.subheader)


def array(value) -> np.ndarray:
    """A figure's array as plotly sends it: a list, or a typed array {"dtype", "bdata" (base64), "shape"}."""
    if isinstance(value, dict):
        import base64

        shape = [int(v) for v in str(value["shape"]).split(",")]
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"])).reshape(shape)
    return np.asarray(value)


def strip_cells(fig: dict) -> list[tuple[str, str, np.ndarray]]:
    """(row's model label, column name, RGB pixels) of each cell of the depth strip, row by row; the column
    names must be among the titles drawn."""
    layout = fig["layout"]
    drawn = {a["text"] for a in layout["annotations"]}
    rows = {}  # the first cell of a row carries the model's name on its y axis
    for key, axis in layout.items():
        if key.startswith("yaxis") and axis.get("title", {}).get("text"):
            rows[axis["anchor"]] = axis["title"]["text"]
    out, label = [], None
    for t in fig["data"]:
        label = rows.get(t["xaxis"], label)
        assert t["name"] in drawn
        out.append((label, t["name"], array(t["z"]).astype(np.uint8)))
    return out


def test_the_depth_strip_is_every_layers_grad_cam_of_one_class_for_both_models(open_app_page, finished_run, subjects):
    at = open_app_page(PAGE)
    no_trouble(at)
    assert any(s.value == "Across depth" for s in at.subheader)
    (fig,) = charts(at, "cam_depth_chart")
    resnet, plain, ds = subjects
    x = ds.x_val[0]
    pred = int(predict(resnet.model, resnet.normalize(x[None]), k=1)[1][0, 0])  # the ResNet's class, for both
    cells = strip_cells(fig)
    # tiny nets of one block per stage: a stage's output is its block's, one column each, shallow to deep
    want_titles = ["layer1.0 = layer1 · 32×32", "layer2.0 = layer2 · 16×16", "layer3.0 = layer3 · 8×8"]
    assert [c[1] for c in cells] == want_titles * 2
    for r, subject in enumerate((resnet, plain)):
        for c, layer in enumerate(("layer1", "layer2", "layer3")):
            label, _, got = cells[3 * r + c]
            assert label.startswith(f"#{subject.run_id} ")
            heat = grad_cam(subject.model, subject.normalize(x[None]), pred, layer)
            np.testing.assert_array_equal(got, np.asarray(overlay(x, heat[0], 0.5)))
    at.radio(key="cam_target").set_value("choose").run()
    at.selectbox(key="cam_class").set_value(3).run()  # a chosen class: that class, for both models
    (fig,) = charts(at, "cam_depth_chart")
    heat = grad_cam(plain.model, plain.normalize(x[None]), 3, "layer2")
    np.testing.assert_array_equal(strip_cells(fig)[4][2], np.asarray(overlay(x, heat[0], 0.5)))
    assert "cross" in fig["layout"]["title"]["text"]


def test_localization_by_depth_waits_for_its_button_and_names_the_best_layer(open_app_page, finished_run, subjects):
    at = open_app_page(PAGE)
    assert not charts(at, "cam_depth_loc_chart")
    at.slider(key="cam_depth_n").set_value(16).run()
    at.button(key="cam_depth_go").click().run()
    no_trouble(at)
    resnet, plain, ds = subjects
    (fig,) = charts(at, "cam_depth_loc_chart")
    lines = {t["name"]: t for t in fig["data"] if "pointing" not in t["name"]}
    assert len(lines) == 2
    sentence = next(c.value for c in at.caption if "localises best at" in c.value)
    for subject, (name, line) in zip((resnet, plain), lines.items()):
        want = localization_by_depth(subject.model, subject.normalize(ds.x_val[:16]), ds.mask_val[:16],
                                     ds.y_val[:16])
        assert list(line["x"]) == list(want.layers)
        assert list(array(line["y"])) == pytest.approx([s.energy for s in want.scores], abs=1e-6)
        layer, best = want.best()
        assert f"`{layer}` (energy {best.energy:.0%}, pointing game {best.pointing:.0%}" in sentence
    assert sentence.startswith(f"**\\#{resnet.run_id} ")
    at.slider(key="cam_alpha").set_value(0.2).run()  # kept across an unrelated rerun
    assert len(charts(at, "cam_depth_loc_chart")) == 1
    at.slider(key="cam_depth_n").set_value(20).run()  # other images: not these scores
    assert not charts(at, "cam_depth_loc_chart")


def test_trust_curves_and_areas_are_the_analysis_numbers(open_app_page, finished_run, subjects):
    at = open_app_page(PAGE)
    assert any(s.value == "Can I trust this map?" for s in at.subheader)
    assert not charts(at, "cam_trust_chart")
    at.slider(key="cam_trust_n").set_value(4).run()
    at.button(key="cam_trust_go").click().run()
    no_trouble(at)
    resnet, plain, ds = subjects
    (fig,) = charts(at, "cam_trust_chart")
    table = at.dataframe[0].value
    assert len(table) == 2 * (len(METHODS) + 2)  # every method and both references, per model
    assert set(table["method"]) == {*METHODS.values(), "random order", "object mask"}
    want = trust(resnet.model, resnet.normalize(ds.x_val[:4]), ds.y_val[:4], tuple(METHODS), "layer3",
                 masks=ds.mask_val[:4])
    mine = table[table["model"].str.startswith(f"#{resnet.run_id} ")].set_index("method")
    for t in want:
        assert mine.loc[t.label, "deletion area"] == pytest.approx(t.deletion.auc, abs=1e-6)
        assert mine.loc[t.label, "insertion area"] == pytest.approx(t.insertion.auc, abs=1e-6)
        if t.infidelity is not None:
            assert mine.loc[t.label, "infidelity"] == pytest.approx(t.infidelity, rel=1e-4)
    gc = next(t for t in fig["data"] if t["name"] == "Grad-CAM" and t["xaxis"] == "x")  # ResNet, deletion
    assert list(array(gc["y"])) == pytest.approx(list(want[0].deletion.probs), abs=1e-6)
    texts = " ".join(c.value for c in at.caption)
    best = min((t for t in want if t.method in METHODS), key=lambda t: t.deletion.auc)
    assert f"{best.label} deletes the class fastest (area {best.deletion.auc:.3f})" in texts
    at.selectbox(key="cam_layer").set_value("layer2").run()  # Grad-CAM reads elsewhere: not these numbers
    assert not charts(at, "cam_trust_chart")
    assert "press **Measure** again" in " ".join(c.value for c in at.caption)


def test_page_helpers_read_no_page_globals():
    """Work handed to the compute helper must get everything it depends on as arguments: no function of the page
    reads a name the page script assigns (only imports, constants in capitals and other functions)."""
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).resolve().parents[2] / PAGE).read_text())
    assigned = set()  # names the script binds at module level (not in functions or comprehensions)

    def bound(node) -> None:
        if isinstance(node, (ast.FunctionDef, ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and not node.id.isupper():
            assigned.add(node.id)
        for child in ast.iter_child_nodes(node):
            bound(child)

    for node in tree.body:
        bound(node)
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.Lambda))]
    assert {"layer_for", "explain", "depth_maps"} <= {f.name for f in functions if isinstance(f, ast.FunctionDef)}
    bad = []
    for f in functions:
        args = {a.arg for a in ast.walk(f) if isinstance(a, ast.arg)}  # its own and its inner lambdas' arguments
        local = args | {n.id for n in ast.walk(f) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
        for n in ast.walk(f):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and n.id in assigned - local:
                bad.append(f"line {n.lineno}: {n.id}")
    assert not bad, bad
    # and nothing of its own around the compute helper: no model lock taken, no cache keyed by id()
    assert not [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "lock"]
    assert not [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == "id"]
