"""The challenge tables: a schema-4 home gains them in its upgrade (everything else as it was; a newer one refused),
an entry is written or refused inside the caller's transaction (per-day limit, one entry per run), and scores are
recorded once."""

import sqlite3

import pytest

from resnet_lab.store import SCHEMA_VERSION, SchemaTooNew, Store
from resnet_lab.store.challenges import ChallengeStore, SubmissionRefused


def test_a_schema_4_home_gains_the_challenge_tables_and_keeps_its_records(tmp_path):
    db = tmp_path / "runs.db"
    s = Store(db)
    s.people.create("Ann", "hash-1")
    s.close()
    con = sqlite3.connect(db)
    con.execute("DROP TABLE challenge_entries")
    con.execute("DROP TABLE challenges")
    con.execute("PRAGMA user_version=4")
    con.commit()
    people_before = con.execute("SELECT * FROM people").fetchall()
    assert len(people_before) == 1
    con.close()
    s = Store(db)
    assert s.db.con.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 7
    assert s.challenges.list() == [] and s.challenges.entries("x") == []
    assert [tuple(r) for r in s.db.con.execute("SELECT * FROM people").fetchall()] == people_before
    s.close()
    con = sqlite3.connect(db)
    con.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    con.commit()
    con.close()
    with pytest.raises(SchemaTooNew, match=f"schema version {SCHEMA_VERSION + 1}"):
        Store(db)


def add(s: Store, run_id: int, owner: str = "class:1", day: str = "2026-12-07", per_day: int = 2) -> int:
    with s.db.tx() as con:
        return ChallengeStore.add_entry(con, challenge_id="c", run_id=run_id, job_id=run_id, owner=owner,
                                        owner_name="Ann", day=day, now=float(run_id), per_day=per_day, params=10,
                                        epochs=1, skip=run_id % 2 == 0)


def test_entries_are_limited_per_owner_and_day_and_a_run_enters_once(engine):
    s = Store()
    add(s, 1)
    add(s, 2)
    with pytest.raises(SubmissionRefused, match="you have made 2 submissions .*2026-12-07.* the limit is 2 a day"):
        add(s, 3)
    add(s, 3, owner="class:2")  # another student's count
    add(s, 4, day="2026-12-08")  # another day
    with pytest.raises(SubmissionRefused, match="run 4 was submitted to this challenge already"):
        add(s, 4, day="2026-12-09")
    assert [e.run_id for e in s.challenges.entries("c")] == [1, 2, 3, 4]
    assert [e.run_id for e in s.challenges.entries("c", owner="class:2")] == [3]
    s.challenges.set_failed(s.challenges.entry_of_job(2).id, "broken")  # a failed entry does not count
    add(s, 5)
    assert s.challenges.count_today("c", "class:1", "2026-12-07") == 2


def test_scores_are_recorded_once(engine):
    s = Store()
    e = add(s, 1)
    assert s.challenges.set_scores(e, 0.5, 0.25, 10.0) is True
    assert s.challenges.set_scores(e, 0.9, 0.9, 11.0) is False  # scored once: the second scoring changes nothing
    got = s.challenges.entry(e)
    assert (got.status, got.public_score, got.private_score, got.scored_at) == ("scored", 0.5, 0.25, 10.0)
    s.challenges.add("c", "C", {"id": "c"}, "local", 1.0)
    with pytest.raises(ValueError, match="exists already"):
        s.challenges.add("c", "C2", {"id": "c"}, "local", 2.0)
    assert [r.title for r in s.challenges.list()] == ["C"]
