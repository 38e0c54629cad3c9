"""The shared formatting helpers: NaN/inf -> None for JSON and plots, sizes in binary units."""

import json
import math

import numpy as np
import pytest
import torch

from resnet_lab.fmt import finite_or_none, format_bytes
from resnet_lab.models import summary


@pytest.mark.parametrize("value, expected", [
    (None, None), (math.nan, None), (math.inf, None), (-math.inf, None),
    (0, 0.0), (-2, -2.0), (1.5, 1.5), (1e308, 1e308), (-0.0, 0.0),
    (np.float32(0.25), 0.25), (np.float64("nan"), None), (np.int64(7), 7.0),
    (torch.tensor(3.0), 3.0), (torch.tensor(float("inf")), None),
])
def test_finite_or_none(value, expected):
    got = finite_or_none(value)
    assert got == expected
    assert got is None or type(got) is float  # plain floats: json.dumps and plotly take them as they are


def test_finite_or_none_makes_strict_json_possible():
    values = [1.0, math.nan, math.inf, None, 2]
    assert json.dumps([finite_or_none(v) for v in values], allow_nan=False) == "[1.0, null, null, null, 2.0]"


@pytest.mark.parametrize("value", ["1.5", b"nan"])
def test_finite_or_none_refuses_text(value):
    with pytest.raises(TypeError, match="need a number or None"):
        finite_or_none(value)


@pytest.mark.parametrize("n, text", [
    (0, "0 B"), (100, "100 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
    (2**20, "1.0 MiB"), (64 * 2**20, "64.0 MiB"), (3 * 2**30, "3.0 GiB"),
    (5 * 2**40, "5120.0 GiB"), (512.4, "512 B"),
])
def test_format_bytes(n, text):
    assert format_bytes(n) == text


def test_format_bytes_is_still_importable_from_the_model_summary():
    assert summary.format_bytes is format_bytes


@pytest.mark.parametrize("load, cores, text", [
    (3.2, 4, "3.2 of 4 cores busy (80%)"), (1.6, 2, "1.6 of 2 cores busy (80%)"),
    (3.2138, 2, "2.0 of 2 cores busy (100%), 1.2 more waiting"),  # the '160.69%'
    (0.0, 1, "0.0 of 1 core busy (0%)"), (2.02, 2, "2.0 of 2 cores busy (100%)"),
])
def test_format_load_never_says_more_than_every_core(load, cores, text):
    from resnet_lab.fmt import format_load

    assert format_load(load, cores) == text


def test_format_duration_says_seconds_minutes_and_hours_as_a_person_does():
    from resnet_lab.fmt import format_duration

    assert [format_duration(s) for s in (None, 0.2, 42, 59.4, 90, 3000, 5399, 9000)] == [
        "?", "1 s", "42 s", "59 s", "2 min", "50 min", "90 min", "2.5 h"]


def test_format_pct_is_the_one_percentage_and_says_a_missing_value():
    from resnet_lab.fmt import format_pct

    assert [format_pct(0.1234), format_pct(0.1234, 2), format_pct(1.0), format_pct(None)] == [
        "12.3%", "12.34%", "100.0%", "—"]


def test_the_jobs_say_durations_with_the_same_formatter():
    from resnet_lab import fmt
    from resnet_lab.jobs import eta

    assert eta.format_duration is fmt.format_duration
