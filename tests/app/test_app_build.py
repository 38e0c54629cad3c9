"""The Build page: too small an input shows the layer where the network runs out of pixels (with the shapes on the
way and a one-click fix), and "Share link" shows the whole address to copy."""

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from streamlit.testing.v1 import AppTest

from resnet_lab import PRESETS
from resnet_lab.urlcodec import spec_from_query

APP = str(Path(__file__).resolve().parents[2] / "app.py")
PAGE = "app_pages/build.py"


def open_build(query: dict | None = None, url: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    if url:
        at.context["url"] = url
    if query:
        at.query_params.update(query)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_too_small_an_input_names_the_layer_shows_the_shapes_and_offers_the_fix():
    at = open_build()
    at.selectbox(key="build_preset").set_value("resnet18").run()
    at.number_input(key="build_input_size").set_value(16).run()
    assert not at.exception
    assert len(at.error) == 1
    msg = at.error[0].value
    assert "At 16 px this model runs out of pixels" in msg and "layer4.0.conv1: gets 256 × 1 × 1" in msg
    assert "512 × 1 × 1" in msg and "at least 17 px" in msg and "at most 3 stages" in msg
    assert not at.metric  # no summary of a network that cannot work
    table = at.dataframe[0].value
    assert list(table["layer"])[0] == "conv1" and list(table["layer"])[-1] == "layer4.0.conv1"
    assert list(table["output"])[-1] == "512 × 1 × 1" and list(table["what happens"])[-1] == "cannot halve 1 px"
    assert list(table["what happens"])[:4] == ["halves 16 → 8 px", "keeps 8 px", "keeps 8 px", "halves 8 → 4 px"]

    at.button(key="build_use_min_size").click().run()
    assert not at.exception and not at.error
    assert at.number_input(key="build_input_size").value == 17
    assert dict((m.label, m.value) for m in at.metric[:4])["Parameters"] == "11.69M"
    assert at.query_params.get("size") in ("17", ["17"])


def test_a_link_with_too_small_a_size_says_where_it_breaks():
    at = open_build(query={"model": "resnet18", "size": "16"})
    assert any("could not be opened" in e.value and "layer4.0.conv1" in e.value for e in at.error)


def test_share_link_is_the_whole_address_of_this_page():
    at = open_build(url="http://lab.example:8501/")
    link = at.code[0].value
    assert link == "http://lab.example:8501/build?model=resnet20"

    at.number_input(key="build_depth_0").set_value(5).run()  # a custom spec travels as JSON
    link = at.code[0].value
    parts = urlsplit(link)
    assert link.startswith("http://lab.example:8501/build?spec=") and " " not in link and '"' not in link
    spec, size = spec_from_query({k: v for k, v in parse_qs(parts.query).items()})
    assert spec == PRESETS["resnet20"].replace(depths=(5, 3, 3)) and size is None


def test_without_an_address_from_the_browser_the_link_is_the_query_and_says_so():
    at = open_build()
    assert at.code[0].value.startswith("?model=resnet20")
    assert any("did not say which address" in c.value for c in at.caption)
