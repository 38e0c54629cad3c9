import threading

import pytest

from resnet_lab.store import DEDUPE_WINDOW_S, Store, decimate


def job(name="r"):
    return {"name": name, "spec": {"stem": "cifar"}, "data": {"name": "digits"}, "train": {"epochs": 1}}


def test_store_uses_wal_and_a_busy_timeout(tmp_path):
    s = Store(tmp_path / "runs.db")
    assert s._con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s._con.execute("PRAGMA busy_timeout").fetchone()[0] >= 10_000


def test_default_path_is_under_resnet_lab_home(lab_home):
    assert Store().path == lab_home / "runs.db"


def test_twin_job_is_two_linked_runs_and_a_double_click_is_one_job(tmp_path):
    s = Store(tmp_path / "runs.db")
    ids = s.create_job([job("resnet"), job("plain")], "cpu", request_key="session-1:abc")
    assert s.get(ids[1]).twin_of == ids[0] and s.get(ids[0]).twin_of is None
    assert s.create_job([job("resnet"), job("plain")], "cpu", request_key="session-1:abc") == ids
    assert len(s.runs()) == 2
    other = s.create_job([job()], "cpu", request_key="session-2:abc")
    assert other[0] not in ids


def test_dedupe_window_expires(tmp_path, monkeypatch):
    s = Store(tmp_path / "runs.db")
    first = s.create_job([job()], "cpu", request_key="k")
    import resnet_lab.store as store_mod
    real = store_mod.time.time
    monkeypatch.setattr(store_mod.time, "time", lambda: real() + DEDUPE_WINDOW_S + 1)
    assert s.create_job([job()], "cpu", request_key="k") != first


def test_claim_is_fifo_and_respects_the_limit(tmp_path):
    s = Store(tmp_path / "runs.db")
    jobs = [s.create_job([job(str(i))], "cpu")[0] for i in range(4)]
    gpu = s.create_job([job("gpu")], "cuda")[0]
    assert s.claim_next("cpu", 2) == jobs[:2]
    assert s.claim_next("cpu", 2) == []
    s.set_status(jobs[0], "done")
    assert s.claim_next("cpu", 2) == [jobs[2]]
    assert s.claim_next("cuda", 1) == [gpu]


def test_concurrent_claims_never_start_a_job_twice(tmp_path):
    path = tmp_path / "runs.db"
    s = Store(path)
    jobs = [s.create_job([job(str(i))], "cpu")[0] for i in range(30)]
    claimed: list[int] = []
    lock = threading.Lock()

    def claimer():
        mine = Store(path)
        for _ in range(40):
            got = mine.claim_next("cpu", 30)
            with lock:
                claimed.extend(got)

    threads = [threading.Thread(target=claimer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(claimed) == jobs


def test_stop_a_queued_job_at_once_and_a_running_one_by_request(tmp_path):
    s = Store(tmp_path / "runs.db")
    queued = s.create_job([job(), job()], "cpu")
    assert s.request_stop(queued[0]) == "stopped"
    assert {s.get(i).status for i in queued} == {"stopped"}
    running = s.create_job([job()], "cpu")[0]
    s.claim_next("cpu", 1)
    assert s.request_stop(running) == "stopping" and s.stop_requested(running)
    with pytest.raises(KeyError):
        s.request_stop(999)


def test_requeue_only_from_stopped_or_interrupted_and_not_the_diverged_twin(tmp_path):
    s = Store(tmp_path / "runs.db")
    a, b = s.create_job([job(), job()], "cpu")
    s.claim_next("cpu", 1)
    s.set_status(a, "interrupted")
    s.set_status(b, "diverged")
    s.requeue(a)
    assert s.get(a).status == "queued" and s.get(b).status == "diverged" and s.get(a).resumes == 1
    assert s.claim_next("cpu", 1) == [a]
    assert s.get(b).status == "diverged"
    with pytest.raises(ValueError, match="only stopped or interrupted"):
        s.requeue(a)


def test_metrics_round_trip_decimated_and_deleted_with_the_run(tmp_path):
    s = Store(tmp_path / "runs.db")
    a, b = s.create_job([job(), job()], "cpu")
    s.add_metrics([(a, i, i / 100, "train/loss", 1 / (i + 1)) for i in range(1000)])
    s.add_metrics([(b, i, i / 100, "train/loss", 2.0) for i in range(10)])
    full = s.metrics(a, ["train/loss"])["train/loss"]
    assert len(full) == 1000 and full[0] == (0, 0.0, 1.0)
    small = s.metrics(a, max_points=100)["train/loss"]
    assert len(small) == 100 and small[0] == full[0] and small[-1] == full[-1]
    s.truncate_metrics(a, 499)
    assert len(s.metrics(a)["train/loss"]) == 500
    s.set_layer_names(a, ["conv1", "fc"])
    s.add_grad_norms([(a, 0, [1.0, 2.0]), (a, 10, [0.5, 0.25])])
    assert s.grad_norms(a) == (["conv1", "fc"], [0, 10], [[1.0, 2.0], [0.5, 0.25]])
    with pytest.raises(ValueError, match="stop it first"):
        s.delete(a)
    s.set_status(a, "done")
    s.set_status(b, "done")
    s.delete(a)
    assert s.runs() == [] and s.metrics(b) == {}


def test_update_refuses_unknown_columns(tmp_path):
    s = Store(tmp_path / "runs.db")
    rid = s.create_job([job()], "cpu")[0]
    s.update(rid, best={"val/acc": 0.5}, step=3)
    assert s.get(rid).best == {"val/acc": 0.5} and s.get(rid).step == 3
    with pytest.raises(ValueError, match="cannot update"):
        s.update(rid, spec_json="{}")


def test_decimate_keeps_ends_and_count():
    pts = list(range(10_001))
    out = decimate(pts, 500)
    assert len(out) == 500 and out[0] == 0 and out[-1] == 10_000 and out == sorted(out)
    assert decimate(pts[:10], 500) == pts[:10]


def test_tasks_queue_fifo_per_device_dedupe_stop_and_go_with_their_run(tmp_path):
    s = Store(tmp_path / "runs.db")
    run = s.create_job([job()], "cpu")[0]
    with pytest.raises(KeyError):
        s.create_task("landscape", 999, {}, "cpu")
    a = s.create_task("landscape", run, {"steps": 5}, "cpu", request_key="k1")
    assert s.create_task("landscape", run, {"steps": 5}, "cpu", request_key="k1") == a  # double-click
    b = s.create_task("landscape", run, {"steps": 7}, "cpu")
    c = s.create_task("landscape", run, {}, "cuda")
    assert s.claim_next_task("cpu", 1) == [a]
    assert s.claim_next_task("cpu", 1) == []  # a is running: no room
    assert s.get_task(a).status == "running" and s.get_task(b).status == "queued"
    assert s.request_task_stop(b) == "stopped" and s.request_task_stop(a) == "stopping"
    assert s.get_task(a).stop_requested
    s.update_task(a, progress=3, total=12)
    assert s.get_task(a).fraction == 0.25
    with pytest.raises(ValueError):
        s.update_task(a, kind="other")
    assert s.set_task_status(a, "done", only_if=["running"]) and not s.set_task_status(a, "failed", only_if=["running"])
    assert s.claim_next_task("cuda", 1) == [c]
    assert [t.id for t in s.tasks(kind="landscape", run_id=run)] == [c, b, a]
    assert [t.id for t in s.tasks(statuses=["done"])] == [a]
    s.set_task_status(c, "done")
    s.set_status(run, "done")
    s.delete(run)
    assert s.tasks() == []


def test_experiments_group_jobs(tmp_path):
    s = Store(tmp_path / "runs.db")
    e = s.create_experiment("degradation", "depth 20 vs 56", {"depths": [20, 56]}, [3, 5])
    assert s.experiment(e).job_ids == [3, 5] and s.experiment(e).params == {"depths": [20, 56]}
    assert [x.id for x in s.experiments("degradation")] == [e] and s.experiments("landscape") == []
    with pytest.raises(KeyError):
        s.experiment(e + 1)


def test_the_same_jobs_are_one_experiment_even_from_another_connection(tmp_path):
    a, b = Store(tmp_path / "runs.db"), Store(tmp_path / "runs.db")  # two server processes, say
    e = a.create_experiment("degradation", "depth 20 vs 56", {}, [3, 5])
    assert b.create_experiment("degradation", "depth 20 vs 56 again", {}, [3, 5]) == e
    assert b.create_experiment("degradation", "reversed", {}, [5, 3]) != e
    assert b.create_experiment("landscape", "other kind", {}, [3, 5]) != e
    assert len(a.experiments()) == 3 and a.experiment(e).name == "depth 20 vs 56"
