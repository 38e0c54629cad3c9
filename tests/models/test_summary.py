import re

import pytest
import torch
import torchvision
from torch import nn

from resnet_lab import PRESETS, ModelSpec, build_model
from resnet_lab.models.diagram import to_dot
from resnet_lab.models.hooks import forward_hooks
from resnet_lab.models.summary import format_bytes, format_count, summarize

WEIGHTS = {"resnet18": torchvision.models.ResNet18_Weights, "resnet34": torchvision.models.ResNet34_Weights,
           "resnet50": torchvision.models.ResNet50_Weights, "resnet101": torchvision.models.ResNet101_Weights,
           "resnet152": torchvision.models.ResNet152_Weights}


@pytest.mark.parametrize("name", WEIGHTS)
def test_macs_and_params_match_torchvisions_published_metadata(name):
    meta = WEIGHTS[name].IMAGENET1K_V1.meta  # torchvision's documented GFLOPS are multiply-adds at 224x224
    s = summarize(PRESETS[name])
    assert s.params == meta["num_params"]
    assert round(s.macs / 1e9, 3) == meta["_ops"]
    assert s.flops == 2 * s.macs


def test_cifar_resnet56_macs_match_a_hand_count():
    # stem 3x3 conv 3->16 at 32x32, then per stage 9 blocks of two 3x3 convs, then fc 64->10
    hand = 32 * 32 * 16 * 3 * 9
    for c, hw in ((16, 32), (32, 16), (64, 8)):
        cin_first = c // 2 if c > 16 else 16
        hand += hw * hw * c * 9 * (cin_first + c)  # first block: its conv1 reads the previous width
        hand += 8 * 2 * hw * hw * c * c * 9  # the other eight blocks
    hand += 64 * 10
    assert summarize(PRESETS["resnet56"]).macs == hand


def test_stage_rows_add_up_and_layer_macs_follow_the_conv_formula():
    s = summarize(PRESETS["resnet50"], input_size=160)
    assert sum(r.params for r in s.stages) == s.params
    assert sum(r.macs for r in s.stages) == s.macs
    assert [r.name for r in s.stages] == ["stem", "layer1", "layer2", "layer3", "layer4", "head"]
    assert [r.blocks for r in s.stages] == [0, 3, 4, 6, 3, 0]
    model = build_model("resnet50")
    modules = dict(model.named_modules())
    for row in s.layers:
        m = modules[row.name]
        if isinstance(m, nn.Conv2d):
            c, h, w = row.output_shape
            assert row.macs == c * h * w * m.in_channels * m.kernel_size[0] * m.kernel_size[1]
    assert s.feature_shape == (2048, 5, 5)


def test_layer_table_matches_a_real_forward():
    spec = PRESETS["resnet20"]
    s = summarize(spec)
    model = build_model(spec).eval()
    seen = {}
    with torch.no_grad(), forward_hooks(model.named_modules(), lambda n, m, i, o: seen.__setitem__(n, o.shape[1:])):
        model(torch.randn(1, 3, 32, 32))
    for row in s.layers:
        assert tuple(seen[row.name]) == row.output_shape
        assert row.params == sum(p.numel() for p in dict(model.named_modules())[row.name].parameters(recurse=False))
    assert not any(m._forward_hooks for m in model.modules())  # scoped hooks are gone


def test_activation_memory_scales_with_batch_and_image_area():
    one = summarize(PRESETS["resnet20"], batch_size=1)
    many = summarize(PRESETS["resnet20"], batch_size=64)
    bigger = summarize(PRESETS["resnet20"], input_size=64)
    assert many.activation_bytes == 64 * one.activation_bytes
    head = (64 + 10) * 4  # avgpool and fc outputs do not grow with the image
    assert bigger.activation_bytes - head == 4 * (one.activation_bytes - head)
    assert one.param_bytes == 4 * one.params


def test_plain_twin_of_option_b_is_lighter_by_exactly_its_projections():
    res, plain = summarize(PRESETS["resnet50"]), summarize(PRESETS["plain50"])
    projections = sum(r.params for r in res.layers if ".downsample." in r.name)
    assert res.params - plain.params == projections > 0
    assert [b.shortcut for b in res.blocks[:2]] == ["projection", "identity"]
    assert {b.shortcut for b in plain.blocks} == {"none"}


@pytest.mark.parametrize("size", [0, 7, 4096])
def test_input_size_is_checked(size):
    with pytest.raises(ValueError, match="input size"):
        summarize(PRESETS["resnet18"], input_size=size)


def test_batch_size_is_checked():
    with pytest.raises(ValueError, match="batch size"):
        summarize(PRESETS["resnet18"], batch_size=0)


def test_summary_of_a_huge_net_allocates_nothing():
    spec = ModelSpec(depths=(40,) * 4, widths=(1024, 2048, 4096, 4096), block="bottleneck", shortcut="C")
    s = summarize(spec, input_size=64)
    assert s.params > 5e9  # tens of GB if it were real; the meta device keeps it free


def test_diagram_draws_one_skip_per_block_and_none_for_the_plain_twin():
    res = to_dot(summarize(PRESETS["resnet20"]), max_blocks_per_stage=3)
    plain = to_dot(summarize(PRESETS["plain20"]), max_blocks_per_stage=3)
    assert res.count('label="+"') == 9 and plain.count('label="+"') == 0
    assert res.count("zero-pad (A)") == 2 and res.count('"identity"') == 7
    assert "subgraph cluster_layer3" in res and "global avgpool → fc 10" in res
    edges = re.findall(r"^\s+(\w+) -> (\w+)", res, flags=re.M)
    nodes = set(re.findall(r"^\s+(\w+) \[", res, flags=re.M))
    assert all(a in nodes and b in nodes for a, b in edges)  # no edge to an undeclared node


def test_diagram_folds_deep_stages():
    dot = to_dot(summarize(PRESETS["resnet110"]), max_blocks_per_stage=3)
    assert dot.count("15 more blocks like this") == 3
    assert dot.count('label="+"') == 3 * 3
    assert "layer1.17" in dot and "layer1.5" not in dot
    with pytest.raises(ValueError):
        to_dot(summarize(PRESETS["resnet20"]), max_blocks_per_stage=1)


def test_diagram_labels_bottleneck_strides_and_are_escaped():
    dot = to_dot(summarize(PRESETS["resnet50"]), title='my "net"')
    assert "1×1,128 → 3×3/2,128 → 1×1,512" in dot
    assert 'label="my \\"net\\""' in dot


def test_formatting():
    assert format_count(11_689_512) == "11.69M" and format_count(4_089_184_256) == "4.09G" and format_count(640) == "640"
    assert format_bytes(3 * 2**30) == "3.0 GiB" and format_bytes(100) == "100 B"
