"""A real app server (``streamlit run app.py``) and a real Chromium driven by Playwright."""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from appserver import CHROMIUM_ARGS, AppServer, chromium_path  # noqa: E402  (beside this file)


@pytest.fixture(scope="session")
def server_home(tmp_path_factory):
    """The app server's RESNET_LAB_HOME (tests may put finished runs there)."""
    return tmp_path_factory.mktemp("browser_home")


@pytest.fixture(scope="session")
def trained_pair(server_home, tiny_job_trainer):
    """[resnet id, plain id]: one finished pair in the server's home, trained once for the whole session (a real
    worker, a few seconds). The pages only read it; a test that changes runs trains its own."""
    return tiny_job_trainer(server_home)


def start_server(home: Path, env: dict[str, str] | None = None, log_name: str = "server.log") -> AppServer:
    """An app server for the lab home ``home`` (``env`` added to this process's environment), answering."""
    return AppServer(home, env, log_name=log_name)


def stop_server(server: AppServer, home: Path) -> None:
    """End a server from :func:`start_server`, and the workers it started (they outlive it by design)."""
    server.end()
    _kill_workers(home)


@pytest.fixture(scope="session")
def app_url(server_home):
    server = start_server(server_home)
    try:
        yield server.url
    finally:
        stop_server(server, server_home)


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
    started: list[AppServer] = []

    def start(home: Path, env: dict[str, str] | None = None) -> str:
        started.append(start_server(home, env))
        return started[-1].url

    yield start
    for server in started:
        stop_server(server, server.home)
