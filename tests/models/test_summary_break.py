"""Where a too-small input breaks a spec: the layer, its shapes, and the smallest size that works — checked
against real forward passes of the full models (not the meta-device skeleton the lab traces)."""

import pytest
import torch
from torch import nn

from resnet_lab import PRESETS, ModelSpec, build_model
from resnet_lab.models.hooks import forward_hooks
from resnet_lab.models.summary import MIN_INPUT_SIZE, shape_break, smallest_input_size, summarize


def real_downsamplings(spec: ModelSpec, side: int) -> list[tuple[str, tuple[int, ...], tuple[int, ...]]]:
    """(name, input, output) per image of every main-path layer with stride > 1, in the order a real CPU
    forward pass of the full model calls them."""
    model = build_model(spec).eval()
    strided = [(n, m) for n, m in model.named_modules()
               if isinstance(m, (nn.Conv2d, nn.MaxPool2d)) and ".downsample" not in n
               and max(m.stride if isinstance(m.stride, tuple) else (m.stride,)) > 1]
    seen = []
    with torch.no_grad(), forward_hooks(strided, lambda n, m, i, o: seen.append((n, tuple(i[0].shape[1:]),
                                                                                    tuple(o.shape[1:])))):
        out = model(torch.rand(2, spec.in_channels, side, side))
    assert out.shape == (2, spec.num_classes) and torch.isfinite(out).all()  # PyTorch itself never refuses
    return seen


def first_one_pixel(seen):
    return next(((n, i, o) for n, i, o in seen if min(i[1:]) < 2), None)


SPECS = {
    "resnet18": PRESETS["resnet18"],
    "bottleneck, 3 stages": ModelSpec(block="bottleneck", depths=(1, 2, 1), widths=(8, 8, 16), num_classes=3),
    "cifar, 4 stages, option A": ModelSpec(stem="cifar", depths=(1, 1, 1, 2), widths=(4, 8, 8, 16), shortcut="A",
                                           num_classes=3),
    "cifar preact, 6 stages": ModelSpec(stem="cifar", depths=(1,) * 6, widths=(4,) * 6, preact=True, num_classes=2),
    "imagenet plain, 6 stages, no norm": ModelSpec(depths=(1,) * 6, widths=(4,) * 6, skip=False, norm="none",
                                                   in_channels=1, num_classes=2),
}


@pytest.mark.parametrize("name", SPECS)
def test_the_smallest_size_really_works_and_one_pixel_less_does_not(name):
    spec = SPECS[name]
    n = smallest_input_size(spec)
    assert shape_break(spec, n) is None and first_one_pixel(real_downsamplings(spec, n)) is None
    if n > 1:
        brk = shape_break(spec, n - 1)
        real = first_one_pixel(real_downsamplings(spec, n - 1))
        assert brk is not None and real is not None
        assert (brk.layer, brk.in_shape, brk.out_shape) == real  # the layer and shapes of a real forward
        assert brk.min_input_size == max(MIN_INPUT_SIZE, n)  # the fix it offers is the lab's one smallest size


def test_resnet18_at_16_px_breaks_in_layer4_with_a_1_pixel_map():
    brk = shape_break(PRESETS["resnet18"], 16)
    assert brk.layer == "layer4.0.conv1" and brk.type == "Conv2d" and brk.kernel == 3
    assert brk.in_shape == (256, 1, 1) and brk.out_shape == (512, 1, 1)
    assert brk.halved_by == ("conv1", "maxpool", "layer2.0.conv1", "layer3.0.conv1")
    assert brk.min_input_size == 17 and brk.max_stages == 3
    # 3 stages of resnet18 do work at 16 px, 4 do not
    assert shape_break(PRESETS["resnet18"].replace(depths=(2, 2, 2), widths=(64, 128, 256)), 16) is None
    msg = brk.message()
    assert "layer4.0.conv1" in msg and "256 × 1 × 1" in msg and "512 × 1 × 1" in msg
    assert "at least 17 px" in msg and "at most 3 stages" in msg and "4 halvings" in msg
    # the shapes on the way: stem layers and whole blocks, then the layer that breaks
    names = [s.name for s in brk.steps]
    assert names == ["conv1", "bn1", "relu", "maxpool", "layer1.0", "layer1.1", "layer2.0", "layer2.1", "layer3.0",
                     "layer3.1", "layer4.0.conv1"]
    assert [s.out_shape[1] for s in brk.steps] == [8, 8, 8, 4, 4, 4, 2, 2, 1, 1, 1]
    assert [s.stride for s in brk.steps if s.stride > 1] == [2, 2, 2, 2, 2]
    assert all(a.out_shape == b.in_shape for a, b in zip(brk.steps[4:], brk.steps[5:]))


def test_a_bottleneck_breaks_at_its_strided_middle_conv():
    brk = shape_break(PRESETS["resnet50"], 12)
    assert brk.layer == "layer4.0.conv2"  # torchvision v1.5: the stride sits on the 3x3 conv
    assert brk.in_shape == (512, 1, 1) and brk.min_input_size == 17


def test_the_stem_maxpool_breaks_on_a_2_pixel_image_and_the_stem_conv_on_1():
    brk = shape_break(PRESETS["resnet18"], 2)
    assert brk.layer == "maxpool" and brk.in_shape == (64, 1, 1) and brk.halved_by == ("conv1",)
    assert [s.name for s in brk.steps] == ["conv1", "bn1", "relu", "maxpool"]
    assert "window" in brk.message() and brk.max_stages == 0  # not even the stem fits
    assert shape_break(PRESETS["resnet18"], 1).layer == "conv1"


def test_a_cifar_stage_that_breaks_names_its_first_block():
    spec = ModelSpec(stem="cifar", depths=(1, 1, 1, 1), widths=(4, 8, 16, 32), num_classes=3)
    brk = shape_break(spec, 4)  # 4 -> (layer2) 2 -> (layer3) 1 -> layer4 has nothing to halve
    assert brk.layer == "layer4.0.conv1" and brk.in_shape == (16, 1, 1)
    assert brk.min_input_size == 8 and brk.max_stages == 3  # it works from 5 px; the lab's floor is 8
    assert shape_break(spec, 5) is None


def test_smallest_size_is_below_the_papers_count_and_the_lab_accepts_it():
    for name in ("resnet18", "resnet50", "resnet20", "preact_resnet18"):
        spec = PRESETS[name]
        n = smallest_input_size(spec)
        assert n <= spec.min_input_size  # 2^d rounds down where PyTorch rounds up
        size = max(MIN_INPUT_SIZE, n)
        assert summarize(spec, size).input_size == size


def test_too_small_a_size_is_refused_with_the_layer_that_breaks():
    with pytest.raises(ValueError, match=r"allowed 17\.\.2048 — layer4\.0\.conv1: gets 256 × 1 × 1"):
        summarize(PRESETS["resnet18"], 16)
    with pytest.raises(ValueError, match="input size"):
        shape_break(PRESETS["resnet18"], 0)
