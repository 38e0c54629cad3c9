"""User text (run names, model labels, class names) reaches every figure as text: no markup, no template.

Each figure is built twice: once with harmless sentinels where user text goes, once with hostile text. The two
must be identical except that every sentinel became the escaped hostile text (``plain_template`` inside a
hovertemplate, ``plain`` everywhere else), so the code's own markup (``<br>``, ``<extra></extra>``,
``%{y:.4g}``) is untouched and nothing from the user is drawn as HTML or read as a template field.
"""

import html
import json
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from resnet_lab.analysis.landscape import LandscapeParams, Surface
from resnet_lab.analysis.lesion import DeletionCurve, Lesion, LesionStudy
from resnet_lab.viz.experiments import degradation_figure, deletion_figure, lesion_figure
from resnet_lab.viz.gradflow import (FlowSeries, activation_figure, grad_heatmap_figure, grad_norm_figure,
                                     spread_figure)
from resnet_lab.viz.inspect import (BAR_COLOR, HIGHLIGHT_COLOR, confusion_figure, heatmap_grid_figure,
                                    layer_stats_figure, localization_figure, per_class_figure, topk_figure)
from resnet_lab.viz.landscape import landscape_1d_figure, landscape_2d_figure
from resnet_lab.viz.text import plain, plain_template
from resnet_lab.viz.training import RunCurves, curves_figure

EVIL = "<b>x</b> %{y} & <a href='javascript:alert(1)'>y</a>"
EVIL_CLASS = "<i>cat</i> %{x} &amp; <span style='color:red'>dog</span>"
LABEL, CLASS = "LBLSENTINEL", "CLSSENTINEL"  # stand-ins that escaping leaves unchanged
TEMPLATE_FIELD = re.compile(r"%{([^\s%{}:]*)([:|\|][^}]*)?}")  # plotly.js Lib.TEMPLATE_STRING_REGEX
RAW_MARKUP = ("<b>", "</b>", "<i>", "</i>", "<a ", "</a>", "<span", "</span>")  # the code never writes these


# --- plain / plain_template ------------------------------------------------------------------------------

@pytest.mark.parametrize("s", [EVIL, EVIL_CLASS, "", "cat", "50%", "%{y}", "%%{y}", "&amp;", "&#37;{y}", "&lt;b&gt;",
                               "a\nb", "‖dL/dW‖ · ünïcödé", "%{customdata[0]:.1f}", "#12 tiny (plain)"])
def test_plain_and_plain_template_round_trip_through_html_unescape(s):
    assert html.unescape(plain(s)) == s
    assert html.unescape(plain_template(s)) == s
    for out in (plain(s), plain_template(s)):
        assert "<" not in out and ">" not in out
    assert TEMPLATE_FIELD.search(plain_template(s)) is None  # nothing in it is a hovertemplate field


def test_plain_leaves_ordinary_names_alone():
    for s in ("resnet-56", "#12 resnet20 · shapes (ResNet)", "layer2.0", "plain twin", "ch 3"):
        assert plain(s) == s == plain_template(s)
    assert plain(EVIL) == "&lt;b&gt;x&lt;/b&gt; %{y} &amp; &lt;a href='javascript:alert(1)'&gt;y&lt;/a&gt;"
    assert plain_template("50% %{y}") == "50&#37; &#37;{y}"
    assert plain(3) == "3"


# --- the figures -------------------------------------------------------------------------------------------

def _leaves(obj, key=""):
    """(key, string) for every string in a figure's JSON, key = the name of the attribute that holds it."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _leaves(v, k)
    elif isinstance(obj, list):
        for v in obj:
            yield from _leaves(v, key)
    elif isinstance(obj, str):
        yield key, obj


def _expect(benign, key, swap):
    """What a benign string should become with the user text escaped for where it stands."""
    for sentinel, text in swap.items():
        benign = benign.replace(sentinel, plain_template(text) if key == "hovertemplate" else plain(text))
    return benign


def _same_but_escaped(a, b, swap, key=""):
    """``b`` (hostile) is ``a`` (benign) with every sentinel replaced by its escaped text, nothing else."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), key
        for k in a:
            _same_but_escaped(a[k], b[k], swap, k)
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), key
        for x, y in zip(a, b):
            _same_but_escaped(x, y, swap, key)
    elif isinstance(a, str):
        assert b == _expect(a, key, swap), key
    else:
        assert a == b, key


def _check(build):
    """``build(label, class_name)`` -> figure. Asserts the hostile build is the benign one, escaped."""
    swap = {LABEL: EVIL, CLASS: EVIL_CLASS}
    benign, hostile = (json.loads(build(*args).to_json()) for args in ((LABEL, CLASS), (EVIL, EVIL_CLASS)))
    assert any(LABEL in s or CLASS in s for _, s in _leaves(benign)), "the user text never reached the figure"
    _same_but_escaped(benign, hostile, swap)
    hovers = [s for k, s in _leaves(benign) if k == "hovertemplate"]
    hostile_hovers = [s for k, s in _leaves(hostile) if k == "hovertemplate"]
    for key, s in _leaves(hostile):
        assert not any(m in s for m in RAW_MARKUP), (key, s)  # no user tag survives anywhere
        assert "javascript:alert(1)'>" not in s and "color:red'>" not in s
    for a, b in zip(hovers, hostile_hovers):
        assert TEMPLATE_FIELD.findall(b) == TEMPLATE_FIELD.findall(a)  # the user's %{y} / %{x} are no fields
        assert b.count("<br>") == a.count("<br>") and a.endswith("<extra></extra>") == b.endswith("<extra></extra>")
        if LABEL in a:
            assert plain_template(EVIL) in b and "<br>" in b and b.endswith("<extra></extra>")
    return hostile


def _names(fig_json, key="name"):
    return [t.get(key) for t in fig_json["data"]]


def test_training_curves_escape_run_labels_in_names_groups_and_hover():
    metrics = {k: [(10, 0.5, 2.0), (20, 1.0, 1.0)] for k in ("train/loss", "val/loss", "lr", "images_per_s")}
    metrics.update({k: [(10, 0.5, 0.4), (20, 1.0, 0.6)] for k in ("train/acc", "val/acc")})

    def build(label, _cls):
        return curves_figure([RunCurves(label=f"#12 {label}", metrics=metrics, key=12),
                              RunCurves(label=f"#13 {label} (plain)", metrics=metrics, plain=True, key=12)])
    fig = _check(build)
    runs = [t for t in fig["data"] if t.get("legendgroup") != "line style"]
    assert {t["name"] for t in runs} == {plain(f"#12 {EVIL}"), plain(f"#13 {EVIL} (plain)")}
    assert {t["legendgroup"] for t in runs} == {t["name"] for t in runs}
    assert all(t["hovertemplate"].startswith(plain_template("#1")) for t in runs)


def test_topk_escapes_class_names_and_title_and_still_highlights_the_true_class():
    def build(label, cls):
        return topk_figure([0.1, 0.7, 0.2], [cls, "dog", f"{cls} 2"], title=f"top 3 of {label}", highlight=cls)
    fig = _check(build)
    bar = fig["data"][0]
    assert bar["y"] == [plain(EVIL_CLASS), plain(f"{EVIL_CLASS} 2"), "dog"]
    assert fig["layout"]["yaxis"]["categoryarray"] == bar["y"]
    assert bar["marker"]["color"] == [HIGHLIGHT_COLOR, BAR_COLOR, BAR_COLOR]
    assert fig["layout"]["title"]["text"] == plain(f"top 3 of {EVIL}")
    assert bar["hovertemplate"] == "%{y}: %{x:.2%}<extra></extra>"  # the class comes in as a value, escaped


def test_confusion_escapes_class_names_on_both_axes_and_the_title():
    cm = np.array([[3, 1, 0], [0, 2, 2], [1, 0, 4]])

    def build(label, cls):
        return confusion_figure(cm, [cls, "b", f"<{cls}>"], normalize=True, title=f"#12 {label}")
    fig = _check(build)
    hm = fig["data"][0]
    assert hm["x"] == hm["y"] == [plain(EVIL_CLASS), "b", plain(f"<{EVIL_CLASS}>")]
    assert fig["layout"]["title"]["text"] == plain(f"#12 {EVIL}")
    assert hm["hovertemplate"].startswith("true: %{y}<br>predicted: %{x}<br>")


def test_per_class_escapes_model_labels_and_class_names():
    def build(label, cls):
        return per_class_figure({label: [0.9, float("nan")], "plain": [0.5, 0.4]}, [cls, "dog"], title=label)
    fig = _check(build)
    assert _names(fig) == [plain(EVIL), "plain"]
    assert all(t["x"] == [plain(EVIL_CLASS), "dog"] for t in fig["data"])
    assert fig["data"][0]["hovertemplate"] == f"{plain_template(EVIL)}<br>%{{x}}: %{{y:.1%}}<extra></extra>"


def test_layer_stats_localization_and_facet_titles_escape_labels():
    layers = [{"name": "layer1.0", "index": 1, "std": 0.5}, {"name": "layer2.0", "index": 2, "std": 0.7}]
    fig = _check(lambda label, _c: layer_stats_figure({label: layers, "plain": layers}, "std", title=label))
    assert _names(fig) == [plain(EVIL), "plain"] and fig["data"][0]["text"] == ["layer1.0", "layer2.0"]
    fig = _check(lambda label, _c: localization_figure({label: {"energy": 0.4, "pointing": 0.5}}, baseline=0.2,
                                                        title=label))
    assert _names(fig) == [plain(EVIL)]
    heats = torch.rand(2, 4, 4)
    fig = _check(lambda label, _c: heatmap_grid_figure(heats, [label, "fc"], cols=2, title=label))
    assert sorted(a["text"] for a in fig["layout"]["annotations"]) == sorted([plain(EVIL), "fc"])


def test_degradation_lesion_and_deletion_figures_escape_model_labels():
    def report(label, _c):
        run = SimpleNamespace(label=label, skip=True, depth=56, status="running", loss=[(1, 0.5, 2.0)],
                              train_error=[(1, 0.5, 0.5)])
        return degradation_figure(SimpleNamespace(runs=[run], deep=56))
    fig = _check(report)
    assert _names(fig) == [plain(f"{EVIL} (running)")] * 2 and _names(fig, "legendgroup") == [plain(EVIL)] * 2

    rows = (Lesion("layer1.0", "branch", False, 0.8, 0.1, "block replaced by the identity"),
            Lesion("layer2.0", "branch", True, None, None, "changes the shape"))
    fig = _check(lambda label, _c: lesion_figure([LesionStudy(label, False, 0.9, 10, rows)]))
    assert _names(fig) == [plain(EVIL), plain(f"{EVIL}: n/a")]
    assert fig["data"][0]["x"] == ["layer1.0", "layer2.0"]

    curve = dict(skip=True, candidates=("layer1.0",), ks=(0, 1), mean_acc=(0.9, 0.5), min_acc=(0.9, 0.4),
                 max_acc=(0.9, 0.6), trials=2)
    fig = _check(lambda label, _c: deletion_figure([DeletionCurve(label=label, **curve)]))
    assert _names(fig) == [plain(f"{EVIL}: range"), plain(EVIL)]


def test_gradflow_figures_escape_series_labels_and_run_titles():
    def series(label):
        return [FlowSeries(label, ("conv1", "layer1.0"), (1.0, 0.5)),
                FlowSeries(f"{label} (plain)", ("conv1", "layer1.0"), (2.0, 0.1), plain=True)]
    for make in (grad_norm_figure, activation_figure):
        fig = _check(lambda label, _c: make(series(label)))
        assert _names(fig) == [plain(EVIL), plain(f"{EVIL} (plain)")]
    fig = _check(lambda label, _c: grad_heatmap_figure(["conv1", "fc"], [10, 20], [[1.0, 2.0], [3.0, 4.0]],
                                                       f"#12 {label} (ResNet)"))
    assert fig["layout"]["title"]["text"] == fig["data"][0]["name"] == plain(f"#12 {EVIL} (ResNet)")
    fig = _check(lambda label, _c: spread_figure([8, 14], [1.0, 2.0], [3.0, 4.0], resnet_label=label,
                                                 plain_label="plain"))
    assert _names(fig) == [plain(EVIL), "plain"]
    assert fig["data"][0]["hovertemplate"].startswith(plain_template(EVIL) + "-%{x}<br>")


def _surface(label, dims):
    steps = 3
    alphas = (-1.0, 0.0, 1.0)
    loss = (1.0, 0.5, 1.5) if dims == 1 else ((1.0, 0.8, 1.2), (0.9, 0.5, 1.1), (1.3, 0.7, 1.6))
    acc = (0.5, 0.9, 0.4) if dims == 1 else ((0.5, 0.6, 0.4), (0.6, 0.9, 0.5), (0.3, 0.6, 0.2))
    return Surface(label=label, run_id=12, skip=True, params=LandscapeParams(dims=dims, steps=steps),
                   alphas=alphas, betas=None if dims == 1 else alphas, loss=loss, acc=acc, center_loss=0.5,
                   center_acc=0.9, images=8)


def test_landscape_figures_escape_surface_labels():
    fig = _check(lambda label, _c: landscape_1d_figure([_surface(label, 1), _surface("plain twin", 1)]))
    assert _names(fig) == [plain(EVIL)] * 2 + ["plain twin"] * 2
    assert _names(fig, "legendgroup") == _names(fig)
    for kind in ("contour", "surface"):
        fig = _check(lambda label, _c: landscape_2d_figure([_surface(label, 2)], kind=kind))
        assert fig["layout"]["annotations"][0]["text"] == plain(EVIL)  # the subplot title
        assert fig["data"][0]["name"] == plain(EVIL)
