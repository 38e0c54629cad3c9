"""The store: WAL and busy timeout, runs and their metrics, experiments, paths relative to the lab home."""

import pytest

from resnet_lab.identity import MACHINE
from resnet_lab.store import Store, decimate
from tests.helpers.homes import seed


def run(name="r", skip=True):
    return {"name": name, "spec": {"stem": "cifar", "skip": skip}, "data": {"name": "digits"}, "train": {"epochs": 1}}


def test_store_uses_wal_and_a_busy_timeout(tmp_path):
    s = Store(tmp_path / "runs.db")
    assert s.db.con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s.db.con.execute("PRAGMA busy_timeout").fetchone()[0] >= 10_000
    assert s.db.con.execute("PRAGMA foreign_keys").fetchone()[0] == 1


def test_default_path_is_under_resnet_lab_home(lab_home):
    assert Store().path == lab_home / "runs.db" and Store().home == lab_home


def test_twins_know_each_other_and_their_kind(tmp_path, open_store):
    s = open_store(tmp_path / "runs.db")
    job, (a, b) = s.jobs.create("train", "pair", "cpu",
                                then=seed(runs=[run("resnet"), run("plain", skip=False)], partners=True))
    solo = s.jobs.create("train", "solo", "cpu", then=seed(runs=[run("solo")]))[1][0]
    ra, rb = s.runs.get(a), s.runs.get(b)
    assert s.runs.partner(ra).id == b and s.runs.partner(b).id == a and s.runs.partner(solo) is None
    assert (ra.kind, rb.kind) == ("ResNet", "plain") and ra.job_id == rb.job_id == job
    assert [r.id for r in s.runs.of_job(job)] == [a, b] and s.jobs.of_run(b).id == job


def test_metrics_round_trip_decimated_and_deleted_with_the_job(tmp_path, open_store):
    s = open_store(tmp_path / "runs.db")
    job, (a, b) = s.jobs.create("train", "pair", "cpu", then=seed(runs=[run(), run()], partners=True))
    other = s.jobs.create("train", "other", "cpu", then=seed(runs=[run()]))[1][0]
    s.runs.add_metrics([(a, i, i / 100, "train/loss", 1 / (i + 1)) for i in range(1000)])
    s.runs.add_metrics([(other, i, i / 100, "train/loss", 2.0) for i in range(10)])
    full = s.runs.metrics(a, ["train/loss"])["train/loss"]
    assert len(full) == 1000 and full[0] == (0, 0.0, 1.0)
    small = s.runs.metrics(a, max_points=100)["train/loss"]
    assert len(small) == 100 and small[0] == full[0] and small[-1] == full[-1]
    s.runs.add_metrics([(a, i, i / 100, "train_s", 0.5 * i) for i in (998, 0, 999)])  # logged out of order
    assert s.runs.last_values([a, b, other], "train_s") == {a: 499.5}  # each run's value at its last step
    assert s.runs.last_values([a, other], "train/loss") == {a: 1 / 1000, other: 2.0} and s.runs.last_values([], "x") == {}
    s.runs.truncate_metrics(a, 499)
    assert len(s.runs.metrics(a)["train/loss"]) == 500 and s.runs.last_values([a], "train_s") == {a: 0.0}
    s.runs.set_layer_names(a, ["conv1", "fc"])
    s.runs.add_grad_norms([(a, 0, [1.0, 2.0]), (a, 10, [0.5, 0.25])])
    assert s.runs.grad_norms(a) == (["conv1", "fc"], [0, 10], [[1.0, 2.0], [0.5, 0.25]])
    with pytest.raises(ValueError, match="stop it first"):
        s.jobs.delete(job, by=MACHINE)
    s.jobs.finish(job, "done", only_if=["queued"])
    s.jobs.delete(job, by=MACHINE)
    assert [r.id for r in s.runs.list()] == [other] and s.runs.metrics(a) == {} and s.runs.grad_norms(a)[1] == []
    assert len(s.runs.metrics(other)["train/loss"]) == 10


def test_update_refuses_unknown_columns(tmp_path, open_store):
    s = open_store(tmp_path / "runs.db")
    rid = s.jobs.create("train", "r", "cpu", then=seed(runs=[run()]))[1][0]
    s.runs.update(rid, best={"val/acc": 0.5}, step=3)
    assert s.runs.get(rid).best == {"val/acc": 0.5} and s.runs.get(rid).step == 3
    with pytest.raises(ValueError, match="cannot update"):
        s.runs.update(rid, spec_json="{}")


def test_checkpoint_paths_are_kept_relative_to_the_home_and_follow_a_moved_home(tmp_path, open_store):
    import shutil

    home = tmp_path / "home"
    s = open_store(home / "runs.db")
    rid = s.jobs.create("train", "r", "cpu", then=seed(runs=[run()]))[1][0]
    ckpt = home / "runs" / str(rid) / "best.json"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_text("{}")
    s.runs.update(rid, ckpt_best=str(ckpt), ckpt_last=str(tmp_path / "elsewhere.json"))
    raw = s.db.con.execute("SELECT ckpt_best, ckpt_last FROM runs WHERE id=?", (rid,)).fetchone()
    assert raw["ckpt_best"] == f"runs/{rid}/best.json"  # inside the home: relative
    assert raw["ckpt_last"] == str(tmp_path / "elsewhere.json")  # outside it: as given
    s.close()
    shutil.copytree(home, tmp_path / "restored")
    moved = open_store(tmp_path / "restored" / "runs.db")
    assert moved.runs.get(rid).ckpt_best == str(tmp_path / "restored" / "runs" / str(rid) / "best.json")


def test_decimate_keeps_ends_and_count():
    pts = list(range(10_001))
    out = decimate(pts, 500)
    assert len(out) == 500 and out[0] == 0 and out[-1] == 10_000 and out == sorted(out)
    assert decimate(pts[:10], 500) == pts[:10]


def test_experiments_group_jobs(tmp_path, open_store):
    s = open_store(tmp_path / "runs.db")
    e = s.experiments.create("degradation", "depth 20 vs 56", {"depths": [20, 56]}, [3, 5])
    assert s.experiments.get(e).job_ids == [3, 5] and s.experiments.get(e).params == {"depths": [20, 56]}
    assert [x.id for x in s.experiments.list("degradation")] == [e] and s.experiments.list("landscape") == []
    with pytest.raises(KeyError):
        s.experiments.get(e + 1)


def test_the_same_jobs_are_one_experiment_even_from_another_connection(tmp_path, open_store):
    a, b = open_store(tmp_path / "runs.db"), open_store(tmp_path / "runs.db")  # two server processes, say
    e = a.experiments.create("degradation", "depth 20 vs 56", {}, [3, 5])
    assert b.experiments.create("degradation", "depth 20 vs 56 again", {}, [3, 5]) == e
    assert b.experiments.create("degradation", "reversed", {}, [5, 3]) != e
    assert b.experiments.create("landscape", "other kind", {}, [3, 5]) != e
    assert len(a.experiments.list()) == 3 and a.experiments.get(e).name == "depth 20 vs 56"
