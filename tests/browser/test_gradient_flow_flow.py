"""A person opens the Gradient flow page, sees the ResNet-20 / plain-20 charts, moves the depth slider one notch
down and watches both charts (and the verdict sentences) redraw for the 14-layer pair."""

import re

from playwright.sync_api import Page, expect


def _chart(page: Page, key: str, n: int) -> list[str]:
    """Wait until the chart under ``.st-key-<key>`` is drawn once (a rerun briefly shows the stale chart beside the
    new one) with two traces of ``n`` points each; return the trace names."""
    found = page.wait_for_function(
        """([key, n]) => {
             const els = document.querySelectorAll(`.st-key-${key} .js-plotly-plot`);
             if (els.length !== 1 || !els[0].data) return false;
             const data = els[0].data;
             return data.length === 2 && data.every(t => t.x.length === n) && data.map(t => t.name);
           }""",
        arg=[key, n], timeout=60_000)
    return found.json_value()


def test_moving_the_depth_slider_redraws_both_charts(page: Page, app_url):
    expect.set_options(timeout=30_000)
    page.goto(f"{app_url}/gradient_flow")
    expect(page.get_by_role("heading", name="Gradient flow", exact=True)).to_be_visible()
    # ResNet-20 and plain-20: 20 weight layers each; the stem and 9 blocks
    assert _chart(page, "gf_grad_chart", 20) == ["ResNet-20", "Plain-20"]
    assert _chart(page, "gf_act_chart", 10) == ["ResNet-20", "Plain-20"]
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

    assert _chart(page, "gf_grad_chart", 14) == ["ResNet-14", "Plain-14"]
    assert _chart(page, "gf_act_chart", 7) == ["ResNet-14", "Plain-14"]
    expect(sentences).to_have_count(2)
    expect(sentences.first).not_to_have_text(before[0])  # the verdicts were computed again, for the new nets
