"""A newcomer's tour in a real Chromium at 1280 × 900: every page of the app (from ``ui.common.PAGES``) with two
finished pairs in the lab, read for cut-off text and exception boxes after scrolling the whole page; and the
Predictions path that crashed (the page's own Run picker switched to the older pair, then a cell clicked). The
server's log is read after each test: any traceback in it fails the test."""

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from resnet_lab.ui.common import PAGES
from tests.helpers.browser import scroll_through, settle

CUT_TEXT = """() => {
  // every element showing text that its box cuts: wider content than the box while clipping (ellipsis or hidden)
  const out = [];
  const root = document.querySelector('[data-testid="stMain"]') || document.body;
  for (const e of root.querySelectorAll('*')) {
    const own = [...e.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const r = e.getBoundingClientRect();
    if (!r.width || !r.height) continue;
    let el = e;
    for (let d = 0; el && d < 4; d++, el = el.parentElement) {
      const cs = getComputedStyle(el);
      const clips = cs.textOverflow === 'ellipsis' || ['hidden', 'clip'].includes(cs.overflowX);
      if (clips && el.scrollWidth > el.clientWidth + 1) { out.push(e.textContent.trim().slice(0, 80)); break; }
    }
  }
  return [...new Set(out)];
}"""


# every table whose columns overflow its frame (the grid is drawn on a canvas, so its cut columns are found by
# its scroller: a table wider than the page hides its right-hand columns behind a scroll bar at 1280 px)
WIDE_TABLES = """() => [...document.querySelectorAll('[data-testid="stDataFrame"] .dvn-scroller')]
  .filter(e => e.scrollWidth > e.clientWidth + 1).map(e => `${e.scrollWidth} px in ${e.clientWidth} px`)"""


@pytest.fixture(scope="module")
def two_pairs(trained_pair, server_home, tiny_job_trainer):
    """Two finished pairs (ResNet, plain) in the server's home: [[resnet, plain] older, [resnet, plain] newer]
    (the session's pair, and one more)."""
    return [trained_pair, tiny_job_trainer(server_home)]


@pytest.fixture
def clean_log(server_home):
    """Fails the test when the app server wrote a traceback while it ran."""
    log = Path(server_home) / "server.log"
    start = log.stat().st_size if log.exists() else 0
    yield
    with log.open(errors="replace") as f:
        f.seek(start)
        new = f.read()
    assert "Traceback" not in new, new[new.index("Traceback"):][:3000]


@pytest.fixture
def small_page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    context.close()


def _settle(page: Page) -> None:
    """Wait until the script run ends and the page is still, scroll through the whole page (lazy parts draw), and
    back to the top."""
    page.wait_for_selector('[data-testid="stMain"]')
    settle(page)
    scroll_through(page)


def _no_exception_box(page: Page) -> None:
    boxes = page.locator('[data-testid="stException"]')
    assert boxes.count() == 0, boxes.first.inner_text()[:2000]


@pytest.mark.usefixtures("clean_log")
@pytest.mark.parametrize("path", sorted(PAGES))
def test_no_page_cuts_its_text_at_1280_px(small_page: Page, app_url, two_pairs, path):
    slug = Path(path).stem
    small_page.goto(app_url if slug == "home" else f"{app_url}/{slug}")
    heading = "ResNet Lab" if slug == "home" else PAGES[path][0]  # the home page carries the lab's name
    expect(small_page.get_by_role("heading", name=heading, exact=True).first).to_be_visible(timeout=60_000)
    _settle(small_page)
    _no_exception_box(small_page)
    cut = [t for t in small_page.evaluate(CUT_TEXT) if t]
    assert not cut, f"{PAGES[path][0]}: cut at 1280 px: {cut}"
    wide = small_page.evaluate(WIDE_TABLES)
    assert not wide, f"{PAGES[path][0]}: tables wider than the page at 1280 px: {wide}"


_BIGGEST_CELL = """el => {
  const cd = el.data[1].customdata, c = Math.round(Math.sqrt(cd.length));
  let best = 0;
  for (let k = 0; k < cd.length; k++) if (cd[k][0] > cd[best][0]) best = k;
  const t = Math.floor(best / c), p = best % c, xa = el._fullLayout.xaxis, ya = el._fullLayout.yaxis;
  const box = el.getBoundingClientRect();
  return {x: box.left + xa._offset + xa.l2p(p), y: box.top + ya._offset + ya.l2p(t)};
}"""


@pytest.mark.usefixtures("clean_log")
def test_predictions_survives_its_own_run_picker_and_a_cell_click(small_page: Page, app_url, two_pairs):
    page = small_page
    (old_resnet, _), (new_resnet, _) = two_pairs
    page.goto(f"{app_url}/predictions")
    expect(page.get_by_role("heading", name="Predictions", exact=True)).to_be_visible(timeout=60_000)
    run = page.get_by_role("combobox", name=re.compile(r"^Run"))
    expect(run).to_have_value(re.compile(rf"^#{new_resnet} "))  # it opens on the newest pair
    run.click()
    page.get_by_role("option", name=re.compile(rf"^#{old_resnet} ")).click()
    expect(run).to_have_value(re.compile(rf"^#{old_resnet} "))
    _settle(page)
    for i in (0, 1):
        plot = page.locator(f".st-key-pred_cm_{i} .js-plotly-plot")
        plot.scroll_into_view_if_needed()
        page.wait_for_function("el => el._fullLayout && el.data.length === 2", arg=plot.element_handle())
        cell = plot.evaluate(_BIGGEST_CELL)
        page.mouse.click(cell["x"], cell["y"])
        expect(page.locator(".st-key-pred_cell_cards [data-testid='stImage']").first).to_be_visible(timeout=60_000)
        _settle(page)
        _no_exception_box(page)
    side = page.get_by_role("radiogroup", name=re.compile("Images where"))
    if side.count():  # the two models disagree on some images: one side is shown, and it is selected
        expect(side.locator("input:checked")).to_have_count(1)
