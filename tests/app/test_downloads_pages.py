"""Downloads in the pages: the teacher's Prepare for class fetches what the class may use (a real worker, a local
server standing in for the publisher), and a student whose class does not let students start downloads sees why
the Get it button is greyed — the refusal itself is the jobs layer's (tests/downloads/test_download_jobs.py)."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from resnet_lab.classroom.people import TEACHER
from resnet_lab.downloads import download_job
from resnet_lab.jobs.handlers import WIRING_ENV
from resnet_lab.store import Store
from tests.app.test_classroom_pages import APP, CODE, TEACHER_TOKEN, URL, fresh, join, run
from tests.data.test_downloads import mnist_files, point, serve_all
from tests.downloads.download_wiring import ENV, write_overrides
from tests.helpers.httpfaults import FaultServer
from tests.helpers.waiting import wait_job

pytestmark = pytest.mark.usefixtures("no_workers_left")


@pytest.fixture
def small_class(lab_home, monkeypatch, tmp_path):
    """Class mode whose students may train on shapes and MNIST with resnet20 only: MNIST is all it needs fetched."""
    for var in ("RESNET_LAB_PROXY_HEADER", "RESNET_LAB_TEACHERS", "RESNET_LAB_OFFLINE", "RESNET_LAB_MIRROR"):
        monkeypatch.delenv(var, raising=False)
    toml = tmp_path / "classroom.toml"
    toml.write_text(f'[class]\ncode = "{CODE}"\nteacher_token = "{TEACHER_TOKEN}"\n'
                    '[bounds]\ndatasets = ["shapes", "mnist"]\npresets = ["resnet20"]\n')
    monkeypatch.setenv("RESNET_LAB_SETTINGS", str(toml))
    monkeypatch.delenv("RESNET_LAB_CLASS_CODE", raising=False)
    monkeypatch.delenv("RESNET_LAB_TEACHER_TOKEN", raising=False)


def test_prepare_for_class_fetches_what_the_class_may_use_once(small_class, tmp_path, monkeypatch):
    files = mnist_files()
    with FaultServer() as srv:
        entry = point(monkeypatch, "mnist", files, serve_all(srv, "mnist", files))
        monkeypatch.setenv(WIRING_ENV, "tests.downloads.download_wiring")
        monkeypatch.setenv(ENV, str(write_overrides(tmp_path / "catalogue.json", {"mnist": entry})))
        at = fresh({"teacher": TEACHER_TOKEN}, page="app_pages/teacher.py")
        table = next(d.value for d in at.dataframe if "why" in d.value.columns)
        assert list(table["name"]) == ["mnist"] and list(table["state"]) == ["missing"]
        assert at.multiselect(key="teacher_prepare").value == ["mnist"]
        (go,) = [b for b in at.button if b.label.startswith("Prepare for class (")]
        go.click().run()
        assert any("Downloading mnist for the class" in i.value for i in at.info)
        store = Store()
        job = wait_job(store, download_job(store, "mnist").id)
        assert job.status == "done" and job.owner == TEACHER, job.error
        assert all(srv.count(f"mnist/{n}") == 1 for n in files)
    run(at)
    assert any("Everything the class may use is here." in s.value for s in at.success)


def test_a_student_sees_why_get_it_is_greyed(small_class):
    at = join("Ada")
    run(at, "app_pages/train.py")
    at.selectbox(key="train_data").set_value("mnist").run()
    (get,) = [b for b in at.button if b.label.startswith("Get MNIST (")]
    assert get.disabled and "only a teacher starts downloads" in get.help
    assert any("ask yours to get it" in c.value for c in at.caption)
