"""Download jobs in real worker processes against a local HTTP server (tests/helpers/httpfaults.py): thirty students
who pick the same dataset at once get one job and the server sends each file once; torchvision then reads the
files; a slow download shows its bytes moving, stops on request keeping its part, goes on after a Resume, is
SIGKILLed (the reaper marks it interrupted, its part kept), and a Resume finishes it with a Range request. The worker reads the test's catalogue (local URLs, the test files' checksums) through the test's
wiring module; the lab's own catalogue is untouched."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from resnet_lab import jobs
from resnet_lab.classroom.settings import ClassSettings
from resnet_lab.data import catalogue
from resnet_lab.downloads import submit_download
from resnet_lab.identity import MACHINE, Identity
from resnet_lab.jobs.handlers import WIRING_ENV
from resnet_lab.store import Store
from tests.data.test_downloads import mnist_files, point, pth_bytes, serve_all, sha_prefix
from tests.downloads.download_wiring import ENV, write_overrides
from tests.helpers.httpfaults import Faults, FaultServer
from tests.helpers.waiting import wait_for, wait_job

OPEN_CLASS = ClassSettings(class_code="c0de", students_may_download=True)


@pytest.fixture
def lab(lab_home, tmp_path, monkeypatch):
    monkeypatch.setenv("RESNET_LAB_HEARTBEAT_S", "0.5")
    for var in ("RESNET_LAB_OFFLINE", "RESNET_LAB_MIRROR", "http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv(WIRING_ENV, "tests.downloads.download_wiring")
    monkeypatch.setenv(ENV, str(tmp_path / "catalogue.json"))
    s = Store()
    yield s
    s.close()


def test_thirty_students_get_one_job_one_download_and_torchvision_reads_it(lab, tmp_path, monkeypatch):
    from torchvision.datasets import MNIST

    files = mnist_files()
    with FaultServer() as srv:
        urls = serve_all(srv, "mnist", files)
        write_overrides(tmp_path / "catalogue.json", {"mnist": point(monkeypatch, "mnist", files, urls)})
        ids, errors = [], []

        def ask(i: int) -> None:
            s = Store()
            try:
                ids.append(submit_download(s, "mnist", Identity(f"class:s{i}", f"s{i}"), settings=OPEN_CLASS))
            except Exception as e:  # collected and asserted below
                errors.append(e)
            finally:
                s.close()

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(30)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors and len(set(ids)) == 1 and len(ids) == 30
        job = wait_job(lab, ids[0])
        assert job.status == "done", job.error
        assert (job.progress, job.total, job.unit, job.slot) == (sum(map(len, files.values())),) * 2 + ("bytes", "net")
        assert all(srv.count(f"mnist/{n}") == 1 for n in files)  # each file sent once for the whole class
    train = MNIST(str(catalogue.entry("mnist").folder().parent.parent), train=True, download=False)
    assert len(train) == 12 and catalogue.present("mnist")
    assert submit_download(lab, "mnist", Identity("class:late", "late"), settings=OPEN_CLASS) is None  # here now


def test_a_slow_download_moves_stops_or_is_killed_keeping_its_part_and_resumes_with_a_range_request(lab, tmp_path, monkeypatch):
    data = pth_bytes(400_000)  # ~1.6 MB at 64 KiB every 0.1 s: about 2.5 s to send
    name = catalogue.entry("resnet18").files[0].name
    with FaultServer() as srv:
        urls = {name: (srv.serve(f"w/{name}", data, Faults(slow_s=0.1)),)}
        entry = point(monkeypatch, "resnet18", {name: data}, urls, checksums={name: sha_prefix(data)})
        write_overrides(tmp_path / "catalogue.json", {"resnet18": entry})
        job_id = submit_download(lab, "resnet18", MACHINE)
        wait_job(lab, job_id, until=lambda j: j.progress > 0)  # bytes are moving
        jobs.stop(job_id, lab, by=MACHINE)
        stopped = wait_job(lab, job_id)
        assert stopped.status == "stopped" and 0 < stopped.progress < len(data)
        part = entry.folder() / f"{name}.part"
        assert part.is_file() and not (entry.folder() / name).exists()
        jobs.resume(job_id, lab, by=MACHINE)  # still slow: then its worker is killed outright
        kept = stopped.progress
        wait_job(lab, job_id, until=lambda j: j.status == "running" and j.progress > kept)
        os.kill(lab.jobs.get(job_id).pid, signal.SIGKILL)
        killed = wait_job(lab, job_id, until=lambda j: j.status == "interrupted", timeout=30)
        assert "Resume continues" in killed.error and part.is_file()
        srv.faults[f"/w/{name}"] = Faults()  # full speed now
        jobs.resume(job_id, lab, by=MACHINE)
        done = wait_job(lab, job_id)
        assert done.status == "done", done.error
        assert srv.ranges(f"w/{name}")  # it continued where it stopped
    assert (entry.folder() / name).read_bytes() == data and not part.exists()
    wait_for(lambda: catalogue.present("resnet18"), 5)


def test_a_worker_of_any_kind_starts_without_the_catalogue():
    """Every worker imports the wiring (resnet_lab.kinds), so the download kind must not pull in the catalogue and
    torchvision's tables with it: a second of start-up every training job would pay for nothing."""
    import subprocess
    import sys

    code = "import sys, resnet_lab.kinds; print(sorted(m for m in sys.modules if m.startswith(('torchvision', " \
           "'resnet_lab.data.catalogue', 'resnet_lab.data.fetch'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
