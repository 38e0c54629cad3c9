"""One AppTest per page: renders without exception, and the Build page's widgets really drive it."""

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from resnet_lab import PRESETS
from resnet_lab.urlcodec import spec_from_query

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGES = ["app_pages/home.py", "app_pages/build.py", "app_pages/train.py", "app_pages/gradient_flow.py",
         "app_pages/finetune.py", "app_pages/predictions.py", "app_pages/feature_maps.py", "app_pages/gradcam.py",
         "app_pages/degradation.py", "app_pages/lesion.py", "app_pages/landscape.py"]


def open_page(page: str, query: dict | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    if query:
        at.query_params.update(query)
    at.run()
    if page != PAGES[0]:
        at.switch_page(page).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def metrics(at: AppTest) -> list[tuple[str, str]]:
    return [(m.label, m.value) for m in at.metric]


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_without_exception(page):
    at = open_page(page)
    assert at.title[0].value
    assert not at.error


def test_home_links_every_page_and_names_the_device():
    at = open_page(PAGES[0])
    md = " ".join(m.value for m in at.markdown) + " ".join(e.value for e in at.info) + " ".join(
        e.value for e in at.success)
    assert "Computing on" in md and "plain twin" in md


def test_build_defaults_to_resnet20_and_its_plain_twin():
    at = open_page(PAGES[1])
    assert at.selectbox(key="build_preset").value == "resnet20"
    assert at.subheader[0].value.startswith("ResNet-20")
    assert metrics(at)[0] == ("Parameters", "269.72K")
    assert at.query_params.get("model") in ("resnet20", ["resnet20"])


def test_choosing_a_preset_changes_the_summary_and_the_url():
    at = open_page(PAGES[1])
    at.selectbox(key="build_preset").set_value("resnet50").run()
    assert not at.exception
    assert at.subheader[0].value.startswith("ResNet-50")
    got = dict(metrics(at)[:4])
    assert got["Parameters"] == "25.56M" and got["Multiply-adds"] == "4.09G" and got["Depth"] == "50"
    twin = dict(metrics(at)[4:])
    assert twin["Parameters"] == "22.78M"  # plain twin: no projection shortcuts
    assert at.number_input(key="build_input_size").value == 224
    assert at.query_params.get("model") in ("resnet50", ["resnet50"])


def test_field_widgets_change_the_model_and_mark_it_custom():
    at = open_page(PAGES[1])
    at.number_input(key="build_depth_0").set_value(5).run()
    assert at.selectbox(key="build_preset").value == "(custom)"
    assert at.subheader[0].value.startswith("ResNet-24")
    at.radio(key="build_stem").set_value("imagenet").run()
    assert at.number_input(key="build_input_size").value == 224  # follows the stem
    at.toggle(key="build_skip").set_value(False).run()
    assert at.subheader[0].value.startswith("Plain-24")
    assert "Residual twin" in " ".join(m.value for m in at.markdown)
    spec, _ = spec_from_query(dict(at.query_params))
    assert spec.depths == (5, 3, 3) and spec.skip is False and spec.stem == "imagenet"


def test_adding_a_stage_extends_depths_and_widths():
    at = open_page(PAGES[1])
    at.slider(key="build_stages").set_value(4).run()
    assert not at.exception
    assert at.number_input(key="build_width_3").value == 128
    stage_table = at.dataframe[0].value
    assert list(stage_table["stage"]) == ["stem", "layer1", "layer2", "layer3", "layer4", "head"]


def test_invalid_combination_shows_an_error_and_keeps_the_model():
    at = open_page(PAGES[1])
    at.number_input(key="build_width_2").set_value(8).run()  # option A cannot shrink 32 -> 8
    assert any("must not decrease" in e.value for e in at.error)
    assert at.subheader[0].value.startswith("ResNet-20") and metrics(at)[0][1] == "269.72K"


def test_bad_spec_json_shows_an_error_and_changes_nothing():
    at = open_page(PAGES[1])
    at.text_area(key="build_import_text").input('{"stem": "cifar", "depths": [3, 3], "widths": [16]}')
    import_button = next(b for b in at.button if b.label == "Import")
    import_button.click().run()
    assert any("Could not import" in e.value and "widths must have one entry per stage" in e.value for e in at.error)
    assert at.selectbox(key="build_preset").value == "resnet20"


def test_good_spec_json_is_imported():
    at = open_page(PAGES[1])
    at.text_area(key="build_import_text").input(PRESETS["resnet110"].replace(num_classes=3).to_json())
    next(b for b in at.button if b.label == "Import").click().run()
    assert not at.error
    assert at.subheader[0].value.startswith("ResNet-110")
    assert at.number_input(key="build_num_classes").value == 3


def test_url_opens_the_shared_model():
    at = open_page(PAGES[1], query={"model": "plain56"})
    assert at.selectbox(key="build_preset").value == "plain56"
    assert at.subheader[0].value.startswith("Plain-56")
    at = open_page(PAGES[1], query={"spec": json.dumps({"stem": "cifar", "depths": [3, 3, 3], "widths": [16, 32, 96],
                                                         "shortcut": "A", "num_classes": 10}), "size": "48"})
    assert at.number_input(key="build_width_2").value == 96 and at.number_input(key="build_input_size").value == 48
    assert "96" in at.dataframe[0].value["output"].iloc[-2]


def test_bad_url_shows_an_error_and_a_working_default():
    at = open_page(PAGES[1], query={"model": "resnet9000"})
    assert any("could not be opened" in e.value and "unknown model preset" in e.value for e in at.error)
    assert at.subheader[0].value.startswith("ResNet-20")


def test_use_this_model_carries_the_spec_to_train():
    at = open_page(PAGES[1])
    at.selectbox(key="build_preset").set_value("resnet56").run()
    next(b for b in at.button if "Use this model" in b.label).click().run()
    assert not at.exception
    assert at.title[0].value == "Train"
    assert at.radio(key="train_source").value == "From Build"
    assert any("ResNet-56" in m.value for m in at.markdown)


def test_the_model_survives_a_visit_to_another_page():
    at = open_page(PAGES[1])
    at.number_input(key="build_depth_1").set_value(7).run()
    at.switch_page(PAGES[0]).run()
    at.switch_page(PAGES[1]).run()
    assert not at.exception
    assert at.number_input(key="build_depth_1").value == 7
    assert at.subheader[0].value.startswith("ResNet-28")
