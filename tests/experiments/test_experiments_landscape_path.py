"""Landscapes with a path, as jobs: a real worker slices a run that kept its weights along its training path's PCA
directions and stores the path with the surface; an interpolation job draws the line from the initial weights (or
from another run) to the trained ones; submit refuses what would fail later, saying how to get kept weights."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.optim.swa_utils import update_bn

from resnet_lab import jobs
from resnet_lab.analysis.landscape import (InterpolationParams, LandscapeParams, trajectory_pca,
                                           training_batches)
from resnet_lab.analysis.subject import from_run
from resnet_lab.data.registry import load_dataset
from resnet_lab.experiments.landscape import (KIND, describe_job, initial_state, interpolation_path, kept_steps,
                                              landscape_jobs, load_interpolation, load_result, run_landscape,
                                              submit_interpolation, submit_landscape)
from resnet_lab.jobs.handlers import JobContext
from resnet_lab.models import build_model
from resnet_lab.paths import run_dir
from resnet_lab.spec import ModelSpec
from resnet_lab.store import Store
from resnet_lab.train import trajectory
from resnet_lab.models.checkpoint import load_checkpoint, save_checkpoint
from tests.helpers.homes import EVERY, kill_workers, private_home, seed, train_keeping_weights
from tests.helpers.waiting import wait_job


@pytest.fixture(scope="module")
def kept_source(tmp_path_factory):
    home = tmp_path_factory.mktemp("kept_home")
    return home, train_keeping_weights(home)


@pytest.fixture
def kept(kept_source, tmp_path, monkeypatch):
    """(store, [resnet id, plain id]) in a private copy of a home whose runs kept their weights every 3 steps."""
    src, ids = kept_source
    private_home(src, tmp_path / "home")
    monkeypatch.setenv("RESNET_LAB_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RESNET_LAB_HEARTBEAT_S", "0.5")
    store = Store()
    yield store, ids
    kill_workers(store)
    store.close()


def loss_of(state, spec, x, y, recompute=None):
    m = build_model(spec)
    m.load_state_dict(state)
    if recompute is not None:
        update_bn(recompute, m)
    with torch.no_grad():
        return F.cross_entropy(m.eval()(x), y).item()


def test_a_worker_slices_along_the_training_path_and_stores_the_path_with_each_surface(kept):
    store, ids = kept
    steps = kept_steps(ids[0])
    assert steps == list(range(0, 19, EVERY)) and kept_steps(ids[1]) == steps  # 18 steps, every 3
    params = LandscapeParams(dims=2, steps=3, span=1.2, batches=1, batch_size=32, directions="pca")
    job_id = submit_landscape(ids[0], params, twin=True, store=store)
    job = wait_job(store, job_id)
    assert job.status == "done", job.error
    assert job.params["mode"] == "slice" and "PCA directions" in describe_job(job)
    result = load_result(job.result_path)
    assert [s.run_id for s in result.surfaces] == ids and result.params == params
    for surface, rid in zip(result.surfaces, ids):
        kept_files = trajectory.snapshots(run_dir(rid))
        states = [trajectory.load_snapshot(p) for _, p in kept_files]
        spec = ModelSpec.from_dict(store.runs.get(rid).spec)
        names = [n for n, _ in build_model(spec).named_parameters()]
        _, coords, explained = trajectory_pca(states, states[-1], names)
        path = surface.path
        assert path.steps == tuple(steps) and path.explained == pytest.approx(explained)
        assert path.alphas == pytest.approx(coords[:, 0].tolist())
        assert path.betas == pytest.approx(coords[:, 1].tolist())
        assert (path.alphas[-1], path.betas[-1]) == (pytest.approx(0.0, abs=1e-6), pytest.approx(0.0, abs=1e-6))
        assert 0 < sum(explained) <= 1 + 1e-9 and explained[0] >= explained[1]
        # the grid reaches 1.2× the path's extent along each axis, centred on the last kept weights
        assert surface.alphas[-1] == pytest.approx(1.2 * max(abs(a) for a in path.alphas))
        assert surface.betas[0] == pytest.approx(-1.2 * max(abs(b) for b in path.betas))
        subject = from_run(store.runs.get(rid))
        ((x, y),) = training_batches(subject, load_dataset(subject.data), params)
        tol = 1e-5 if job.device == "cpu" else 1e-2
        assert math.isclose(surface.center_loss, loss_of(states[-1], spec, x, y), rel_tol=tol)
        assert torch.isfinite(surface.grid()).all()
    # the last kept weights are the end of training: the "last" checkpoint
    last = load_checkpoint(run_dir(ids[0]) / "last.json").model.state_dict()
    end = trajectory.load_snapshot(trajectory.snapshots(run_dir(ids[0]))[-1][1])
    assert all(torch.equal(end[k], last[k]) for k in last)


def test_submit_refuses_a_path_for_runs_without_kept_weights_saying_how_to_get_them(private_trained_home):
    store, ids = private_trained_home  # trained without keeping weights
    params = LandscapeParams(dims=2, steps=3, batches=1, batch_size=8, directions="pca")
    with pytest.raises(ValueError, match=f"run {ids[0]} kept no weights along its training.*'Keep weights every k "
                                         "steps' on"):
        submit_landscape(ids[0], params, twin=True, store=store)
    assert store.jobs.list(kinds=[KIND]) == []


def test_a_path_of_two_snapshots_is_refused(kept):
    store, ids = kept
    for step, path in trajectory.snapshots(run_dir(ids[1]))[1:-1]:
        path.unlink()
    params = LandscapeParams(dims=2, steps=3, batches=1, batch_size=8, directions="pca")
    with pytest.raises(ValueError, match=f"run {ids[1]} kept only 2 snapshots; its training path needs at least 3"):
        submit_landscape(ids[0], params, twin=True, store=store)
    assert submit_landscape(ids[0], params, twin=False, store=store)  # the ResNet alone still has its path


def test_a_worker_interpolates_each_model_from_its_initial_to_its_trained_weights(kept):
    store, ids = kept
    params = InterpolationParams(resolution=2, extend=0.5, batches=1, batch_size=32, bn="interpolate")
    job_id = submit_interpolation(ids[0], params, twin=True, store=store)
    job = wait_job(store, job_id)
    assert job.status == "done", job.error
    assert job.progress == job.total == 2 * 5 and job.params["mode"] == "interpolation"
    assert job.result_path == str(interpolation_path(ids[0], job_id))
    assert [j.id for j in landscape_jobs(store, store.runs.get(ids[1]), mode="interpolation")] == [job_id]
    assert landscape_jobs(store, store.runs.get(ids[1]), mode="slice") == []
    assert describe_job(job).startswith("interpolation from the initial weights, α from -0.5 to 1.5")
    result = load_interpolation(job.result_path)
    assert [c.run_id for c in result.curves] == ids and [c.skip for c in result.curves] == [True, False]
    for curve, rid in zip(result.curves, ids):
        assert curve.start == "its initial weights (kept at step 0)" and curve.alphas == (-0.5, 0.0, 0.5, 1.0, 1.5)
        subject = from_run(store.runs.get(rid))
        ((x, y),) = training_batches(subject, load_dataset(subject.data), params)
        start = trajectory.load_snapshot(trajectory.initial_weights(run_dir(rid)))
        end = subject.model.state_dict()
        tol = 1e-5 if job.device == "cpu" else 1e-2
        assert math.isclose(curve.loss[1], loss_of(start, subject.spec, x, y), rel_tol=tol)  # α = 0
        assert math.isclose(curve.loss[3], loss_of(end, subject.spec, x, y), rel_tol=tol)  # α = 1: trained
        mid = {k: torch.lerp(start[k], end[k], 0.5) if start[k].is_floating_point() else end[k] for k in end}
        assert math.isclose(curve.loss[2], loss_of(mid, subject.spec, x, y), rel_tol=tol)


def test_the_initial_weights_rebuilt_from_the_seed_are_the_kept_step_0_ones(kept):
    store, ids = kept
    run = store.runs.get(ids[1])
    kept_state, said = initial_state(run)
    assert said == "its initial weights (kept at step 0)"
    (run_dir(run.id) / "trajectory" / "step_000000.safetensors").unlink()
    rebuilt, said = initial_state(run)
    assert said == "its initial weights (rebuilt from seed 0)"
    assert kept_state.keys() == rebuilt.keys() and all(torch.equal(kept_state[k], rebuilt[k]) for k in rebuilt)
    before = torch.random.get_rng_state()
    initial_state(run)
    assert torch.equal(before, torch.random.get_rng_state())  # the global RNG is left alone


def another_run_of_the_same_model(store, rid, step):
    """A run of the same architecture whose checkpoint is run ``rid``'s weights kept at ``step``."""
    run = store.runs.get(rid)
    job, (other,) = store.jobs.create("train", "other", "cpu", then=seed(runs=[{"name": "other seed", "spec": run.spec,
                                                                       "data": run.data, "train": run.train}]))
    ckpt = load_checkpoint(run.ckpt_best)
    kept = trajectory.folder(run_dir(rid)) / trajectory.snapshot_name(step)
    ckpt.model.load_state_dict(trajectory.load_snapshot(kept))
    path = save_checkpoint(run_dir(other), "best", ckpt.model, {k: v for k, v in ckpt.meta.items()
                                                                   if k not in ("format", "weights")})
    store.runs.update(other, ckpt_best=str(path))
    store.jobs.finish(job, "done", only_if=["queued"])
    return other


def test_an_interpolation_between_two_runs_of_one_architecture_starts_at_the_other_run(kept, monkeypatch):
    store, ids = kept
    other = another_run_of_the_same_model(store, ids[0], 6)
    params = InterpolationParams(resolution=2, extend=0.0, batches=1, batch_size=16, bn="recompute")
    with pytest.raises(ValueError, match=f"run {other} has no twin"):
        submit_interpolation(ids[0], params, twin=True, start="run", from_run=other, store=store)
    with pytest.raises(ValueError, match=f"run {ids[1]} is not the same architecture as run {ids[0]}"):
        submit_interpolation(ids[0], params, twin=False, start="run", from_run=ids[1], store=store)
    with pytest.raises(ValueError, match="needs the other run's id"):
        submit_interpolation(ids[0], params, twin=False, start="run", store=store)
    with pytest.raises(ValueError, match="two different runs"):
        submit_interpolation(ids[0], params, twin=False, start="run", from_run=ids[0], store=store)
    with pytest.raises(ValueError, match="start='middle'"):
        submit_interpolation(ids[0], params, twin=False, start="middle", store=store)
    assert store.jobs.list(kinds=[KIND]) == []
    # computed in this process (the handler the worker runs), with a stop after the first point
    job_id = submit_interpolation(ids[0], params, twin=False, start="run", from_run=other, store=store)
    monkeypatch.setattr(jobs.scheduler, "pump", lambda *a, **k: None)
    job = store.jobs.get(job_id)
    assert describe_job(job).startswith(f"interpolation from run #{other}, α from 0 to 1, 3 points")
    ctx = JobContext(job=job, store=store, device="cpu", progress=lambda done, total: None)
    outcome = run_landscape(ctx)
    assert outcome.status == "done"
    (curve,) = load_interpolation(outcome.result_path).curves
    assert curve.start == f"run #{other} other seed" and curve.alphas == (0.0, 0.5, 1.0)
    subject = from_run(store.runs.get(ids[0]))
    ((x, y),) = training_batches(subject, load_dataset(subject.data), params)
    start = from_run(store.runs.get(other)).model.state_dict()
    assert math.isclose(curve.loss[0], loss_of(start, subject.spec, x, y, recompute=[x]), rel_tol=1e-5)
    assert math.isclose(curve.loss[2], loss_of(subject.model.state_dict(), subject.spec, x, y, recompute=[x]),
                        rel_tol=1e-5)

    def stop_after_one(done, total):
        if done >= 1:
            ctx2.stop_event.set()

    ctx2 = JobContext(job=job, store=store, device="cpu", progress=stop_after_one)
    stopped = run_landscape(ctx2)
    assert stopped.status == "stopped" and "partial result is saved" in stopped.message
    (cut,) = load_interpolation(stopped.result_path).curves
    assert not cut.complete and math.isfinite(cut.loss[0]) and math.isnan(cut.loss[2])
