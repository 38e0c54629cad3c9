import json

import pytest

from resnet_lab import PRESETS
from resnet_lab.models.summary import MAX_INPUT_SIZE, check_input_size
from resnet_lab.urlcodec import MAX_PARAM_CHARS, open_link, spec_from_query, spec_to_query


@pytest.mark.parametrize("name", ["resnet56", "plain56", "resnet50", "preact_resnet18"])
def test_presets_share_by_name(name):
    query = spec_to_query(PRESETS[name])
    assert query == {"model": name}
    assert spec_from_query(query) == (PRESETS[name], None)


def test_custom_spec_shares_only_what_differs_and_round_trips():
    spec = PRESETS["resnet56"].replace(widths=(16, 32, 128), num_classes=7)
    query = spec_to_query(spec, input_size=64)
    assert set(query) == {"spec", "size"} and "in_channels" not in query["spec"]
    assert spec_from_query(query) == (spec, 64)
    assert spec_from_query({k: [v] for k, v in query.items()}) == (spec, 64)  # list-valued params too


def test_default_size_is_not_written():
    assert "size" not in spec_to_query(PRESETS["resnet56"], input_size=32)


def test_no_model_in_the_query_means_none():
    assert spec_from_query({}) is None
    assert spec_from_query({"utm_source": "x"}) is None


@pytest.mark.parametrize("query, message", [
    ({"model": "resnet9000"}, "unknown model preset"),
    ({"model": "resnet56", "spec": "{}"}, "both 'model' and 'spec'"),
    ({"model": ["resnet20", "resnet56"]}, "2 values"),
    ({"spec": "{\"stem\": \"cifar\""}, "not valid JSON"),
    ({"spec": json.dumps({"depths": [9] * 9, "widths": [16] * 9})}, "1..6"),
    ({"spec": "x" * (MAX_PARAM_CHARS + 1)}, "limit"),
    ({"model": "resnet56", "size": "32; DROP TABLE"}, "not a whole number"),
    ({"model": "resnet56", "size": "99999999999999999999"}, "too large"),
    ({"model": "resnet18", "size": "4"}, "too small"),
])
def test_hostile_queries_are_refused_with_a_message(query, message):
    with pytest.raises(ValueError) as e:
        spec_from_query(query)
    assert message in str(e.value)


@pytest.mark.parametrize("size", ["99999999", "99999999999999999999", "4096"])
def test_a_size_too_large_says_so_and_the_allowed_range(size):
    with pytest.raises(ValueError) as e:
        spec_from_query({"model": "resnet56", "size": size})
    message = str(e.value)
    assert "too large" in message and "whole number" not in message
    assert f"..{MAX_INPUT_SIZE}" in message and size[:8] in message


@pytest.mark.parametrize("name, size", [("resnet18", "16"), ("resnet18", "1"), ("resnet50", "0"), ("resnet56", "2")])
def test_a_link_with_a_too_small_size_opens_at_the_smallest_size_that_works(name, size):
    spec = PRESETS[name]
    opened = open_link({"model": name, "size": size})
    assert opened.spec == spec
    check_input_size(spec, opened.input_size)  # usable, by the summary's own rule ...
    with pytest.raises(ValueError):
        check_input_size(spec, opened.input_size - 1)  # ... and the smallest such
    assert f"size {int(size)} px is too small" in opened.note and f"{opened.input_size} px is used" in opened.note


def test_open_link_keeps_a_good_size_and_refuses_a_bad_model():
    assert open_link({"model": "resnet18", "size": "64"}) == open_link({"model": ["resnet18"], "size": ["64"]})
    assert open_link({"model": "resnet18", "size": "64"}).input_size == 64
    assert open_link({"model": "resnet18", "size": "64"}).note is None
    assert open_link({"model": "resnet18"}).input_size is None and open_link({}) is None
    too_big = open_link({"model": "resnet18", "size": "99999999"})
    assert too_big.input_size == MAX_INPUT_SIZE and "too large" in too_big.note
    not_a_number = open_link({"model": "resnet18", "size": "abc"})
    assert not_a_number.input_size is None and "not a whole number" in not_a_number.note
    with pytest.raises(ValueError, match="unknown model preset"):
        open_link({"model": "resnet9000", "size": "32"})
