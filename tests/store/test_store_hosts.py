"""Schema 6: a job's ``host`` (where its worker said hello from). A schema-5 lab home gains the column in place, its
jobs intact and their host unknown (their workers ran on the lab's own machine), on SQLite and on PostgreSQL."""

import sqlite3

from resnet_lab.store import SCHEMA_VERSION, Store


def test_a_schema_5_home_gains_the_host_of_its_jobs_and_keeps_them(lab_home):
    db = lab_home / "runs.db"
    s = Store(db)
    job, _ = s.jobs.create("landscape", "l", "cpu", params={"points": 3})
    s.close()
    con = sqlite3.connect(db)
    con.execute("ALTER TABLE jobs DROP COLUMN host")  # the schema-5 layout
    con.execute("PRAGMA user_version=5")
    con.commit()
    before = con.execute("SELECT * FROM jobs").fetchall()
    con.close()
    s = Store(db)
    assert s.db.con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 7
    assert [tuple(r)[:-1] for r in s.db.con.execute("SELECT * FROM jobs").fetchall()] == before
    got = s.jobs.get(job)
    assert got.host is None and got.params == {"points": 3} and got.status == "queued"
    s.jobs.started(job, 99, 1.0, host="gpu-2")
    assert s.jobs.get(job).host == "gpu-2"
    s.close()


def test_a_schema_5_database_on_postgresql_gains_the_host_too(pg_url, lab_home):
    s = Store(pg_url)
    job, _ = s.jobs.create("landscape", "l", "cpu", params={"points": 3})
    s.db.con.execute("ALTER TABLE jobs DROP COLUMN host")  # the schema-5 layout
    s.db.con.execute("UPDATE lab_schema SET version=5")
    s.close()
    s = Store(pg_url)
    assert s.db.con.execute("SELECT version FROM lab_schema").fetchone()[0] == SCHEMA_VERSION == 7
    assert s.jobs.get(job).host is None and s.jobs.get(job).params == {"points": 3}
    s.jobs.started(job, 99, 1.0, host="gpu-2 ray:5f0c1e2a")
    assert s.jobs.get(job).host == "gpu-2 ray:5f0c1e2a"
    s.jobs.started(job, 100, 2.0)
    assert s.jobs.get(job).host == "gpu-2 ray:5f0c1e2a" and s.jobs.get(job).pid == 100
    s.close()
