"""The download job without its worker: one job per file for the whole lab, who may start one (decided here, not
by a hidden button), offline mode queueing nothing, and what Prepare for class fetches."""

from __future__ import annotations

import threading
import time

import pytest

from resnet_lab.classroom.bounds import Bounds
from resnet_lab.classroom.lessons import parse_lesson
from resnet_lab.classroom.settings import ClassSettings, SettingsError, parse_settings_text
from resnet_lab.data import catalogue
from resnet_lab.downloads import DownloadRefused, class_needs, download_job, prepare, status_rows, submit_download
from resnet_lab.identity import MACHINE, Identity, NotAllowed
from resnet_lab.store import Store

TEACHER = Identity("class:teacher", "Ms T", teacher=True, source="teacher")
CLASS = ClassSettings(class_code="c0de")  # students may not start downloads: the default
OPEN_CLASS = ClassSettings(class_code="c0de", students_may_download=True)


def student(i: int) -> Identity:
    return Identity(f"class:s{i}", f"student {i}", source="class")


@pytest.fixture
def store(lab_home, monkeypatch):
    monkeypatch.delenv("RESNET_LAB_OFFLINE", raising=False)
    s = Store()
    yield s
    s.close()


def test_a_student_may_not_start_a_download_but_joins_the_one_running(store):
    with pytest.raises(DownloadRefused, match="only a teacher starts downloads"):
        submit_download(store, "cifar10", student(1), settings=CLASS, start=False)
    assert download_job(store, "cifar10") is None  # refused: nothing queued
    job = submit_download(store, "cifar10", TEACHER, settings=CLASS, start=False)
    assert job is not None and store.jobs.get(job).kind == "download" and store.jobs.get(job).device == "net"
    assert submit_download(store, "cifar10", student(1), settings=CLASS, start=False) == job  # joins it
    assert submit_download(store, "cifar10", student(2), settings=OPEN_CLASS, start=False) == job


def test_a_class_that_allows_it_lets_a_student_start_one_and_the_machine_always_may(store):
    job = submit_download(store, "mnist", student(1), settings=OPEN_CLASS, start=False)
    assert store.jobs.get(job).owner == "class:s1"
    assert submit_download(store, "svhn", MACHINE, settings=CLASS, start=False) is not None


def test_thirty_requests_at_once_are_one_job(store, lab_home):
    ids, errors = [], []

    def ask(i: int) -> None:
        s = Store()  # each browser session has its own connection
        try:
            ids.append(submit_download(s, "fashion_mnist", student(i), settings=OPEN_CLASS, start=False))
        except Exception as e:  # collected and asserted below
            errors.append(e)
        finally:
            s.close()

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(ids) == 30 and len(set(ids)) == 1
    assert len(store.jobs.list(kinds=["download"])) == 1


def test_a_request_after_a_failed_download_queues_a_new_job(store):
    first = submit_download(store, "cifar100", MACHINE, start=False)
    assert store.jobs.claim({"net": 1}, lambda queued, *a: [(queued[0], ["net"])])
    store.jobs.finish(first, "failed", error="every URL failed")
    again = submit_download(store, "cifar100", MACHINE, start=False)
    assert again is not None and again != first and store.jobs.get(again).status == "queued"


def test_offline_queues_nothing_and_says_what_to_place_where(store, monkeypatch):
    monkeypatch.setenv("RESNET_LAB_OFFLINE", "1")
    with pytest.raises(DownloadRefused) as e:
        submit_download(store, "cifar10", MACHINE, start=False)
    assert "offline" in str(e.value) and "cifar-10-python.tar.gz" in str(e.value)
    assert store.jobs.list(kinds=["download"]) == []


def test_files_already_here_need_no_job(store, monkeypatch):
    monkeypatch.setattr(catalogue, "present", lambda name, data_root=None: True)
    assert submit_download(store, "mnist", student(3), settings=CLASS, start=False) is None
    with pytest.raises(DownloadRefused, match="resnet18.*resnet50_v2|known"):
        submit_download(store, "imagenet-full", MACHINE, start=False)


def test_the_status_rows_show_size_source_and_the_running_job(store):
    job = submit_download(store, "resnet50_v2", MACHINE, start=False)
    rows = {r.name: r for r in status_rows(store)}
    assert set(rows) == set(catalogue.CATALOGUE)
    w = rows["resnet50_v2"]
    assert (w.kind, w.present, w.source, w.job.id) == ("weights", False, "download.pytorch.org", job)
    assert w.to_dict()["size"].endswith("MiB") and rows["cifar10"].bytes == 170498071


def test_prepare_for_class_fetches_what_the_bounds_and_lessons_allow(store):
    lesson = parse_lesson('id = "digits-lesson"\ntitle = "Digits"\nintro = "x"\ndatasets = ["cifar10", "mnist", "shapes"]\n'
                          '[[pages]]\npage = "train"\ntext = "go"\n', expected_id="digits-lesson")
    settings = ClassSettings(class_code="c0de", bounds=Bounds(datasets=("shapes", "cifar10"), presets=("resnet18",
                                                                                                       "resnet20")))
    import resnet_lab.downloads.job as job_mod

    real = job_mod.list_lessons
    job_mod.list_lessons = lambda s: [lesson]
    try:
        needs = {w.name: w.reason for w in class_needs(store, settings)}
        assert needs == {"cifar10": "lesson digits-lesson", "resnet18": "the class's bounds"}  # mnist: not allowed
        with pytest.raises(NotAllowed):
            prepare(store, student(1), settings=settings)
        queued = prepare(store, TEACHER, names=["cifar10", "resnet18"], settings=settings)
    finally:
        job_mod.list_lessons = real
    assert set(queued) == {"cifar10", "resnet18"} and all(queued.values())
    assert {j.owner for j in store.jobs.list(kinds=["download"])} == {"class:teacher"}


def test_the_setting_is_read_strictly():
    assert parse_settings_text("[downloads]\nstudents_may_start = true\n").students_may_download is True
    assert parse_settings_text("").students_may_download is False
    with pytest.raises(SettingsError, match="students_may_start must be true or false"):
        parse_settings_text('[downloads]\nstudents_may_start = "yes"\n')
    with pytest.raises(SettingsError, match="unknown key"):
        parse_settings_text("[downloads]\nstudents_may = true\n")


def test_a_running_download_says_its_bytes_speed_and_time_left(store):
    import dataclasses

    from resnet_lab.jobs.eta import pace
    from resnet_lab.ui.job_card import progress_text

    job_id = submit_download(store, "mnist", MACHINE, start=False)
    store.jobs.claim({"net": 1}, lambda queued, *a: [(queued[0], ["net"])])
    store.jobs.set_progress(job_id, 3 * 2**20, 12 * 2**20)
    job = store.jobs.get(job_id)
    assert job.status == "running" and pace(dataclasses.replace(job, progress=0)) is None  # nothing moved yet
    job = dataclasses.replace(job, started_at=1000.0)
    rate, left = pace(job, now=1010.0)
    assert rate == pytest.approx(3 * 2**20 / 10) and left == pytest.approx(30.0)
    assert progress_text(dataclasses.replace(job, started_at=time.time() - 10)).startswith(
        "3.0 MiB of 12.0 MiB · 307.2 KiB/s · about 30 s left")
    assert progress_text(dataclasses.replace(job, status="stopped")) == "3.0 MiB of 12.0 MiB"

