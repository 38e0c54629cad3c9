"""A class spread over two app servers on one PostgreSQL store loses nothing: 20 students press Train at once, half
of them on each server (the writers), while 50 more pages of the same students are open on the *other* server (the
readers). Every press is one job, recorded once, of the student who pressed; every reader's page shows its student's
new run although another server took the press; no page shows an error. The pages are protocol students
(bench/st_client.py: the messages a Chromium page sends, without drawing it; 70 real pages would not fit two
cores beside two servers). The queue is held by a ``hold`` job (tests/helpers/hold_wiring.py), so nothing trains."""

import re
import sys
import time
from pathlib import Path

import pytest

from resnet_lab.classroom.people import join_class
from resnet_lab.classroom.settings import load_settings
from resnet_lab.identity import MACHINE
from resnet_lab.jobs import JobRequest, stop, submit
from resnet_lab.jobs.handlers import kind_named
from resnet_lab.store import Store
from tests.helpers.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "browser"))
sys.path.insert(0, str(ROOT / "bench"))
from appserver import IDENTITY_SETTINGS, AppServer  # noqa: E402
from st_client import Class, ProtocolStudent  # noqa: E402

CODE = "two-servers-class-31"
WRITERS = 20
READERS = 50


@pytest.fixture
def class_on_two_servers(pg_server, tmp_path, monkeypatch):
    from tests.helpers.pg import fresh_schema

    with fresh_schema(pg_server) as url:
        env = {"RESNET_LAB_DB": url, "RESNET_LAB_CLASS_CODE": CODE, "RESNET_LAB_KINDS": "tests.helpers.hold_wiring",
               "PYTHONPATH": str(ROOT), "RESNET_LAB_JOBS_PER_CPU": "1", "RESNET_LAB_HEARTBEAT_S": "0.5",
               "OMP_NUM_THREADS": "1"}
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("RESNET_LAB_HOME", str(tmp_path))
        store = Store()
        settings = load_settings()
        students = [join_class(store, f"Student {i + 1:02d}", CODE, settings) for i in range(WRITERS)]
        # the slot is held before any page opens: every Train pressed below waits in the queue
        hold, _ = submit(store, JobRequest(kind=kind_named("hold"), name="holds the slot", device="cpu",
                                           params={"hold_s": 300}))
        wait_for(lambda: store.jobs.get(hold).status == "running", store=store, what="the hold job to run")
        drop = [v for v in IDENTITY_SETTINGS if v != "RESNET_LAB_CLASS_CODE"]
        servers = []
        try:
            servers.append(AppServer(tmp_path, env, log_name="server-one.log", drop=drop))
            servers.append(AppServer(tmp_path, env, log_name="server-two.log", drop=drop))
            yield store, students, servers
        finally:
            for who, _ in [(MACHINE, None), *students]:
                for job in store.jobs.list(statuses=["queued", "running"], owner=who.owner):
                    stop(job.id, store, by=who)
            wait_for(lambda: not store.jobs.list(statuses=["running"]), store=store, what="the hold job to stop")
            for server in servers:
                server.end()
            store.close()


def test_twenty_writers_and_fifty_readers_across_two_servers_lose_nothing(class_on_two_servers):
    store, students, servers = class_on_two_servers
    clients = Class()
    pages: list[tuple[str, int, ProtocolStudent]] = []  # (role, student index, page)
    try:
        for i in range(WRITERS):
            pages.append(("writer", i, ProtocolStudent(servers[i % 2].url, "train", f"me={students[i][1]}")))
        for j in range(READERS):  # each student's other tabs, on the server their Train press does not go to
            i = j % WRITERS
            pages.append(("reader", i, ProtocolStudent(servers[1 - i % 2].url, "train", f"me={students[i][1]}")))
        for _, _, page in pages:
            clients.start(page)
        wait_for(lambda: all(page.button("Train") for _, _, page in pages), timeout=180,
                 what="every page to show its Train button")

        t0 = time.time()
        for role, _, page in pages:
            if role == "writer":
                clients.call(page.press("Train"), 30)
        owners = {who.owner: i for i, (who, _) in enumerate(students)}
        wait_for(lambda: len(store.jobs.list(kinds=["train"], limit=1000)) >= WRITERS, store=store, timeout=120,
                 what="a job for every press")
        time.sleep(2)  # a press counted twice would show up meanwhile
        jobs = store.jobs.list(kinds=["train"], limit=1000)
        assert len(jobs) == WRITERS  # nothing lost, nothing doubled
        assert sorted(owners[j.owner] for j in jobs) == list(range(WRITERS))  # each of the student who pressed
        assert all(j.status == "queued" and j.created_at >= t0 - 1 for j in jobs)
        run_of = {owners[j.owner]: store.runs.of_job(j.id)[0].id for j in jobs}

        def readers_see_their_runs() -> bool:
            return all(any(re.match(rf"Run #{run_of[i]}: ", h) for h in page.headings())
                       for role, i, page in pages if role == "reader")

        wait_for(readers_see_their_runs, timeout=120, what="every reader page to show its student's new run")
        assert [(role, i, page.errors) for role, i, page in pages if page.errors] == []
        assert sum(page.exception_boxes() for _, _, page in pages) == 0
        assert all(page.sockets == 1 for _, _, page in pages)  # no page lost its connection and reconnected
    finally:
        for _, _, page in pages:
            clients.call(page.close(), 10)
        clients.end()
