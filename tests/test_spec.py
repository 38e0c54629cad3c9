import json

import pytest

from resnet_lab import PRESETS, ModelSpec
from resnet_lab.spec import MAX_JSON_BYTES


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_round_trips_through_json(name):
    spec = PRESETS[name]
    assert ModelSpec.from_json(spec.to_json()) == spec
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    assert ModelSpec.from_json(spec.to_json(indent=None)) == spec


def test_lists_become_tuples_and_spec_is_hashable():
    spec = ModelSpec(depths=[1, 2], widths=[8, 16])
    assert spec.depths == (1, 2) and spec.widths == (8, 16)
    assert hash(spec) == hash(ModelSpec(depths=(1, 2), widths=(8, 16)))


@pytest.mark.parametrize("changes, field, hint", [
    ({"stem": "vgg"}, "stem", "imagenet, cifar"),
    ({"block": "dense"}, "block", "basic, bottleneck"),
    ({"shortcut": "D"}, "shortcut", "A, B, C"),
    ({"norm": "layer"}, "norm", "batch, none"),
    ({"depths": (2, 0), "widths": (8, 16)}, "depths[1]", "1..200"),
    ({"depths": (2, 2), "widths": (8, 5000)}, "widths[1]", "1..4096"),
    ({"depths": (2,) * 7, "widths": (8,) * 7}, "depths", "1..6"),
    ({"depths": (), "widths": ()}, "depths", "1..6"),
    ({"depths": (2, 2), "widths": (8,)}, "widths", "one entry per stage"),
    ({"num_classes": 0}, "num_classes", "1..100000"),
    ({"in_channels": 65}, "in_channels", "1..64"),
    ({"in_channels": True}, "in_channels", "integer"),
    ({"skip": "yes"}, "skip", "true or false"),
    ({"depths": (2, 2.5), "widths": (8, 8)}, "depths[1]", "integer"),
    ({"shortcut": "A", "depths": (1, 1), "widths": (32, 16)}, "widths", "must not decrease"),
])
def test_invalid_values_name_the_field_and_the_allowed_range(changes, field, hint):
    with pytest.raises(ValueError) as e:
        ModelSpec(**changes)
    assert field in str(e.value) and hint in str(e.value)


def test_decreasing_widths_are_fine_with_projection_shortcuts():
    assert ModelSpec(shortcut="B", depths=(1, 1), widths=(32, 16)).widths == (32, 16)


def test_replace_validates_and_rejects_unknown_fields():
    spec = PRESETS["resnet56"]
    assert spec.replace(skip=False).skip is False
    assert spec.twin().twin() == spec
    with pytest.raises(ValueError, match="unknown ModelSpec field"):
        spec.replace(dropout=0.5)
    with pytest.raises(ValueError, match="depths"):
        spec.replace(depths=(9, 9, 0))


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('"resnet18"', "must be a JSON object"),
    ('{"stem": "cifar", "dropout": 0.1}', "unknown field(s) dropout"),
    ('{"depths": "3,3,3"}', "depths must be a list"),
    ('{"depths": [3, 3], "widths": [16, NaN]}', "NaN is not allowed"),
    ('{"stem": 7}', "stem must be a string"),
    ('{"num_classes": 1e9}', "num_classes must be an integer"),
    ('{"version": 99, "stem": "cifar"}', "version 99 is not supported"),
])
def test_from_json_refuses_bad_input_with_a_clear_message(text, message):
    with pytest.raises(ValueError) as e:
        ModelSpec.from_json(text)
    assert message in str(e.value)


def test_from_json_refuses_oversized_and_non_utf8_input_before_parsing():
    huge = json.dumps({"stem": "cifar", "pad": "x" * MAX_JSON_BYTES})
    with pytest.raises(ValueError, match="limit"):
        ModelSpec.from_json(huge)
    with pytest.raises(ValueError, match="limit"):
        ModelSpec.from_json(huge.encode())
    with pytest.raises(ValueError, match="not UTF-8"):
        ModelSpec.from_json(b'{"stem": "\xff"}')


def test_depth_counts_weighted_layers_like_the_paper():
    assert [PRESETS[f"resnet{d}"].depth for d in (18, 34, 50, 101, 152)] == [18, 34, 50, 101, 152]
    assert [PRESETS[f"resnet{d}"].depth for d in (20, 32, 44, 56, 110, 1202)] == [20, 32, 44, 56, 110, 1202]
    assert PRESETS["plain56"].depth == 56


def test_describe_names_the_kind_of_net():
    assert PRESETS["resnet56"].describe().startswith("ResNet-56")
    assert PRESETS["plain56"].describe().startswith("Plain-56")
    assert PRESETS["preact_resnet18"].describe().startswith("PreAct-ResNet-18")
    assert PRESETS["preact_plain18"].describe().startswith("PreAct-Plain-18")


def test_describe_spec_names_a_stored_spec_or_says_it_cannot():
    from resnet_lab.spec import describe_spec

    spec = ModelSpec(stem="cifar", block="basic", depths=(3, 3, 3), widths=(16, 32, 64), num_classes=10)
    assert describe_spec(spec.to_dict()) == spec.describe() == "ResNet-20 (cifar stem, basic, option B)"
    assert describe_spec({"depths": "not a list"}) == "?"
