"""The speed job as a real job: a worker process on the one queue measures each preset, reports its progress in
presets and keeps every figure under this machine's device name; asked again, nothing is queued."""

import json
import subprocess

import pytest
import sys
from pathlib import Path

from resnet_lab.experiments.speed import QUICK_PLAN, lab_device_name, measured, submit_speed
from resnet_lab.store import Store
from tests.helpers.homes import worker_store
from tests.helpers.waiting import wait_job

ROOT = Path(__file__).resolve().parents[2]


def test_a_worker_measures_each_preset_reports_progress_and_a_second_request_queues_nothing(lab_home):
    s = Store()
    job_id = submit_speed(s, ["resnet20", "plain20"], "cpu", plan=QUICK_PLAN)
    job = wait_job(s, job_id, timeout=300)
    assert job.status == "done", job.error
    assert job.kind == "speed" and (job.progress, job.total, job.unit) == (2, 2, "presets")
    speeds = measured(s, "cpu")
    assert sorted(speeds) == ["plain20", "resnet20"]
    for sp in speeds.values():
        assert sp.device == "cpu" and sp.device_name == lab_device_name("cpu") and sp.job_id == job_id
        assert sp.train_images_per_s > 0 and sp.latency_ms > 0 and sp.images_per_s > 0 and sp.batch == 64
    assert submit_speed(s, ["plain20", "resnet20"], "cpu") is None  # cached per device and preset
    assert len(s.jobs.list(kinds=["speed"])) == 1
    s.close()


def test_models_speed_follows_its_job_to_the_end_and_prints_the_figures(lab_home):
    from tests.helpers.cli import run_cli

    done = run_cli("models", "speed", "--device", "cpu", "--quick", "--presets", "resnet20", "--json")
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert out["status"] == "done" and out["job"] is not None and out["missing"] == []
    assert [r["preset"] for r in out["speeds"]] == ["resnet20"] and out["speeds"][0]["job_id"] == out["job"]


def test_the_measurement_needs_torch_and_no_other_package_of_the_lab():
    """What a bare GPU machine lacks: the app's packages (the package's store and queue are plain Python)."""
    code = ("import sys; import resnet_lab.experiments.speed.measure; bad = [m for m in ('streamlit', 'plotly', "
            "'captum', 'PIL', 'pandas', 'psycopg', 'safetensors', 'torchvision', 'ray') if m in sys.modules]; "
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.fixture
def workers(lab_home, monkeypatch):
    yield from worker_store(monkeypatch, jobs_per_cpu=1)


def test_a_killed_speed_worker_is_interrupted_and_its_resume_measures_only_the_rest(workers):
    """speed's SIGKILL -> interrupted -> resume test (tests/jobs/test_jobs_faults.py asks every kind for one)."""
    import os
    import signal

    from resnet_lab import jobs
    from resnet_lab.identity import MACHINE
    from tests.helpers.waiting import wait_for

    s = workers
    presets = ["resnet20", "plain20", "resnet32", "plain32"]
    job_id = submit_speed(s, presets, "cpu", plan=QUICK_PLAN)
    wait_for(lambda: s.jobs.get(job_id).status == "running" and s.jobs.get(job_id).progress >= 1, store=s,
             timeout=300, what="the first preset measured")
    first = dict(measured(s, "cpu"))
    os.kill(s.jobs.get(job_id).pid, signal.SIGKILL)
    wait_for(lambda: s.jobs.get(job_id).status == "interrupted", store=s, timeout=120, what="interrupted")
    jobs.resume(job_id, s, by=MACHINE)
    job = wait_job(s, job_id, timeout=300)
    wait_for(lambda: not jobs.pid_alive(job.pid), what="the resumed worker to exit")
    assert job.status == "done", job.error
    speeds = measured(s, "cpu")
    assert sorted(speeds) == sorted(presets)
    assert all(speeds[p] == first[p] for p in first)  # what was measured before the kill was kept, not redone
