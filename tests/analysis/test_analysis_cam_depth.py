"""Grad-CAM across depth: every layer from one pass equals Grad-CAM of that layer alone; localization by
depth finds the layer known to look at the object; the depth strip draws what it is given."""

import numpy as np
import pytest
import torch
from torch import nn

from resnet_lab.analysis import (cam_layers, depth_layers, grad_cam, grad_cam_depth, localization,
                                 localization_by_depth)
from resnet_lab.models import build_model
from resnet_lab.viz.explain import depth_localization_figure, depth_strip_figure
from resnet_lab.viz.inspect import overlay


def test_depth_layers_run_shallow_to_deep_with_each_stage_after_its_blocks():
    model = build_model("resnet20")
    assert depth_layers(model) == list(reversed(cam_layers(model)))
    assert depth_layers(model)[:5] == ["layer1.0", "layer1.1", "layer1.2", "layer1", "layer2.0"]


@pytest.mark.parametrize("name", ["resnet20", "plain20"])
def test_one_pass_gives_each_layers_own_grad_cam(name):
    torch.manual_seed(0)
    model = build_model(name).eval()
    x = torch.randn(2, 3, 32, 32)
    depth = grad_cam_depth(model, x, [1, 4])
    assert depth.layers == tuple(depth_layers(model)) and depth.maps.shape == (12, 2, 32, 32)
    for i, layer in enumerate(depth.layers):
        assert torch.allclose(depth.maps[i], grad_cam(model, x, [1, 4], layer), atol=1e-5), layer
    sizes = dict(zip(depth.layers, depth.sizes))
    assert sizes["layer1.0"] == (32, 32) and sizes["layer2"] == (16, 16) and sizes["layer3.2"] == (8, 8)
    assert depth.targets.tolist() == [1, 4]
    assert all(p.grad is None for p in model.parameters())


def test_the_prediction_is_explained_at_every_layer():
    torch.manual_seed(1)
    model = build_model("resnet20").eval()
    x = torch.randn(3, 3, 32, 32)
    depth = grad_cam_depth(model, x, None, ["layer3", "layer1.0"])
    assert depth.targets.tolist() == model(x).argmax(1).tolist()
    assert torch.allclose(depth.maps[1], grad_cam(model, x, None, "layer1.0"), atol=1e-5)


def test_a_stage_shares_its_column_with_its_last_block():
    torch.manual_seed(0)
    model = build_model("resnet20").eval()
    depth = grad_cam_depth(model, torch.randn(1, 3, 32, 32), 0)
    titles = [t for t, _ in depth.columns()]
    assert titles == ["layer1.0", "layer1.1", "layer1.2 = layer1", "layer2.0", "layer2.1", "layer2.2 = layer2",
                      "layer3.0", "layer3.1", "layer3.2 = layer3"]
    # two blocks with equal maps are not merged: only a stage with its own last block
    twins = grad_cam_depth(model, torch.randn(1, 3, 32, 32), 0, ["layer1.0", "layer1.0"])
    assert [t for t, _ in twins.columns()] == ["layer1.0", "layer1.0"]


class LooksThenShifts(nn.Module):
    """``a``: a 1x1 conv that copies the object channel (Grad-CAM = the object itself);
    ``b``: the same map rolled half the image away; the logit of class 0 is the mean of ``b``.
    So Grad-CAM at ``a`` is exactly on the object and at ``b`` exactly off it."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 1, 1, bias=False)
        self.b = Roll()
        with torch.no_grad():
            self.a.weight.copy_(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1))

    def forward(self, x):
        s = self.b(self.a(x)).mean((1, 2, 3))
        return torch.stack([s, -s], 1)


class Roll(nn.Module):
    def forward(self, x):
        return torch.roll(x, shifts=(4, 4), dims=(2, 3))


def test_localization_by_depth_finds_the_layer_that_looks_at_the_object():
    x = torch.zeros(5, 3, 8, 8)
    masks = torch.zeros(5, 8, 8, dtype=torch.bool)
    for i in range(5):
        x[i, 0, 1:3, i : i + 2] = 1.0
        masks[i, 1:3, i : i + 2] = True
    ticks = []
    depth = localization_by_depth(LooksThenShifts(), x, masks, 0, ["a", "b"], batch_size=2,
                                  tick=lambda d, t: ticks.append((d, t)))
    assert depth.layers == ("a", "b") and ticks == [(1, 3), (2, 3), (3, 3)]
    a, b = depth.scores
    assert a.energy == pytest.approx(1.0) and a.pointing == 1.0
    assert b.energy == 0.0 and b.pointing == 0.0
    assert a.baseline == pytest.approx(4 / 64) and a.n == 5
    assert depth.best() == ("a", a) and depth.best("pointing")[0] == "a"
    # each layer's scores are the localization score of that layer alone
    for layer, sc in zip(depth.layers, depth.scores):
        assert sc == localization(LooksThenShifts(), x, masks, 0, layer)
    d = depth.as_dict()
    assert d["best_layer"] == "a" and [r["layer"] for r in d["layers"]] == ["a", "b"]


def test_localization_by_depth_with_guided_grad_cam_and_its_refusals():
    torch.manual_seed(0)
    model = build_model("resnet20").eval()
    x = torch.randn(2, 3, 32, 32)
    masks = torch.zeros(2, 32, 32, dtype=torch.bool)
    masks[:, 8:16, 8:16] = True
    guided = localization_by_depth(model, x, masks, [0, 1], ["layer2", "layer3"], method="guided_gradcam")
    assert guided.scores[1] == localization(model, x, masks, [0, 1], "layer3", "guided_gradcam")
    with pytest.raises(ValueError, match="reads no layer"):
        localization_by_depth(model, x, masks, 0, method="saliency")
    with pytest.raises(ValueError, match="masks for"):
        localization_by_depth(model, x, masks[:1], 0)


def test_a_tie_goes_to_the_shallower_layer():
    torch.manual_seed(0)
    model = build_model("resnet20").eval()
    x = torch.randn(2, 3, 32, 32)
    masks = torch.ones(2, 32, 32, dtype=torch.bool)  # every map is all inside: energy 1 everywhere it is non-zero
    depth = localization_by_depth(model, x, masks, [0, 1], ["layer1.2", "layer1"])
    assert depth.scores[0] == depth.scores[1] and depth.best()[0] == "layer1.2"


def test_the_strip_draws_one_row_per_model_shallow_to_deep():
    img = torch.rand(3, 8, 8)
    heats = [torch.rand(8, 8) for _ in range(3)]
    rows = [("run 1 <ResNet>", img, [("layer1.0 · 8×8", heats[0]), ("layer2 · 4×4", heats[1])]),
            ("plain", img, [("layer1.0 · 8×8", heats[2])])]
    fig = depth_strip_figure(rows, alpha=0.5, title="Grad-CAM for circle")
    images = [t for t in fig.data if t.type == "image"]
    assert len(images) == 3
    np.testing.assert_array_equal(np.asarray(images[1].z), np.asarray(overlay(img, heats[1], 0.5)))
    titles = [a.text for a in fig.layout.annotations]
    assert "layer2 · 4×4" in titles and titles.count("layer1.0 · 8×8") == 2
    assert fig.layout.yaxis.title.text == "run 1 &lt;ResNet&gt;"  # user text stays text
    assert [t.xaxis for t in images] == ["x", "x2", "x3"]  # row 2 starts at the third cell of the 2 x 2 grid
    with pytest.raises(ValueError, match="no maps"):
        depth_strip_figure([], alpha=0.5)


def test_the_depth_chart_has_one_line_per_model_over_the_layers():
    torch.manual_seed(0)
    x = torch.zeros(2, 3, 8, 8)
    masks = torch.zeros(2, 8, 8, dtype=torch.bool)
    masks[:, 1:3, 1:3] = True
    x[:, 0, 1:3, 1:3] = 1.0
    depth = localization_by_depth(LooksThenShifts(), x, masks, 0, ["a", "b"])
    fig = depth_localization_figure({"model A": depth.as_dict(), "model B": depth.as_dict()})
    lines = [t for t in fig.data if t.name in ("model A", "model B")]
    assert len(lines) == 2 and list(lines[0].x) == ["a", "b"] and list(lines[0].y) == [1.0, 0.0]
