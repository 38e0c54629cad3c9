"""Did a model learn? The margin's edges, the loss rule, the sentence and the setting it suggests."""

import math

import pytest

from resnet_lab.analysis.learned import (
    ACC_MARGIN,
    LOSS_FACTOR,
    GOAL,
    Setting,
    accuracy_bar,
    check_learned,
    inconclusive,
    suggestion,
)

SMALL = Setting(dataset="shapes", images=500, epochs=2, batch_size=128, lr=0.1)  # the settings seen at chance


@pytest.mark.parametrize("classes, bar", [(6, 1 / 6 + 0.25 * 5 / 6), (10, 0.325), (2, 0.625), (100, 0.2575)])
def test_the_bar_is_a_quarter_of_the_way_from_chance_to_perfect(classes, bar):
    assert ACC_MARGIN == 0.25
    assert accuracy_bar(classes) == pytest.approx(bar)


@pytest.mark.parametrize("classes", [2, 6, 10])
def test_accuracy_edges_of_the_margin(classes):
    bar = accuracy_bar(classes)
    assert check_learned(bar, classes, 2.0, 0.5).learned  # exactly at the bar: learned
    assert not check_learned(bar - 1e-6, classes, 2.0, 0.5).learned
    assert not check_learned(1 / classes, classes, 2.0, 0.5).learned  # chance itself
    assert check_learned(1.0, classes, 2.0, 0.5).learned


def test_loss_must_fall_to_the_factor_of_its_start_or_of_ln_classes_when_higher():
    assert LOSS_FACTOR == 0.9
    first = 3.0  # above ln 6 = 1.79: the first logged loss is the reference
    assert check_learned(0.9, 6, first, 0.9 * first).learned
    off = check_learned(0.9, 6, first, 0.9 * first + 1e-6)
    assert not off.learned and off.accuracy_ok and off.loss_ok is False and off.loss_bar == pytest.approx(2.7)
    # a fast learner whose first logged mean is already low: ln(6) is the start, not 1.0
    fast = check_learned(0.9, 6, 1.0, 0.95)
    assert fast.learned and fast.loss_bar == pytest.approx(0.9 * math.log(6))
    assert not check_learned(0.9, 6, 1.0, 0.9 * math.log(6) + 1e-6).learned


def test_at_chance_with_a_flat_loss_is_inconclusive_with_the_numbers_and_what_to_try():
    c = check_learned(0.17, 6, 1.79, 1.78, setting=SMALL)
    assert not c.learned and c.accuracy_ok is False and c.loss_ok is False
    assert c.chance == pytest.approx(1 / 6)
    s = c.sentence
    assert s.startswith("inconclusive: this model did not learn (val accuracy 17.0% vs 16.7% chance, needs 37.5%")
    assert "loss 1.79 → 1.78" in s
    assert "try more training images (2,000+), 8 epochs and batch 32" in s
    assert "this run: 500 images, 2 epochs at batch 128 = about 6 optimizer steps, lr 0.1" in s
    d = c.to_dict()
    assert d["learned"] is False and d["accuracy_bar"] == pytest.approx(0.375) and d["suggestion"] == c.suggestion


def test_no_loss_series_leaves_the_accuracy_to_decide_and_no_accuracy_is_not_learned():
    assert check_learned(0.9, 6).learned and check_learned(0.9, 6).loss_ok is None
    assert not check_learned(0.2, 6).learned
    unknown = check_learned(None, 6, 1.8, 0.2)
    assert not unknown.learned and not unknown.known
    assert inconclusive([unknown]).startswith("inconclusive: cannot tell whether this model learned (no val accuracy")


def test_a_diverged_loss_or_accuracy_fails():
    assert not check_learned(0.9, 6, 1.8, math.nan).learned
    assert not check_learned(0.9, 6, math.inf, 0.1).learned
    assert not check_learned(math.nan, 6, 1.8, 0.1).learned


def test_bad_class_counts_are_refused():
    for bad in (1, 0, True, 6.0):
        with pytest.raises(ValueError, match="num_classes"):
            check_learned(0.5, bad)


def test_several_models_one_sentence_naming_those_that_did_not_learn():
    good = check_learned(0.95, 6, 1.8, 0.1, label="resnet-20")
    bad = check_learned(0.17, 6, 1.79, 1.79, label="plain-20", setting=SMALL)
    worse = check_learned(0.16, 6, 1.8, 1.8, label="plain-56", setting=SMALL)
    assert inconclusive([good]) is None and good.sentence.startswith("resnet-20 learned (")
    both = inconclusive([bad, worse])
    assert both.startswith("inconclusive: these models did not learn (plain-20: val accuracy 17.0%")
    assert "· plain-56: val accuracy 16.0%" in both and both.endswith(").")
    some = inconclusive([good, bad, worse])
    assert some.startswith("inconclusive: plain-20 and plain-56 did not learn (") and "resnet-20" not in some


@pytest.mark.parametrize("setting, said, not_said", [
    (SMALL, ["2,000+", "8 epochs", "batch 32"], ["lr 0.05"]),
    (Setting("shapes", 3000, 3, 32, 0.1), ["8 epochs"], ["2,000+", "batch 32"]),
    (Setting("digits", 500, 8, 32, 0.05), ["all of digits' training images"], ["2,000+", "8 epochs"]),
    (Setting("shapes", 2000, 8, 32, 0.5), ["lr 0.05"], ["2,000+", "8 epochs", "batch 32"]),
    (Setting("shapes", 5000, 10, 32, 0.1), ["lower learning rate (lr 0.05)", "shallower"], ["2,000+"]),
    (Setting(), [f"{GOAL.images:,}+ training images", f"{GOAL.epochs} epochs"], []),
])
def test_the_suggestion_names_only_what_fell_short(setting, said, not_said):
    text = suggestion(setting).split(" (this run")[0]  # what to try, without the run's own setting
    assert text.startswith("try ")
    for s in said:
        assert s in text
    for s in not_said:
        assert s not in text


def test_an_unknown_setting_suggests_the_whole_recipe_and_says_nothing_of_the_run():
    assert "this run" not in suggestion(Setting()) and "this run" in suggestion(SMALL)
