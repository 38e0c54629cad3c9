"""A lab home written by the schema-2 lab (one jobs table, no owners) opens with this one: upgraded in place to
owners, queue times and turns, every record intact, everything it held the machine's — and it keeps working."""

import shutil
import sqlite3
from pathlib import Path

import pytest

from resnet_lab import jobs
from resnet_lab.identity import LOCAL, MACHINE, Identity, NotAllowed
from resnet_lab.store import SCHEMA_VERSION, Store
from tests.helpers.homes import seed

FIXTURE = Path(__file__).parent / "fixtures" / "home_v2"  # written by main at de551f14 (see fixtures/README.md)
STUDENT = Identity("class:1", "Ada", source="class")


@pytest.fixture
def old_home(tmp_path):
    home = tmp_path / "copied" / "home"
    shutil.copytree(FIXTURE, home)
    return home


def raw(path, sql, args=()):
    con = sqlite3.connect(path)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def columns(path, table):
    return [r[1] for r in raw(path, f"PRAGMA table_info({table})")]


def test_the_fixture_is_a_schema_2_home_with_relative_paths():
    db = FIXTURE / "runs.db"
    assert raw(db, "PRAGMA user_version") == [(2,)]
    assert "owner" not in columns(db, "jobs") and "owner" not in columns(db, "runs")
    assert {r[0] for r in raw(db, "SELECT name FROM sqlite_master WHERE type='table'")} >= {"jobs", "runs", "speeds"}
    assert raw(db, "SELECT ckpt_best FROM runs WHERE id=1") == [("runs/1/best.json",)]
    assert raw(db, "SELECT id, kind, status FROM jobs ORDER BY id") == [
        (1, "train", "done"), (2, "train", "stopped"), (3, "landscape", "done"), (4, "train", "queued")]
    assert sum(f.stat().st_size for f in FIXTURE.rglob("*") if f.is_file()) < 1_000_000


def test_an_old_home_opens_upgraded_with_every_record_intact(old_home):
    db = old_home / "runs.db"
    tables = ("jobs", "runs", "metrics", "grad_norms", "run_layers", "experiments", "speeds")
    old_cols = {t: columns(db, t) for t in tables}
    before = {t: raw(db, f"SELECT {', '.join(old_cols[t])} FROM {t} ORDER BY rowid") for t in tables}
    s = Store(db)
    assert raw(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)] and SCHEMA_VERSION == 7
    for t in tables:  # every row, every old column, exactly as it was
        assert raw(db, f"SELECT {', '.join(old_cols[t])} FROM {t} ORDER BY rowid") == before[t], t
        assert before[t], t
    jobs = {j.id: j for j in s.jobs.list()}
    assert set(jobs) == {1, 2, 3, 4}
    for j in jobs.values():
        assert (j.owner, j.owner_name, j.fingerprint, j.at_back) == (LOCAL, "", None, False)
        assert j.queued_at == j.created_at
    assert {r.owner for r in s.runs.list()} == {LOCAL} and len(s.runs.list(owner=LOCAL)) == 4
    assert s.jobs.turns() == {} and s.people.list() == []
    assert raw(db, "PRAGMA foreign_key_check") == []
    # what the records point at is still there
    runs = {r.id: r for r in s.runs.list()}
    assert runs[1].partner_id == 2 and runs[2].partner_id == 1 and runs[1].job_id == runs[2].job_id == 1
    assert all(Path(runs[i].ckpt_best).is_file() and runs[i].ckpt_best.startswith(str(old_home)) for i in (1, 2))
    assert s.runs.metrics(1)["train/loss"] and s.runs.grad_norms(1)[0][0] == "conv1"
    assert Path(jobs[3].result_path) == old_home / "runs" / "1" / "landscape-3.json"
    (exp,) = s.experiments.list()
    assert exp.job_ids == [1, 2]
    assert s.jobs.speed("cpu", jobs[1].work["key"]) is not None


def test_an_upgraded_home_keeps_working_for_the_machine_and_refuses_a_student(old_home):
    from resnet_lab.analysis.subject import from_run
    from resnet_lab.experiments.landscape import load_result

    s = Store(old_home / "runs.db")
    assert from_run(s.runs.get(2)).spec.skip is False
    assert len(load_result(s.jobs.get(3).result_path).surfaces) == 2
    with pytest.raises(NotAllowed):  # the machine's jobs are not a student's to touch
        s.jobs.stop(4, by=STUDENT)
    with pytest.raises(NotAllowed):
        s.jobs.delete(1, by=STUDENT)
    s.jobs.requeue(2, by=MACHINE)  # the job stopped while queued goes back in line, behind the waiting one
    assert [j.id for j in jobs.turns.queue_order(s)] == [4, 2]
    assert jobs.turns.claim(s, {"cpu": 1}) == [(4, "cpu")]
    assert s.jobs.stop(4, by=MACHINE) == "stopping"
    s.jobs.finish(4, "stopped")
    assert jobs.turns.claim(s, {"cpu": 1}) == [(2, "cpu")]
    s.jobs.delete(1, by=MACHINE)  # the twin job, with its runs and the landscape of them
    assert sorted(j.id for j in s.jobs.list()) == [2, 4] and sorted(r.id for r in s.runs.list()) == [3, 4]
    job, ids = s.jobs.create("train", "new", "cpu",
                             then=seed(runs=[{"name": "n", "spec": {}, "data": {}, "train": {}}]),
                             owner=STUDENT)
    assert job == 5 and ids == [5] and s.runs.get(5).owner == STUDENT.owner


def test_opening_twice_upgrades_once(old_home):
    Store(old_home / "runs.db").close()
    s = Store(old_home / "runs.db")
    assert len(s.jobs.list()) == 4 and raw(old_home / "runs.db", "PRAGMA user_version") == [(SCHEMA_VERSION,)]
