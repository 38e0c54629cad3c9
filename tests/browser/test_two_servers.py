"""Two app servers, one lab: two ``streamlit run app.py`` on two ports share one PostgreSQL store and one lab home
(what several web servers behind a load balancer with sticky sessions share: docs/scaling.md). A student's personal
link works on both; a run the student starts in Chromium on the first is live in Chromium on the second (its step
count goes up without a reload), and a stop pressed on the second reaches the worker the first started."""

import os
import re
import signal

from appserver import IDENTITY_SETTINGS, AppServer
from playwright.sync_api import Page, expect

from resnet_lab.classroom.people import join_class
from resnet_lab.classroom.settings import load_settings
from resnet_lab.jobs import pid_alive
from resnet_lab.store import Store
from tests.helpers.waiting import wait_for

CODE = "two-servers-code-77"
STEP_JS = ("() => { for (const bar of document.querySelectorAll('[data-testid=stProgress]')) {"  # the live panel's bar
           " const m = bar.innerText.match(/step ([\\d,]+) of/); if (m) return parseInt(m[1].replace(/,/g, '')); }"
           " return -1; }")


def _set_number(page: Page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    expect(box).to_have_count(1)
    box.fill(str(value))
    box.press("Enter")
    page.wait_for_timeout(400)


def test_a_run_started_on_one_server_is_live_on_the_other_and_stopped_from_it(browser, tmp_path, pg_url,
                                                                              monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("RESNET_LAB_HOME", str(home))
    monkeypatch.setenv("RESNET_LAB_DB", pg_url)
    monkeypatch.setenv("RESNET_LAB_CLASS_CODE", CODE)
    store = Store()
    who, token = join_class(store, "Ada", CODE, load_settings())
    env = {"RESNET_LAB_DB": pg_url, "RESNET_LAB_CLASS_CODE": CODE, "RESNET_LAB_HEARTBEAT_S": "0.5",
           "OMP_NUM_THREADS": "1"}
    drop = [v for v in IDENTITY_SETTINGS if v != "RESNET_LAB_CLASS_CODE"]
    one = AppServer(home, env, log_name="server-one.log", drop=drop)
    two = AppServer(home, env, log_name="server-two.log", drop=drop)
    contexts = []
    try:
        pages = []
        for server in (one, two):
            contexts.append(browser.new_context(viewport={"width": 1400, "height": 1000}))
            page = contexts[-1].new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{server.url}/train?me={token}")
            expect(page.get_by_role("heading", name="Train", exact=True)).to_be_visible()
            pages.append(page)
        first, second = pages
        first.get_by_role("combobox", name="Dataset").click()
        first.get_by_role("option", name="digits").click()
        expect(first.get_by_label("Image size (px)", exact=True)).to_have_attribute("min", "8")
        _set_number(first, "Image size (px)", 8)
        _set_number(first, "Training images (0 = all)", 256)
        first.get_by_test_id("stExpander").get_by_text("Training settings", exact=True).click()
        _set_number(first, "Epochs", 300)
        _set_number(first, "Batch size", 32)
        first.get_by_role("button", name="Train", exact=True).click()
        wait_for(lambda: store.jobs.list(owner=who.owner), 60, what="the student's job")
        job = store.jobs.list(owner=who.owner)[0]
        run_id = store.runs.of_job(job.id)[0].id
        assert job.owner == who.owner  # the personal link was the student's on the first server

        second.reload()  # the second server, the same student: the newest run is theirs, live there
        expect(second.get_by_role("heading", name=re.compile(rf"^Run #{run_id}: "))).to_be_visible()
        second.wait_for_function(f"() => ({STEP_JS})() > 0", timeout=90_000)
        seen = second.evaluate(STEP_JS)
        second.wait_for_function(f"() => ({STEP_JS})() > {seen}", timeout=60_000)  # growing, no reload

        wait_for(lambda: store.jobs.get(job.id).pid, 60, what="its worker")
        running = store.jobs.get(job.id)
        second.get_by_role("button", name="Stop").click()
        expect(second.get_by_text("stopped", exact=True).first).to_be_visible(timeout=60_000)
        assert store.jobs.get(job.id).status == "stopped"
        wait_for(lambda: not pid_alive(running.pid), 30, what="the worker to end")
        expect(first.get_by_text("stopped", exact=True).first).to_be_visible(timeout=60_000)  # and on the first
    finally:
        for j in store.jobs.list(statuses=["running"]):  # a failed test leaves no worker training
            if j.pid and pid_alive(j.pid):
                os.kill(j.pid, signal.SIGTERM)
        for context in contexts:
            context.close()
        one.end()
        two.end()
        store.close()
