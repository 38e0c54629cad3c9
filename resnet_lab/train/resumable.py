"""Whether a failed training job may resume: the rule behind ``TRAIN``'s and ``FINETUNE``'s
:attr:`~resnet_lab.jobs.handlers.JobKind.after_failure`.

A training job that failed — a full disk while saving, the GPU out of memory, a dataset file that went missing —
stopped after its last good checkpoint as surely as a stopped one did; what it did since is replayed on resume
(the metrics after the checkpoint's step are dropped, and the seeded batch order and augmentation make the replay
the same steps). So it resumes, from that checkpoint, by the same Resume, when every run it trains still has one
that is intact: the manifest reads as a lab checkpoint of that run, its training state and weights load, the
weights fit the run's model exactly (every tensor, strict), and all the runs stopped at the same step. Otherwise
the refusal says which run and why, and the job is started again instead.

Reading a checkpoint is not free (a big model's weights are read in full), and the pages ask on every redraw of a
failed job's card: the answer is kept per checkpoint file as it is on disk (its size and modification time).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from ..models import build_model
from ..models.checkpoint import load_train_state, read_manifest
from ..spec import ModelSpec
from ..store import Run, Store


def failed_job_refusal(store: Store, job: Any) -> str | None:
    """Why the failed training job ``job`` cannot resume from its runs' last checkpoints, in words, or None when
    it can (every run left to train has an intact one, all at the same step)."""
    runs = [r for r in store.runs.of_job(job.id) if r.status == "failed"]
    if not runs:
        return "none of its runs is left to train"
    steps = set()
    for run in runs:
        problem = checkpoint_problem(run)
        if isinstance(problem, str):
            return problem
        steps.add(problem)
    if len(steps) > 1:
        return (f"its runs' last checkpoints were saved at different steps ({', '.join(map(str, sorted(steps)))}): "
                "start it again")
    return None


def checkpoint_problem(run: Run) -> str | int:
    """What is wrong with ``run``'s last checkpoint (a sentence), or the step it was saved at when it is intact."""
    which = f"run #{run.id} ({run.name})"
    if not run.ckpt_last:
        return f"{which} saved no checkpoint before it failed: start it again"
    path = Path(run.ckpt_last)
    try:
        stamp = tuple((p.stat().st_size, p.stat().st_mtime_ns) for p in _files(path))
    except (OSError, ValueError) as e:
        return f"the last checkpoint of {which} cannot be read ({_reason(e)}): start it again"
    found = _checked(str(path), stamp, run.id, json.dumps(run.spec, sort_keys=True))
    return found if isinstance(found, int) else f"the last checkpoint of {which} {found}: start it again"


def _files(manifest: Path) -> list[Path]:
    """The manifest and the files it names (as the loader finds them; a missing one raises OSError)."""
    meta = read_manifest(manifest)
    return [manifest, *(manifest.parent / str(meta.get(k)) for k in ("weights", "train_state") if meta.get(k))]


def _reason(error: BaseException) -> str:
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


@functools.lru_cache(maxsize=64)
def _checked(path: str, stamp: tuple[tuple[int, int], ...], run_id: int, spec_json: str) -> str | int:
    """The step of the intact checkpoint at ``path`` (as its files are: ``stamp``), or what is wrong with it."""
    try:
        meta = read_manifest(Path(path))
        state, weights = load_train_state(Path(path))
        model = build_model(ModelSpec.from_dict(json.loads(spec_json)))
        model.load_state_dict(weights, strict=True)
    except Exception as e:  # any failure to read it back (a torn file, a wrong tensor, a foreign format) is the answer
        return f"does not read back ({type(e).__name__}: {_reason(e)})"
    if meta.get("run_id") not in (None, run_id):
        return f"belongs to another run (#{meta.get('run_id')})"
    if not isinstance(state.get("step"), int) or state["step"] != meta.get("step"):
        return "has a training state that does not match its manifest"
    return int(state["step"])
