"""A teacher's own jobs are not held by the class's cap on running jobs per owner: they start as soon as a slot is
free (and still take turns), while a student at the cap waits. The queue knows teachers by the class's settings
(``ClassSettings.is_teacher_owner``, handed to the claim as a function), and the forecast plays the same rule."""

import pytest

from resnet_lab import jobs
from resnet_lab.classroom.settings import parse_settings_text
from resnet_lab.identity import MACHINE, Identity
from resnet_lab.jobs import eta, scheduler
from resnet_lab.jobs.turns import Waiting, claim, pick
from resnet_lab.store import Store
from tests.helpers.homes import seed

STUDENT = Identity("class:1", "Ana", source="class")
OTHER = Identity("class:2", "Ben", source="class")
LISTED = Identity("login:t@school.edu", "T", teacher=True, source="login")  # on the settings' teachers list
TOKEN_TEACHER = Identity("teacher", "Teacher", teacher=True, source="teacher")
UNLISTED = Identity("login:ana@school.edu", "Ana", source="login")
SETTINGS = parse_settings_text('[class]\nteachers = ["T@school.edu"]\n[queue]\nmax_running_per_owner = 1\n')


def run():
    return {"name": "r", "spec": {}, "data": {}, "train": {}}


@pytest.fixture
def s(lab_home):
    return Store()


def queue(s: Store, owner: Identity, n: int) -> list[int]:
    return [s.jobs.create("train", f"{owner.name}{i}", "cpu", then=seed(runs=[run()]), owner=owner)[0]
            for i in range(n)]


def test_pick_passes_over_a_capped_student_but_not_an_uncapped_owner():
    order = [Waiting(1, "t", "cpu"), Waiting(2, "s", "cpu"), Waiting(3, "t", "cpu"), Waiting(4, "s", "cpu")]
    cap = {"cpu": 4}
    capped = pick(order, cap, cap, {"t": 1, "s": 1}, max_running_per_owner=1)
    assert capped == []  # both at the cap, nobody exempt (not even by default: only "local" is)
    started = pick(order, cap, cap, {"t": 1, "s": 1}, max_running_per_owner=1, uncapped=lambda o: o == "t")
    assert [w.id for w, _ in started] == [1, 3]
    assert [w.id for w, _ in pick(order, cap, {"cpu": 1}, {}, 1, lambda o: o == "t")] == [1]  # slots still count


def test_the_store_claim_starts_a_teachers_jobs_past_the_cap_and_holds_the_students(s):
    queue(s, STUDENT, 3)
    teacher_jobs = queue(s, LISTED, 2) + queue(s, TOKEN_TEACHER, 2)
    unlisted = queue(s, UNLISTED, 2)
    started = [j for j, _ in claim(s, {"cpu": 10}, 1, SETTINGS.is_teacher_owner)]
    owners = [s.jobs.get(j).owner for j in started]
    assert set(teacher_jobs) <= set(started)  # every teacher job, two of each teacher at once
    assert owners.count(STUDENT.owner) == 1 and owners.count(UNLISTED.owner) == 1  # a login not listed is a student
    assert unlisted[1] not in started and len(started) == 6
    # the same queue claimed with the default rule (the machine only) holds the teachers too
    for j in started:
        s.jobs.finish(j, "done")
    queue(s, LISTED, 2)
    assert len([j for j, _ in claim(s, {"cpu": 10}, 1) if s.jobs.get(j).owner == LISTED.owner]) == 1


def test_who_is_a_teacher_by_owner_key():
    yes = ["local", "teacher", "login:t@school.edu", "proxy:T@School.edu"]
    no = ["class:1", "login:ana@school.edu", "proxy:ana", "class:t@school.edu", "t@school.edu", "", None, 3]
    assert all(SETTINGS.is_teacher_owner(o) for o in yes)
    assert not any(SETTINGS.is_teacher_owner(o) for o in no)
    assert MACHINE.owner in yes and TOKEN_TEACHER.owner in yes


def test_pump_and_forecast_follow_the_settings_files_teachers(s, lab_home, monkeypatch):
    monkeypatch.delenv("RESNET_LAB_SETTINGS", raising=False)
    monkeypatch.setattr(scheduler, "spawn", lambda store, job_id, slot: None)
    (lab_home / "classroom.toml").write_text('[class]\nteachers = ["t@school.edu"]\n'
                                             '[queue]\nmax_running_per_owner = 1\n')
    mine, theirs = queue(s, LISTED, 3), queue(s, STUDENT, 2)
    s.jobs.create("train", "later", "cpu", then=seed(runs=[run()]), owner=LISTED, estimate_s=5.0)
    planned = eta.forecast(s, {"cpu": 4}, now=0.0)
    assert planned[mine[2]].start_in_s == 0 and planned[theirs[1]].start_in_s is None  # waits for Ana's first
    started = jobs.pump(s, capacity={"cpu": 4})
    assert set(mine) <= set(started) and theirs[0] in started and theirs[1] not in started
    (lab_home / "classroom.toml").write_text("[queue]\nmax_running_per_owner = 1\n")  # no longer a teacher
    assert jobs.pump(s, capacity={"cpu": 10}) == []  # "later" waits: its owner already runs 3
