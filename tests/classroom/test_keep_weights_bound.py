"""The keep-weights disk budget is one of the class's bounds: a student's run may not budget more MB of kept weights
than ``max_keep_weights_mb`` (a class gets DEFAULT_KEEP_WEIGHTS_MB when its settings leave it out), refused on the
server (the launcher's check, which the CLI and every page go through) with the usual message, and the Train page's
widget stops at the bound."""

import math

import pytest
from streamlit.testing.v1 import AppTest

from resnet_lab.classroom.bounds import DEFAULT_KEEP_WEIGHTS_MB, Bounds, OutOfBounds
from resnet_lab.classroom.settings import SettingsError, load_settings
from resnet_lab.data.types import DataConfig
from resnet_lab.identity import MACHINE, Identity
from resnet_lab.models.presets import PRESETS
from resnet_lab.train.launcher import check_bounds
from resnet_lab.train_config import MAX_KEEP_BUDGET_MB, TrainConfig
from tests.app.conftest import APP

SPEC, DATA = PRESETS["resnet20"], DataConfig(name="shapes", image_size=32, train_subset=100)
STUDENT = Identity("class:1", "Ana", source="class")


def keeping(budget_mb: float, every: int = 10) -> TrainConfig:
    return TrainConfig(epochs=1, keep_weights_every=every, keep_weights_budget_mb=budget_mb)


def test_a_budget_above_the_bound_is_refused_with_the_bound_and_the_range():
    b = Bounds(max_keep_weights_mb=100)
    b.check_training(SPEC, DATA, keeping(100.0))  # at the bound: fine
    with pytest.raises(OutOfBounds) as e:
        b.check_training(SPEC, DATA, keeping(150.0))
    assert str(e.value) == "Kept weights budget 150 MB is above this class's bound: allowed 1–100 MB."
    assert e.value.fields == ("max_keep_weights_mb",)
    b.check_training(SPEC, DATA, keeping(5000.0, every=0))  # keeps no weights: its budget is never used


def test_it_is_named_with_the_other_broken_bounds_in_one_message():
    with pytest.raises(OutOfBounds) as e:
        Bounds(max_epochs=1, max_keep_weights_mb=50).check_training(
            SPEC, DATA, TrainConfig(epochs=3, keep_weights_every=5, keep_weights_budget_mb=60.0))
    assert e.value.fields == ("max_epochs", "max_keep_weights_mb")


@pytest.mark.parametrize("value", [0, 0.5, -1, 1_000_000, True, "lots", math.nan, math.inf])
def test_the_bound_itself_is_checked(value):
    with pytest.raises(ValueError, match="max_keep_weights_mb"):
        Bounds.from_mapping({"max_keep_weights_mb": value})


def test_widget_range_describe_stricter_and_toml():
    b = Bounds.from_mapping({"max_keep_weights_mb": 250.5})
    assert b.limit("keep_weights_mb", 1.0, MAX_KEEP_BUDGET_MB) == (1.0, 250.5)
    assert Bounds().limit("keep_weights_mb", 1.0, MAX_KEEP_BUDGET_MB) == (1.0, MAX_KEEP_BUDGET_MB)
    assert "Kept weights: up to 250.5 MB" in b.describe()
    assert b.stricter(Bounds(max_keep_weights_mb=100)).max_keep_weights_mb == 100
    assert Bounds.from_mapping(b.to_dict()) == b
    assert Bounds(max_keep_weights_mb=1).max_keep_weights_mb == 1 and Bounds(max_keep_weights_mb=MAX_KEEP_BUDGET_MB)


def test_a_class_gets_the_default_and_its_file_may_change_it_the_launcher_holds_students_only(lab_home, monkeypatch):
    monkeypatch.delenv("RESNET_LAB_SETTINGS", raising=False)
    (lab_home / "classroom.toml").write_text('[class]\ncode = "c0de-c0de"\n')
    assert load_settings().bounds.max_keep_weights_mb == DEFAULT_KEEP_WEIGHTS_MB
    big = keeping(DEFAULT_KEEP_WEIGHTS_MB + 1.0)
    with pytest.raises(OutOfBounds, match=f"allowed 1–{DEFAULT_KEEP_WEIGHTS_MB} MB"):
        check_bounds(STUDENT, SPEC, DATA, big)
    check_bounds(MACHINE, SPEC, DATA, big)  # the CLI's owner, a teacher: not bounded
    check_bounds(STUDENT, SPEC, DATA, keeping(DEFAULT_KEEP_WEIGHTS_MB))
    (lab_home / "classroom.toml").write_text('[class]\ncode = "c0de-c0de"\n[bounds]\nmax_keep_weights_mb = 20\n')
    with pytest.raises(OutOfBounds, match="Kept weights budget 200 MB is above this class's bound: allowed 1–20 MB"):
        check_bounds(STUDENT, SPEC, DATA, keeping(200.0))
    (lab_home / "classroom.toml").write_text("[bounds]\nmax_keep_weights_mb = 0\n")
    with pytest.raises(SettingsError, match=r"\[bounds\]: max_keep_weights_mb must be a number of MB from 1"):
        load_settings()


LESSON = '''
id = "keep-few"
title = "Keep few weights"
[bounds]
max_keep_weights_mb = 50
[[pages]]
page = "train"
'''


@pytest.mark.app
def test_the_train_pages_widget_stops_at_the_bound(lab_home, monkeypatch):
    monkeypatch.delenv("RESNET_LAB_CLASS_CODE", raising=False)
    (lab_home / "lessons").mkdir()
    (lab_home / "lessons" / "keep-few.toml").write_text(LESSON)  # a lesson's bounds hold everyone who opens it
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["lesson"] = "keep-few"
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    widget = at.number_input(key="train_keep_budget")
    assert (widget.min, widget.max) == (1.0, 50.0) and widget.value == 50.0  # the default 200 moved inside
