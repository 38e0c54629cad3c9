"""`store copy FROM TO`: a lab's every record from SQLite into PostgreSQL and back, equal table by table (ids and
relative checkpoint paths intact, generated ids continuing past the copied ones), and a target holding records
refused, unchanged."""

import json

from resnet_lab.identity import MACHINE, Identity
from resnet_lab.jobs.turns import claim
from resnet_lab.store import Speed, Store
from resnet_lab.store.challenges import ChallengeStore
from resnet_lab.store.copy import TABLES
from tests.helpers.cli import run_cli
from tests.helpers.homes import seed

ANN = Identity("class:1", "Ann")


def run(name="r", skip=True):
    return {"name": name, "spec": {"stem": "cifar", "skip": skip}, "data": {"name": "digits"}, "train": {"epochs": 1}}


def a_lab(s: Store) -> None:
    """Records in every table, and a gap at the end of the ids (the last job deleted)."""
    job, (a, b) = s.jobs.create("train", "pair", "cpu", then=seed(runs=[run("res"), run("plain", False)],
                                                                   partners=True), owner=ANN)
    claim(s, {"cpu": 1})
    s.runs.add_metrics([(a, i, i / 10, "train/loss", 1 / (i + 1)) for i in range(20)])
    s.runs.add_grad_norms([(a, 1, [0.5, 0.25])])
    s.runs.set_layer_names(a, ["layer1", "layer2"])
    s.runs.update(a, ckpt_best=str(s.home / "runs" / str(a) / "best.json"), best={"val/acc": 0.75})
    s.jobs.finish(job, "done")
    s.jobs.learn_speed("cpu", "resnet20", 10.0, 100)
    s.model_speeds.record(Speed("resnet20", "cpu", "CPU: Test (2 cores)", 300.0, 4.0, 900.0, 64, 3.0, job_id=job,
                                detail={"train_steps": 5}))
    s.experiments.create("degradation", "deg", {"depths": [20]}, [job])
    s.people.create("Ann", "hash-ann")
    s.datasets.record("shapes", ANN, 1234)
    s.challenges.add("c", "Challenge", {"id": "c"}, "local", 1.0)
    with s.db.tx() as con:
        ChallengeStore.add_entry(con, challenge_id="c", run_id=a, job_id=job, owner=ANN.owner, owner_name="Ann",
                                 day="2026-12-07", now=2.0, per_day=3, params=10, epochs=1, skip=True)
    gone = s.jobs.create("landscape", "gone", "cpu", then=seed(run_id=a))[0]
    s.jobs.stop(gone, by=MACHINE)
    s.jobs.delete(gone, by=MACHINE)


def tables(s: Store) -> dict[str, list[tuple]]:
    return {t: sorted((tuple(r) for r in s.db.con.execute(f"SELECT * FROM {t}").fetchall()), key=repr)
            for t in TABLES}


def test_a_lab_goes_to_postgresql_and_back_with_every_record_equal(tmp_path, pg_url, lab_home):
    src = Store(lab_home / "runs.db")
    a_lab(src)
    before = tables(src)
    assert all(before.values()), [t for t, rows in before.items() if not rows]  # every table has records
    src.close()

    done = run_cli("store", "copy", lab_home, pg_url, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["copied"] == {t: len(rows) for t, rows in before.items()} and "***" not in report["to"]

    pg = Store(pg_url)
    assert tables(pg) == before
    run_id = pg.runs.list()[-1].id
    assert pg.db.con.execute("SELECT ckpt_best FROM runs WHERE id=?", (run_id,)).fetchone()[0] == \
        f"runs/{run_id}/best.json"
    assert pg.runs.get(run_id).ckpt_best == str(lab_home / "runs" / str(run_id) / "best.json")
    deleted = max(j for (j, *_rest) in before["jobs"]) + 1  # the deleted job's id is not handed out again
    assert pg.jobs.create("train", "next", "cpu")[0] == deleted + 1
    pg.close()

    back = tmp_path / "back" / "runs.db"
    done = run_cli("store", "copy", pg_url, back)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("copied ") and "jobs 2" in done.stdout
    restored = Store(back)
    after = tables(restored)
    assert after.pop("jobs")[:-1] == before.pop("jobs") and after == before  # plus the one made on PostgreSQL
    assert restored.jobs.create("train", "next", "cpu")[0] == deleted + 2
    restored.close()


def test_a_target_with_records_is_refused_and_left_unchanged(tmp_path, pg_url, lab_home):
    src = Store(lab_home / "runs.db")
    src.jobs.create("train", "a", "cpu", then=seed(runs=[run()]))
    src.close()
    target = Store(pg_url)
    target.people.create("Bob", "hash-bob")
    target.close()
    done = run_cli("store", "copy", lab_home / "runs.db", pg_url)
    assert done.returncode == 2
    assert "already holds records (people: 1)" in done.stderr and "only an empty lab" in done.stderr
    target = Store(pg_url)
    assert [p.name for p in target.people.list()] == ["Bob"] and target.jobs.list() == []
    target.close()
    missing = run_cli("store", "copy", tmp_path / "nothing" / "runs.db", pg_url)
    assert missing.returncode == 2 and "no lab database at" in missing.stderr
    same = run_cli("store", "copy", lab_home, lab_home / "runs.db")
    assert same.returncode == 2 and "the same database" in same.stderr


def test_store_says_which_database_the_lab_uses(lab_home, monkeypatch):
    assert run_cli("store").stdout.strip() == f"SQLite: {lab_home / 'runs.db'}"
    monkeypatch.setenv("RESNET_LAB_DB", "postgresql://lab:secret@db:5432/lab")
    assert run_cli("store").stdout.strip() == "PostgreSQL: postgresql://lab:***@db:5432/lab (RESNET_LAB_DB)"
