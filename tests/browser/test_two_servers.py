"""Two app servers, one lab: two ``streamlit run app.py`` on two ports share one PostgreSQL store and one lab home
(what several web servers behind a load balancer share: docs/scaling.md). A student's personal link works on both;
a run the student starts in Chromium on the first is live in Chromium on the second (its step count goes up without
a reload), and a stop pressed on the second reaches the worker the first started. Then the two behind a real nginx
running the configuration docs/scaling.md gives: each new browser gets a cookie and keeps its server, browsers are
spread over both, and a page through the balancer is live (its WebSocket passes)."""

import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from appserver import IDENTITY_SETTINGS, AppServer, free_port
from playwright.sync_api import Page, expect

from resnet_lab.classroom.people import join_class
from resnet_lab.classroom.settings import load_settings
from resnet_lab.data.registry import DataConfig
from resnet_lab.identity import MACHINE, Identity
from resnet_lab.jobs import pid_alive
from resnet_lab.models.presets import PRESETS
from resnet_lab.store import Store
from resnet_lab.train import launcher
from resnet_lab.train.config import TrainConfig
from tests.helpers.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
CODE = "two-servers-code-77"
STEP_JS = ("() => { for (const bar of document.querySelectorAll('[data-testid=stProgress]')) {"  # the live panel's bar
           " const m = bar.innerText.match(/step ([\\d,]+) of/); if (m) return parseInt(m[1].replace(/,/g, '')); }"
           " return -1; }")


@dataclass
class Lab:
    home: Path
    store: Store
    who: Identity  # the student
    token: str
    servers: tuple[AppServer, AppServer]
    url: str  # its database


@pytest.fixture(scope="module")
def lab(pg_server, tmp_path_factory):
    """One lab (a PostgreSQL schema of its own, one lab home) served by two app servers in class mode, and a student
    of the class with a personal link."""
    from tests.helpers.pg import fresh_schema

    home = tmp_path_factory.mktemp("two_servers_home")
    with fresh_schema(pg_server) as url, pytest.MonkeyPatch.context() as mp:
        mp.setenv("RESNET_LAB_HOME", str(home))
        mp.setenv("RESNET_LAB_DB", url)
        mp.setenv("RESNET_LAB_CLASS_CODE", CODE)
        store = Store()
        who, token = join_class(store, "Ada", CODE, load_settings())
        env = {"RESNET_LAB_DB": url, "RESNET_LAB_CLASS_CODE": CODE, "RESNET_LAB_HEARTBEAT_S": "0.5",
               "OMP_NUM_THREADS": "1"}
        drop = [v for v in IDENTITY_SETTINGS if v != "RESNET_LAB_CLASS_CODE"]
        one = AppServer(home, env, log_name="server-one.log", drop=drop)
        try:
            two = AppServer(home, env, log_name="server-two.log", drop=drop)
            try:
                yield Lab(home, store, who, token, (one, two), url)
            finally:
                for j in store.jobs.list(statuses=["running"]):  # no worker outlives the tests
                    if j.pid and pid_alive(j.pid):
                        os.kill(j.pid, signal.SIGKILL)
                two.end()
        finally:
            one.end()
            store.close()


def _set_number(page: Page, label: str, value: int) -> None:
    box = page.get_by_label(label, exact=True)
    expect(box).to_have_count(1)
    box.fill(str(value))
    box.press("Enter")
    page.wait_for_timeout(400)


def test_a_run_started_on_one_server_is_live_on_the_other_and_stopped_from_it(browser, lab):
    store, contexts, pages = lab.store, [], []
    try:
        for server in lab.servers:
            contexts.append(browser.new_context(viewport={"width": 1400, "height": 1000}))
            page = contexts[-1].new_page()
            page.set_default_timeout(60_000)
            page.goto(f"{server.url}/train?me={lab.token}")
            expect(page.get_by_role("heading", name="Train", exact=True)).to_be_visible(timeout=60_000)
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
        wait_for(lambda: store.jobs.list(owner=lab.who.owner), 60, what="the student's job")
        job = store.jobs.list(owner=lab.who.owner)[0]  # the personal link was the student's on the first server
        run_id = store.runs.of_job(job.id)[0].id

        second.reload()  # the second server, the same student: the newest run is theirs, live there
        expect(second.get_by_role("heading", name=re.compile(rf"^Run #{run_id}: "))).to_be_visible(timeout=60_000)
        second.wait_for_function(f"() => ({STEP_JS})() > 0", timeout=90_000)
        seen = second.evaluate(STEP_JS)
        second.wait_for_function(f"() => ({STEP_JS})() > {seen}", timeout=60_000)  # growing, no reload

        wait_for(lambda: store.jobs.get(job.id).pid, 60, what="its worker")
        worker = store.jobs.get(job.id).pid
        second.get_by_role("button", name="Stop").click()
        expect(second.get_by_text("stopped", exact=True).first).to_be_visible(timeout=60_000)
        assert store.jobs.get(job.id).status == "stopped"
        wait_for(lambda: not pid_alive(worker), 30, what="the worker to end")
        expect(first.get_by_text("stopped", exact=True).first).to_be_visible(timeout=60_000)  # and on the first
    finally:
        for context in contexts:
            context.close()


# --- behind a load balancer ----------------------------------------------------------------------------


def documented_nginx_config() -> str:
    """The nginx configuration docs/scaling.md gives (the code block after its marker)."""
    text = (ROOT / "docs" / "scaling.md").read_text()
    after = text.split("<!-- nginx-config:", 1)[1]
    return after.split("```nginx\n", 1)[1].split("```", 1)[0]


def _nginx() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)
    if not found:
        pytest.skip("nginx is not installed (make test installs Debian's package: make nginx)")
    return found


@pytest.fixture
def balancer(lab, tmp_path):
    """A real nginx on a free port of 127.0.0.1 running the documented configuration, its two upstreams the two
    app servers: its URL."""
    nginx = _nginx()
    ports = [int(s.url.rsplit(":", 1)[1]) for s in lab.servers]
    site = documented_nginx_config()
    assert site.count("server 10.0.0.1") == 2 and "listen 80;" in site
    port = free_port()
    site = (site.replace("server 10.0.0.11:8501;", f"server 127.0.0.1:{ports[0]};")
            .replace("server 10.0.0.12:8501;", f"server 127.0.0.1:{ports[1]};")
            .replace("listen 80;", f"listen 127.0.0.1:{port};"))
    temp = tmp_path / "nginx"
    for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (temp / d).mkdir(parents=True)
    os.chmod(tmp_path, 0o755)
    for d in (temp, *temp.iterdir()):
        os.chmod(d, 0o777)  # its workers run as an unprivileged user
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"""daemon off;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{ worker_connections 512; }}
http {{
    access_log {tmp_path}/access.log;
    client_body_temp_path {temp}/body; proxy_temp_path {temp}/proxy; fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi; scgi_temp_path {temp}/scgi;
{site}
}}
""")
    proc = subprocess.Popen([nginx, "-p", str(tmp_path), "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"nginx exited: {proc.stderr.read().decode()[-2000:]}")
            try:
                urllib.request.urlopen(url + "/_stcore/health", timeout=2).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.2)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def _get(url: str, cookie: str | None = None) -> tuple[str, str | None]:
    """(the upstream that answered, the affinity cookie it set) for one GET."""
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    with urllib.request.urlopen(request, timeout=10) as r:
        ours = [c.split(";", 1)[0] for c in r.headers.get_all("Set-Cookie") or [] if c.startswith("lab_affinity=")]
        return r.headers["X-Lab-Server"], ours[0] if ours else None


def test_behind_the_documented_nginx_each_browser_keeps_its_server_and_pages_are_live(browser, lab, balancer,
                                                                                      monkeypatch):
    ports = {s.url.rsplit(":", 1)[1] for s in lab.servers}
    firsts = [_get(balancer + "/_stcore/health") for _ in range(24)]
    assert {where.rsplit(":", 1)[1] for where, _ in firsts} == ports  # new browsers land on both servers
    assert all(cookie and cookie.startswith("lab_affinity=") for _, cookie in firsts)
    for where, cookie in firsts[:4]:  # and each keeps the one it got, by its cookie
        assert {_get(balancer + "/_stcore/health", cookie)[0] for _ in range(6)} == {where}

    monkeypatch.setenv("RESNET_LAB_HOME", str(lab.home))  # the worker started from here is the lab's
    monkeypatch.setenv("RESNET_LAB_DB", lab.url)
    data = DataConfig(name="digits", image_size=8, train_subset=256, augment=False)
    train = TrainConfig(epochs=300, batch_size=32, lr=0.05, eval_points=0, log_every=1, device="cpu")
    (rid,) = launcher.submit(PRESETS["resnet20"], data, train, twin=False, name="through the balancer",
                             store=lab.store, owner=lab.who)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{balancer}/train?me={lab.token}")
        expect(page.get_by_role("heading", name=re.compile(rf"^Run #{rid}: "))).to_be_visible(timeout=60_000)
        page.wait_for_function(f"() => ({STEP_JS})() > 0", timeout=90_000)
        seen = page.evaluate(STEP_JS)
        page.wait_for_function(f"() => ({STEP_JS})() > {seen}", timeout=60_000)  # the WebSocket passes
        assert any(c["name"] == "lab_affinity" for c in context.cookies())
    finally:
        context.close()
        lab.store.jobs.stop(lab.store.runs.get(rid).job_id, by=MACHINE)
