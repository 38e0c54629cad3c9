"""Queue position and time estimates: from running jobs' progress, learned speeds, and the slots."""

import pytest

from resnet_lab.jobs import eta
from resnet_lab.store import Store


def run():
    return {"name": "r", "spec": {}, "data": {}, "train": {}}


@pytest.fixture
def s(tmp_path):
    return Store(tmp_path / "runs.db")


def test_an_empty_queue_starts_a_new_job_now(s):
    f = eta.forecast(s, {"cpu": 1}, new={"device": "cpu", "estimate_s": 30})[None]
    assert f.starts_now and f.start_in_s == 0 and f.end_in_s == 30 and f.describe() == "starts now · done in about 30 s"


def test_queued_jobs_wait_for_the_running_ones_in_order(s, monkeypatch):
    now = 1000.0
    running = s.jobs.create("train", "a", "cpu", runs=[run()])[0]
    q1 = s.jobs.create("train", "b", "cpu", runs=[run()], estimate_s=120)[0]
    q2 = s.jobs.create("train", "c", "cpu", runs=[run()], estimate_s=60)[0]
    s.jobs.claim({"cpu": 1})
    s.db.con.execute("UPDATE jobs SET started_at=?, progress=25, total=100 WHERE id=?", (now - 60, running))
    out = eta.forecast(s, {"cpu": 1}, now=now, new={"device": "cpu", "estimate_s": None})
    assert out[running].status == "running" and out[running].end_in_s == pytest.approx(180)  # 60 s for 25%
    assert (out[q1].ahead, out[q1].start_in_s, out[q1].end_in_s) == (0, pytest.approx(180), pytest.approx(300))
    assert (out[q2].ahead, out[q2].start_in_s, out[q2].end_in_s) == (1, pytest.approx(300), pytest.approx(360))
    new = out[None]
    assert new.ahead == 2 and new.start_in_s == pytest.approx(360) and new.end_in_s is None
    assert new.describe() == "2 jobs ahead, starts in about 6 min"
    assert out[q2].describe() == "1 job ahead, starts in about 5 min · done in about 6 min"


def test_two_slots_share_the_queue_and_an_unknown_duration_stops_the_clock(s):
    now = 0.0
    a = s.jobs.create("train", "a", "cuda", runs=[run()])[0]  # running, no progress, no estimate: unknown
    b = s.jobs.create("train", "b", "cuda", runs=[run()], estimate_s=100)[0]
    s.jobs.claim({"cuda:0": 1, "cuda:1": 1})
    c = s.jobs.create("train", "c", "cuda", runs=[run()], estimate_s=50)[0]
    d = s.jobs.create("train", "d", "cuda", runs=[run()], estimate_s=50)[0]
    s.db.con.execute("UPDATE jobs SET started_at=? WHERE id IN (?, ?)", (now, a, b))
    out = eta.forecast(s, {"cuda:0": 1, "cuda:1": 1}, now=now)
    assert out[a].end_in_s is None and out[b].end_in_s == pytest.approx(100)
    assert out[c].start_in_s == pytest.approx(100) and out[c].end_in_s == pytest.approx(150)
    assert out[d].start_in_s == pytest.approx(150)  # after c on the same GPU: a's end is unknown
    assert out[d].ahead == 1


def test_a_device_with_no_slot_never_gets_a_time(s):
    q = s.jobs.create("train", "g", "cuda", runs=[run()], estimate_s=10)[0]
    f = eta.forecast(s, {"cpu": 1})[q]
    assert f.start_in_s is None and f.describe() == "next in line, waiting for a free slot"


def test_a_job_submitted_again_is_estimated_from_what_the_first_one_taught(s, lab_home, monkeypatch):
    from resnet_lab.jobs import scheduler

    monkeypatch.setattr(scheduler, "pump", lambda store=None, capacity=None: [])
    s.jobs.learn_speed("cpu", "train:abc", seconds=40, units=4000)
    job, _ = scheduler.submit(s, "train", "again", "cpu", runs=[run()], work={"key": "train:abc", "units": 1000})
    assert s.jobs.get(job).estimate_s == pytest.approx(10)
    other, _ = scheduler.submit(s, "train", "new", "cpu", runs=[run()], work={"key": "train:xyz", "units": 1000})
    assert s.jobs.get(other).estimate_s is None


def test_durations_read_like_a_person_says_them():
    assert [eta.format_duration(x) for x in (0.2, 42, 90, 3000, 9000)] == ["1 s", "42 s", "2 min", "50 min", "2.5 h"]
