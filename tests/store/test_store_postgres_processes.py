"""Processes on one store: several schedulers claiming from one queue at once never start a job twice (on SQLite and
on PostgreSQL), and a real worker trains a job on the PostgreSQL store."""

import multiprocessing
import time

from resnet_lab.store import DB_ENV, Store
from tests.helpers.homes import seed


def run(name="r"):
    return {"name": name, "spec": {"stem": "cifar"}, "data": {"name": "digits"}, "train": {"epochs": 1}}


# --- several schedulers claiming at once -------------------------------------------------------------------------

JOBS = 60
CLAIMERS = 4


def first_one(queued, turns, capacity, free, running):
    """A policy that starts the oldest queued job when a lane is free: one job per claim, and a moment's thought
    inside the claim's transaction, so the claimers' transactions overlap."""
    time.sleep(0.003)
    return [(min(queued, key=lambda j: j.id), ["cpu"])] if queued and free["cpu"] > 0 else []


def claim_until_empty(location, home, go, out) -> None:
    go.wait(60)
    s = Store(location, home=home) if isinstance(location, str) else Store(location)
    mine = []
    while True:
        got = s.jobs.claim({"cpu": JOBS}, first_one)
        mine += [job for job, _slot in got]
        time.sleep(0.005)  # a scheduler pumps now and then (SQLite's lock is not fair to a tight loop)
        if not got and s.db.con.execute("SELECT COUNT(*) FROM jobs WHERE status='queued'").fetchone()[0] == 0:
            break
    s.close()
    out.put(mine)


def test_several_processes_claiming_at_once_never_start_a_job_twice(store_location, lab_home):
    s = Store(store_location)
    jobs = [s.jobs.create("train", str(i), "cpu", then=seed(runs=[run()]))[0] for i in range(JOBS)]
    s.close()
    mp = multiprocessing.get_context("fork")
    go, out = mp.Event(), mp.Queue()
    procs = [mp.Process(target=claim_until_empty, args=(store_location, str(lab_home), go, out))
             for _ in range(CLAIMERS)]
    for p in procs:
        p.start()
    go.set()
    claimed = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0] * CLAIMERS
    everything = sorted(j for mine in claimed for j in mine)
    assert everything == jobs  # each job started once, by one scheduler
    assert sum(1 for mine in claimed if mine) >= 2, "the claimers did not overlap: the test proved nothing"
    s = Store(store_location)
    assert [j.status for j in s.jobs.list(limit=JOBS)] == ["running"] * JOBS
    assert max(s.jobs.turns().values()) == JOBS  # every start was its own turn
    s.close()


def test_a_real_worker_trains_a_job_on_the_server_database(pg_url, lab_home, monkeypatch):
    """The whole path on PostgreSQL: a worker process (its heartbeat thread on a connection of its own) trains a tiny
    pair, logging metrics and checkpoints that the store keeps relative to the lab home."""
    from tests.helpers.homes import train_tiny_job

    monkeypatch.setenv(DB_ENV, pg_url)
    a, b = train_tiny_job(lab_home)
    s = Store()
    assert s.db.dialect == "postgresql"
    for rid in (a, b):
        r = s.runs.get(rid)
        assert r.status == "done" and r.step == r.total_steps and s.runs.metrics(rid)["train/loss"]
        stored = s.db.con.execute("SELECT ckpt_last FROM runs WHERE id=?", (rid,)).fetchone()[0]
        assert not stored.startswith("/") and (lab_home / stored).is_file()
    job = s.jobs.of_run(a)
    assert job.status == "done" and job.heartbeat_at >= job.started_at
    s.close()


# --- fair turns across several schedulers (two app servers on one store) -----------------------------------------

OWNERS = 3
EACH = 4


def claim_in_turns(location, home, go, out) -> None:
    """One scheduler (an app server's pump): claims by the lab's own fair-turns policy, one lane, and ends each job at
    once so the lane frees for the next claim, by whichever scheduler comes first."""
    from resnet_lab.jobs import turns

    go.wait(60)
    s = Store(location, home=home) if isinstance(location, str) else Store(location)
    mine = []
    while s.db.con.execute("SELECT COUNT(*) FROM jobs WHERE status='queued'").fetchone()[0]:
        for job, _slot in turns.claim(s, {"cpu": 1}):
            mine.append(job)
            s.jobs.finish(job, "done")
        time.sleep(0.02)  # a pump now and then: the two schedulers' claims interleave
    s.close()
    out.put(mine)


def test_owners_take_turns_across_several_schedulers_sharing_one_store(store_location, lab_home):
    from resnet_lab.identity import Identity

    s = Store(store_location)
    people = [Identity(f"class:{i}", f"S{i}", source="class") for i in range(1, OWNERS + 1)]
    for who in people:  # owner by owner: first come, first served would run one owner's four back to back
        for k in range(EACH):
            s.jobs.create("train", f"{who.name}-{k}", "cpu", owner=who, then=seed(runs=[run()]))
    s.close()
    mp = multiprocessing.get_context("fork")
    go, out = mp.Event(), mp.Queue()
    procs = [mp.Process(target=claim_in_turns, args=(store_location, str(lab_home), go, out)) for _ in range(2)]
    for p in procs:
        p.start()
    go.set()
    claimed = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    assert sorted(j for mine in claimed for j in mine) == list(range(1, OWNERS * EACH + 1))  # each once
    assert all(claimed), "one scheduler claimed everything: the test proved nothing about two"
    s = Store(store_location)
    order = [j.owner for j in sorted(s.jobs.list(limit=100), key=lambda j: (j.started_at, j.id))]
    assert order == [p.owner for p in people] * EACH  # every owner's k-th job before anyone's k+1-th
    s.close()
