"""A real app server (``streamlit run app.py``) and a real Chromium driven by Playwright."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-dev-shm-usage"]


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium_path() -> str | None:
    """The system Chromium (or RESNET_LAB_CHROMIUM); None means Playwright's own install is used."""
    return os.environ.get("RESNET_LAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="session")
def server_home(tmp_path_factory):
    """The app server's RESNET_LAB_HOME (tests may put finished runs there)."""
    return tmp_path_factory.mktemp("browser_home")


def start_server(home: Path, env: dict[str, str] | None = None, log_name: str = "server.log"):
    """``streamlit run app.py`` on a free localhost port for the lab home ``home`` (``env`` added to this
    process's environment); returns (process, url) once it answers its health check."""
    port = _free_port()
    log = (home / log_name).open("w")
    full_env = {**os.environ, "RESNET_LAB_HOME": str(home), "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true"],
        cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
    )
    log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"app server exited early: {(home / log_name).read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            pass
        if time.time() > deadline:
            stop_server(proc, home)
            raise RuntimeError("app server did not become healthy within 90 s")
        time.sleep(0.5)


def stop_server(proc: subprocess.Popen, home: Path) -> None:
    """End a server from :func:`start_server`, and the workers it started (they outlive it by design)."""
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
    _kill_workers(home)


@pytest.fixture(scope="session")
def app_url(server_home):
    proc, url = start_server(server_home)
    try:
        yield url
    finally:
        stop_server(proc, server_home)


def _kill_workers(home: Path) -> None:
    """Workers outlive the server by design; the tests' ones must not outlive the tests."""
    import signal

    db = home / "runs.db"
    if not db.exists():
        return
    from resnet_lab.jobs import pid_alive
    from resnet_lab.store import Store

    store = Store(db)
    for job in store.jobs.list(statuses=["running"]):
        if job.pid and pid_alive(job.pid):
            os.kill(job.pid, signal.SIGKILL)
    store.close()


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    yield pg
    context.close()


@pytest.fixture(scope="module")
def serve():
    """A function ``serve(home, env) -> url`` that starts another app server (say, one set up for a class);
    every server it started is ended, with its workers, after the module's tests."""
    started: list[tuple[subprocess.Popen, Path]] = []

    def start(home: Path, env: dict[str, str] | None = None) -> str:
        proc, url = start_server(home, env)
        started.append((proc, home))
        return url

    yield start
    for proc, home in started:
        stop_server(proc, home)
