"""A person in Chromium opens Build's Choose panel: the published chart renders, with V1/V2 labels and its sources
written on it, and the budget answers "not measured" for the time limits."""

import re

from playwright.sync_api import Page, expect

from resnet_lab.ui.choose import PANEL_LABEL


def test_the_choose_panel_draws_the_published_chart_with_its_sources(page: Page, app_url):
    page.goto(app_url + "/build?model=resnet20")
    expect(page.get_by_role("heading", name=re.compile(r"^ResNet-20"))).to_be_visible(timeout=60_000)
    page.get_by_text(PANEL_LABEL).click()

    charts = page.get_by_test_id("stPlotlyChart")
    published = charts.filter(has_text="Published: ImageNet accuracy against compute")
    expect(published).to_have_count(1, timeout=60_000)
    svg = published.locator("svg.main-svg").first
    expect(svg).to_be_visible()
    expect(published).to_contain_text("Source: torchvision")
    expect(published).to_contain_text("resnet50 V2")
    expect(published).to_contain_text("resnet50 V1")
    expect(published).to_contain_text("resnet20: 0.0406 GFLOPs")  # the built model, as a line at its cost
    expect(charts.filter(has_text="Source: He et al. 2015")).to_have_count(1)

    page.get_by_role("tab", name="Budget").click()
    expect(page.get_by_text(re.compile("not measured on this device yet"))).to_be_visible()
