"""A person in Chromium launches a tiny run, watches the loss curve grow, and stops it."""

import re

from playwright.sync_api import Page, expect


def _set_number(page: Page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    expect(box).to_have_count(1)  # a rerun may briefly show the widget it replaces; wait for it to go
    box.fill(str(value))
    box.press("Enter")
    page.wait_for_timeout(400)


def _loss_points(page: Page) -> int:
    chart = page.get_by_test_id("stPlotlyChart").first.locator(".js-plotly-plot")
    return chart.evaluate("el => (el.data && el.data.length) ? el.data[0].x.length : 0")


def test_launch_watch_the_curve_grow_and_stop(page: Page, app_url):
    page.goto(app_url + "/train")
    expect(page.get_by_role("heading", name="Train", exact=True)).to_be_visible()

    page.get_by_role("combobox", name="Dataset").click()
    page.get_by_role("option", name="digits").click()
    expect(page.get_by_label("Image size (px)", exact=True)).to_have_attribute("min", "8")  # digits' range is in
    main = page.get_by_test_id("stMain")
    expect(main).to_contain_text("digits: 8 px upsampled to 32")  # the recipe says what it chose and why
    expect(page.get_by_label("Image size (px)", exact=True)).to_have_value("32")
    _set_number(page, "Image size (px)", 8)
    expect(main).to_contain_text("You changed some settings")
    _set_number(page, "Training images (0 = all)", 256)
    page.get_by_test_id("stExpander").get_by_text("Training settings", exact=True).click()
    _set_number(page, "Epochs", 300)
    _set_number(page, "Batch size", 32)

    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile(r"^Run #\d+: resnet20 · digits"))).to_be_visible()
    expect(page.get_by_text("running", exact=True).first).to_be_visible(timeout=60_000)

    page.wait_for_function(
        "() => { const el = document.querySelector('[data-testid=stPlotlyChart] .js-plotly-plot');"
        " return el && el.data && el.data.length && el.data[0].x.length >= 2; }", timeout=90_000)
    first = _loss_points(page)
    # the live panel redraws its chart: between two draws the element may be gone for a moment
    page.wait_for_function(
        "() => { const el = document.querySelector('[data-testid=stPlotlyChart] .js-plotly-plot');"
        f" return !!(el && el.data && el.data.length && el.data[0].x.length > {first}); }}", timeout=60_000)
    assert _loss_points(page) > first  # the live panel added points while the run was going

    page.get_by_role("button", name="Stop").click()
    expect(page.get_by_text("stopped", exact=True).first).to_be_visible(timeout=60_000)
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
