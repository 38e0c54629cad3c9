"""Loss-landscape results as files and job rows: where a job keeps its result with the run, how it is written and
read back (``$RESNET_LAB_HOME/runs/<run>/landscape-<job>.json`` for a slice, ``interpolation-<job>.json`` for an
interpolation), and which landscape jobs studied a run, in words.

Submitting and computing them is :mod:`.jobs`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ...analysis.landscape import Interpolation, InterpolationParams, LandscapeParams, Surface
from ...paths import run_dir, write_atomic
from ...store import Run, Store

KIND = "landscape"  # the job kind of a slice, and its result file's kind
MODES = ("slice", "interpolation")  # what job_mode says
INTERPOLATION = "interpolation"  # the job kind of an interpolation, and its result file's kind
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
    return _write_json(path, {"version": RESULT_VERSION, "kind": KIND, "task": task_id, "created_at": time.time(),
                              "params": params.to_dict(), "surfaces": [s.to_dict() for s in surfaces]})


def _read_result(path: Path, kind: str, what: str) -> tuple[dict, int | None, float]:
    """(the document, its task id or None, when it was written or 0) of a result file of ``kind``; anything
    malformed raises ValueError naming the file."""
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path.name} is not valid JSON: {e}") from None
    if not isinstance(doc, dict) or doc.get("kind") != kind:
        raise ValueError(f"{path.name} is not {what}")
    if doc.get("version") != RESULT_VERSION:
        raise ValueError(f"{path.name} has format version {doc.get('version')!r}; this lab reads {RESULT_VERSION}")
    task, created = doc.get("task"), doc.get("created_at")
    return (doc, task if isinstance(task, int) and not isinstance(task, bool) else None,
            float(created) if isinstance(created, (int, float)) else 0.0)


def load_result(path: str | Path) -> LandscapeResult:
    """Read and validate a result file; anything malformed raises ValueError saying what."""
    path = Path(path)
    doc, task, created = _read_result(path, KIND, "a loss-landscape result")
    params = LandscapeParams.from_dict(doc.get("params"))
    raw = doc.get("surfaces")
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{path.name} holds no surfaces")
    surfaces = tuple(Surface.from_dict(s) for s in raw)
    if any(s.params != params for s in surfaces):
        raise ValueError(f"{path.name}: a surface was computed with other settings than the file's")
    return LandscapeResult(task_id=task, params=params, surfaces=surfaces, created_at=created)


@dataclass(frozen=True)
class InterpolationResult:
    """A finished (or stopped) interpolation job's curves: the run first, then its twin."""

    task_id: int | None
    params: InterpolationParams
    curves: tuple[Interpolation, ...]
    created_at: float

    @property
    def complete(self) -> bool:
        return all(c.complete for c in self.curves)


def interpolation_path(run_id: int, job_id: int) -> Path:
    """Where an interpolation job's result lives: ``$RESNET_LAB_HOME/runs/<run>/interpolation-<job>.json``."""
    return run_dir(run_id) / f"interpolation-{job_id}.json"


def _write_json(path: Path, doc: dict[str, Any]) -> Path:
    """``doc`` as JSON at ``path`` (NaN refused), written atomically (:func:`resnet_lab.paths.write_atomic`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomic(path, json.dumps(doc, allow_nan=False))


def save_interpolation(path: Path, curves: Sequence[Interpolation], params: InterpolationParams,
                       task_id: int | None = None) -> Path:
    """Write the curves as JSON, atomically (a temp file in the same folder, then ``os.replace``)."""
    return _write_json(path, {"version": RESULT_VERSION, "kind": INTERPOLATION, "task": task_id,
                              "created_at": time.time(), "params": params.to_dict(),
                              "curves": [c.to_dict() for c in curves]})


def load_interpolation(path: str | Path) -> InterpolationResult:
    """Read and validate an interpolation result; anything malformed raises ValueError saying what."""
    path = Path(path)
    doc, task, created = _read_result(path, INTERPOLATION, "an interpolation result")
    params = InterpolationParams.from_dict(doc.get("params"))
    raw = doc.get("curves")
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{path.name} holds no curves")
    curves = tuple(Interpolation.from_dict(c) for c in raw)
    if any(c.params != params for c in curves):
        raise ValueError(f"{path.name}: a curve was computed with other settings than the file's")
    return InterpolationResult(task_id=task, params=params, curves=curves, created_at=created)
# --- the jobs that computed them -------------------------------------------------------------------


def concerns(job: Any, run_id: int) -> bool:
    """Whether a landscape job sliced ``run_id`` (as the run, or as its twin)."""
    return run_id == job.run_id or run_id in job.params.get("runs", [])


def job_mode(job: Any) -> str:
    """"slice" or "interpolation": what the job's kind computes. Its ``params["mode"]`` says the same in words (a
    landscape job queued before interpolation was a kind of its own says which by it alone; one from before modes
    is a slice)."""
    return INTERPOLATION if job.kind == INTERPOLATION or job.params.get("mode") == INTERPOLATION else "slice"


def job_settings(job: Any) -> LandscapeParams | InterpolationParams:
    """The validated settings of a landscape job of either mode."""
    raw = {k: v for k, v in job.params.items() if k not in ("runs", "mode", "start", "from_runs")}
    return InterpolationParams.from_dict(raw) if job_mode(job) == INTERPOLATION else LandscapeParams.from_dict(raw)


def describe_job(job: Any) -> str:
    """A landscape job's settings in words, e.g. "interpolation from the initial weights, α from -0.5 to 1.5, …"
    (settings that do not validate — a job that failed on them — are said to be unreadable, never raised)."""
    try:
        settings = job_settings(job)
    except ValueError as e:
        return f"settings not readable: {e}"
    if job_mode(job) != INTERPOLATION:
        return settings.describe()
    start = "the initial weights" if job.params.get("start", "init") == "init" else \
        "run " + " and ".join(f"#{i}" for i in job.params.get("from_runs") or [])
    return f"interpolation from {start}, {settings.describe()}"


def landscape_jobs(store: Store, run: Run, statuses: Sequence[str] | None = None,
                   mode: str | None = None) -> list[Any]:
    """Landscape and interpolation jobs that studied ``run``, newest first: its own, and its partner's that included
    it; only those of ``mode`` ("slice", "interpolation") when given."""
    ids = [run.id] + ([run.partner_id] if run.partner_id is not None else [])
    found = store.jobs.list(kinds=[KIND, INTERPOLATION], run_ids=ids, statuses=statuses)
    return [j for j in found if concerns(j, run.id) and (mode is None or job_mode(j) == mode)]
