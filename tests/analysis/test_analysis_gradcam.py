"""Grad-CAM against hand-computed values and against captum; the other attributions' contracts."""

import pytest
import torch
from captum.attr import LayerGradCam
from torch import nn

from resnet_lab.analysis import METHODS, attribute, grad_cam, grad_cam_raw, resolve
from resnet_lab.analysis.attributions import normalize_max, spearman
from resnet_lab.models import build_model


class Tiny(nn.Module):
    """conv (1x1, weights +1 and -1, no bias) -> global average pool -> fc with hand-set weights."""

    def __init__(self, stride: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, kernel_size=1, stride=stride, bias=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2, 2, bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))
            self.fc.weight.copy_(torch.tensor([[2.0, 1.0], [0.0, 3.0]]))

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.conv(x)), 1))


X = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)


def test_grad_cam_matches_hand_computed_values():
    # A0 = x, A1 = -x; y0 = 2*mean(A0) + 1*mean(A1), so dy0/dA0 = 2/4 and dy0/dA1 = 1/4 per pixel:
    # alpha = (0.5, 0.25), cam = ReLU(0.5 x - 0.25 x) = 0.25 x = [[.25, .5], [.75, 1]]
    cam, targets, logits = grad_cam_raw(Tiny(), X, 0, "conv")
    assert torch.allclose(cam, torch.tensor([[[0.25, 0.5], [0.75, 1.0]]]))
    assert targets.tolist() == [0]
    assert torch.allclose(logits, torch.tensor([[2.5, -7.5]]))
    # at the input's resolution, divided by the maximum (1.0 here): the same numbers
    assert torch.allclose(grad_cam(Tiny(), X, 0, "conv"), torch.tensor([[[0.25, 0.5], [0.75, 1.0]]]))


def test_grad_cam_with_no_positive_evidence_is_zero():
    # class 1 reads only A1 = -x (alpha = (0, 3/4)): ReLU(-0.75 x) = 0 everywhere
    cam = grad_cam(Tiny(), X, 1, "conv")
    assert cam.shape == (1, 2, 2) and torch.equal(cam, torch.zeros(1, 2, 2))


def test_grad_cam_default_target_is_the_prediction():
    assert torch.equal(grad_cam(Tiny(), X, None, "conv"), grad_cam(Tiny(), X, 0, "conv"))  # logits 2.5 > -7.5


def test_grad_cam_upsamples_bilinearly_to_the_input():
    # stride 2 on a 4x4 input with a single 1 at (2, 2): A0 = [[0, 0], [0, 1]], raw cam = 0.25 * that.
    # Bilinear 2 -> 4 (align_corners=False) samples source coordinates -0.25, 0.25, 0.75, 1.25, clamped:
    # weights of the second source pixel per output pixel = (0, .25, .75, 1); the map is their outer product.
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 2, 2] = 1.0
    raw, _, _ = grad_cam_raw(Tiny(stride=2), x, 0, "conv")
    assert torch.allclose(raw, torch.tensor([[[0.0, 0.0], [0.0, 0.25]]]))
    w = torch.tensor([0.0, 0.25, 0.75, 1.0])
    assert torch.allclose(grad_cam(Tiny(stride=2), x, 0, "conv"), torch.outer(w, w)[None], atol=1e-6)


@pytest.mark.parametrize("name,layer", [("resnet20", "layer3"), ("resnet20", "layer2.1"), ("plain20", "layer2"),
                                        ("preact_resnet18", "layer3.1")])
def test_grad_cam_equals_captum_layer_grad_cam(name, layer):
    torch.manual_seed(0)
    model = build_model(name).eval()
    x = torch.randn(3, 3, 32, 32)
    target = [0, 5, 9]
    raw, _, _ = grad_cam_raw(model, x, target, layer)
    ref = LayerGradCam(model, resolve(model, layer).module).attribute(x, target=target, relu_attributions=True)
    assert torch.allclose(raw, ref[:, 0], atol=1e-5, rtol=1e-4)
    up = torch.nn.functional.interpolate(ref, size=(32, 32), mode="bilinear", align_corners=False)[:, 0]
    assert torch.allclose(grad_cam(model, x, target, layer), normalize_max(up), atol=1e-5)


def test_grad_cam_leaves_the_model_untouched():
    model = build_model("resnet20").eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grad_cam(model, torch.randn(2, 3, 32, 32), None, "layer3")
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert not model.training


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_gives_maps_in_unit_range_at_input_size(method):
    torch.manual_seed(1)
    model = build_model("resnet20").eval()
    x = torch.randn(2, 3, 32, 32)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    heat = attribute(model, x, [1, 2], method, "layer2")
    assert heat.shape == (2, 32, 32)
    assert float(heat.min()) >= 0.0 and float(heat.max()) <= 1.0 and float(heat.max()) > 0.0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    assert all(isinstance(m, nn.ReLU) and m.inplace for m in model.modules() if isinstance(m, nn.ReLU))


def test_occlusion_finds_the_only_informative_patch():
    # a "model" whose score is the mean of the top-left 8x8 corner: occluding elsewhere changes nothing
    class Corner(nn.Module):
        def __init__(self):
            super().__init__()
            self.dummy = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            s = x[:, :, :8, :8].mean((1, 2, 3))
            return torch.stack([s, -s], 1) + self.dummy

    heat = attribute(Corner(), torch.ones(1, 3, 32, 32), 0, "occlusion")
    assert float(heat[0, :8, :8].mean()) > 0.5
    assert float(heat[0, 16:, 16:].max()) == 0.0


def test_bad_layer_target_and_method_are_clear_errors():
    model = build_model("resnet20").eval()
    x = torch.randn(1, 3, 32, 32)
    with pytest.raises(ValueError, match="unknown layer"):
        grad_cam(model, x, 0, "layer9")
    with pytest.raises(ValueError, match="out of range"):
        grad_cam(model, x, 10, "layer3")
    with pytest.raises(ValueError, match="unknown method"):
        attribute(model, x, 0, "magic")
    with pytest.raises(ValueError, match="spatial"):
        grad_cam(model, x, 0, "fc")
    with pytest.raises(ValueError, match="2 targets for 1 images"):
        grad_cam(model, x, [0, 1], "layer3")


def test_spearman_ties_and_signs():
    a = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 1.0, 2.0]])
    assert torch.allclose(spearman(a, a), torch.ones(2))
    assert torch.allclose(spearman(a[:1], a[:1].flip(1)), -torch.ones(1))
    # average ranks (1.5, 1.5, 3, 4) and (1.5, 3, 1.5, 4); centred: (-1, -1, .5, 1.5) and (-1, .5, -1, 1.5);
    # Pearson of the ranks = 2.25 / 4.5 = 0.5 (scipy.stats.spearmanr gives the same)
    assert abs(float(spearman(a[1:], torch.tensor([[0.0, 1.0, 0.0, 2.0]]))) - 0.5) < 1e-6
