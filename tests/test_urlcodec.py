import json

import pytest

from resnet_lab import PRESETS
from resnet_lab.urlcodec import MAX_PARAM_CHARS, spec_from_query, spec_to_query


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
    ({"model": "resnet56", "size": "99999999999999999999"}, "not a whole number"),
    ({"model": "resnet18", "size": "4"}, "out of range"),
])
def test_hostile_queries_are_refused_with_a_message(query, message):
    with pytest.raises(ValueError) as e:
        spec_from_query(query)
    assert message in str(e.value)
