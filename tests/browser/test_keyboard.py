"""The lab without a mouse: Build → Train → Predictions → Grad-CAM in Chromium with the keyboard alone (Tab,
Shift+Tab, Enter, Space, the arrows, typing; never a click). A tiny pair is trained on the way (digits at 8 px, a
few hundred images, one epoch), and a chart's numbers are opened from the keyboard."""

import re

from playwright.sync_api import Page, expect

TAB_LIMIT = 400  # presses before giving up on reaching a control (a page has a few dozen stops)


def tab_to(page: Page, test: str, what: str, key: str = "Tab") -> None:
    """Press ``key`` (Tab, or Shift+Tab to go back) until the focused element passes ``test`` (a JS expression of
    ``e``, the focused element)."""
    for _ in range(TAB_LIMIT):
        focused = f"() => {{ const e = document.activeElement; return !!(e && e !== document.body && ({test})); }}"
        if page.evaluate(focused):
            return
        page.keyboard.press(key)
    raise AssertionError(f"Tab never reached {what}")


def label_is(label: str) -> str:
    return f"e.getAttribute('aria-label') === {label!r}"


def text_ends(text: str) -> str:
    return f"(e.innerText || '').trim().endsWith({text!r})"


def settled(page: Page) -> None:
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"] [class*=\"Running\"]')")
    page.wait_for_timeout(300)


def go_to(page: Page, title: str) -> None:
    """Follow the sidebar's link to a page, from the keyboard."""
    tab_to(page, f"e.tagName === 'A' && e.closest('[data-testid=\"stSidebarNav\"]') && {text_ends(title)}",
           f"the sidebar's link to {title}", "Shift+Tab")  # the sidebar comes before the page
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=title, exact=True)).to_be_visible(timeout=60_000)
    settled(page)


def set_number(page: Page, label: str, value: int) -> None:
    tab_to(page, label_is(label), f"the number box {label!r}")
    page.keyboard.press("Control+A")
    page.keyboard.type(str(value))
    page.keyboard.press("Enter")
    expect(page.get_by_label(label, exact=True)).to_have_value(str(value))
    settled(page)


def test_build_train_predictions_gradcam_by_keyboard_alone(page: Page, app_url):
    page.goto(app_url)
    expect(page.get_by_role("heading", name="ResNet Lab")).to_be_visible(timeout=90_000)
    settled(page)

    go_to(page, "Build")
    tab_to(page, f"e.tagName === 'BUTTON' && {text_ends('Use this model →')}", "Use this model",
           "Shift+Tab")  # the page's last button: back from the top
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Train", exact=True)).to_be_visible(timeout=60_000)
    settled(page)

    tab_to(page, label_is("Dataset"), "the Dataset picker")
    page.keyboard.type("digits")
    page.keyboard.press("Enter")
    expect(page.get_by_role("combobox", name="Dataset")).to_have_value(re.compile("^digits"))
    settled(page)
    set_number(page, "Image size (px)", 8)
    set_number(page, "Training images (0 = all)", 256)
    tab_to(page, f"e.tagName === 'SUMMARY' && {text_ends('Training settings')}", "the training settings")
    page.keyboard.press("Enter")
    set_number(page, "Epochs", 1)

    tab_to(page, f"e.tagName === 'BUTTON' && {text_ends('Train with plain twin')}", "Train with plain twin")
    page.keyboard.press("Space")
    heading = page.get_by_role("heading", name=re.compile(r"^Run #\d+: resnet20 · digits"))
    expect(heading).to_be_visible()
    run = re.search(r"#(\d+)", heading.inner_text()).group(1)
    status = page.get_by_test_id("stMarkdown").filter(has_text=re.compile(rf"#{run} resnet20 · digits: done.*: done"))
    expect(status).to_have_count(1, timeout=90_000)  # this job's ResNet and its twin, not an older job's

    # the live chart's numbers, from the keyboard: a table and a CSV
    tab_to(page, "e.tagName === 'SUMMARY' && e.closest('[class*=\"st-key-live_curves_\"]')", "the curves' numbers")
    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name=re.compile("Download CSV$")).first).to_be_visible(timeout=30_000)

    go_to(page, "Predictions")
    expect(page.get_by_role("combobox", name=re.compile("^Run"))).to_have_value(re.compile(r"resnet20 · digits"))
    tab_to(page, label_is("Cell (true → predicted, images)"), "the confusion cell picker")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.locator(".st-key-pred_cell_cards [data-testid='stImage']").first).to_be_visible(timeout=60_000)

    go_to(page, "Grad-CAM")
    expect(page.get_by_role("img", name=re.compile("heat map of")).first).to_be_visible(timeout=60_000)
