"""Fair turns: owners take turns on each kind of device (not first come, first served across everyone), within
per-owner caps on jobs running and jobs waiting; a job moved to the back waits for every job waiting at the move;
and the queue's forecast plays out exactly what the scheduler's claims do."""

import itertools

import pytest

from resnet_lab import jobs
from resnet_lab.identity import MACHINE, Identity
from resnet_lab.jobs import JobRequest
from resnet_lab.jobs import eta, scheduler
from resnet_lab.jobs.turns import Waiting, claim, queue_order, turn_order
from resnet_lab.store import QueueFull, Store
from resnet_lab.train.handler import TRAIN, TrainingRuns
from tests.helpers.homes import seed

A, B, C, D = (Identity(f"class:{i}", name, source="class") for i, name in enumerate("ABCD", 1))
TEACHER = Identity("login:t", "T", teacher=True, source="login")


def run():
    return {"name": "r", "spec": {}, "data": {}, "train": {}}


def train_job(name, device, **request):
    """A request for a training job of one run."""
    return JobRequest(TRAIN, name, device, payload=TrainingRuns((run(),)), **request)


@pytest.fixture
def s(lab_home):
    return Store()


def queue(s: Store, owner: Identity, n: int, device: str = "cpu", estimate_s: float | None = None,
          first: int = 1) -> list[int]:
    """``n`` jobs of ``owner``, named after them and numbered from ``first``."""
    return [s.jobs.create("train", f"{owner.name}{first + i}", device, then=seed(runs=[run()]), owner=owner,
                          estimate_s=estimate_s)[0] for i in range(n)]


def names(s: Store, ids) -> list[str]:
    return [s.jobs.get(i).name for i in ids]


def start_one_at_a_time(s: Store, capacity=None, cap=None) -> list[str]:
    """Claim, let what started finish, claim again, until nothing starts: the order jobs started in."""
    capacity = capacity or {"cpu": 1}
    order = []
    while started := claim(s, capacity, cap):
        for job, _ in started:
            order.append(s.jobs.get(job).name)
            s.jobs.finish(job, "done")
    return order


def test_the_turn_order_alternates_between_owners_round_by_round():
    w = [Waiting(i, owner, "cpu", queued_at=float(i)) for i, owner in enumerate("AAAAABC")]
    assert [x.owner + str(x.id) for x in turn_order(w)] == ["A0", "B5", "C6", "A1", "A2", "A3", "A4"]
    # the owner served least recently goes first; never served before anyone who was
    served = {("cpu", "A"): 1, ("cpu", "B"): 7, ("cuda", "C"): 9}
    assert [x.id for x in turn_order(w, served)][:3] == [6, 0, 5]
    # each kind of device has its own turns
    mixed = [Waiting(1, "A", "cuda", queued_at=1.0), Waiting(2, "B", "cpu", queued_at=2.0),
             Waiting(3, "A", "cpu", queued_at=3.0), Waiting(4, "B", "cuda", queued_at=4.0)]
    assert [x.id for x in turn_order(mixed, {("cpu", "B"): 1})] == [1, 3, 2, 4]


def test_five_jobs_of_one_student_do_not_hold_back_the_others(s):
    queue(s, A, 5)
    queue(s, B, 1)
    queue(s, C, 1)
    assert names(s, [j.id for j in queue_order(s)]) == ["A1", "B1", "C1", "A2", "A3", "A4", "A5"]
    assert start_one_at_a_time(s) == ["A1", "B1", "C1", "A2", "A3", "A4", "A5"]


def test_several_slots_take_a_round_at_once_and_a_newcomer_goes_next(s):
    queue(s, A, 4)
    queue(s, B, 2)
    started = claim(s, {"cpu": 3})
    assert names(s, [j for j, _ in started]) == ["A1", "B1", "A2"]
    for job, _ in started:
        s.jobs.finish(job, "done")
    queue(s, C, 1)  # never served: before A and B, who were
    assert start_one_at_a_time(s) == ["C1", "B2", "A3", "A4"]


def test_the_machines_jobs_are_one_owner_among_others_and_alone_first_come_first_served(s):
    queue(s, MACHINE, 3)
    assert start_one_at_a_time(s) == ["this machine1", "this machine2", "this machine3"]
    queue(s, MACHINE, 2)
    queue(s, A, 1)
    assert start_one_at_a_time(s) == ["A1", "this machine1", "this machine2"]


def test_an_owner_at_the_running_cap_is_passed_over_not_waited_for(s):
    queue(s, A, 3)
    queue(s, B, 2)
    queue(s, MACHINE, 2)
    started = claim(s, {"cpu": 6}, max_running_per_owner=1)
    assert names(s, [j for j, _ in started]) == ["A1", "B1", "this machine1", "this machine2"]  # local: no cap
    assert claim(s, {"cpu": 6}, max_running_per_owner=1) == []
    s.jobs.finish(started[0][0], "done")  # A's job ends: A's next starts, B still has one running
    assert names(s, [j for j, _ in claim(s, {"cpu": 6}, max_running_per_owner=1)]) == ["A2"]


def test_a_job_that_does_not_fit_still_holds_back_the_jobs_behind_it_but_a_capped_one_does_not(s):
    (busy,) = queue(s, A, 1)
    assert claim(s, {"cpu": 1}) == [(busy, "cpu")]  # A served first, then the machine
    (mine,) = queue(s, MACHINE, 1)
    assert claim(s, {"cpu": 2}) == [(mine, "cpu")]
    big = s.jobs.create("train", "A-big", "cpu", then=seed(runs=[run()]), owner=A, world_size=2)[0]
    (m1,) = queue(s, MACHINE, 1)
    assert [j.id for j in queue_order(s)] == [big, m1]
    assert claim(s, {"cpu": 3}) == []  # A's group of two waits for two lanes, and M1 behind it waits too
    assert claim(s, {"cpu": 3}, max_running_per_owner=1) == [(m1, "cpu")]  # A is at the cap: passed over
    assert s.jobs.get(big).status == "queued"


def test_a_job_moved_to_the_back_starts_after_every_job_waiting_at_the_move(s):
    (a1,) = queue(s, A, 1)
    queue(s, B, 2)
    queue(s, C, 1)
    assert names(s, [j.id for j in queue_order(s)]) == ["A1", "B1", "C1", "B2"]
    s.jobs.move_to_back(a1, by=TEACHER)
    assert names(s, [j.id for j in queue_order(s)]) == ["B1", "C1", "B2", "A1"]
    queue(s, D, 1)  # queued after the move: takes its ordinary turn, which may come before A1's
    assert names(s, [j.id for j in queue_order(s)]) == ["B1", "C1", "D1", "B2", "A1"]
    assert start_one_at_a_time(s) == ["B1", "C1", "D1", "B2", "A1"]
    assert not s.jobs.get(a1).at_back  # started: the mark is spent


def test_once_the_jobs_it_waited_for_have_started_a_moved_job_takes_ordinary_turns(s):
    (a1,) = queue(s, A, 1)
    (b1,) = queue(s, B, 1)
    s.jobs.move_to_back(a1, by=A)
    queue(s, B, 1, first=2)
    queue(s, C, 1)
    assert names(s, [j.id for j in queue_order(s)]) == ["B1", "A1", "C1", "B2"]
    assert claim(s, {"cpu": 1}) == [(b1, "cpu")]
    assert names(s, [j.id for j in queue_order(s)]) == ["A1", "C1", "B2"]  # A was never served


def test_a_queued_owner_over_the_cap_is_refused_with_what_to_do(s, monkeypatch):
    monkeypatch.setattr(scheduler, "pump", lambda store=None, capacity=None, max_running_per_owner=None: [])
    for _ in range(3):
        scheduler.submit(s, train_job("a", "cpu", owner=A, max_queued_per_owner=3, request_key=None))
    before = len(s.jobs.list())
    with pytest.raises(QueueFull) as e:
        scheduler.submit(s, train_job("a", "cpu", owner=A, max_queued_per_owner=3))
    assert str(e.value) == ("You already have 3 jobs waiting or running; this class allows 3 at a time. Stop one "
                            "or wait for one to finish.")
    assert isinstance(e.value, ValueError) and jobs.QueueFull is QueueFull
    assert len(s.jobs.list()) == before and len(s.runs.list()) == before
    # others, the teacher and the machine are not held by A's jobs
    scheduler.submit(s, train_job("b", "cpu", owner=B, max_queued_per_owner=3))
    for who in (TEACHER, MACHINE):
        for _ in range(4):
            scheduler.submit(s, train_job("t", "cpu", owner=who, max_queued_per_owner=3))
    # a double click at the cap is the first job, not a refusal
    s.jobs.stop(s.jobs.list(owner=A.owner)[0].id, by=A)
    first = scheduler.submit(s, train_job("a", "cpu", owner=A, max_queued_per_owner=3, request_key="tab:1"))
    assert scheduler.submit(s, train_job("a", "cpu", owner=A, max_queued_per_owner=3, request_key="tab:1")) == first
    with pytest.raises(QueueFull):
        s.jobs.create("train", "a", "cpu", then=seed(runs=[run()]), owner=A, max_active_per_owner=3)
    with pytest.raises(QueueFull, match="This needs 2 jobs, and you already have 3 jobs"):
        scheduler.check_room(s, A, 2, max_queued_per_owner=4)


def test_pump_takes_its_caps_from_the_class_settings(s, monkeypatch):
    monkeypatch.setattr(scheduler, "queue_caps", lambda: (2, 1))
    monkeypatch.setattr(scheduler, "spawn", lambda store, job_id, slot: None)
    queue(s, A, 2)
    with pytest.raises(QueueFull):
        scheduler.submit(s, train_job("a3", "cpu", owner=A, start=False))
    queue(s, B, 1)
    assert names(s, jobs.pump(s, capacity={"cpu": 3})) == ["A1", "B1"]  # one running each


def test_the_class_settings_file_sets_both_caps(s, lab_home, monkeypatch):
    monkeypatch.delenv("RESNET_LAB_SETTINGS", raising=False)
    monkeypatch.setattr(scheduler, "spawn", lambda store, job_id, slot: None)
    assert scheduler.queue_caps() == (None, None)  # no settings file: one person's lab, no caps
    (lab_home / "classroom.toml").write_text("[queue]\nmax_queued_per_owner = 2\nmax_running_per_owner = 1\n")
    assert scheduler.queue_caps() == (2, 1)
    for _ in range(2):
        scheduler.submit(s, train_job("A", "cpu", owner=A, start=False))
    with pytest.raises(QueueFull, match="this class allows 2 at a time"):
        scheduler.submit(s, train_job("A", "cpu", owner=A, start=False))
    queue(s, B, 1)
    assert names(s, jobs.pump(s, capacity={"cpu": 3})) == ["A", "B1"]
    queued = s.jobs.list(owner=A.owner, statuses=["queued"])
    assert eta.forecast(s, {"cpu": 3}, now=0.0)[queued[0].id].start_in_s is None  # waits for A's running job


def play_claims(s: Store, capacity, cap) -> dict[int, float]:
    """What the scheduler does, in simulated time: claim; the started jobs run for their estimates; at each
    moment one ends, finish it and claim again. Returns {job id: start time}."""
    t, ends, starts = 0.0, {}, {}
    while True:
        for job, _ in claim(s, capacity, cap):
            starts[job] = t
            ends[job] = t + s.jobs.get(job).estimate_s
        if not ends:
            return starts
        t = min(ends.values())
        for job in [j for j, e in ends.items() if e == t]:
            s.jobs.finish(job, "done")
            del ends[job]


@pytest.mark.parametrize("capacity, cap", [({"cpu": 1}, None), ({"cpu": 2}, None), ({"cpu": 3}, 1),
                                           ({"cpu": 2, "cuda:0": 1}, 2)])
def test_the_forecast_plays_out_what_the_claims_do(s, capacity, cap):
    durations = itertools.cycle([30.0, 50.0, 20.0, 70.0, 40.0])
    for owner, n in ((A, 4), (B, 1), (C, 2), (MACHINE, 2), (D, 1)):
        for i in range(n):
            device = "cuda" if "cuda:0" in capacity and i % 2 else "cpu"
            s.jobs.create("train", f"{owner.name}{i}", device, then=seed(runs=[run()]), owner=owner,
                          estimate_s=next(durations))
    moved = s.jobs.list(owner=A.owner, oldest_first=True)[1].id
    s.jobs.move_to_back(moved, by=A)
    planned = eta.forecast(s, capacity, now=0.0, max_running_per_owner=cap)
    order = [j.id for j in queue_order(s)]
    assert {f.ahead for f in planned.values()} and all(planned[j].start_in_s is not None for j in order)
    for kind in ("cpu", "cuda"):
        line = [j.id for j in queue_order(s, kind)]
        assert [planned[j].ahead for j in line] == list(range(len(line)))
    starts = play_claims(s, capacity, cap)
    assert starts == {j: pytest.approx(planned[j].start_in_s) for j in order}


def test_a_new_jobs_forecast_takes_its_owners_turn_and_changes_no_other(s):
    queue(s, A, 3, estimate_s=60.0)
    before = eta.forecast(s, {"cpu": 1}, now=0.0, max_running_per_owner=None)
    out = eta.forecast(s, {"cpu": 1}, now=0.0, new={"device": "cpu", "estimate_s": 10.0, "owner": B.owner},
                       max_running_per_owner=None)
    assert (out[None].ahead, out[None].start_in_s) == (1, 60.0)  # B's first job, right after A's first
    assert {k: v for k, v in out.items() if k is not None} == before
    mine = eta.forecast(s, {"cpu": 1}, now=0.0, new={"device": "cpu", "estimate_s": 10.0, "owner": A.owner},
                        max_running_per_owner=None)[None]
    assert (mine.ahead, mine.start_in_s) == (3, 180.0)


def test_a_settings_file_broken_while_the_lab_runs_keeps_the_last_caps(lab_home):
    (lab_home / "classroom.toml").write_text("[queue]\nmax_queued_per_owner = 2\nmax_running_per_owner = 1\n")
    assert scheduler.queue_caps() == (2, 1)
    (lab_home / "classroom.toml").write_text("[queue]\nmax_queued_per_owner = 'many'\n")  # a typo
    assert scheduler.queue_caps() == (2, 1)
    (lab_home / "classroom.toml").write_text("[queue]\nmax_queued_per_owner = 4\n")
    assert scheduler.queue_caps() == (4, None)
