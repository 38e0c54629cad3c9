"""The smallest input size is one number everywhere: ``models.summary.min_input_size`` — Build (its size check, the
share link's range and the "Use N px" fix), Train (the size widget and the check every training request passes)
and gradient flow (the batch it measures on and the batch it accepts) all agree, for a CIFAR ResNet, an ImageNet
ResNet and a custom net with many downsamplings."""

from types import SimpleNamespace

import pytest
import torch
from streamlit.testing.v1 import AppTest

from resnet_lab.analysis.gradflow import FLOW_SIZE, _check_batch, flow_data
from resnet_lab.classroom.bounds import Bounds, OutOfBounds, smallest_image_size
from resnet_lab.data.types import DATASET_INFO, DataConfig
from resnet_lab.models.presets import PRESETS
from resnet_lab.models.summary import MIN_INPUT_SIZE, check_input_size, min_input_size, shape_break
from resnet_lab.spec import ModelSpec
from resnet_lab.train_config import TrainConfig
from resnet_lab.ui.state import TRAIN_SPEC_KEY
from resnet_lab.urlcodec import input_size_range, open_link, spec_to_query
from tests.app.conftest import APP

DEEP = ModelSpec(depths=(2,) * 6, widths=(4, 8, 8, 16, 16, 16), num_classes=10, in_channels=1)  # 7 halvings
SPECS = {"resnet20": PRESETS["resnet20"], "resnet18": PRESETS["resnet18"], "deep": DEEP}
EXPECTED = {"resnet20": 8, "resnet18": 17, "deep": 65}  # the lab's floor; 2^(d-1)+1 for d = 5 and 7 halvings
DIGITS = DATASET_INFO["digits"]  # floor 8 px: the model decides


@pytest.mark.parametrize("name", SPECS)
def test_the_library_checks_agree(name):
    spec, lo = SPECS[name], EXPECTED[name]
    assert min_input_size(spec) == lo == min_input_size(spec, DIGITS) == smallest_image_size(spec, "digits")
    check_input_size(spec, lo)  # Build's summary check
    assert input_size_range(spec)[0] == lo  # share links
    if lo > MIN_INPUT_SIZE:
        with pytest.raises(ValueError, match=rf"allowed {lo}\.\.2048"):
            check_input_size(spec, lo - 1)
        assert shape_break(spec, lo - 1).min_input_size == lo  # the fix Build offers
        assert open_link(spec_to_query(spec, lo - 1)).input_size == lo
        with pytest.raises(OutOfBounds, match=f"it takes {lo} px and up") as e:  # every training request
            Bounds().check_training(spec, DataConfig(name="digits", image_size=lo - 1), TrainConfig())
        assert e.value.fields == ("image_size",)
    Bounds().check_training(spec, DataConfig(name="digits", image_size=lo), TrainConfig())
    assert flow_data("digits", spec).image_size == max(FLOW_SIZE, lo)  # gradient flow measures there
    model, c, y = SimpleNamespace(spec=spec), spec.in_channels, torch.zeros(2, dtype=torch.long)
    _check_batch(model, torch.zeros(2, c, lo, lo), y)  # the batch a gradient-flow measurement accepts
    with pytest.raises(ValueError, match=f"needs at least {lo} px"):
        _check_batch(model, torch.zeros(2, c, lo - 1, lo - 1), y)


def test_a_datasets_floor_counts_when_it_is_higher():
    shapes = DATASET_INFO["shapes"]  # 16 px and up
    assert min_input_size(PRESETS["resnet20"], shapes) == 16 == smallest_image_size(PRESETS["resnet20"], "shapes")
    assert min_input_size(PRESETS["resnet18"], shapes) == 17 and min_input_size(DEEP, shapes) == 65
    assert flow_data("shapes", PRESETS["resnet20"]).image_size == FLOW_SIZE
    with pytest.raises(TypeError, match="min_size"):
        min_input_size(DEEP, "shapes")


def _open(page: str, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    if query:
        at.query_params.update(query)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


@pytest.mark.app
def test_the_train_pages_size_widget_starts_at_that_number():
    at = _open("app_pages/train.py")
    at.selectbox(key="train_data").set_value("digits").run()
    for name in ("resnet20", "resnet18"):
        at.selectbox(key="train_preset").set_value(name).run()
        assert not at.exception, [e.message for e in at.exception]
        assert at.number_input(key="train_size").min == EXPECTED[name], name
    at.number_input(key="train_size").set_value(EXPECTED["resnet18"]).run()
    at.session_state[TRAIN_SPEC_KEY] = DEEP  # the custom net carried from Build ("Use this model")
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    widget = at.number_input(key="train_size")
    assert widget.min == EXPECTED["deep"] and widget.value >= EXPECTED["deep"]  # the old 17 px moved up


@pytest.mark.app
def test_builds_fix_names_that_number():
    at = _open("app_pages/build.py", spec_to_query(DEEP))
    assert at.number_input(key="build_input_size").min == MIN_INPUT_SIZE  # below it shows where a net breaks
    at.number_input(key="build_input_size").set_value(EXPECTED["deep"] - 1).run()
    assert any(b.label == f"Use {EXPECTED['deep']} px" for b in at.button)
    at.button(key="build_use_min_size").click().run()
    assert not at.error and at.number_input(key="build_input_size").value == EXPECTED["deep"]


@pytest.mark.app
def test_the_fine_tune_pages_size_widget_starts_at_that_number_too():
    at = _open("app_pages/finetune.py")
    at.radio(key="ft_kind").set_value("Scratch").run()
    at.selectbox(key="ft_builtin").set_value("digits").run()
    for name in ("resnet20", "resnet18"):
        at.selectbox(key="ft_scratch").set_value(name).run()
        assert not at.exception, [e.message for e in at.exception]
        assert at.number_input(key="ft_size").min == EXPECTED[name], name
