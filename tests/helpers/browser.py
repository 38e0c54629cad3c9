"""Waiting on a page in Chromium by what it shows, never by the clock: a script run ended and the page's DOM
quiet for a moment (:func:`settle`), the whole page scrolled through with each lazy part drawn
(:func:`scroll_through`)."""

from __future__ import annotations

from playwright.sync_api import Page

RUNNING = "() => !document.querySelector('[data-testid=\"stStatusWidget\"] [class*=\"Running\"]')"

# true once nothing in the page has changed (nodes, attributes, text) for ``quiet`` ms; the observer is installed
# on the first call (a navigation drops it, and the next call installs it again)
QUIET = """quiet => {
  const w = window;
  if (!w.__labQuiet) {
    w.__labQuiet = {last: performance.now()};
    new MutationObserver(() => { w.__labQuiet.last = performance.now(); })
      .observe(document.documentElement, {subtree: true, childList: true, attributes: true, characterData: true});
  }
  return performance.now() - w.__labQuiet.last >= quiet;
}"""


def settle(page: Page, quiet_ms: int = 300) -> None:
    """Wait until the script run has ended and the page has stopped changing for ``quiet_ms`` (charts drawn,
    fragments and images in place). A page that never stops changing fails at the page's default timeout."""
    page.wait_for_function(RUNNING)
    page.wait_for_function(QUIET, arg=quiet_ms, polling=50)


def scroll_through(page: Page, step: int = 700) -> None:
    """Scroll the main column from top to bottom (what draws only when seen draws) and back to the top, letting
    the page settle after each step."""
    main = "document.querySelector('[data-testid=\"stMain\"]')"
    y = 0
    while y <= page.evaluate(f"() => {main}.scrollHeight") + step:
        page.evaluate(f"() => {main}.scrollTo(0, {y})")
        page.wait_for_function(QUIET, arg=100, polling=25)
        y += step
    page.evaluate(f"() => {main}.scrollTo(0, 0)")
    settle(page, 150)

