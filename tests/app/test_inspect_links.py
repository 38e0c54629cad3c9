"""A deep link to a run that cannot be opened says so, naming the value as the link has it."""

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def open_link(page: str, query: dict) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(query)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def unescaped(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def link_warnings(at: AppTest) -> list[str]:
    return [unescaped(w.value) for w in at.warning if "link" in w.value]


@pytest.mark.parametrize("page", ["app_pages/predictions.py", "app_pages/gradcam.py"])
@pytest.mark.parametrize("query, said", [
    ({"run": "999999"}, ["run=999999 names no run"]),
    ({"run": "abc"}, ["run=abc is not a run number"]),
    ({"run": "1", "vs": "**x**"}, ["run=1 names no run", "vs=**x** is not a run number"]),
])
def test_a_run_link_that_cannot_be_opened_says_so(page, query, said):
    at = open_link(page, query)
    warnings = link_warnings(at)
    assert len(warnings) == len(said) and all(s in w for s, w in zip(said, warnings)), warnings
    assert all("\\*\\*x\\*\\*" in w.value for w in at.warning if "vs=" in w.value)  # as text, not bold


def test_no_run_link_no_warning():
    assert not link_warnings(open_link("app_pages/predictions.py", {}))
