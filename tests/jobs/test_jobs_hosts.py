"""Where a job's worker runs: the host it says hello from (recorded, shown), the reaper's rule that a pid is looked at
only for a worker of this machine, the lab home a worker checks before it opens the store, and the local launcher
chosen (Ray never imported) when no cluster is configured."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from resnet_lab.identity import MACHINE
from resnet_lab.jobs import launch, scheduler
from resnet_lab.jobs.turns import claim
from resnet_lab.store import Store
from tests.helpers.homes import seed

REPO = Path(__file__).resolve().parents[2]


def dead_pid() -> int:
    """The pid of a process of this machine that has ended (and been waited for)."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_pid_counts_only_for_a_worker_of_this_machine():
    pid, now = dead_pid(), 1000.0
    assert scheduler.gone(pid, now, now) == "its worker process ended unexpectedly"  # a home from before hosts
    assert scheduler.gone(pid, now, now, launch.hostname()) == "its worker process ended unexpectedly"
    # the same number on another machine (a cluster's node) says nothing here: its heartbeat decides
    assert scheduler.gone(pid, now, now, "gpu-2 ray:5f0c1e2a") is None
    assert scheduler.gone(pid, now, now, f"{launch.hostname()} ray:5f0c1e2a") is None  # a Ray node of this machine
    late = now + scheduler.STALE_AFTER_S + 1
    assert scheduler.gone(pid, now, late, "gpu-2 ray:5f0c1e2a").startswith("its worker sent no heartbeat")


def test_a_host_is_shown_only_when_it_is_not_this_machines_own_worker():
    assert launch.host_label(None) is None and launch.host_label(launch.hostname()) is None
    assert launch.host_label("gpu-2") == "gpu-2"
    assert launch.host_label("gpu-2 ray:5f0c1e2a9b8c7d") == "gpu-2 (Ray node 5f0c1e2a)"


def test_a_worker_records_its_host_and_a_new_claim_forgets_it(lab_home):
    store = Store()
    job, _ = store.jobs.create("train", "t", "cpu", then=seed(runs=[{"name": "r", "spec": {}, "data": {},
                                                                      "train": {}}]))
    assert claim(store, {"cpu": 1}) == [(job, "cpu")]
    store.jobs.started(job, 4321, 1.0, host="gpu-2 ray:5f0c1e2a")
    assert store.jobs.get(job).host == "gpu-2 ray:5f0c1e2a" and store.jobs.get(job).pid == 4321
    store.jobs.started(job, 4322, 2.0)  # a pid alone (say, the launcher's) keeps the host the worker said
    assert store.jobs.get(job).host == "gpu-2 ray:5f0c1e2a"
    store.jobs.stop(job, by=MACHINE)
    store.jobs.finish(job, "stopped")
    store.jobs.requeue(job, by=MACHINE)
    assert claim(store, {"cpu": 1}) == [(job, "cpu")]
    assert store.jobs.get(job).host is None and store.jobs.get(job).pid is None  # wherever it runs next says so


def test_a_lab_home_that_is_not_there_or_holds_no_store_is_refused_in_words(tmp_path, monkeypatch):
    monkeypatch.delenv("RESNET_LAB_DB", raising=False)
    missing = tmp_path / "nfs" / "lab"
    why = launch.home_refusal(missing)
    assert why is not None and str(missing) in why and "cannot see the lab home" in why and "mount" in why
    missing.mkdir(parents=True)
    assert "holds no runs.db" in launch.home_refusal(missing)
    Store(missing / "runs.db").close()
    assert launch.home_refusal(missing) is None


@pytest.mark.process
def test_a_worker_refuses_a_lab_home_it_cannot_see_and_creates_none(tmp_path):
    missing = tmp_path / "not-mounted"
    env = {**os.environ, "RESNET_LAB_HOME": str(missing)}
    done = subprocess.run([sys.executable, "-m", "resnet_lab.jobs.worker", "1"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 3, done.stderr
    assert f"cannot see the lab home {missing}" in done.stderr
    assert not missing.exists()  # no empty lab home made in its place


@pytest.mark.process
def test_without_a_cluster_the_lab_runs_local_workers_and_never_imports_ray(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "RESNET_LAB_RAY"}
    env["RESNET_LAB_HOME"] = str(tmp_path)
    code = ("import sys\nfrom resnet_lab.jobs import launch, pump\nfrom resnet_lab.store import Store\n"
            "pump(Store())\nassert type(launch.launcher()).__name__ == 'LocalLauncher'\n"
            "assert 'ray' not in sys.modules, 'ray was imported'\nprint('ok')")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
