"""A person clicks a cell of a confusion matrix on the Predictions page and sees that cell's images; then clicks
a cell of the plain twin's matrix and sees the twin's images of that cell. Real clicks on the drawn plot."""

import re

from playwright.sync_api import Page, expect

CARDS = 24  # the page shows at most this many image cards

# the cell with the most images (mistakes first), where it is drawn, and a point inside it but off its centre
_BIGGEST_CELL = """el => {
  const cd = el.data[1].customdata, c = Math.round(Math.sqrt(cd.length));
  let best = -1;
  for (let k = 0; k < cd.length; k++) {
    const mistake = Math.floor(k / c) !== k % c, bestMistake = best >= 0 && Math.floor(best / c) !== best % c;
    if (cd[k][0] > 0 && (best < 0 || (mistake && !bestMistake) || (mistake === bestMistake && cd[k][0] > cd[best][0])))
      best = k;
  }
  const t = Math.floor(best / c), p = best % c, xa = el._fullLayout.xaxis, ya = el._fullLayout.yaxis;
  const box = el.getBoundingClientRect();
  return {t, p, n: cd[best][0], truth: el.data[1].y[best], pred: el.data[1].x[best],
          x: box.left + xa._offset + xa.l2p(p + 0.3), y: box.top + ya._offset + ya.l2p(t - 0.3)};
}"""


def _matrix(page: Page, i: int):
    plot = page.locator(f".st-key-pred_cm_{i} .js-plotly-plot")
    expect(plot).to_be_visible()
    plot.scroll_into_view_if_needed()
    page.wait_for_function("el => el._fullLayout && el.data.length === 2", arg=plot.element_handle())
    return plot


def _click_biggest_cell(page: Page, i: int) -> dict:
    cell = _matrix(page, i).evaluate(_BIGGEST_CELL)
    page.mouse.click(cell["x"], cell["y"])
    return cell


def _expect_cell_open(page: Page, cell: dict, by: str) -> None:
    n = cell["n"]
    what = (f"taken for {re.escape(cell['pred'])} by" if cell["t"] != cell["p"] else "that")
    head = page.get_by_text(re.compile(rf"^{n} images? of {re.escape(cell['truth'])} {what} .*{re.escape(by)}"))
    expect(head).to_be_visible()
    if n > CARDS:
        expect(head).to_contain_text(f"showing {CARDS} of {n}")
    expect(page.locator(".st-key-pred_cell_cards [data-testid='stImage']")).to_have_count(min(n, CARDS))
    expect(page.get_by_role("combobox", name=re.compile(r"^Cell \(true"))).to_have_value(
        re.compile(rf"^{re.escape(cell['truth'])} → {re.escape(cell['pred'])} \({n}\)$"))


def test_click_a_confusion_matrix_cell_and_see_its_images(page: Page, app_url, trained_pair):
    expect.set_options(timeout=45_000)  # a first page load, and Grad-CAM on two CPU cores, take seconds
    resnet_id, plain_id = trained_pair
    page.goto(f"{app_url}/predictions?run={resnet_id}")
    expect(page.get_by_role("heading", name="Predictions", exact=True)).to_be_visible()

    cell = _click_biggest_cell(page, 0)  # the ResNet's matrix
    _expect_cell_open(page, cell, f"#{resnet_id} tiny (ResNet)")
    # the cell's cards carry this model's Grad-CAM alone (the disagreement cards below carry both models')
    expect(page.get_by_text(re.compile(rf"^Each card: the image, then Grad-CAM of #{resnet_id} tiny \(ResNet\)'s "
                                       r"answer at \S+ \(its deepest stage"))).to_be_visible()

    twin = _click_biggest_cell(page, 1)  # the twin's own matrix: its own images of its cell
    _expect_cell_open(page, twin, f"#{plain_id} tiny plain (plain)")
    expect(page.get_by_role("radiogroup", name="Cells of").get_by_role(
        "radio", name=re.compile(rf"^#{plain_id} tiny plain"))).to_be_checked()
