"""A new kind of job is one ``JobKind`` declared outside the job system: declared in a test (its handler in
tests/jobs/kind_fixture.py, listed by a wiring module of the test's), submitted, and run to its end by a real
worker process, with its progress — and nothing in resnet_lab/jobs/ names it, or any other kind."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest

from resnet_lab import jobs
from resnet_lab.jobs import JobRequest
from resnet_lab.jobs.handlers import WIRING_ENV, kind_named, registered
from resnet_lab.kinds import KINDS
from resnet_lab.store import Store
from tests.jobs.kind_fixture import NAME, SHEEP

JOBS = Path(jobs.__file__).parent


def wait_finished(store: Store, job_id: int, timeout_s: float = 120.0):
    """The job once it has ended (done, stopped, failed or interrupted); fails the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        job = store.jobs.get(job_id)
        if job.status not in ("queued", "running"):
            return job
        jobs.pump(store)
        time.sleep(0.2)
    pytest.fail(f"job {job_id} still {store.jobs.get(job_id).status} after {timeout_s:.0f} s")


@pytest.mark.process
def test_a_kind_declared_in_a_test_runs_in_a_worker_to_done_with_progress(lab_home, monkeypatch):
    monkeypatch.setenv(WIRING_ENV, "tests.jobs.kind_fixture")
    store = Store()
    job_id, records = jobs.submit(store, JobRequest(SHEEP, "seven sheep", "cpu", params={"sheep": 7}))
    assert records == []  # the kind writes nothing of its own with the job
    job = wait_finished(store, job_id)
    assert (job.kind, job.status, job.error) == (NAME, "done", None)
    assert (job.progress, job.total, job.unit) == (7, 7, "sheep")
    assert Path(job.result_path).read_text() == "7 sheep on cpu\n"
    assert job.finished_at is not None and job.pid is not None
    deadline = time.monotonic() + 30
    while jobs.pid_alive(job.pid) and time.monotonic() < deadline:  # its worker pumps the queue, then exits
        time.sleep(0.1)
    assert not jobs.pid_alive(job.pid)


def test_the_wiring_lists_the_labs_kinds_and_a_tests_kind_joins_by_its_own_wiring(monkeypatch):
    assert set(registered()) == {k.name for k in KINDS}
    with pytest.raises(ValueError, match=f"unknown job kind '{NAME}'"):
        kind_named(NAME)
    monkeypatch.setenv(WIRING_ENV, "tests.jobs.kind_fixture")
    assert kind_named(NAME) is SHEEP and set(registered()) == {k.name for k in KINDS} | {NAME}


def string_constants(path: Path) -> set[str]:
    """Every string literal in a file (docstrings and the literal parts of f-strings included)."""
    return {n.value for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Constant)
            and isinstance(n.value, str)}


def test_nothing_in_the_job_system_names_a_kind_of_job():
    sources = sorted(JOBS.glob("*.py"))
    assert len(sources) >= 5
    for path in sources:
        assert NAME not in path.read_text() and "sheep" not in path.read_text(), path
        named = {k.name for k in KINDS} & string_constants(path)
        assert not named, f"{path.name} names the kinds {sorted(named)}"


def test_a_landscape_row_queued_as_an_interpolation_before_the_split_still_runs_as_one(monkeypatch):
    from types import SimpleNamespace

    from resnet_lab.experiments import landscape

    old = SimpleNamespace(kind=landscape.KIND, params={"runs": [1], "mode": "interpolation"}, run_id=1)
    new = SimpleNamespace(kind=landscape.INTERPOLATION, params={"runs": [1]}, run_id=1)
    assert landscape.job_mode(old) == landscape.job_mode(new) == "interpolation"
    assert landscape.job_mode(SimpleNamespace(kind=landscape.KIND, params={"runs": [1]})) == "slice"
    monkeypatch.setattr(landscape.jobs, "run_interpolation", lambda ctx: ("interpolated", ctx.job))
    assert kind_named(landscape.KIND).handler(SimpleNamespace(job=old)) == ("interpolated", old)
    assert kind_named(landscape.INTERPOLATION).unit == kind_named(landscape.KIND).unit == "evaluations"


def test_the_wiring_is_a_worker_entry_point_with_the_harness_usage(capsys):
    from resnet_lab import kinds

    assert kinds.main(["not-a-job"]) == 2
    assert "usage: python -m resnet_lab.jobs.worker JOB_ID" in capsys.readouterr().err
