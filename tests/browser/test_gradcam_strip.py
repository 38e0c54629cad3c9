"""A person opens the Grad-CAM page of a trained ResNet and its plain twin and sees the depth strip: one row per
model, a column per layer from shallow to deep, each titled with its layer and size; no error anywhere."""

import re

from playwright.sync_api import Page, expect

COLUMNS = ("layer1.0 = layer1 · 32×32", "layer2.0 = layer2 · 16×16", "layer3.0 = layer3 · 8×8")


def test_the_depth_strip_draws_both_models_layer_by_layer(page: Page, app_url, trained_pair):
    expect.set_options(timeout=30_000)
    resnet_id, plain_id = trained_pair
    page.goto(f"{app_url}/gradcam?run={resnet_id}")
    expect(page.get_by_role("heading", name="Grad-CAM", exact=True)).to_be_visible()
    expect(page.get_by_role("combobox", name="Side by side with", exact=True)).to_have_value(
        re.compile(rf"^#{plain_id} tiny plain \(plain, shapes\)"))
    expect(page.get_by_role("heading", name="Across depth")).to_be_visible()

    strip = page.locator(".st-key-cam_depth_chart .js-plotly-plot")
    expect(strip).to_have_count(1, timeout=60_000)
    expect(strip).to_be_visible()
    strip.scroll_into_view_if_needed()
    for title in COLUMNS:  # each layer's title, once per model row
        expect(strip.locator("text.annotation-text", has_text=title)).to_have_count(2)
    y_titles = strip.locator("text[class^='y'][class$='title']")  # ytitle, y4title, …: one per row
    for run_id, kind in ((resnet_id, "ResNet"), (plain_id, "plain")):  # a row per model, named on its y axis
        expect(y_titles.filter(has_text=re.compile(rf"^#{run_id} tiny .*\({kind}\)$"))).to_have_count(1)
    assert strip.evaluate("el => el.data.filter(t => t.type === 'image').length") == 2 * len(COLUMNS)
    shown = strip.locator("g.imagelayer image")  # the overlays drawn
    expect(shown).to_have_count(2 * len(COLUMNS))
    boxes = [shown.nth(i).bounding_box() for i in range(2 * len(COLUMNS))]
    assert all(b is not None and b["width"] > 30 for b in boxes)
    assert boxes[0]["x"] < boxes[1]["x"] < boxes[2]["x"] and boxes[3]["y"] > boxes[0]["y"] + 30  # two rows
    expect(page.get_by_test_id("stException")).to_have_count(0)
    expect(page.get_by_test_id("stAlertContentError")).to_have_count(0)
