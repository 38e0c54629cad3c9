"""A person opens the Gradient flow page, sees the ResNet-20 / plain-20 charts, moves the depth slider one notch
down and watches both charts (and the verdict sentences) redraw for the 14-layer pair."""

import re

from playwright.sync_api import Page, expect


def _points(page: Page, key: str) -> list[int]:
    """How many points each trace of the chart under ``.st-key-<key>`` draws."""
    return page.locator(f".st-key-{key} .js-plotly-plot").evaluate("el => el.data.map(t => t.x.length)")


def _wait_points(page: Page, key: str, n: int) -> None:
    page.wait_for_function(
        """([key, n]) => {
             const el = document.querySelector(`.st-key-${key} .js-plotly-plot`);
             return !!el && !!el.data && el.data.length === 2 && el.data.every(t => t.x.length === n);
           }""",
        arg=[key, n], timeout=60_000)


def test_moving_the_depth_slider_redraws_both_charts(page: Page, app_url):
    expect.set_options(timeout=30_000)
    page.goto(f"{app_url}/gradient_flow")
    expect(page.get_by_role("heading", name="Gradient flow", exact=True)).to_be_visible()
    _wait_points(page, "gf_grad_chart", 20)  # ResNet-20 and plain-20: 20 weight layers each
    _wait_points(page, "gf_act_chart", 10)  # the stem and 9 blocks
    names = page.locator(".st-key-gf_grad_chart .js-plotly-plot").evaluate("el => el.data.map(t => t.name)")
    assert names == ["ResNet-20", "Plain-20"]
    # the verdicts at initialization (a run trained by an earlier browser test may add its own below)
    sentences = page.locator(".st-key-gf_verdicts").get_by_text(
        re.compile(r"^The first conv layer gets .*: (healthy|vanishing|exploding)"))
    expect(sentences).to_have_count(2)
    before = sentences.all_inner_texts()

    thumb = page.get_by_role("slider", name=re.compile(r"^Depth \(weighted layers\)"))
    expect(thumb).to_have_attribute("aria-valuetext", "20")
    thumb.focus()  # (a click would jump the thumb to wherever it lands)
    page.keyboard.press("ArrowLeft")  # one notch down: 20 -> 14
    expect(thumb).to_have_attribute("aria-valuetext", "14")

    _wait_points(page, "gf_grad_chart", 14)
    _wait_points(page, "gf_act_chart", 7)
    assert _points(page, "gf_grad_chart") == [14, 14] and _points(page, "gf_act_chart") == [7, 7]
    names = page.locator(".st-key-gf_grad_chart .js-plotly-plot").evaluate("el => el.data.map(t => t.name)")
    assert names == ["ResNet-14", "Plain-14"]
    expect(sentences).to_have_count(2)
    expect(sentences.first).not_to_have_text(before[0])  # the verdicts were computed again, for the new nets
