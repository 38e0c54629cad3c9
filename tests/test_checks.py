"""The one range check every config uses, and its two wordings."""

import math

import pytest

from resnet_lab.checks import MAX_SEED, check_float, check_int


def test_check_int_returns_the_value_at_and_inside_the_bounds():
    assert [check_int("n", v, 1, 3) for v in (1, 2, 3)] == [1, 2, 3]
    assert check_int("seed", MAX_SEED, 0, MAX_SEED) == 2**31 - 1


@pytest.mark.parametrize("value, message", [
    (0, "n=0 is out of range; allowed 1..3"),
    (4, "n=4 is out of range; allowed 1..3"),
    (2.0, "n must be an integer in 1..3, got 2.0"),
    ("2", "n must be an integer in 1..3, got '2'"),
    (None, "n must be an integer in 1..3, got None"),
    (True, "n must be an integer in 1..3, got True"),  # a bool is not a number here
])
def test_check_int_wording(value, message):
    with pytest.raises(ValueError) as e:
        check_int("n", value, 1, 3)
    assert str(e.value) == message


def test_where_follows_the_range():
    with pytest.raises(ValueError, match=r"^image_size=4 is out of range; allowed 16\.\.128 for shapes$"):
        check_int("image_size", 4, 16, 128, " for shapes")
    with pytest.raises(ValueError, match=r"^train_subset must be an integer in 1\.\.9 \(or None for all\), got 'x'$"):
        check_int("train_subset", "x", 1, 9, " (or None for all)")


def test_check_float_accepts_ints_and_floats_and_returns_a_float():
    assert check_float("lr", 1, 0.0, 10.0) == 1.0 and type(check_float("lr", 1, 0.0, 10.0)) is float
    assert check_float("lr", 1e-6, 1e-6, 10.0) == 1e-6


@pytest.mark.parametrize("value, message", [
    (0.9, "val_fraction=0.9 is out of range; allowed 0.01..0.5"),
    (math.nan, "val_fraction=nan is out of range; allowed 0.01..0.5"),
    (math.inf, "val_fraction=inf is out of range; allowed 0.01..0.5"),
    ("0.2", "val_fraction must be a number in 0.01..0.5, got '0.2'"),
    (False, "val_fraction must be a number in 0.01..0.5, got False"),
])
def test_check_float_wording(value, message):
    with pytest.raises(ValueError) as e:
        check_float("val_fraction", value, 0.01, 0.5)
    assert str(e.value) == message
