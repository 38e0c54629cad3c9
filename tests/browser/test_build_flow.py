"""A person in Chromium: open the app, go to Build, choose resnet56, share the link."""

import re

from playwright.sync_api import Page, expect


def _main(page: Page):
    return page.get_by_test_id("stMain")


def test_build_resnet56_see_diagram_and_twin_then_open_the_shared_link(page: Page, app_url, browser):
    page.goto(app_url)
    expect(page.get_by_role("heading", name="ResNet Lab")).to_be_visible()

    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Build").click()
    expect(page.get_by_role("heading", name="Build", exact=True)).to_be_visible()
    expect(page).to_have_url(re.compile(r"/build\?model=resnet20$"))

    page.get_by_role("combobox", name="Preset").click()
    page.keyboard.type("resnet56 ")
    page.get_by_role("option", name=re.compile(r"^resnet56 — ")).click()

    expect(page.get_by_role("heading", name=re.compile(r"^ResNet-56 \(cifar stem"))).to_be_visible()
    expect(page).to_have_url(re.compile(r"model=resnet56"))

    # the diagram is drawn (an SVG with one block per shown layer) for the ResNet and its plain twin
    charts = page.get_by_test_id("stGraphVizChart")
    expect(charts).to_have_count(2)
    expect(charts.nth(0).locator("svg")).to_contain_text("layer3 · 9 blocks")
    expect(charts.nth(0).locator("svg")).to_contain_text("zero-pad (A)")
    expect(charts.nth(1).locator("svg")).to_contain_text("layer3.8")
    expect(charts.nth(1).locator("svg")).not_to_contain_text("identity")

    # the plain twin's numbers: same parameters (option A has none), 56 layers
    main = _main(page)
    expect(main).to_contain_text("Plain-56 (cifar stem, basic)")
    twin_metrics = page.get_by_test_id("stMetric")
    expect(twin_metrics).to_have_count(8)
    expect(twin_metrics.nth(4)).to_contain_text("853.02K")
    expect(twin_metrics.nth(6)).to_contain_text("56")

    shared = page.url
    other = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    try:
        other.set_default_timeout(60_000)
        other.goto(shared)
        expect(other.get_by_role("heading", name=re.compile(r"^ResNet-56 \(cifar stem"))).to_be_visible()
        expect(other.get_by_role("combobox", name="Preset")).to_have_value(re.compile(r"^resnet56 — "))
        expect(other.get_by_test_id("stGraphVizChart")).to_have_count(2)
    finally:
        other.context.close()


def test_bad_link_shows_a_clear_message(page: Page, app_url):
    page.goto(app_url + "/build?spec=%7B%22stem%22%3A%22vgg%22%7D")
    expect(_main(page)).to_contain_text("The link's model could not be opened")
    expect(_main(page)).to_contain_text("stem='vgg' is not allowed")
    expect(page.get_by_role("heading", name=re.compile(r"^ResNet-20"))).to_be_visible()
