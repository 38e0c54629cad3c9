"""The personal link shown after joining brings the person back to the lesson they joined in."""

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[2] / "app.py")
CODE = "owls-and-ravens-42"
URL = "http://lab.example:8501/"


@pytest.fixture
def classroom(monkeypatch):
    for var in ("RESNET_LAB_SETTINGS", "RESNET_LAB_PROXY_HEADER", "RESNET_LAB_TEACHERS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RESNET_LAB_CLASS_CODE", CODE)
    monkeypatch.setenv("RESNET_LAB_TEACHER_TOKEN", "teacher-token-0123456789abcdef")


def joined(query: dict) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.context = {"url": URL}
    at.query_params.update(query)
    at.run()
    at.text_input(key="lab_join_name").input("Ada")
    at.text_input(key="lab_join_code").input(CODE)
    next(b for b in at.button if b.label == "Join").click().run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def token_of(at: AppTest) -> str:
    me = at.query_params.get("me")
    return me[0] if isinstance(me, list) else me


def link_query(link: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(link).query)


@pytest.mark.usefixtures("classroom")
def test_the_personal_link_keeps_the_lesson_it_was_joined_in():
    at = joined({"lesson": "why-skip-connections"})
    links = [c.value for c in at.code if "me=" in c.value]  # shown after joining, and in the sidebar
    assert len(links) == 2 and len(set(links)) == 1
    query = link_query(links[0])
    assert query["lesson"] == ["why-skip-connections"] and query["me"] == [token_of(at)]
    # the link really brings them back: a new tab opens as the same person, in the lesson
    back = AppTest.from_file(APP, default_timeout=120)
    back.context = {"url": URL}
    back.query_params.update({k: v[0] for k, v in query.items()})
    back.run()
    assert not back.exception and [t.value for t in back.sidebar.text] == ["Ada"]
    assert back.title[0].value == "Gradient flow"  # the lesson's first page


@pytest.mark.usefixtures("classroom")
def test_without_a_lesson_the_personal_link_names_only_the_person():
    at = joined({})
    links = [c.value for c in at.code if "me=" in c.value]
    assert links and all(set(link_query(link)) == {"me"} for link in links)
