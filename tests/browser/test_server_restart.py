"""The Streamlit server restarted while a run trains: the run keeps going, and a new server shows it live.

A run is queued in a fresh lab home and started the way a class starts it — by a page of a real server
(``streamlit run app.py``) pumping the queue — so its worker is that server's child. The server is then ended
twice, politely (SIGTERM) and not (SIGKILL), each time with its whole process group, as a terminal's Ctrl-C or a
supervisor ends a foreground job. Each time the worker keeps training (its heartbeat and progress go on: it runs
in a session of its own, started with ``start_new_session=True``), and a new server on the same home, opened in
Chromium, shows the run's step count going up without a reload. At the end the worker is asked to stop (SIGTERM,
which it takes as a stop request) and the page shows the run stopped.
"""

import os
import re
import signal
from pathlib import Path

from appserver import IDENTITY_SETTINGS, AppServer
from playwright.sync_api import expect

from resnet_lab import ModelSpec
from resnet_lab.data.registry import DataConfig
from resnet_lab.jobs import pid_alive
from resnet_lab.store import Store
from resnet_lab.train import launcher
from resnet_lab.models.checkpoint import load_checkpoint
from resnet_lab.train.config import TrainConfig
from tests.helpers.homes import seed
from tests.helpers.waiting import wait_for

TINY = ModelSpec(stem="cifar", depths=(1, 1), widths=(4, 8), shortcut="A", num_classes=3, in_channels=3)
DIGITS = DataConfig(name="digits", image_size=8, train_subset=1024, augment=False)
# 64 steps an epoch, 1000 epochs: far longer than the test, which stops it; a step costs milliseconds, so the
# step count moves every second however busy the machine
LONG = TrainConfig(epochs=1000, batch_size=16, lr=0.05, log_every=1, grad_norm_every=0, eval_points=0, device="cpu")
STEP_JS = ("() => { for (const bar of document.querySelectorAll('[data-testid=stProgress]')) {"  # the live panel's bar
           " const m = bar.innerText.match(/step ([\\d,]+) of/); if (m) return parseInt(m[1].replace(/,/g, '')); }"
           " return -1; }")


def server_on(home: Path, name: str) -> AppServer:
    """An app server on ``home`` in single-user mode (no class settings from this shell); the worker it starts
    inherits OMP_NUM_THREADS=1: one core for it, the other for us."""
    return AppServer(home, {"RESNET_LAB_HEARTBEAT_S": "0.5", "OMP_NUM_THREADS": "1"}, log_name=f"server-{name}.log",
                     drop=IDENTITY_SETTINGS)


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def watch_live(browser, server: AppServer, run_id: int) -> None:
    """Open the Train page of ``server``: it shows the run, and its step count goes up while we look."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(60_000)
        page.goto(server.url + "/train")
        expect(page.get_by_role("heading", name=re.compile(rf"^Run #{run_id}: "))).to_be_visible(timeout=60_000)
        expect(page.get_by_text("running", exact=True).first).to_be_visible(timeout=60_000)
        page.wait_for_function(f"() => ({STEP_JS})() > 0")
        first = page.evaluate(STEP_JS)
        page.wait_for_function(f"() => ({STEP_JS})() > {first}")  # the live panel redrew with new steps, no reload
    finally:
        context.close()


def keeps_training(store: Store, job_id: int) -> None:
    """The job's worker is alive, beats, and makes progress (nobody pumps the queue meanwhile)."""
    before = store.jobs.get(job_id)
    wait_for(lambda: (lambda j: j.progress > before.progress and j.heartbeat_at > before.heartbeat_at)(
        store.jobs.get(job_id)), what="the worker to go on training")
    now = store.jobs.get(job_id)
    assert now.status == "running" and now.pid == before.pid and pid_alive(now.pid)


def test_a_run_keeps_training_through_server_restarts_and_a_new_server_shows_it_live(browser, lab_home):
    store = Store(lab_home / "runs.db")
    rows = launcher.training_rows(TINY, DIGITS, LONG, name="through restarts")
    job, (rid,) = store.jobs.create("train", rows[0]["name"], "cpu",
                                    then=seed(runs=rows))  # queued: a page will start it
    servers: list[AppServer] = []
    try:
        servers.append(server_on(lab_home, "first"))
        first = servers[-1]
        watch_live(browser, first, rid)  # its live panel pumped the queue: this server started the worker
        worker = store.jobs.get(job).pid
        assert parent_of(worker) == first.proc.pid
        assert os.getsid(worker) == worker != os.getsid(first.proc.pid)  # a session (and process group) of its own

        first.end(signal.SIGTERM)
        assert first.proc.returncode is not None and pid_alive(worker)
        keeps_training(store, job)
        servers.append(server_on(lab_home, "second"))
        watch_live(browser, servers[-1], rid)

        servers[-1].end(signal.SIGKILL)
        assert servers[-1].proc.returncode == -signal.SIGKILL and pid_alive(worker)
        keeps_training(store, job)
        servers.append(server_on(lab_home, "third"))
        watch_live(browser, servers[-1], rid)
        assert store.jobs.get(job).pid == worker  # one worker all along: never restarted, never resumed

        os.kill(worker, signal.SIGTERM)  # a graceful stop: it finishes its step and saves a checkpoint
        wait_for(lambda: store.jobs.get(job).status == "stopped", what="the run to stop")
        context = browser.new_context()
        page = context.new_page()
        page.goto(servers[-1].url + "/train")
        expect(page.get_by_text("stopped", exact=True).first).to_be_visible(timeout=60_000)
        context.close()
        run = store.runs.get(rid)
        steps = [s for s, _, _ in store.runs.metrics(rid, ["train/loss"])["train/loss"]]
        assert run.status == "stopped" and steps == sorted(set(steps)) and steps[-1] == run.step
        assert load_checkpoint(run.ckpt_last).meta["step"] == run.step
    finally:
        for server in servers:
            server.end(signal.SIGKILL)
        pid = store.jobs.get(job).pid
        if pid and pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
        store.close()
