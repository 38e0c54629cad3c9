"""A class in Chromium: two students join with the class code in two browsers, each trains a run; the one
cannot stop the other's run, the gallery names whose run is whose, the teacher's page shows and stops
everyone's; a display name made of HTML and Markdown shows literally, and XSRF protection is on."""

import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Browser, Page, expect

from resnet_lab.store import Store

CODE = "owls-and-ravens-42"
TEACHER_TOKEN = "teacher-token-0123456789abcdef"
NASTY = "<img src=x onerror=alert(1)> **bold**"


@pytest.fixture(scope="module")
def classroom(serve, tmp_path_factory) -> tuple[str, Path]:
    """A server set up for a class (two CPU lanes, so two students' runs train side by side): (url, home)."""
    home = tmp_path_factory.mktemp("classroom_home")
    url = serve(home, {"RESNET_LAB_CLASS_CODE": CODE, "RESNET_LAB_TEACHER_TOKEN": TEACHER_TOKEN,
                       "RESNET_LAB_JOBS_PER_CPU": "2", "RESNET_LAB_PROXY_HEADER": "", "RESNET_LAB_SETTINGS": ""})
    return url, home


class Browsing:
    """One person's browser: its own context (cookies, sessions), and every alert() it was shown."""

    def __init__(self, browser: Browser) -> None:
        self.context = browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = self.context.new_page()
        self.page.set_default_timeout(60_000)
        self.dialogs: list[str] = []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def people(browser):
    opened: list[Browsing] = []

    def open_one() -> Browsing:
        opened.append(Browsing(browser))
        return opened[-1]

    yield open_one
    for b in opened:
        b.close()


def join(page: Page, url: str, name: str) -> str:
    """Join the class in this browser; returns the personal token from the address bar."""
    page.goto(url)
    expect(page.get_by_label("Class code")).to_be_visible(timeout=60_000)  # a fresh server's first page
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Class code").fill(CODE)
    page.get_by_role("button", name="Join").click()
    expect(page.get_by_test_id("stMain")).to_contain_text("Your personal link", timeout=30_000)
    page.wait_for_url(re.compile(r"[?&]me="))
    token = parse_qs(urlparse(page.url).query)["me"][0]
    expect(page.get_by_test_id("stSidebar")).to_contain_text(name)  # as typed: text, not markup
    return token


def set_number(page: Page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    expect(box).to_have_count(1)
    box.fill(str(value))
    box.press("Enter")
    page.wait_for_timeout(400)


def train(page: Page, url: str, token: str, epochs: int) -> None:
    """A tiny run on digits: 8 px, 256 images, ``epochs`` epochs."""
    page.goto(f"{url}/train?me={token}")
    expect(page.get_by_role("heading", name="Train", exact=True)).to_be_visible(timeout=30_000)
    page.get_by_role("combobox", name="Dataset").click()
    page.get_by_role("option", name="digits").click()
    expect(page.get_by_label("Image size (px)", exact=True)).to_have_value("32")
    set_number(page, "Image size (px)", 8)
    set_number(page, "Training images (0 = all)", 256)
    page.get_by_test_id("stExpander").get_by_text("Training settings", exact=True).click()
    set_number(page, "Epochs", epochs)
    set_number(page, "Batch size", 32)
    page.get_by_role("button", name="Train", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile(r"^Run #\d+: resnet20 · digits"))).to_be_visible(timeout=30_000)


def no_injected_markup(b: Browsing) -> None:
    assert b.page.locator('img[src="x"]').count() == 0
    assert b.page.locator("[onerror]").count() == 0
    assert b.dialogs == []


def test_two_students_and_a_teacher(people, classroom):
    url, home = classroom
    alice, bob, teacher = people(), people(), people()

    token_b = join(bob.page, url, NASTY)
    token_a = join(alice.page, url, "Alice")
    assert token_a != token_b
    assert any("xsrf" in c["name"].lower() for c in alice.context.cookies())  # XSRF protection is on
    no_injected_markup(bob)

    # Bob starts a long run; Alice, in her own browser, sees no way to stop it
    train(bob.page, url, token_b, epochs=300)
    expect(bob.page.get_by_text("running", exact=True).first).to_be_visible(timeout=60_000)
    expect(bob.page.get_by_role("button", name="Stop")).to_be_visible()
    alice.page.goto(f"{url}/train?me={token_a}")
    expect(alice.page.get_by_role("heading", name="Runs", exact=True)).to_be_visible()
    alice.page.wait_for_timeout(3000)  # a few refreshes of the live panel
    expect(alice.page.get_by_role("button", name="Stop")).to_have_count(0)

    # Alice trains her own short run to the end
    train(alice.page, url, token_a, epochs=1)
    expect(alice.page.get_by_text("done", exact=True).first).to_be_visible(timeout=120_000)

    # the teacher sees both students' jobs by owner, names as typed, and stops Bob's run
    store = Store(home / "runs.db")
    bob_job = next(j for j in store.jobs.list() if j.owner_name == NASTY)
    teacher.page.goto(f"{url}/?teacher={TEACHER_TOKEN}")
    expect(teacher.page.get_by_test_id("stSidebar")).to_contain_text("Teacher")
    assert "teacher=" not in teacher.page.url  # the token does not stay on a projected screen
    # in-app navigation: a reload would ask for the token again (it is kept in no address bar)
    teacher.page.get_by_test_id("stSidebar").get_by_role("link", name="Teacher page").click()
    main = teacher.page.get_by_test_id("stMain")
    expect(teacher.page.get_by_role("heading", name="Teacher", exact=True)).to_be_visible(timeout=30_000)
    expect(main).to_contain_text(NASTY)  # the expander of Bob's jobs, labelled with his name as text
    expect(main).to_contain_text("Alice")
    teacher.page.locator(f".st-key-t_stop_{bob_job.id} button").click()
    expect(bob.page.get_by_text("stopped", exact=True).first).to_be_visible(timeout=60_000)
    no_injected_markup(teacher)

    # the gallery (Alice's view) names each finished run's owner: hers as "you", Bob's by his name, as text
    alice.page.goto(f"{url}/gallery?me={token_a}")
    expect(alice.page.get_by_role("heading", name="Gallery", exact=True)).to_be_visible()
    alice.page.get_by_role("combobox", name="Open a run").click()
    options = alice.page.get_by_role("option")
    expect(options.filter(has_text=NASTY)).to_have_count(1)
    expect(options.filter(has_text=re.compile(r"— you$"))).to_have_count(1)
    no_injected_markup(alice)

    # and a student opening the teacher page by its address is refused
    alice.page.goto(f"{url}/teacher?me={token_a}")
    expect(alice.page.get_by_test_id("stMain")).to_contain_text("This page is the teacher's")
    expect(alice.page.get_by_role("button", name="Stop")).to_have_count(0)
    assert store.jobs.get(bob_job.id).status == "stopped"
    store.close()
