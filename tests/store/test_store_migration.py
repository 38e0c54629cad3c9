"""A lab home written by an older lab opens with this one: upgraded in place, nothing lost, paths that follow
the home; one written by a newer lab is refused and left alone."""

import hashlib
import shutil
import sqlite3
from pathlib import Path

import pytest

from resnet_lab.store import SCHEMA_VERSION, SchemaTooNew, Store
from tests.helpers.homes import seed

FIXTURE = Path(__file__).parent / "fixtures" / "home_v1"  # written by main at a3aa488 (see fixtures/README.md)


@pytest.fixture
def old_home(tmp_path):
    """A copy of the fixture home in a new folder (not where it was written: its paths say /tmp/v1home)."""
    home = tmp_path / "copied" / "home"
    shutil.copytree(FIXTURE, home)
    return home


def raw(path, sql):
    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_the_fixture_is_an_old_layout_with_absolute_paths():
    db = FIXTURE / "runs.db"
    assert raw(db, "PRAGMA user_version") == [(0,)]
    tables = {r[0] for r in raw(db, "SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"runs", "tasks", "metrics", "grad_norms", "experiments"} <= tables and "jobs" not in tables
    assert raw(db, "SELECT ckpt_best FROM runs WHERE id=1") == [("/tmp/v1home/runs/1/best.json",)]


def test_an_old_home_opens_upgraded_with_every_record_intact(old_home):
    db = old_home / "runs.db"
    before = {t: raw(db, f"SELECT COUNT(*) FROM {t}")[0][0] for t in ("metrics", "grad_norms", "run_layers")}
    old_runs = {r[0]: r[1:] for r in raw(db, "SELECT id, name, status, twin_of, step FROM runs")}
    s = Store(db)
    assert raw(db, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    runs = {r.id: r for r in s.runs.list()}
    assert set(runs) == set(old_runs) == {1, 2, 3}
    for rid, (name, status, twin_of, step) in old_runs.items():
        assert (runs[rid].name, runs[rid].status, runs[rid].step) == (name, status, step)
    # the twin job: one job, the two runs each other's partner; the lone run its own job
    assert runs[1].job_id == runs[2].job_id == 1 and runs[1].partner_id == 2 and runs[2].partner_id == 1
    assert runs[3].job_id == 3 and runs[3].partner_id is None and s.jobs.get(3).status == "stopped"
    assert (runs[1].kind, runs[2].kind) == ("ResNet", "plain")
    for t, n in before.items():
        assert raw(db, f"SELECT COUNT(*) FROM {t}")[0][0] == n > 0
    assert s.runs.metrics(1)["train/loss"] and s.runs.grad_norms(1)[0][0] == "conv1"
    # checkpoints: relative in the database, found in the copied home
    for rid in (1, 2):
        for path in (runs[rid].ckpt_best, runs[rid].ckpt_last):
            assert path.startswith(str(old_home)) and Path(path).is_file()
    assert raw(db, "SELECT ckpt_best FROM runs WHERE id=1") == [("runs/1/best.json",)]
    # the landscape task is a landscape job about run 1, its result found in the copied home
    (task,) = s.jobs.list(kinds=["landscape"])
    assert task.run_id == 1 and task.status == "done" and task.params["runs"] == [1, 2]
    assert (task.progress, task.total, task.unit) == (6, 6, "evaluations")
    assert Path(task.result_path) == old_home / "runs" / "1" / "landscape-1.json" and Path(task.result_path).is_file()
    # the experiment still names its jobs
    (exp,) = s.experiments.list()
    assert exp.kind == "degradation" and [s.runs.of_job(j)[0].id for j in exp.job_ids] == [1, 3]
    # and the upgraded home keeps working: a new job gets fresh ids
    job, ids = s.jobs.create("train", "new", "cpu",
                             then=seed(runs=[{"name": "n", "spec": {}, "data": {}, "train": {}}]))
    assert job > task.id and ids == [4]
    assert raw(db, "PRAGMA foreign_key_check") == []


def test_a_checkpoint_of_an_upgraded_home_loads(old_home):
    from resnet_lab.analysis.subject import from_run

    s = Store(old_home / "runs.db")
    subject = from_run(s.runs.get(2))
    assert subject.spec.skip is False and subject.run_id == 2


def test_opening_twice_upgrades_once(old_home):
    Store(old_home / "runs.db").close()
    s = Store(old_home / "runs.db")
    assert len(s.runs.list()) == 3 and len(s.jobs.list()) == 3


def test_a_database_from_a_newer_lab_is_refused_and_left_alone(tmp_path):
    db = tmp_path / "runs.db"
    Store(db).close()
    con = sqlite3.connect(db)
    con.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    con.execute("PRAGMA journal_mode=DELETE")
    con.close()
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    with pytest.raises(SchemaTooNew, match=f"schema version {SCHEMA_VERSION + 1}.*upgrade ResNet Lab"):
        Store(db)
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    assert not (tmp_path / "runs.db-wal").exists()


def test_a_failed_upgrade_changes_nothing(old_home, monkeypatch):
    from resnet_lab.store import db as dbmod

    def broken(con, home):
        con.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("disk on fire")

    monkeypatch.setitem(dbmod.MIGRATIONS, 1, broken)
    with pytest.raises(RuntimeError, match="disk on fire"):
        Store(old_home / "runs.db")
    tables = {r[0] for r in raw(old_home / "runs.db", "SELECT name FROM sqlite_master WHERE type='table'")}
    assert "half_done" not in tables and "tasks" in tables
    assert raw(old_home / "runs.db", "PRAGMA user_version") == [(0,)]
