"""No page shows a Python ``None`` to a person, and no metric label is cut off.

Streamlit writes the word "None" in every missing table cell unless ``st.dataframe(placeholder=...)`` says
otherwise, and ``f"{None}"`` writes it in text. Each page is rendered with data that has gaps — lesions that
are not possible, runs that logged nothing yet — and every table cell (as the browser would draw it: a missing
one as the table's placeholder), text element, metric and chart label is read.

Metric labels: ``st.metric`` cuts a label that does not fit its column ("First / last conv gr…"). Measured in
Chromium (1280 × 900 window, wide layout, sidebar open): a metric of the Gradient flow page's 2 × 3 grid is
123 px wide, about 100 px of it left for the label beside the help icon, and the label font (14 px) averages
7.1 px per character — 13 characters fit.
"""

import json
import re

import pandas as pd
import pytest

from resnet_lab.experiments.degradation import KIND, DegradationConfig
from resnet_lab.models.presets import cifar_spec
from resnet_lab.store import Store
from tests.helpers.homes import seed

NONE = re.compile(r"\bNone\b")
MAX_METRIC_LABEL = 13  # characters that fit a metric's label in the narrowest metric column (see above)
TEXT_ELEMENTS = ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success")


def shown_cells(table) -> list[str]:
    """Every cell of an ``st.dataframe`` as the browser draws it: a missing value as the table's placeholder
    ("None" when it has none), anything else as text."""
    df, placeholder = table.value, table.proto.placeholder if table.proto.HasField("placeholder") else "None"
    cells = [str(c) for c in df.columns]
    for v in df.to_numpy().ravel():
        cells.append(placeholder if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v))
    return cells


def shown_texts(at) -> list[str]:
    """Every text a person reads on the page: text elements, metrics (label and value), table cells, and the
    names and point labels of the charts."""
    out = [el.value for kind in TEXT_ELEMENTS for el in getattr(at, kind)]
    out += [s for m in at.metric for s in (m.label, m.value)]
    out += [cell for table in at.dataframe for cell in shown_cells(table)]
    for chart in at.get("plotly_chart"):
        for trace in json.loads(chart.proto.spec)["data"]:
            text = trace.get("text")
            out += [str(trace.get("name", ""))] + ([str(t) for t in text] if isinstance(text, list) else [])
    return out


def assert_readable(at) -> None:
    assert not at.exception, [e.message for e in at.exception]
    texts = shown_texts(at)
    assert texts, "nothing was read off the page"
    shown_none = [t for t in texts if NONE.search(t)]
    assert not shown_none, shown_none
    long = [m.label for m in at.metric if len(m.label) > MAX_METRIC_LABEL]
    assert not long, f"metric labels cut off in a narrow column: {long}"


def test_lesion_page_writes_na_not_none(open_app_page, finished_run):
    at = open_app_page("app_pages/lesion.py")
    at.number_input(key="lz_n").set_value(40).run()
    assert_readable(at)
    table = at.dataframe[0].value
    assert table["plain accuracy (%)"].isna().any()  # the plain net's downsampling blocks cannot be deleted
    at.radio(key="lz_kind").set_value("skip").run()  # a plain net has no skip to remove: all n/a
    assert_readable(at)
    assert at.dataframe[0].value["plain drop (points)"].isna().all()


def _experiment_with_gaps(store: Store) -> int:
    """A 20-vs-56 degradation experiment where only the ResNet-20 has logged anything and nothing is done."""
    cfg = DegradationConfig()
    job_ids = []
    for depth in (20, 56):
        spec = cifar_spec(depth, width=16, num_classes=6)
        rows = [{"name": f"{'resnet' if s.skip else 'plain'}-{depth}", "spec": s.to_dict(),
                 "data": cfg.data.to_dict(), "train": cfg.train.to_dict()} for s in (spec, spec.twin())]
        job, ids = store.jobs.create("train", rows[0]["name"], "cpu", then=seed(runs=rows, partners=True), origin=KIND)
        job_ids.append(job)
        if depth == 20:
            store.runs.add_metrics([(ids[0], 4, 0.5, "train/acc", 0.4), (ids[0], 4, 0.5, "train/loss", 1.5)])
    return store.experiments.create(KIND, "depth 20 vs 56", cfg.params(), job_ids)


@pytest.mark.usefixtures("no_workers_left")  # the page starts the queued jobs' worker: it must not outlive the test
def test_degradation_table_marks_what_is_not_logged_yet(open_app_page):
    store = Store()
    try:
        _experiment_with_gaps(store)
        at = open_app_page("app_pages/degradation.py")
    finally:
        store.close()
    assert_readable(at)
    table = at.dataframe[0].value
    assert table["final train loss"].isna().sum() == 3 and table["learned"].isna().all()  # the gaps are there


def test_gradient_flow_page(open_app_page, finished_run):
    at = open_app_page("app_pages/gradient_flow.py")
    assert len(at.metric) == 12  # 3 per model, at initialization and at the checkpoint
    assert_readable(at)


def test_feature_maps_page(open_app_page, finished_run):
    at = open_app_page("app_pages/feature_maps.py")
    assert at.get("plotly_chart")
    assert_readable(at)


@pytest.mark.parametrize("placeholder, missing_shown", [(None, "None"), ("n/a", "n/a")])
def test_a_missing_cell_is_read_as_the_browser_draws_it(placeholder, missing_shown):
    """The reading above is what Streamlit draws: no placeholder, a missing cell says "None"."""
    from streamlit.testing.v1 import AppTest

    def page(placeholder):
        import streamlit as st
        st.dataframe([{"a": 1.0, "b": "x"}, {"a": None, "b": None}], placeholder=placeholder)

    at = AppTest.from_function(page, args=(placeholder,)).run()
    assert shown_cells(at.dataframe[0]).count(missing_shown) == 2


# --- every page, generated from the app's own page list ----------------------------------------------------------

def _pages() -> list[str]:
    from resnet_lab.ui.common import PAGES

    return sorted(PAGES)


@pytest.mark.usefixtures("no_workers_left")
@pytest.mark.parametrize("page", _pages())
def test_every_page_with_a_finished_pair_shows_no_none(page, private_trained_home, open_app_page):
    """Every page of the app (from ``ui.common.PAGES``, not a list kept here), opened on a lab with a finished
    ResNet and its plain twin: no table cell, text, metric or chart label says None."""
    at = open_app_page(page)
    assert not at.exception, [e.message for e in at.exception]
    shown_none = [t for t in shown_texts(at) if NONE.search(t)]
    assert not shown_none, shown_none


def _dataframe_calls(path) -> list[str]:
    import ast

    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("dataframe", "data_editor")
                and not any(k.arg == "placeholder" for k in node.keywords)):
            out.append(f"{path.name}:{node.lineno}")
    return out


def test_every_table_the_pages_draw_says_what_a_missing_cell_is():
    """A table without ``placeholder=`` draws "None" in a missing cell (the Grad-CAM trust table's infidelity
    column did): every st.dataframe in the pages and UI helpers names its placeholder."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    sources = [*(root / "app_pages").glob("*.py"), *(root / "resnet_lab" / "ui").glob("*.py")]
    calls = [c for path in sorted(sources) for c in _dataframe_calls(path)]
    assert not calls, f"st.dataframe without placeholder=: {calls}"
