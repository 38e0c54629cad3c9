"""Owners enforced in the store/jobs layer: only a job's owner, a teacher or the machine may stop, resume, move or
delete it — through the store, the jobs layer and the launcher alike — and a refused request changes nothing
(every row of the database read before and after)."""

import pytest

from resnet_lab import jobs
from resnet_lab.identity import LOCAL, MACHINE, Identity, NotAllowed
from resnet_lab.jobs.turns import claim
from resnet_lab.store import Store
from resnet_lab.store.copy import TABLES
from resnet_lab.train import launcher
from tests.helpers.homes import seed

ADA = Identity("class:1", "Ada", source="class")
BOB = Identity("class:2", "Bob <b>", source="class")
TEACHER = Identity("login:t@school.org", "Ms T", teacher=True, source="login")


def run(name="r"):
    return {"name": name, "spec": {"stem": "cifar"}, "data": {"name": "digits"}, "train": {"epochs": 1}}


@pytest.fixture
def s(lab_home, engine):
    """The store, on SQLite and on PostgreSQL: the owner checks are made inside the write transactions of both."""
    return Store()


@pytest.fixture(autouse=True)
def _no_workers(monkeypatch):
    """The jobs layer pumps after a resume or a move: claim, but start no process."""
    monkeypatch.setattr(jobs.scheduler, "spawn", lambda store, job_id, slot: None)


def everything(s: Store) -> dict[str, list[tuple]]:
    """Every row of every table: what "nothing changed" is checked against."""
    return {t: sorted((tuple(r) for r in s.db.con.execute(f"SELECT * FROM {t}")), key=repr) for t in TABLES}


def bobs_jobs(s: Store) -> dict[str, int]:
    """Bob's jobs in every state an action applies to: queued, running, stopped, done (with a run file)."""
    queued = s.jobs.create("train", "q", "cpu", then=seed(runs=[run()]), owner=BOB)[0]
    s.jobs.create("train", "filler", "cpu", then=seed(runs=[run()]), owner=ADA)
    running = s.jobs.create("train", "r", "cpu", then=seed(runs=[run()]), owner=BOB)[0]
    s.db.con.execute("UPDATE jobs SET queued_at=0 WHERE id=?", (running,))  # first in line
    assert claim(s, {"cpu": 1}) == [(running, "cpu")]
    stopped = s.jobs.create("train", "s", "cpu", then=seed(runs=[run()]), owner=BOB)[0]
    s.jobs.stop(stopped, by=BOB)
    done, (rid,) = s.jobs.create("train", "d", "cpu", then=seed(runs=[run()]), owner=BOB)
    s.jobs.finish(done, "done", only_if=["queued"])
    (s.home / "runs" / str(rid)).mkdir(parents=True)
    (s.home / "runs" / str(rid) / "best.json").write_text("{}")
    return {"queued": queued, "running": running, "stopped": stopped, "done": done, "done_run": rid}


def test_a_student_can_do_nothing_to_another_students_jobs_in_the_store(s):
    b = bobs_jobs(s)
    before = everything(s)
    attempts = [(s.jobs.stop, b["queued"]), (s.jobs.stop, b["running"]), (s.jobs.move_to_back, b["queued"]),
                (s.jobs.requeue, b["stopped"]), (s.jobs.delete, b["stopped"]), (s.jobs.delete, b["done"])]
    for action, job in attempts:
        with pytest.raises(NotAllowed, match=rf"You may not \w+ job {job}: it is Bob <b>'s"):
            action(job, by=ADA)
    assert everything(s) == before
    assert (s.home / "runs" / str(b["done_run"]) / "best.json").is_file()


def test_nor_through_the_jobs_layer_or_the_launcher(s):
    b = bobs_jobs(s)
    before = everything(s)
    attempts = [(jobs.stop, b["queued"]), (jobs.stop, b["running"]), (jobs.move_to_back, b["queued"]),
                (jobs.resume, b["stopped"]), (jobs.delete, b["done"])]
    for action, job in attempts:
        with pytest.raises(NotAllowed):
            action(job, s, by=ADA)
    run_of = {k: s.runs.of_job(b[k])[0].id for k in ("queued", "running", "stopped", "done")}
    for action, which in [(launcher.stop, "queued"), (launcher.stop, "running"), (launcher.resume, "stopped"),
                          (launcher.delete_run, "done"), (launcher.delete_run, "stopped")]:
        with pytest.raises(NotAllowed):
            action(run_of[which], s, by=ADA)
    assert everything(s) == before
    assert (s.home / "runs" / str(b["done_run"]) / "best.json").is_file()


def test_who_asks_must_be_named_and_be_an_identity(s):
    job = s.jobs.create("train", "q", "cpu", then=seed(runs=[run()]), owner=BOB)[0]
    with pytest.raises(TypeError):
        s.jobs.stop(job)  # by is required
    with pytest.raises(TypeError):
        jobs.stop(job, s)
    with pytest.raises(TypeError, match="an Identity is needed to stop job"):
        s.jobs.stop(job, by=BOB.owner)  # a bare owner string is not an identity
    assert s.jobs.get(job).status == "queued"


def test_the_owner_may_do_everything_to_their_own_jobs(s):
    b = bobs_jobs(s)
    assert s.jobs.stop(b["running"], by=BOB) == "stopping" and s.jobs.get(b["running"]).stop_requested
    s.jobs.move_to_back(b["queued"], by=BOB)
    assert s.jobs.get(b["queued"]).at_back
    assert s.jobs.stop(b["queued"], by=BOB) == "stopped"
    jobs.resume(b["stopped"], s, by=BOB)
    assert s.jobs.get(b["stopped"]).status == "queued"
    assert launcher.delete_run(b["done_run"], s, by=BOB) == [b["done_run"]]
    with pytest.raises(KeyError):
        s.jobs.get(b["done"])
    assert not (s.home / "runs" / str(b["done_run"])).exists()  # its files went with it


@pytest.mark.parametrize("who", [TEACHER, MACHINE], ids=["teacher", "machine"])
def test_a_teacher_and_the_machine_may_act_on_anyones_jobs(s, who):
    b = bobs_jobs(s)
    assert s.jobs.stop(b["running"], by=who) == "stopping"
    s.jobs.move_to_back(b["queued"], by=who)
    assert jobs.stop(b["queued"], s, by=who) == "stopped"
    launcher.resume(s.runs.of_job(b["stopped"])[0].id, s, by=who)
    assert s.jobs.get(b["stopped"]).status in ("queued", "running")
    s.jobs.delete(b["done"], by=who)
    assert b["done"] not in {j.id for j in s.jobs.list()}


def test_an_analysis_of_someone_elses_run_is_its_own_owners(s):
    job, (rid,) = s.jobs.create("train", "bob's", "cpu", then=seed(runs=[run()]), owner=BOB)
    s.jobs.finish(job, "done", only_if=["queued"])
    land = s.jobs.create("landscape", "ada's look at bob's run", "cpu", then=seed(run_id=rid), owner=ADA)[0]
    before = everything(s)
    with pytest.raises(NotAllowed):
        s.jobs.stop(land, by=BOB)  # Bob owns the run, not Ada's analysis of it
    with pytest.raises(ValueError, match=f"job {land} is still queued; stop it first"):
        s.jobs.delete(job, by=BOB)  # nor may his delete take it away while it waits
    assert everything(s) == before
    assert s.jobs.stop(land, by=ADA) == "stopped"
    with pytest.raises(NotAllowed):
        s.jobs.delete(land, by=BOB)
    s.jobs.delete(land, by=ADA)
    assert [j.id for j in s.jobs.list()] == [job]


def test_refusals_for_the_state_of_a_job_change_nothing(s):
    job = s.jobs.create("train", "q", "cpu", then=seed(runs=[run()]), owner=BOB)[0]
    before = everything(s)
    with pytest.raises(ValueError, match="only stopped or interrupted jobs resume"):
        s.jobs.requeue(job, by=BOB)
    with pytest.raises(KeyError):
        s.jobs.move_to_back(999, by=TEACHER)
    assert everything(s) == before
    assert claim(s, {"cpu": 1}) == [(job, "cpu")]
    before = everything(s)
    with pytest.raises(ValueError, match="only a queued job can be moved to the back"):
        s.jobs.move_to_back(job, by=BOB)
    with pytest.raises(ValueError, match="still running; stop it first"):
        s.jobs.delete(job, by=TEACHER)
    assert everything(s) == before


def test_jobs_and_runs_are_listed_by_owner(s):
    a = s.jobs.create("train", "a", "cpu", then=seed(runs=[run(), run()], partners=True), owner=ADA)[0]
    b = s.jobs.create("train", "b", "cpu", then=seed(runs=[run()]), owner=BOB)[0]
    m = s.jobs.create("train", "m", "cpu", then=seed(runs=[run()]))[0]
    assert [j.id for j in s.jobs.list(owner=ADA.owner)] == [a]
    assert [j.id for j in s.jobs.list(owner=LOCAL, statuses=["queued"])] == [m]
    assert [r.job_id for r in s.runs.list(owner=BOB.owner)] == [b]
    assert len(s.runs.list(owner=ADA.owner)) == 2 and s.runs.list(owner="class:99") == []
    assert s.runs.list(statuses=["done"], owner=ADA.owner) == []
    assert (s.jobs.get(a).owner_name, s.runs.of_job(b)[0].owner) == ("Ada", BOB.owner)
