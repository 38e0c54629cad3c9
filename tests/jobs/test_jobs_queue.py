"""The one queue (store.jobs): create with de-duplication, claim onto slots, stop, requeue, finish with runs."""

import threading

import pytest

from resnet_lab.identity import MACHINE
from resnet_lab.jobs.turns import claim
from resnet_lab.store import DEDUPE_WINDOW_S
from tests.helpers.homes import seed

CPU1 = {"cpu": 1}


def run(name="r"):
    return {"name": name, "spec": {"stem": "cifar"}, "data": {"name": "digits"}, "train": {"epochs": 1}}


@pytest.fixture
def s(tmp_path, open_store):
    """The queue's store, on SQLite and on PostgreSQL."""
    return open_store(tmp_path / "runs.db")


def test_a_double_click_is_one_job(s):
    job, ids = s.jobs.create("train", "pair", "cpu", then=seed(runs=[run(), run()], partners=True),
                             request_key="session:abc")
    assert s.jobs.create("train", "pair", "cpu", then=seed(runs=[run(), run()], partners=True),
                         request_key="session:abc") == (job, ids)
    assert len(s.runs.list()) == 2
    assert s.jobs.create("train", "x", "cpu", then=seed(runs=[run()]), request_key="other:abc")[0] != job


def test_a_repeated_request_is_the_same_job_while_it_waits_and_a_new_one_after_it_ended(s, monkeypatch):
    first = s.jobs.create("landscape", "l", "cpu", request_key="k")[0]
    import resnet_lab.store.jobs as jobs_mod
    real = jobs_mod.time.time
    later = [DEDUPE_WINDOW_S + 1]
    monkeypatch.setattr(jobs_mod.time, "time", lambda: real() + later[0])
    # a click that reaches a loaded server again long after the first: still queued, so still the same job
    assert s.jobs.create("landscape", "l", "cpu", request_key="k")[0] == first
    assert s.jobs.requested("k") == first
    assert claim(s, {"cpu": 1}) == [(first, "cpu")]
    assert s.jobs.create("landscape", "l", "cpu", request_key="k")[0] == first  # running: the same job too
    s.jobs.finish(first, "done")
    later[0] = 2 * DEDUPE_WINDOW_S + 2
    again = s.jobs.create("landscape", "l", "cpu", request_key="k")[0]  # ended, and not a double-click: new
    assert again != first and s.jobs.requested("k") == again


def test_an_analysis_job_must_name_a_run_that_exists(s):
    with pytest.raises(KeyError, match="no run with id 999"):
        s.jobs.create("landscape", "l", "cpu", then=seed(run_id=999))


def test_claim_is_first_come_first_served_across_kinds_and_respects_capacity(s):
    train = [s.jobs.create("train", f"t{i}", "cpu", then=seed(runs=[run()]))[0] for i in range(2)]
    rid = s.runs.of_job(train[0])[0].id
    land = s.jobs.create("landscape", "l", "cpu", then=seed(run_id=rid))[0]
    gpu = s.jobs.create("train", "g", "cuda", then=seed(runs=[run()]))[0]
    assert claim(s, {"cpu": 2}) == [(train[0], "cpu"), (train[1], "cpu")]  # no GPU slot: the cuda job waits
    assert claim(s, {"cpu": 2}) == []
    assert s.runs.of_job(train[0])[0].status == "running" and s.runs.of_job(train[0])[0].device == "cpu"
    s.jobs.finish(train[0], "done")
    assert claim(s, {"cpu": 2, "cuda:0": 1}) == [(land, "cpu"), (gpu, "cuda:0")]


def test_two_fake_gpus_with_two_slots_each_take_four_of_five_jobs(s):
    jobs = [s.jobs.create("train", f"j{i}", "cuda", then=seed(runs=[run()]))[0] for i in range(5)]
    cpu_job = s.jobs.create("train", "c", "cpu", then=seed(runs=[run()]))[0]
    started = claim(s, {"cpu": 1, "cuda:0": 2, "cuda:1": 2})
    assert started == [(jobs[0], "cuda:0"), (jobs[1], "cuda:1"), (jobs[2], "cuda:0"), (jobs[3], "cuda:1"),
                       (cpu_job, "cpu")]
    assert s.jobs.get(jobs[4]).status == "queued" and s.jobs.running_per_slot() == {"cpu": 1, "cuda:0": 2,
                                                                                      "cuda:1": 2}
    s.jobs.finish(jobs[1], "done")
    assert claim(s, {"cpu": 1, "cuda:0": 2, "cuda:1": 2}) == [(jobs[4], "cuda:1")]


def test_concurrent_claims_never_start_a_job_twice(tmp_path, open_store):
    path = tmp_path / "runs.db"
    s = open_store(path)
    jobs = [s.jobs.create("train", str(i), "cpu", then=seed(runs=[run()]))[0] for i in range(30)]
    claimed: list[int] = []
    lock = threading.Lock()

    def claimer():
        mine = open_store(path)
        for _ in range(40):
            got = claim(mine, {"cpu": 30})
            with lock:
                claimed.extend(j for j, _ in got)

    threads = [threading.Thread(target=claimer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == jobs


def test_stop_a_queued_job_at_once_and_a_running_one_by_request(s):
    queued, ids = s.jobs.create("train", "q", "cpu", then=seed(runs=[run(), run()], partners=True))
    assert s.jobs.stop(queued, by=MACHINE) == "stopped"
    assert {s.runs.get(i).status for i in ids} == {"stopped"}
    running = s.jobs.create("landscape", "l", "cpu", then=seed(run_id=ids[0]))[0]
    claim(s, CPU1)
    assert s.jobs.stop(running, by=MACHINE) == "stopping" and s.jobs.beat(running)
    assert s.jobs.stop(queued, by=MACHINE) == "stopped"  # asking again changes nothing
    with pytest.raises(KeyError):
        s.jobs.stop(999, by=MACHINE)


def test_requeue_only_from_stopped_or_interrupted_and_not_a_diverged_twin(s):
    job, (a, b) = s.jobs.create("train", "pair", "cpu", then=seed(runs=[run(), run()], partners=True))
    claim(s, CPU1)
    s.runs.finish(b, "diverged")
    assert s.jobs.finish(job, "interrupted", error="Interrupted: gone")
    assert s.runs.get(a).status == "interrupted" and s.runs.get(b).status == "diverged"
    s.jobs.requeue(job, by=MACHINE)
    assert s.jobs.get(job).status == "queued" and s.jobs.get(job).resumes == 1 and s.jobs.get(job).error is None
    assert s.runs.get(a).status == "queued" and s.runs.get(b).status == "diverged"
    assert claim(s, CPU1) == [(job, "cpu")]
    with pytest.raises(ValueError, match="only stopped or interrupted"):
        s.jobs.requeue(job, by=MACHINE)


def test_finish_moves_only_from_the_allowed_statuses_and_takes_active_runs_along(s):
    job, (a,) = s.jobs.create("train", "r", "cpu", then=seed(runs=[run()]))
    assert not s.jobs.finish(job, "done")  # still queued: "running" is the default precondition
    claim(s, CPU1)
    assert s.jobs.finish(job, "failed", error="ValueError: bad") and not s.jobs.finish(job, "done")
    assert s.runs.get(a).status == "failed" and s.runs.get(a).error == "ValueError: bad"
    with pytest.raises(ValueError, match="unknown job status"):
        s.jobs.finish(job, "diverged")


def test_progress_and_result_path_are_kept(s, tmp_path):
    rid = s.jobs.create("train", "r", "cpu", then=seed(runs=[run()]))[1][0]
    job = s.jobs.create("landscape", "l", "cpu", then=seed(run_id=rid), unit="evaluations")[0]
    claim(s, {"cpu": 2})
    s.jobs.set_progress(job, 3, 12)
    assert s.jobs.get(job).fraction == 0.25
    s.jobs.finish(job, "done", result_path=str(tmp_path / "runs" / str(rid) / "landscape-2.json"))
    assert s.jobs.get(job).result_path == str(tmp_path / "runs" / str(rid) / "landscape-2.json")
    assert [j.id for j in s.jobs.list(kinds=["landscape"], run_ids=[rid])] == [job]
    with pytest.raises(ValueError):
        s.jobs.update(job, kind="other")


def test_deleting_a_job_takes_its_runs_and_the_analyses_of_them(s):
    job, (a,) = s.jobs.create("train", "r", "cpu", then=seed(runs=[run()]))
    land = s.jobs.create("landscape", "l", "cpu", then=seed(run_id=a))[0]
    s.jobs.stop(land, by=MACHINE)
    s.jobs.finish(job, "done", only_if=["queued"])
    s.jobs.delete(job, by=MACHINE)
    assert s.runs.list() == [] and s.jobs.list() == []


def test_learned_speed_is_a_running_mean_per_device_and_key(s):
    assert s.jobs.speed("cpu", "k") is None
    s.jobs.learn_speed("cpu", "k", seconds=10, units=100)
    assert s.jobs.speed("cpu", "k") == pytest.approx(0.1) and s.jobs.speed("cuda", "k") is None
    s.jobs.learn_speed("cpu", "k", seconds=30, units=100)
    assert s.jobs.speed("cpu", "k") == pytest.approx(0.2)
    s.jobs.learn_speed("cpu", "k", seconds=0, units=100)  # nothing measured: nothing learned
    assert s.jobs.speed("cpu", "k") == pytest.approx(0.2)
