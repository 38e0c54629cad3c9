"""Loss landscapes as background work: queue a slice of a run (and its twin), compute it in a job, keep
the result with the run (``$RESNET_LAB_HOME/runs/<run>/landscape-<job>.json``) and read it back.

The math — directions, filter normalization, the surface — is :mod:`resnet_lab.analysis.landscape`.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from ..analysis.landscape import LandscapeParams, Surface, loss_surface, training_batches
from ..identity import MACHINE, Identity
from ..jobs import scheduler
from ..jobs.handlers import JobContext, Outcome
from ..paths import run_dir
from ..store import Run, Store

KIND = "landscape"  # the job kind
RESULT_VERSION = 1  # the result file's format

# --- results on disk -----------------------------------------------------------------------------


@dataclass(frozen=True)
class LandscapeResult:
    """A finished (or stopped) job's surfaces: the run first, then its twin."""

    task_id: int | None  # the id of the job that computed it
    params: LandscapeParams
    surfaces: tuple[Surface, ...]
    created_at: float  # unix time, s

    @property
    def complete(self) -> bool:
        return all(s.complete for s in self.surfaces)


def result_path(run_id: int, job_id: int) -> Path:
    """Where a job's result lives: ``$RESNET_LAB_HOME/runs/<run>/landscape-<job>.json``."""
    return run_dir(run_id) / f"landscape-{job_id}.json"


def save_result(path: Path, surfaces: Sequence[Surface], params: LandscapeParams, task_id: int | None = None) -> Path:
    """Write the surfaces as JSON via a temp file in the same folder and ``os.replace`` (never half-written)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"version": RESULT_VERSION, "kind": KIND, "task": task_id, "created_at": time.time(),
           "params": params.to_dict(), "surfaces": [s.to_dict() for s in surfaces]}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, allow_nan=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_result(path: str | Path) -> LandscapeResult:
    """Read and validate a result file; anything malformed raises ValueError saying what."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path.name} is not valid JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise ValueError(f"{path.name} is not a loss-landscape result")
    if doc.get("version") != RESULT_VERSION:
        raise ValueError(f"{path.name} has format version {doc.get('version')!r}; this lab reads {RESULT_VERSION}")
    params = LandscapeParams.from_dict(doc.get("params"))
    raw = doc.get("surfaces")
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{path.name} holds no surfaces")
    surfaces = tuple(Surface.from_dict(s) for s in raw)
    if any(s.params != params for s in surfaces):
        raise ValueError(f"{path.name}: a surface was computed with other settings than the file's")
    task = doc.get("task")
    created = doc.get("created_at")
    return LandscapeResult(task_id=task if isinstance(task, int) and not isinstance(task, bool) else None,
                           params=params, surfaces=surfaces,
                           created_at=float(created) if isinstance(created, (int, float)) else 0.0)


# --- the job ---------------------------------------------------------------------------------------


def landscape_runs(store: Store, run_id: int, twin: bool = True) -> list[Run]:
    """The run (checked to have a checkpoint) and, with ``twin``, its partner; the run first."""
    from ..analysis.subject import checkpoint_of

    run = store.runs.get(run_id)
    if checkpoint_of(run) is None:
        raise ValueError(f"run {run_id} has no checkpoint yet (status {run.status}); a landscape needs trained "
                         "weights")
    runs = [run]
    if twin:
        mate = store.runs.partner(run)
        if mate is None:
            raise ValueError(f"run {run_id} has no twin: it was trained alone (leave the twin out, or train "
                             "it with its plain twin)")
        if checkpoint_of(mate) is None:
            raise ValueError(f"run {mate.id} (the twin of run {run_id}) has no checkpoint yet (status {mate.status})")
        runs.append(mate)
    return runs


def concerns(job: Any, run_id: int) -> bool:
    """Whether a landscape job sliced ``run_id`` (as the run, or as its twin)."""
    return run_id == job.run_id or run_id in job.params.get("runs", [])


def landscape_jobs(store: Store, run: Run, statuses: Sequence[str] | None = None) -> list[Any]:
    """Landscape jobs that sliced ``run``, newest first: its own, and its partner's that included it."""
    ids = [run.id] + ([run.partner_id] if run.partner_id is not None else [])
    found = store.jobs.list(kinds=[KIND], run_ids=ids, statuses=statuses)
    return [j for j in found if concerns(j, run.id)]


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
    job_id, _ = scheduler.submit(
        store, KIND, f"landscape of run {run_id}" + (f" and {runs[1].id}" if twin else ""), "auto",
        params={"runs": [r.id for r in runs], **params.to_dict()}, run_id=run_id, request_key=request_key,
        estimate_s=estimate_s, unit="evaluations", owner=owner)
    return job_id


def run_landscape(ctx: JobContext) -> Outcome:
    """The job handler: every model's surface in turn, then one result file. On a stop the surfaces
    computed so far — the last one partial — are saved."""
    from ..analysis.subject import from_run
    from ..data.registry import load_dataset

    job, store = ctx.job, ctx.store
    raw = dict(job.params)
    ids = raw.pop("runs", [job.run_id])
    if not isinstance(ids, list) or not ids or not all(isinstance(i, int) for i in ids):
        raise ValueError("the job's runs must be a list of run ids")
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
        surface = loss_surface(subject.model, batches, params, label=f"#{run.id} {run.name} ({subject.spec.kind})",
                               run_id=run.id, should_stop=ctx.should_stop,
                               progress=lambda n, _, k=k: report(k, n))
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
