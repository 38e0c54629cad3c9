"""The Pareto front and its sentence on hand-made points."""

import math

import pytest

from resnet_lab.analysis.pareto import CostAxis, Point, dominates, front, ratio_words, sentence

PARAMS = CostAxis("parameters")


def labels(points):
    return [p.label for p in points]


def test_dominated_points_are_left_out_and_the_front_is_cheapest_first():
    pts = [Point("big", 0.92, 8.0), Point("small", 0.90, 1.0), Point("worse", 0.89, 2.0), Point("mid", 0.91, 3.0),
           Point("waste", 0.91, 5.0)]
    assert labels(front(pts)) == ["small", "mid", "big"]
    assert dominates(Point("a", 0.9, 1), Point("b", 0.9, 2)) and not dominates(Point("b", 0.9, 2), Point("a", 0.9, 1))


def test_equal_points_are_both_on_the_front():
    pts = [Point("a", 0.9, 1.0), Point("b", 0.9, 1.0), Point("c", 0.8, 2.0)]
    assert labels(front(pts)) == ["a", "b"]
    assert not dominates(pts[0], pts[1]) and not dominates(pts[1], pts[0])


def test_one_point_empty_and_all_equal():
    assert front([]) == [] and sentence([]) == ""
    assert labels(front([Point("only", 0.5, 3.0)])) == ["only"]
    assert sentence([Point("only", 0.5, 3.0)]) == "only is the best buy: the most accurate (50.0%) and the cheapest."
    same = [Point(n, 0.7, 2.0) for n in "xyz"]
    assert labels(front(same)) == ["x", "y", "z"]
    assert sentence(same) == "x, y and z tie as the best buy: equally accurate (70.0%) at the same cost."


def test_points_without_numbers_are_left_out():
    pts = [Point("nan", math.nan, 1.0), Point("inf", 0.9, math.inf), Point("ok", 0.5, 2.0)]
    assert labels(front(pts)) == ["ok"]


def test_the_sentence_names_the_cheap_model_within_a_point_of_the_best():
    pts = [Point("resnet56", 0.921, 0.85e6), Point("resnet20", 0.915, 0.27e6), Point("resnet110", 0.918, 1.7e6)]
    assert sentence(pts, PARAMS) == "resnet20 is within 0.6 points of the best (resnet56, 92.1%) at a third of the " \
                                    "parameters."


def test_the_sentence_says_when_nothing_cheaper_comes_close():
    pts = [Point("big", 0.95, 100.0), Point("small", 0.80, 10.0)]
    assert sentence(pts, PARAMS) == ("big is the most accurate (95.0%) and nothing cheaper comes within 1 point of it; "
                                     "the cheapest on the front, small, reaches 80.0% with 10× fewer parameters.")


def test_a_speed_axis_speaks_of_the_speed():
    pts = [Point("fast", 0.90, 1 / 300), Point("slow", 0.905, 1 / 100)]
    assert sentence(pts, CostAxis("time per image", "less", speed="images/s")).endswith("at 3× the images/s.")


@pytest.mark.parametrize("ratio, words", [(0.5, "half"), (0.34, "a third"), (0.26, "a quarter"), (1 / 7, "7×"),
                                          (0.2, "5×"), (0.01, "100×"), (0.9, "nearly the same"), (1 / 1.6, "1.6×")])
def test_ratio_words(ratio, words):
    assert ratio_words(ratio) == words


def test_ratio_words_refuses_a_ratio_above_one():
    with pytest.raises(ValueError, match="cost ratio"):
        ratio_words(2.0)
