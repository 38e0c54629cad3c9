import os
import signal
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from resnet_lab import jobs
from resnet_lab.store import Store

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def _open(page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


@pytest.fixture
def open_app_page():
    """A function: the app switched to ``page`` (e.g. "app_pages/train.py"), rendered without exception."""
    return _open


@pytest.fixture
def no_workers_left(lab_home):
    """Pages start real worker processes; none may outlive its test."""
    yield
    for job in Store().jobs.list(statuses=["running"]):
        if job.pid and jobs.pid_alive(job.pid):
            os.kill(job.pid, signal.SIGKILL)
