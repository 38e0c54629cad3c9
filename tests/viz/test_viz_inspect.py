import math

import numpy as np
import plotly.colors as pc
import plotly.graph_objects as go
import pytest
import torch

from resnet_lab.viz.inspect import (BAR_COLOR, HIGHLIGHT_COLOR, MODEL_COLORS, STAT_TITLES, colorize,
                                    confusion_figure, feature_grid_figure, heatmap_grid_figure,
                                    layer_stats_figure, localization_figure, overlay, per_class_figure,
                                    to_pil, topk_figure)
from resnet_lab.viz.training import PALETTE, PLAIN_COLOR


def _endpoint(scale: str, i: int) -> list[int]:
    color = pc.get_colorscale(scale)[i][1]
    rgb = pc.hex_to_rgb(color) if color.startswith("#") else pc.unlabel_rgb(color)
    return [round(v) for v in rgb]


@pytest.mark.parametrize("scale", ["Turbo", "Viridis"])
def test_colorize_maps_0_and_1_to_the_colorscale_endpoints_and_clips(scale):
    heat = torch.tensor([[0.0, 1.0], [-3.0, 7.0]])
    out = colorize(heat, scale)
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    assert out[0, 0].tolist() == _endpoint(scale, 0) and out[0, 1].tolist() == _endpoint(scale, -1)
    assert out[1, 0].tolist() == out[0, 0].tolist() and out[1, 1].tolist() == out[0, 1].tolist()
    assert colorize(np.full((3, 4), 0.5), scale).shape == (3, 4, 3)
    assert out[0, 0].tolist() != out[0, 1].tolist()


def test_to_pil_converts_grey_and_rgb_and_upscales_small_images_crisply():
    img = torch.rand(3, 32, 32)
    pil = to_pil(img)
    assert pil.mode == "RGB" and pil.size == (32, 32)
    assert np.array_equal(np.asarray(pil), np.rint(img.permute(1, 2, 0).numpy() * 255).astype(np.uint8))
    big = np.asarray(to_pil(img, size=256))
    assert big.shape == (256, 256, 3)
    blocks = big.reshape(32, 8, 32, 8, 3)
    assert (blocks == blocks[:, :1, :, :1]).all()  # nearest: every 8x8 block is one pixel
    assert np.array_equal(blocks[:, 0, :, 0], np.asarray(pil))

    grey = np.asarray(to_pil(torch.rand(1, 10, 20), size=45))  # factor 2.25: bilinear, longer side 45
    assert grey.shape == (23, 45, 3) and (grey[..., 0] == grey[..., 2]).all()


def test_overlay_alpha_endpoints_are_the_image_and_the_colourized_heat_resized_to_the_image():
    img = torch.rand(3, 16, 16)
    heat = torch.rand(4, 4)
    assert np.array_equal(np.asarray(overlay(img, heat, alpha=0.0)), np.asarray(to_pil(img)))
    full = np.asarray(overlay(img, heat, alpha=1.0))
    assert full.shape == (16, 16, 3)
    up = torch.nn.functional.interpolate(heat[None, None], size=(16, 16), mode="bilinear", align_corners=False)[0, 0]
    assert np.abs(full.astype(int) - colorize(up).astype(int)).max() <= 1
    half = np.asarray(overlay(img, heat, alpha=0.5)).astype(float)
    expected = 0.5 * np.asarray(to_pil(img)) + 0.5 * colorize(up)
    assert np.abs(half - expected).max() <= 1
    assert overlay(img, heat, size=64).size == (64, 64)


@pytest.mark.parametrize("alpha", [-0.1, 1.5])
def test_overlay_rejects_alpha_outside_0_1(alpha):
    with pytest.raises(ValueError):
        overlay(torch.rand(3, 8, 8), torch.rand(8, 8), alpha=alpha)


def test_topk_draws_highest_on_top_and_highlights_the_true_class():
    fig = topk_figure([0.1, 0.7, 0.2], ["cat", "dog", "bird"], highlight="bird")
    bar = fig.data[0]
    assert bar.orientation == "h"
    assert list(bar.y) == ["cat", "bird", "dog"]  # plotly draws the last category on top
    assert list(bar.x) == [0.1, 0.2, 0.7]
    assert list(bar.marker.color) == [BAR_COLOR, HIGHLIGHT_COLOR, BAR_COLOR]
    assert list(bar.text) == ["10.0%", "20.0%", "70.0%"]
    assert fig.layout.xaxis.tickformat == ".0%" and tuple(fig.layout.xaxis.range) == (0, 1)
    assert HIGHLIGHT_COLOR not in topk_figure([0.5, 0.5], ["a", "b"]).data[0].marker.color


def test_confusion_counts_and_row_normalized_fractions_without_nan():
    cm = np.array([[3, 1, 0], [0, 0, 0], [2, 0, 2]])
    fig = confusion_figure(cm, ["a", "b", "c"])
    hm = fig.data[0]
    assert np.array_equal(np.array(hm.z), cm) and hm.text[0][0] == "3"
    assert fig.layout.yaxis.autorange == "reversed" and list(hm.y) == ["a", "b", "c"]
    assert fig.layout.xaxis.title.text == "predicted" and fig.layout.yaxis.title.text == "true"

    z = np.array(confusion_figure(torch.tensor(cm), ["a", "b", "c"], normalize=True).data[0].z)
    assert not np.isnan(z).any()
    assert z.sum(axis=1) == pytest.approx([1.0, 0.0, 1.0])
    assert z[0, 0] == pytest.approx(0.75)
    normalized = confusion_figure(cm, ["a", "b", "c"], normalize=True).data[0]
    assert normalized.text[0][0] == "75%" and normalized.customdata[0][0] == [3, 0.75]

    big = confusion_figure(np.eye(100, dtype=int), [str(i) for i in range(100)])
    assert big.data[0].text is None and np.array(big.data[0].z).shape == (100, 100)
    with pytest.raises(ValueError):
        confusion_figure(cm, ["a", "b"])


def test_per_class_figure_groups_models_and_leaves_gaps_for_nan():
    fig = per_class_figure({"resnet": [0.9, float("nan"), 0.5], "plain": np.array([0.8, 0.1, 0.4])},
                           ["a", "b", "c"])
    assert [t.name for t in fig.data] == ["resnet", "plain"]
    assert list(fig.data[0].y) == [0.9, None, 0.5]
    assert [t.marker.color for t in fig.data] == [MODEL_COLORS[0], MODEL_COLORS[1]]
    assert fig.layout.barmode == "group" and fig.layout.yaxis.tickformat == ".0%"
    fig.to_json()  # serializable
    with pytest.raises(ValueError):
        per_class_figure({"m": [0.1, 0.2]}, ["a", "b", "c"])


def test_model_colors_reuse_the_training_red_grey_pair():
    assert MODEL_COLORS[:2] == (PALETTE[0], PLAIN_COLOR)


def test_feature_grid_has_one_facet_per_channel_titled_with_channel_ids():
    maps = torch.randn(6, 5, 7)
    fig = feature_grid_figure(maps, [3, 17, 0, 8, 9, 40], cols=4)
    heatmaps = [t for t in fig.data if isinstance(t, go.Heatmap)]
    assert len(heatmaps) == 6
    assert sorted(a.text for a in fig.layout.annotations) == sorted(f"ch {c}" for c in [3, 17, 0, 8, 9, 40])
    assert fig.layout.coloraxis.cmin == pytest.approx(maps.min().item())
    assert fig.layout.coloraxis.cmax == pytest.approx(maps.max().item())
    assert fig.layout.xaxis.showticklabels is False and fig.layout.yaxis.showticklabels is False

    own = feature_grid_figure(maps * torch.arange(1, 7)[:, None, None] + 5, list(range(6)), shared_scale=False)
    for t in own.data:
        z = np.array(t.z, dtype=float)
        assert z.min() == pytest.approx(0.0) and z.max() == pytest.approx(1.0)
    flat = feature_grid_figure(torch.zeros(2, 3, 3), [0, 1], shared_scale=False)
    assert all(not np.isnan(np.array(t.z, dtype=float)).any() for t in flat.data)
    with pytest.raises(ValueError):
        feature_grid_figure(maps, [1, 2])


def test_heatmap_grid_titles_and_fixed_range():
    fig = heatmap_grid_figure(np.random.rand(5, 8, 8), ["original", "fc", "layer4", "layer3", "layer2"], cols=3)
    assert len(fig.data) == 5
    assert sorted(a.text for a in fig.layout.annotations) == sorted(["original", "fc", "layer4", "layer3", "layer2"])
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (0, 1)


def _layers(values):
    return [{"name": f"layer{i}", "index": i, "std": v, "zero_frac": v / 10} for i, v in enumerate(values)]


def test_layer_stats_by_depth_and_sorted_descending():
    stats = {"resnet": _layers([0.5, 2.0, 1.0, 3.0]), "plain": _layers([1.0, 1.5, 2.5, 0.2])}
    fig = layer_stats_figure(stats, "std")
    assert [t.name for t in fig.data] == ["resnet", "plain"]
    assert list(fig.data[0].x) == [0, 1, 2, 3] and list(fig.data[0].y) == [0.5, 2.0, 1.0, 3.0]
    assert list(fig.data[0].text) == ["layer0", "layer1", "layer2", "layer3"]
    assert fig.layout.yaxis.title.text == STAT_TITLES["std"]

    ranked = layer_stats_figure(stats, "std", sort=True)
    for t in ranked.data:
        assert list(t.y) == sorted(t.y, reverse=True) and list(t.x) == [1, 2, 3, 4]
    assert list(ranked.data[0].text) == ["layer3", "layer1", "layer2", "layer0"]
    assert layer_stats_figure(stats, "zero_frac").layout.yaxis.tickformat == ".0%"
    with pytest.raises(ValueError):
        layer_stats_figure(stats, "median")


def test_localization_figure_bars_and_uniform_baseline():
    scores = {"resnet": {"energy": 0.6, "pointing": 0.8}, "plain": {"energy": 0.4, "pointing": 0.5}}
    fig = localization_figure(scores, baseline=0.25)
    assert [t.name for t in fig.data] == ["resnet", "plain"]
    assert list(fig.data[0].x) == ["CAM energy inside the mask", "pointing-game hit rate"]
    assert list(fig.data[1].y) == [0.4, 0.5]
    line = fig.layout.shapes[0]
    assert line.y0 == line.y1 == 0.25 and line.line.dash == "dash"
    assert any(a.text == "uniform map" for a in fig.layout.annotations)
    assert not localization_figure(scores).layout.shapes
    assert math.isclose(fig.layout.yaxis.range[1], 1.05)


def _cells(fig: dict, width: int) -> list[tuple[float, float, float, float]]:
    """(left, top, width, height) in px of every facet's plot area, the figure drawn ``width`` px wide."""
    lay = fig["layout"]
    m = lay["margin"]
    pw, ph = width - m["l"] - m["r"], lay["height"] - m["t"] - m["b"]
    out = []
    for trace in fig["data"]:
        xa = lay["xaxis" + trace["xaxis"][1:]]["domain"]
        ya = lay["yaxis" + trace["yaxis"][1:]]["domain"]
        out.append((m["l"] + xa[0] * pw, m["t"] + (1 - ya[1]) * ph, (xa[1] - xa[0]) * pw, (ya[1] - ya[0]) * ph))
    return out


@pytest.mark.parametrize("k, h, w, cols, width", [(16, 8, 8, 4, 440), (12, 16, 16, 4, 440), (6, 7, 7, 3, 880),
                                                  (32, 4, 4, 4, 440), (5, 8, 12, 4, 600)])
def test_feature_tiles_fill_their_cells_with_small_gaps(k, h, w, cols, width):
    """At the width the page draws it, each map fills its cell (the cell has the map's shape) and the gaps are
    small: a hair between columns, a title's height between rows."""
    fig = feature_grid_figure(torch.randn(k, h, w), list(range(k)), cols=cols, width=width).to_dict()
    cells = _cells(fig, width)
    for x, y, cw, ch in cells:
        assert ch == pytest.approx(cw * h / w, rel=0.05)  # no empty band above and below an equal-aspect map
        assert cw >= 0.2 * width  # one of ``cols`` columns, not shrunk for a colour bar at the side
    lefts = sorted({round(c[0]) for c in cells})
    tops = sorted({round(c[1]) for c in cells})
    cw, ch = cells[0][2], cells[0][3]
    col_gaps = [b - a - cw for a, b in zip(lefts, lefts[1:])]
    row_gaps = [b - a - ch for a, b in zip(tops, tops[1:])]
    assert all(0 <= g <= 0.1 * cw for g in col_gaps)
    assert all(14 <= g <= max(24, 0.25 * ch) for g in row_gaps)  # room for the "ch 12" titles, no more
