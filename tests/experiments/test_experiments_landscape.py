"""Loss landscapes as jobs: a real worker computes both surfaces and keeps them with the run, a stop keeps the
partial result, failures say why, submit refuses what would fail later, and result files round-trip."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from resnet_lab import jobs
from resnet_lab.analysis.landscape import LandscapeParams, Surface, training_batches
from resnet_lab.analysis.subject import from_run
from resnet_lab.data.registry import load_dataset
from resnet_lab.experiments.landscape import KIND, landscape_jobs, load_result, save_result, submit_landscape
from resnet_lab.identity import MACHINE
from resnet_lab.jobs import worker
from resnet_lab.jobs.slots import default_device
from resnet_lab.paths import job_dir, run_dir
from tests.helpers.homes import seed
from tests.helpers.waiting import wait_job


@pytest.fixture
def home(private_trained_home):
    """(store, [resnet id, plain id]) in a private copy of the trained home (see tests/conftest.py)."""
    return private_trained_home


def test_a_worker_process_computes_both_surfaces_and_stores_them_with_the_run(home):
    store, ids = home
    params = LandscapeParams(dims=2, steps=3, span=1.0, batches=1, batch_size=32, seed=1)
    job_id = submit_landscape(ids[0], params, twin=True, store=store)
    assert store.jobs.get(job_id).status == "running"  # pump claimed it and started a worker
    job = wait_job(store, job_id)
    assert job.status == "done", job.error
    assert job.kind == KIND and job.progress == job.total == 2 * 9 and job.unit == "evaluations"
    assert job.params["runs"] == ids and job.device == default_device() and job.run_id == ids[0]
    path = run_dir(ids[0]) / f"landscape-{job_id}.json"
    assert job.result_path == str(path) and path.is_file()
    assert (job_dir(job_id) / "worker.log").is_file()
    assert [j.id for j in landscape_jobs(store, store.runs.get(ids[1]))] == [job_id]  # found from the twin too
    result = load_result(path)
    assert result.task_id == job_id and result.params == params and result.complete
    assert [s.run_id for s in result.surfaces] == ids and [s.skip for s in result.surfaces] == [True, False]
    # the centre is each model's own loss on the same 32 training images, computed here independently
    for surface, rid in zip(result.surfaces, ids):
        subject = from_run(store.runs.get(rid))
        (x, y), = training_batches(subject, load_dataset(subject.data), params)
        with torch.no_grad():
            expected = F.cross_entropy(subject.model(x), y).item()
        tol = 1e-5 if job.device == "cpu" else 1e-2  # CUDA convolutions may use TF32
        assert surface.images == 32 and math.isclose(surface.center_loss, expected, rel_tol=tol)
        assert torch.isfinite(surface.grid()).all() and surface.grid().max() > surface.center_loss


def test_stopping_a_running_job_keeps_the_partial_result(home):
    store, ids = home
    params = LandscapeParams(dims=2, steps=51, span=1.0, batches=1, batch_size=8)  # 5,202 evaluations: minutes
    job_id = submit_landscape(ids[0], params, store=store)
    wait_job(store, job_id, until=lambda j: j.progress > 0 or not j.active)
    assert jobs.stop(job_id, store, by=MACHINE) == "stopping"
    job = wait_job(store, job_id, timeout=60)
    assert job.status == "stopped", job.error
    assert "partial result is saved" in job.error and 0 < job.progress < job.total
    result = load_result(job.result_path)
    assert not result.complete and result.surfaces[0].run_id == ids[0]
    evaluated = sum(int(torch.isfinite(s.grid()).sum()) for s in result.surfaces)
    assert evaluated == job.progress  # every evaluation the store counted is in the file


def test_a_failing_job_is_marked_failed_with_its_reason(home, monkeypatch):
    store, ids = home
    monkeypatch.setattr(worker.signal, "signal", lambda *a: None)  # in-process: leave pytest's handlers alone
    bad = store.jobs.create(KIND, "bad", "cpu", then=seed(run_id=ids[0]),
                            params={"runs": ids, **{**LandscapeParams(steps=3).to_dict(), "steps": 4}})[0]
    assert jobs.turns.claim(store, {"cpu": 1}) == [(bad, "cpu")]
    assert worker.run_job(bad, store) == "failed"
    assert store.jobs.get(bad).error == \
        "ValueError: steps=4 must be odd so that the trained weights (0) are on the grid"
    assert store.jobs.get(bad).pid == worker.os.getpid()  # the worker recorded itself
    assert worker.run_job(bad, store) == "failed"  # not running any more: left alone
    assert worker.main(["x"]) == 2


def test_submit_refuses_what_would_fail_later(home):
    store, ids = home
    with pytest.raises(KeyError, match="no run with id 999"):
        submit_landscape(999, LandscapeParams(), store=store)
    run = store.runs.get(ids[0])
    row = {"name": "alone", "spec": run.spec, "data": run.data, "train": run.train}
    job, (alone,) = store.jobs.create("train", "alone", "cpu", then=seed(runs=[row]))
    store.jobs.finish(job, "done", only_if=["queued"])
    with pytest.raises(ValueError, match=f"run {alone} has no checkpoint yet"):
        submit_landscape(alone, LandscapeParams(), twin=False, store=store)
    store.runs.update(alone, ckpt_best=run.ckpt_best)
    with pytest.raises(ValueError, match=f"run {alone} has no twin"):
        submit_landscape(alone, LandscapeParams(), twin=True, store=store)
    with pytest.raises(ValueError, match="LandscapeParams"):
        submit_landscape(ids[0], {"steps": 3}, store=store)
    assert store.jobs.list(kinds=[KIND]) == []


def fake_surface(params: LandscapeParams, fn, label="m", skip=True, run_id=1) -> Surface:
    c = params.coords()
    loss = tuple(tuple(fn(a, b) for a in c) for b in c)
    acc = tuple(tuple(0.5 for _ in c) for _ in c)
    return Surface(label=label, run_id=run_id, skip=skip, params=params, alphas=tuple(c), betas=tuple(c), loss=loss,
                   acc=acc, center_loss=fn(0.0, 0.0), center_acc=0.5, images=16)


def test_results_round_trip_atomically_and_malformed_files_are_refused(tmp_path):
    p = LandscapeParams(dims=2, steps=3, batches=1, batch_size=8)
    surfaces = [fake_surface(p, lambda a, b: 1 + a * a + b), fake_surface(p, lambda a, b: 2 + b, "plain", False, 2)]
    path = save_result(tmp_path / "out" / "landscape-3.json", surfaces, p, task_id=3)
    assert [f.name for f in path.parent.iterdir()] == ["landscape-3.json"]  # no temp file left behind
    r = load_result(path)
    assert r.task_id == 3 and r.params == p and r.surfaces == tuple(surfaces) and r.complete
    doc = json.loads(path.read_text())
    for broken, match in [
        ({**doc, "kind": "other"}, "not a loss-landscape"),
        ({**doc, "version": 99}, "format version"),
        ({**doc, "surfaces": []}, "no surfaces"),
        ({**doc, "surfaces": [{**doc["surfaces"][0], "loss": [[1, 2], [3, 4]]}]}, "rows"),
        ({**doc, "surfaces": [{**doc["surfaces"][0], "betas": None}]}, "betas"),
        ({**doc, "surfaces": [{**doc["surfaces"][0], "hack": 1}]}, "unknown"),
        ({**doc, "params": {**doc["params"], "steps": 5}}, "other settings"),
    ]:
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(broken))
        with pytest.raises(ValueError, match=match):
            load_result(bad)
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_result(bad)
