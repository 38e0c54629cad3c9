"""Loss landscapes as background work: queue a slice of a run (and its twin), compute it in a job, keep the result
with the run (:mod:`.results`).

Two kinds of job, declared at the end of this module (:data:`LANDSCAPE_JOB`, :data:`INTERPOLATION_JOB`):

- ``landscape``, a slice: a 1D/2D slice along random filter-normalized directions, or — ``directions="pca"`` —
  along the first two PCA directions of the run's kept weights (its training path, drawn over the slice; the slice is
  then centred on the *last kept weights*, the end of training, where random slices are centred on the run's
  best checkpoint);
- ``interpolation``: the loss along the straight line from a start to the run's trained (best-checkpoint)
  weights (Goodfellow et al. 2015), saved as ``interpolation-<job>.json``. The start is the run's initial
  weights — its step-0 snapshot when it kept weights, else rebuilt from its spec and seed (the trainer seeds
  the build with ``torch.manual_seed(seed)`` right before ``build_model(spec)``, so the rebuild is exact; a
  fine-tuned run without a snapshot is refused: it started from other weights) — or another run of the same
  architecture (say, the same spec trained with another seed; for the twin, that run's partner).

The math — directions, filter normalization, PCA, the surface, interpolation — is
:mod:`resnet_lab.analysis.landscape`.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

import torch

from ...analysis.landscape import (Interpolation, InterpolationParams, LandscapeParams, Surface, TrajectoryPath,
                                  interpolate, loss_surface, path_axes, training_batches, trajectory_pca)
from ...identity import MACHINE, Identity
from ...jobs import JobRequest, scheduler
from ...jobs.handlers import Created, JobContext, JobKind, Outcome
from ...paths import run_dir
from ...store import Run, Store
from ...store.jobs import JobStore
from ...train import trajectory
from .results import (INTERPOLATION, KIND, MODES, interpolation_path, job_mode, result_path, save_interpolation,
                      save_result)

STARTS = ("init", "run")  # an interpolation starts from the run's initial weights, or from another run
MIN_PATH = 3  # kept weights a training path needs for two PCA directions
HOW_TO_KEEP = ("train it with 'Keep weights every k steps' on (Train page › Training settings, or "
               "`python -m resnet_lab train --keep-weights-every K`)")


# --- kept weights and starting points ------------------------------------------------------------------


def kept_steps(run_id: int) -> list[int]:
    """The steps at which run ``run_id`` kept its weights (:mod:`resnet_lab.train.trajectory`), oldest first."""
    return [step for step, _ in trajectory.snapshots(run_dir(run_id))]


def check_path(run: Run) -> None:
    """Refuse (ValueError, saying how to get them) a run without enough kept weights for a training path."""
    n = len(kept_steps(run.id))
    if n < MIN_PATH:
        kept = "kept no weights along its training" if n == 0 else f"kept only {n} snapshot{'s' if n > 1 else ''}"
        raise ValueError(f"run {run.id} {kept}; its training path needs at least {MIN_PATH}: {HOW_TO_KEEP}")


def initial_source(run: Run) -> str:
    """Where run ``run``'s initial weights come from, in words (no weights are read): its step-0 snapshot, or a
    rebuild from its spec and seed. Raises ValueError for a fine-tuned run without a snapshot (it started from a
    base whose weights the lab does not keep)."""
    from ...train.config import TrainConfig

    if trajectory.initial_weights(run_dir(run.id)) is not None:
        return "its initial weights (kept at step 0)"
    if run.finetune:
        raise ValueError(f"run {run.id} was fine-tuned from other weights and kept no step-0 snapshot, so its "
                         f"initial weights are unknown: {HOW_TO_KEEP}")
    return f"its initial weights (rebuilt from seed {TrainConfig.from_dict(run.train).seed})"


def initial_state(run: Run) -> tuple[dict[str, torch.Tensor], str]:
    """The weights run ``run`` started from, and :func:`initial_source`'s words for where they came from: its
    step-0 snapshot, else rebuilt from its spec and seed exactly as the trainer built them
    (``torch.manual_seed(seed)`` then ``build_model(spec)``), without touching the global RNG."""
    from ...models import build_model
    from ...spec import ModelSpec
    from ...train.config import TrainConfig

    said = initial_source(run)
    kept = trajectory.initial_weights(run_dir(run.id))
    if kept is not None:
        return trajectory.load_snapshot(kept), said
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(TrainConfig.from_dict(run.train).seed)
        model = build_model(ModelSpec.from_dict(run.spec))
    return model.state_dict(), said


# --- the job ---------------------------------------------------------------------------------------


def landscape_runs(store: Store, run_id: int, twin: bool = True) -> list[Run]:
    """The run and, with ``twin``, its partner, the run first, each checked to have a checkpoint
    (:func:`resnet_lab.analysis.subject.run_and_twin`: a ValueError says which run and why)."""
    from ...analysis.subject import run_and_twin

    return run_and_twin(store.runs.get(run_id), store.runs.partner if twin else None,
                        needs="a landscape needs trained weights",
                        alone="leave the twin out, or train it with its plain twin")


def submit_landscape(run_id: int, params: LandscapeParams, twin: bool = True, store: Store | None = None,
                     request_key: str | None = None, estimate_s: float | None = None,
                     owner: Identity = MACHINE) -> int:
    """Queue a landscape of run ``run_id`` (and of its twin) for ``owner`` and start it if the device has room.
    Anyone may study anyone's run: the landscape job is its ``owner``'s (theirs to stop and delete).

    Checks now what would make it fail later (no such run, no checkpoint, no twin). The job's params
    hold ``runs`` (ids, the run first) and the :class:`LandscapeParams`. The same ``request_key``
    within the store's dedupe window returns the first job (a double-click is one job).
    ``estimate_s``: the cost estimate shown beforehand, for the queue's ETAs. Returns the job id.
    """
    if not isinstance(params, LandscapeParams):
        raise ValueError("params must be LandscapeParams")
    store = store or Store()
    runs = landscape_runs(store, run_id, twin)
    if params.directions == "pca":
        for r in runs:
            check_path(r)
    job_id, _ = scheduler.submit(store, JobRequest(
        LANDSCAPE_JOB, f"landscape of run {run_id}" + (f" and {runs[1].id}" if twin else ""), "auto",
        params={"runs": [r.id for r in runs], "mode": "slice", **params.to_dict()},
        request_key=request_key, estimate_s=estimate_s, owner=owner))
    return job_id


def interpolation_starts(store: Store, runs: Sequence[Run], start: str, from_run: int | None) -> list[int] | None:
    """Check where an interpolation of ``runs`` can start, now rather than in the worker. ``start="init"``: each
    run's initial weights must be known (:func:`initial_state`'s rule); returns None. ``start="run"``: run
    ``from_run`` (and, for the twin, its partner) must have a checkpoint and the very same architecture as the
    run it is paired with; returns their ids, in the order of ``runs``."""
    if start not in STARTS:
        raise ValueError(f"start={start!r} is not allowed; choose one of {', '.join(STARTS)}")
    if start == "init":
        if from_run is not None:
            raise ValueError("an interpolation from the initial weights takes no other run")
        for r in runs:
            initial_source(r)
        return None
    if from_run is None:
        raise ValueError("an interpolation between two runs needs the other run's id")
    if from_run == runs[0].id:
        raise ValueError("an interpolation between two runs needs two different runs")
    others = landscape_runs(store, from_run, twin=len(runs) > 1)
    for mine, other in zip(runs, others):
        if mine.spec != other.spec:
            raise ValueError(f"run {other.id} is not the same architecture as run {mine.id} "
                             f"({other.kind} vs {mine.kind}, or another shape): the line between them is not defined")
    return [o.id for o in others]


def same_architecture(candidates: Sequence[Run], run: Run, mate: Run | None = None) -> list[Run]:
    """The runs of ``candidates`` an interpolation of ``run`` (and, given, its twin ``mate``) can start from: other
    runs of the very same spec whose partner — when a twin is interpolated too — is among ``candidates`` with
    ``mate``'s spec. (Checkpoints are the caller's concern: pass runs that have one.)"""
    by_id = {r.id: r for r in candidates}
    out = []
    for r in candidates:
        if r.id == run.id or r.spec != run.spec:
            continue
        if mate is not None:
            partner = by_id.get(r.partner_id) if r.partner_id is not None else None
            if partner is None or partner.spec != mate.spec:
                continue
        out.append(r)
    return out


def submit_interpolation(run_id: int, params: InterpolationParams, twin: bool = True, start: str = "init",
                         from_run: int | None = None, store: Store | None = None, request_key: str | None = None,
                         estimate_s: float | None = None, owner: Identity = MACHINE) -> int:
    """Queue an interpolation of run ``run_id`` (and of its twin, each between its own two ends) for ``owner``:
    from its initial weights (``start="init"``) or from run ``from_run`` (``start="run"``) to its trained
    weights. Checks now what would fail later (:func:`interpolation_starts`). Returns the job id."""
    if not isinstance(params, InterpolationParams):
        raise ValueError("params must be InterpolationParams")
    store = store or Store()
    runs = landscape_runs(store, run_id, twin)
    from_runs = interpolation_starts(store, runs, start, from_run)
    title = f"interpolation of run {run_id}" + (f" and {runs[1].id}" if twin else "")
    job_id, _ = scheduler.submit(store, JobRequest(
        INTERPOLATION_JOB, title, "auto",
        params={"runs": [r.id for r in runs], "mode": INTERPOLATION, "start": start, "from_runs": from_runs,
                **params.to_dict()},
        request_key=request_key, estimate_s=estimate_s, owner=owner))
    return job_id


def _ids(raw: Any, what: str) -> list[int]:
    if not isinstance(raw, list) or not raw or not all(isinstance(i, int) and not isinstance(i, bool) for i in raw):
        raise ValueError(f"the job's {what} must be a list of run ids")
    return raw


def pca_slice_inputs(run: Run, model: torch.nn.Module, params: LandscapeParams
                     ) -> tuple[list[dict[str, torch.Tensor]], list[list[float]], TrajectoryPath]:
    """What a PCA slice of ``run`` needs: its kept weights are read, ``model`` is set to the last of them (the
    centre), and the PCA of the path (:func:`trajectory_pca`, over the model's parameters) gives the directions
    (on the model's device), the grid axes scaled to the path (:func:`path_axes`) and the path itself."""
    check_path(run)
    kept = trajectory.snapshots(run_dir(run.id))
    states = [trajectory.load_snapshot(p) for _, p in kept]
    model.load_state_dict(states[-1], strict=True)
    device = next(model.parameters()).device
    names = [n for n, _ in model.named_parameters()]
    directions, coords, explained = trajectory_pca(states, states[-1], names)
    path = TrajectoryPath(steps=tuple(s for s, _ in kept), alphas=tuple(coords[:, 0].tolist()),
                          betas=tuple(coords[:, 1].tolist()), explained=explained)
    return [{k: v.to(device) for k, v in d.items()} for d in directions], list(path_axes(params, path)), path


def run_landscape(ctx: JobContext) -> Outcome:
    """The handler of a landscape job: every model's surface in turn, then one result file; on a stop the
    surfaces computed so far — the last one partial — are saved."""
    if job_mode(ctx.job) == INTERPOLATION:  # a landscape job queued before interpolation was a kind of its own
        return run_interpolation(ctx)
    from ...analysis.subject import from_run
    from ...data.registry import load_dataset

    job, store = ctx.job, ctx.store
    raw = dict(job.params)
    ids = _ids(raw.pop("runs", [job.run_id]), "runs")
    mode = raw.pop("mode", "slice")
    if mode not in MODES:
        raise ValueError(f"unknown landscape mode {mode!r}")
    params = LandscapeParams.from_dict(raw)
    runs = [store.runs.get(i) for i in ids]
    subjects = [from_run(r) for r in runs]
    device = torch.device(ctx.device if ctx.device != "cuda" or torch.cuda.is_available() else "cpu")
    for s in subjects:
        s.model.to(device)
    datasets: dict[str, Any] = {}
    per_model = params.points
    total = per_model * len(subjects)
    ctx.progress(0, total)
    surfaces: list[Surface] = []
    stopped = False
    done = 0

    def report(k: int, n: int) -> None:
        nonlocal done
        done = k * per_model + n
        ctx.progress(done, total)

    for k, (run, subject) in enumerate(zip(runs, subjects)):
        if ctx.should_stop():
            stopped = True
            break
        if subject.data is None:
            raise ValueError(f"run {run.id}'s checkpoint does not say which data it was trained on")
        key = json.dumps(subject.data.to_dict(), sort_keys=True)
        if key not in datasets:
            datasets[key] = load_dataset(subject.data)
        batches = training_batches(subject, datasets[key], params)
        directions, axes, path = None, None, None
        if params.directions == "pca":
            directions, axes, path = pca_slice_inputs(run, subject.model, params)
        surface = loss_surface(subject.model, batches, params, label=f"#{run.id} {run.name} ({subject.spec.kind})",
                               run_id=run.id, should_stop=ctx.should_stop,
                               progress=lambda n, _, k=k: report(k, n), directions=directions, axes=axes, path=path)
        if not surface.complete:
            stopped = True
            if done > k * per_model:  # keep a surface cut short, not one never started
                surfaces.append(surface)
            break
        surfaces.append(surface)
    if not surfaces:
        return Outcome("stopped", "Stopped before the first evaluation; nothing was saved.")
    path = save_result(result_path(job.run_id, job.id), surfaces, params, job.id)
    ctx.progress(done, total)
    if not stopped:
        return Outcome("done", result_path=path)
    whole = sum(s.complete for s in surfaces)
    message = (f"Stopped after {done} of {total} evaluations; the partial result is saved "
               f"({whole} complete surface{'s' if whole != 1 else ''} of {len(subjects)}"
               + (", the last one cut short)." if not surfaces[-1].complete else ")."))
    return Outcome("stopped", message, result_path=path)


def run_interpolation(ctx: JobContext) -> Outcome:
    """The handler of an interpolation job: every model's curve in turn (from its start to its trained weights),
    then one result file; on a stop, the curves computed so far — the last one partial — are saved."""
    from ...analysis.subject import from_run
    from ...data.registry import load_dataset

    job, store = ctx.job, ctx.store
    raw = dict(job.params)
    ids = _ids(raw.pop("runs", [job.run_id]), "runs")
    raw.pop("mode", None)  # a landscape job's, queued before interpolation was a kind of its own
    start = raw.pop("start", "init")
    from_runs = raw.pop("from_runs", None)
    if start not in STARTS:
        raise ValueError(f"unknown interpolation start {start!r}")
    if start == "run":
        from_runs = _ids(from_runs, "from_runs")
        if len(from_runs) != len(ids):
            raise ValueError("an interpolation between runs needs one start run per run")
    params = InterpolationParams.from_dict(raw)
    runs = [store.runs.get(i) for i in ids]
    device = torch.device(ctx.device if ctx.device != "cuda" or torch.cuda.is_available() else "cpu")
    per_model = params.points
    total = per_model * len(runs)
    ctx.progress(0, total)
    curves: list[Interpolation] = []
    datasets: dict[str, Any] = {}
    done, stopped = 0, False
    for k, run in enumerate(runs):
        if ctx.should_stop():
            stopped = True
            break
        subject = from_run(run)
        subject.model.to(device)
        if subject.data is None:
            raise ValueError(f"run {run.id}'s checkpoint does not say which data it was trained on")
        if start == "init":
            first, said = initial_state(run)
        else:
            other = store.runs.get(from_runs[k])
            first, said = from_run(other).model.state_dict(), f"run #{other.id} {other.name}"
        key = json.dumps(subject.data.to_dict(), sort_keys=True)
        if key not in datasets:
            datasets[key] = load_dataset(subject.data)
        batches = training_batches(subject, datasets[key], params)

        def report(n: int, _: int, k: int = k) -> None:
            nonlocal done
            done = k * per_model + n
            ctx.progress(done, total)

        curve = interpolate(subject.model, first, subject.model.state_dict(), batches, params,
                            label=f"#{run.id} {run.name} ({subject.spec.kind})", run_id=run.id, start_label=said,
                            progress=report, should_stop=ctx.should_stop)
        if not curve.complete:
            stopped = True
            if done > k * per_model:
                curves.append(curve)
            break
        curves.append(curve)
    if not curves:
        return Outcome("stopped", "Stopped before the first evaluation; nothing was saved.")
    path = save_interpolation(interpolation_path(job.run_id, job.id), curves, params, job.id)
    ctx.progress(done, total)
    if not stopped:
        return Outcome("done", result_path=path)
    return Outcome("stopped", f"Stopped after {done} of {total} evaluations; the partial result is saved.",
                   result_path=path)


def study_run(con: Any, created: Created) -> list[int]:
    """A landscape or interpolation job's ``on_submit``: it is recorded as a study of its first run
    (``params["runs"][0]``), so it is listed, and deleted, with that run."""
    JobStore.set_run(con, created.job_id, _ids(created.request.params.get("runs"), "runs")[0])
    return []


LANDSCAPE_JOB = JobKind(KIND, run_landscape, unit="evaluations", on_submit=study_run)
"""A slice of the loss landscape around a run (and its twin): computed again when resumed."""
INTERPOLATION_JOB = JobKind(INTERPOLATION, run_interpolation, unit="evaluations", on_submit=study_run)
"""The loss along the line from a start to a run's trained weights (and its twin's): computed again when resumed."""
