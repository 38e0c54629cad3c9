"""Queue position and time estimates: from running jobs' progress, the lab's finished jobs, and the slots."""

import pytest

from resnet_lab.jobs import JobRequest
from resnet_lab.jobs import eta
from resnet_lab.jobs.turns import claim
from resnet_lab.store import Store
from resnet_lab.train.handler import TRAIN, TrainingRuns
from tests.helpers.homes import seed


def run():
    return {"name": "r", "spec": {}, "data": {}, "train": {}}


def train_job(name, device, **request):
    """A request for a training job of one run."""
    return JobRequest(TRAIN, name, device, payload=TrainingRuns((run(),)), **request)


@pytest.fixture
def s(tmp_path):
    return Store(tmp_path / "runs.db")


def timed(s, key, units, seconds, device="cpu", resumes=0, start=100.0):
    """A finished job of ``key`` that took ``seconds`` from its start to its end: what the lab has measured."""
    job = s.jobs.create("train", "done", device, then=seed(runs=[run()]), work={"key": key, "units": units})[0]
    s.db.con.execute("UPDATE jobs SET status='done', started_at=?, finished_at=?, resumes=? WHERE id=?",
                     (start, start + seconds, resumes, job))
    return job


def running(s, capacity, now, started, progress=0, total=None, work=None, estimate_s=None, resumes=0):
    job = s.jobs.create("train", "a", "cpu", then=seed(runs=[run()]), work=work, estimate_s=estimate_s)[0]
    assert [j for j, _ in claim(s, capacity)] == [job]
    s.db.con.execute("UPDATE jobs SET started_at=?, progress=?, total=?, resumes=? WHERE id=?",
                     (started, progress, total, resumes, job))
    return job


def test_an_empty_queue_starts_a_new_job_now(s):
    f = eta.forecast(s, {"cpu": 1}, new={"device": "cpu", "estimate_s": 30})[None]
    assert f.starts_now and f.start_in_s == 0 and f.end_in_s == 30
    assert f.describe() == "starts now · done in about 30 s"


def test_queued_jobs_wait_for_the_running_ones_in_order(s):
    now = 1000.0
    timed(s, "train:a", 100, 240)
    a = running(s, {"cpu": 1}, now, now - 60, progress=25, total=100, work={"key": "train:a", "units": 100})
    q1 = s.jobs.create("train", "b", "cpu", then=seed(runs=[run()]), estimate_s=120)[0]
    q2 = s.jobs.create("train", "c", "cpu", then=seed(runs=[run()]), estimate_s=60)[0]
    out = eta.forecast(s, {"cpu": 1}, now=now, new={"device": "cpu", "estimate_s": None})
    # timed (240 s for the whole job): its own pace (60 s for 25%: 180 s left) weighs 25%, the timing's
    # share of the work left (180 s) the rest
    assert out[a].status == "running" and out[a].end_in_s == pytest.approx(180) and out[a].end_range is None
    assert (out[q1].ahead, out[q1].start_in_s, out[q1].end_in_s) == (0, pytest.approx(180), pytest.approx(300))
    assert (out[q2].ahead, out[q2].start_in_s, out[q2].end_in_s) == (1, pytest.approx(300), pytest.approx(360))
    new = out[None]
    assert new.ahead == 2 and new.start_in_s == pytest.approx(360) and new.end_in_s is None
    assert new.describe() == "2 jobs ahead, starts in about 6 min"
    assert out[q2].describe() == "1 job ahead, starts in about 5 min · done in about 6 min"


def test_two_slots_share_the_queue_and_an_unknown_duration_stops_the_clock(s):
    now = 0.0
    a = s.jobs.create("train", "a", "cuda", then=seed(runs=[run()]))[0]  # running, no progress, no estimate: unknown
    b = s.jobs.create("train", "b", "cuda", then=seed(runs=[run()]), estimate_s=100)[0]
    claim(s, {"cuda:0": 1, "cuda:1": 1})
    c = s.jobs.create("train", "c", "cuda", then=seed(runs=[run()]), estimate_s=50)[0]
    d = s.jobs.create("train", "d", "cuda", then=seed(runs=[run()]), estimate_s=50)[0]
    s.db.con.execute("UPDATE jobs SET started_at=? WHERE id IN (?, ?)", (now, a, b))
    out = eta.forecast(s, {"cuda:0": 1, "cuda:1": 1}, now=now)
    assert out[a].end_in_s is None and out[a].why == "no job like it timed on cuda yet"
    assert out[b].end_in_s == pytest.approx(100)
    assert out[c].start_in_s == pytest.approx(100) and out[c].end_in_s == pytest.approx(150)
    assert out[d].start_in_s == pytest.approx(150)  # after c on the same GPU: a's end is unknown
    assert out[d].ahead == 1


def test_a_queued_job_starts_when_the_first_lane_frees_not_after_the_sum(s):
    """Two lanes, one running job nearly done and one long: the job waiting starts when the short one ends."""
    now = 1000.0
    timed(s, "train:long", 100, 1000)
    timed(s, "train:short", 100, 100)
    cap = {"cpu": 2}
    long = running(s, cap, now, now - 10, progress=1, total=100, work={"key": "train:long", "units": 100})
    short = running(s, cap, now, now - 95, progress=95, total=100, work={"key": "train:short", "units": 100})
    waiting = s.jobs.create("train", "w", "cpu", then=seed(runs=[run()]), work={"key": "train:short", "units": 100})[0]
    out = eta.forecast(s, cap, now=now)
    assert out[short].end_in_s == pytest.approx(5)  # 95 s for 95%, and the timing says the same
    assert out[long].end_in_s > 900
    assert out[waiting].start_in_s == pytest.approx(5) and out[waiting].end_in_s == pytest.approx(105)
    assert out[waiting].describe() == "next in line, starts in about 5 s · done in about 2 min"


def test_a_job_never_timed_gets_a_range_and_a_timed_one_a_point(s):
    timed(s, "train:small", 1000, 60)  # 0.06 s per unit
    timed(s, "train:big", 1000, 240)  # 0.24 s per unit
    q = s.jobs.create("train", "new model", "cpu", then=seed(runs=[run()]), work={"key": "train:new", "units": 1000})[0]
    f = eta.forecast(s, {"cpu": 1}, now=0)[q]
    # the fastest and slowest per unit of the lab's train jobs on cpu, each stretched by UNTIMED_SPREAD
    assert f.end_range == pytest.approx((60 / eta.UNTIMED_SPREAD, 240 * eta.UNTIMED_SPREAD))
    assert f.start_in_s == 0 and f.describe() == "starts now · done in about 30 s–8 min"
    timed(s, "train:new", 1000, 150)  # the lab has now timed this very job
    f = eta.forecast(s, {"cpu": 1}, now=0)[q]
    assert f.end_range is None and f.end_in_s == pytest.approx(150)
    assert f.describe() == "starts now · done in about 2 min"


def test_the_job_behind_an_untimed_one_starts_within_a_range(s):
    timed(s, "train:other", 100, 100)
    first = s.jobs.create("train", "first", "cpu", then=seed(runs=[run()]), work={"key": "train:new", "units": 100})[0]
    second = s.jobs.create("train", "second", "cpu", then=seed(runs=[run()]), estimate_s=60)[0]
    out = eta.forecast(s, {"cpu": 1}, now=0)
    assert out[second].start_range == pytest.approx((50, 200))
    assert out[second].end_range == pytest.approx((110, 260))
    assert out[second].describe() == "1 job ahead, starts in about 50 s–3 min · done in about 2–4 min"
    assert out[first].end_in_s == pytest.approx(100)  # the range's centre (geometric mean)


def test_a_kind_of_job_never_run_on_the_device_has_no_time_and_says_why(s):
    timed(s, "train:a", 100, 100, device="cuda")  # timed on the GPU: says nothing of the CPU
    q = s.jobs.create("train", "new", "cpu", then=seed(runs=[run()]), work={"key": "train:a", "units": 100})[0]
    f = eta.forecast(s, {"cpu": 1}, now=0)[q]
    assert f.start_in_s == 0 and f.end_in_s is None and f.why == "no job like it timed on cpu yet"


def test_an_untimed_running_job_shows_a_range_that_narrows_with_progress(s):
    now = 1000.0
    job = running(s, {"cpu": 1}, now, now - 60, progress=10, total=100, work={"key": "train:x", "units": 100})
    early = eta.forecast(s, {"cpu": 1}, now=now)[job]
    # 60 s for 10%: 540 s if the whole minute was training (the late end), 54 s if it was mostly start-up
    assert early.end_range == pytest.approx((54, 540)) and early.describe() == "running · about 54 s–9 min left"
    s.db.con.execute("UPDATE jobs SET progress=80 WHERE id=?", (job,))
    late = eta.forecast(s, {"cpu": 1}, now=now)[job]
    assert late.end_range == pytest.approx((12, 15))
    assert late.end_range[1] / late.end_range[0] < early.end_range[1] / early.end_range[0]


def test_a_timed_job_early_on_trusts_the_timing_more_than_its_start_up(s):
    """The issue's case: 2% done after a slow start says 12 min left; the lab's timing says about 1 min."""
    now = 1000.0
    timed(s, "train:x", 100, 66)
    job = running(s, {"cpu": 1}, now, now - 15, progress=2, total=100, work={"key": "train:x", "units": 100})
    f = eta.forecast(s, {"cpu": 1}, now=now)[job]
    own = 15 / 0.02 * 0.98  # 735 s: start-up counted as work
    assert f.end_range is None and f.end_in_s == pytest.approx(0.02 * own + 0.98 * 66 * 0.98)
    assert f.end_in_s < 80


def test_a_resumed_job_is_not_timed_from_its_first_start(s):
    """Resumed after a day: its start is its first start, its progress counts the first try."""
    now = 100_000.0
    job = running(s, {"cpu": 1}, now, now - 86_400, progress=50, total=100, estimate_s=200, resumes=1)
    f = eta.forecast(s, {"cpu": 1}, now=now)[job]
    assert f.end_in_s == pytest.approx(100)  # half of its estimate, not 86,400 s more


def test_timings_count_whole_runs_of_one_go_on_one_device(s):
    timed(s, "train:a", 100, 30)
    timed(s, "train:a", 200, 50, resumes=1)  # resumed: its start is its first start
    timed(s, "train:a", 300, 70, device="cuda")
    assert eta.timings(s, "cpu") == {"train:a": [(100.0, 30.0)]}


def test_jobs_of_one_key_in_two_sizes_learn_the_start_up_apart():
    history = {"train:a": [(100.0, 30.0), (300.0, 70.0)]}  # 10 s start-up + 0.2 s per unit
    assert eta.duration({"key": "train:a", "units": 200}, None, history) == eta.Span(50, 50)
    assert eta.duration({"key": "train:a", "units": 200}, None, {"train:a": [(100.0, 30.0)]}) == eta.Span(60, 60)
    assert eta.duration(None, 42.0, history) == eta.Span(42, 42)  # no key: what it was queued with
    assert eta.duration(None, None, history) is None


def test_a_device_with_no_slot_never_gets_a_time(s):
    q = s.jobs.create("train", "g", "cuda", then=seed(runs=[run()]), estimate_s=10)[0]
    f = eta.forecast(s, {"cpu": 1})[q]
    assert f.start_in_s is None and f.why == "this lab has no cuda slot"
    assert f.describe() == "next in line, waiting for a free slot (this lab has no cuda slot)"


def test_a_job_submitted_again_is_estimated_from_what_the_first_one_taught(s, lab_home, monkeypatch):
    from resnet_lab.jobs import scheduler

    monkeypatch.setattr(scheduler, "pump", lambda store=None, capacity=None: [])
    s.jobs.learn_speed("cpu", "train:abc", seconds=40, units=4000)
    job, _ = scheduler.submit(s, train_job("again", "cpu", work={"key": "train:abc", "units": 1000}))
    assert s.jobs.get(job).estimate_s == pytest.approx(10)
    other, _ = scheduler.submit(s, train_job("new", "cpu", work={"key": "train:xyz", "units": 1000}))
    assert s.jobs.get(other).estimate_s is None


def test_durations_read_like_a_person_says_them():
    assert [eta.format_duration(x) for x in (0.2, 42, 90, 3000, 9000)] == ["1 s", "42 s", "2 min", "50 min", "2.5 h"]
    assert [eta.format_span(*x) for x in ((600, 900), (40, 120), (20, 40), (61, 89), (3000, 9000))] == [
        "10–15 min", "40 s–2 min", "20–40 s", "1 min", "50 min–2.5 h"]
