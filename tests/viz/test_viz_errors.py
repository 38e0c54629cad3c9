"""The clickable confusion matrix (its cell markers, the picked outline, readable axes for long class names) and
the pieces of an image card."""

import html
import json

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from resnet_lab.viz.errors import (BAR_CELLS, agreement_figure, card_image, cell_of_point, picked_cell, text_bar,
                                   topk_bars)
from resnet_lab.viz.inspect import (CELL_TRACE, MODEL_COLORS, PICKED_COLOR, TICK_ANGLES, confusion_figure, overlay,
                                    short_label, short_labels, to_pil)
from resnet_lab.viz.text import plain

CM = np.array([[5, 1, 0], [2, 3, 4], [0, 0, 6]])
NAMES = ["cat", "dog", "bird"]


def test_clickable_matrix_has_one_selectable_marker_per_cell_row_by_row():
    fig = confusion_figure(CM, NAMES, clickable=True)
    heat, cells = fig.data[0], fig.data[CELL_TRACE]
    assert isinstance(heat, go.Heatmap) and isinstance(cells, go.Scatter)
    assert len(cells.x) == CM.size and cells.marker.opacity == 0
    for k in range(CM.size):
        t, p = cell_of_point({"curve_number": CELL_TRACE, "point_index": k}, 3)
        assert (cells.y[k], cells.x[k]) == (NAMES[t], NAMES[p])  # the marker sits on the cell it names
        assert cells.customdata[k][0] == CM[t, p]
    assert heat.hoverinfo == "skip" and "click to open" in cells.hovertemplate
    assert "select" in fig.layout.clickmode and fig.layout.hoverdistance == -1
    plain_fig = confusion_figure(CM, NAMES)
    assert len(plain_fig.data) == 1 and plain_fig.data[0].hoverinfo is None


def test_cell_of_point_ignores_other_traces_and_bad_indices():
    assert cell_of_point({"curve_number": CELL_TRACE, "point_index": 5}, 3) == (1, 2)
    assert cell_of_point({"curve_number": CELL_TRACE, "point_number": 8}, 3) == (2, 2)
    assert cell_of_point({"curve_number": 0, "point_index": 5}, 3) is None
    assert cell_of_point({"curve_number": CELL_TRACE, "point_index": 9}, 3) is None
    assert cell_of_point({"curve_number": CELL_TRACE, "point_index": -1}, 3) is None
    assert cell_of_point({"curve_number": CELL_TRACE}, 3) is None
    points = [{"curve_number": 0, "point_index": 1}, {"curve_number": CELL_TRACE, "point_index": 3}]
    assert picked_cell(points, 3) == (1, 0) and picked_cell([], 3) is None


def test_picked_cell_is_outlined():
    fig = confusion_figure(CM, NAMES, clickable=True, picked=(1, 2))
    (shape,) = fig.layout.shapes
    assert (shape.x0, shape.x1, shape.y0, shape.y1) == (1.5, 2.5, 0.5, 1.5)  # column 2, row 1 (category indices)
    assert shape.line.color == PICKED_COLOR
    with pytest.raises(ValueError):
        confusion_figure(CM, NAMES, picked=(3, 0))


def test_ten_long_class_names_turn_shorten_and_take_their_margin():
    names = [f"a rather long class name number {i} of ten" for i in range(10)]
    cm = np.arange(100).reshape(10, 10)
    short = confusion_figure(cm, names, tick_chars=16)
    full = confusion_figure(cm, names)
    for axis in (short.layout.xaxis, short.layout.yaxis):
        assert axis.automargin is True
        assert list(axis.tickvals) == names  # every category keeps a tick
        assert all(len(html.unescape(t)) <= 16 for t in axis.ticktext)
        assert len(set(axis.ticktext)) == 10  # still tell the classes apart (the end is kept)
    assert short.layout.xaxis.tickangle is None  # plotly picks the angle at the drawn width ...
    assert list(short.layout.xaxis.autotickangles) == list(TICK_ANGLES) and -90 in TICK_ANGLES  # ... up to upright
    assert short.layout.height > full.layout.height  # room for the labels, not a squeezed matrix
    assert list(short.data[0].x) == names  # the hover (%{x}, %{y}) still names them in full
    assert full.layout.xaxis.tickangle is None and full.layout.xaxis.automargin is True


def test_short_label_cuts_the_middle_and_never_an_entity():
    assert short_label("cat", 16) == "cat"
    assert short_label("a rather long class name 7", 16) == "a rather…name 7"
    assert len(short_label("x" * 100, 16)) == 16
    hostile = "<b>bold</b> & <i>italic</i> & more"
    cut = short_label(hostile, 12)
    assert html.unescape(plain(cut)) == cut  # escaped after the cut: no half entity
    fig = confusion_figure(np.eye(2, dtype=int), [hostile, "b"], tick_chars=12)
    assert all("<" not in t for t in fig.layout.xaxis.ticktext)
    with pytest.raises(ValueError):
        short_label("abc", 2)


def test_short_labels_stay_as_distinct_as_the_names():
    shared = [f"a rather long class name number {i} of ten" for i in range(11)]
    labels = short_labels(shared, 16)
    assert labels[3] == "…number 3…" and labels[10] == "…number 10…" and len(set(labels)) == 11
    imagenet = ["n01440764 tench", "n01443537 goldfish", "n01484850 great white shark"]
    assert short_labels(imagenet, 16) == [short_label(n, 16) for n in imagenet]  # cutting alone keeps them apart
    glued = ["ab" * 20 + "1" + "cd" * 20, "ab" * 20 + "2" + "cd" * 20]  # no word to cut at: the index tells
    labels = short_labels(glued, 16)
    assert len(set(labels)) == 2 and labels[0].startswith("0 ") and labels[1].startswith("1 ")
    assert all(len(t) <= 16 for t in labels)
    assert short_labels(["cat", "dog"], 16) == ["cat", "dog"]


def test_card_image_puts_the_image_and_each_overlay_side_by_side():
    img = torch.rand(3, 8, 8)
    heats = [torch.rand(8, 8), torch.rand(4, 4)]
    card = card_image(img, heats, size=32)
    assert card.size == (3 * 32 + 2 * 4, 32)
    a = np.asarray(card)
    assert np.array_equal(a[:, :32], np.asarray(to_pil(img, size=32)))
    assert np.array_equal(a[:, 36:68], np.asarray(overlay(img, heats[0], size=32)))
    assert np.array_equal(a[:, 72:], np.asarray(overlay(img, heats[1], size=32)))
    assert (a[:, 32:36] == 255).all()
    assert card_image(img, [], size=16).size == (16, 16)


def test_text_bars_fill_in_proportion_and_line_up():
    assert text_bar(1.0) == "█" * BAR_CELLS
    assert text_bar(0.0) == "░" * BAR_CELLS
    assert text_bar(0.34) == "███" + "░" * (BAR_CELLS - 3)
    assert text_bar(2.0) == text_bar(1.0) and text_bar(float("nan")) == text_bar(0.0)
    assert {len(text_bar(p)) for p in np.linspace(0, 1, 11)} == {BAR_CELLS}
    filled = [text_bar(p).count("█") for p in np.linspace(0, 1, 21)]
    assert filled == sorted(filled)


def test_topk_bars_highest_first_ties_by_class():
    rows = topk_bars(torch.tensor([0.1, 0.4, 0.1, 0.4]), 3)
    assert [c for c, _, _ in rows] == [1, 3, 0]
    assert rows[0][1] == pytest.approx(0.4) and rows[0][2] == text_bar(0.4)
    assert len(topk_bars([0.5, 0.5], 5)) == 2 and topk_bars([], 3) == []


def test_agreement_figure_stacks_the_four_counts_in_model_colours():
    fig = agreement_figure(50, 37, 12, 1, "ResNet", "plain")
    assert [t.x[0] for t in fig.data] == [50, 37, 12, 1]
    assert fig.layout.barmode == "stack" and fig.layout.xaxis.range == (0, 100)
    assert [t.marker.color for t in fig.data][1:3] == list(MODEL_COLORS[:2])
    assert fig.data[1].name == "ResNet right, plain wrong" and fig.data[2].name == "plain right, ResNet wrong"
    evil = agreement_figure(1, 2, 3, 4, "<b>x</b> %{y}", "plain")
    assert "<b>" not in json.dumps(evil.to_plotly_json()["data"])  # the label is text, not markup ...
    assert all("%{y}" not in t.hovertemplate and "&#37;{y}" in t.hovertemplate for t in evil.data[1:3])  # nor a field
    with pytest.raises(ValueError):
        agreement_figure(1, -1, 0, 0, "a", "b")
