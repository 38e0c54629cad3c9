"""Choice widgets whose options or labels come from the data go through ``ui.widgets.choice``.

Streamlit keeps a radio's or select box's value in the browser as the option's *label*; when the labels change
with the data, the page got the old label back as a ``str`` (Predictions crashed on ``1 - side``). The static
test finds every choice widget in the pages with data-dependent options or labels that is called directly; the
AppTest ones check that what ``choice`` returns is an option, of the option's type, after the labels changed."""

import ast
from pathlib import Path

import pytest
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
WIDGETS = {"radio", "selectbox", "segmented_control", "pills", "select_slider", "multiselect"}
SOURCES = sorted([*(ROOT / "app_pages").glob("*.py"), *(ROOT / "resnet_lab" / "ui").glob("*.py")])


def _constant(node: ast.AST) -> bool:
    """A module constant (CAPS name), a literal, or a list/tuple of those: options that never change with data."""
    if isinstance(node, ast.Constant):
        return True
    if isinstance(node, ast.Name):
        return node.id.isupper()
    if isinstance(node, ast.Attribute):
        return node.attr.isupper()
    if isinstance(node, (ast.List, ast.Tuple)):
        return all(_constant(e) for e in node.elts)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("list", "tuple"):
        return len(node.args) == 1 and _constant(node.args[0])
    return False


def _constant_labels(node: ast.AST) -> bool:
    """A format_func that only looks a value up in module constants (``LABELS.get``, ``lambda s: TITLES[s]``)."""
    if isinstance(node, ast.Attribute) and node.attr == "get":
        return _constant(node.value)
    if isinstance(node, ast.Lambda):
        body = node.body
        return isinstance(body, ast.Subscript) and _constant(body.value)
    return False


def direct_data_choices(path: Path, root: Path = ROOT) -> list[str]:
    bad = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in WIDGETS and len(node.args) >= 2):
            continue
        fmt = next((k.value for k in node.keywords if k.arg == "format_func"), None)
        if not _constant(node.args[1]) or (fmt is not None and not _constant_labels(fmt)):
            bad.append(f"{path.relative_to(root)}:{node.lineno} {node.func.attr}({ast.unparse(node.args[0])})")
    return bad


def test_every_choice_with_data_dependent_labels_goes_through_the_one_door():
    bad = [b for path in SOURCES if path.name != "widgets.py" for b in direct_data_choices(path)]
    assert not bad, "call these through resnet_lab.ui.widgets.choice:\n" + "\n".join(bad)


def test_the_static_check_sees_a_direct_call_with_data_labels(tmp_path):
    page = tmp_path / "page.py"
    page.write_text('import streamlit as st\nRUNS = [1, 2]\nrid = st.radio("Run", runs, key="r")\n'
                    'a = st.radio("Fixed", RUNS, format_func=lambda i: f"#{i} {names[i]}", key="a")\n'
                    'b = st.radio("Fixed", ["x", "y"], key="b")\nc = st.selectbox("M", list(METHODS), '
                    'format_func=METHODS.get)\n')
    found = direct_data_choices(page, root=tmp_path)
    assert [f.split(" ", 1)[1] for f in found] == ["radio('Run')", "radio('Fixed')"]


# --- what choice returns, in a running page whose labels change -------------------------------------------------

PAGE = '''
import streamlit as st
from resnet_lab.ui.widgets import choice

counts = st.session_state.setdefault("counts", [3, 5])
WIDGET = getattr(st, "{widget}")
side = choice(WIDGET, "Images where", [0, 1], key="side", {extra}
              format_func=lambda i: f"side 0 ({{counts[0]}} images)" if i == 0 else f"side 1 ({{counts[1]}} images)")
st.session_state["seen"] = side
'''


def _browser_keeps(monkeypatch, element, label: str) -> None:
    """Make the next run get ``label`` for this widget, as a browser does: it keeps the label it showed."""
    widget_id = element.id

    def stale(self):
        ws = WidgetState()
        ws.id = self.id
        if self.id == widget_id:
            ws.string_value = label
        elif self.index is not None and len(self.options) > 0:
            ws.string_value = self.options[self.index]
        return ws

    monkeypatch.setattr(type(element), "_widget_state", property(stale))


@pytest.mark.parametrize("widget,extra", [("radio", "horizontal=True,"), ("selectbox", "")])
@pytest.mark.parametrize("door", [True, False])
def test_a_choice_stays_an_option_when_the_browser_sends_a_label_from_before(widget, extra, door, monkeypatch):
    page = PAGE.format(widget=widget, extra=extra)
    if not door:  # the same page without the door: the stale label comes back as a str (what crashed Predictions)
        page = page.replace("choice(WIDGET, ", "WIDGET(")
    at = AppTest.from_string(page, default_timeout=30).run()
    getattr(at, widget)(key="side").set_value(1)
    at.run()
    assert at.session_state["seen"] == 1
    at.session_state["counts"] = [4, 9]  # the labels change with the data (another run picked) ...
    at.run()
    _browser_keeps(monkeypatch, getattr(at, widget)(key="side"), "side 1 (5 images)")  # ... the browser did not
    at.run()
    seen = at.session_state["seen"]
    if door:
        assert not at.exception and isinstance(seen, int) and seen in (0, 1)
    else:
        assert seen == "side 1 (5 images)"  # Streamlit's own validation takes the label for an option


@pytest.mark.parametrize("widget,extra", [("radio", "horizontal=True,"), ("selectbox", ""),
                                          ("segmented_control", ""), ("pills", "")])
def test_a_choice_survives_its_labels_changing(widget, extra):
    at = AppTest.from_string(PAGE.format(widget=widget, extra=extra), default_timeout=30).run()
    assert not at.exception
    getter = {"radio": at.radio, "selectbox": at.selectbox}.get(widget)
    if getter is None:
        at.session_state["side"] = 1
    else:
        getter(key="side").set_value(1)
    at.run()
    assert at.session_state["seen"] == 1
    at.session_state["counts"] = [4, 9]  # the labels change with the data
    at.run()
    assert not at.exception
    seen = at.session_state["seen"]
    assert isinstance(seen, int) and seen == 1  # the same option, as an int
