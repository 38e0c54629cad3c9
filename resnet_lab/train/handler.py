"""The training job handler: trains a job's runs (one model, or a ResNet and its plain twin on the very
same batches) and records them. Called by the one worker harness (:mod:`resnet_lab.jobs.worker`) for
jobs of the two kinds declared here, :data:`TRAIN` and :data:`FINETUNE`, whose runs are written with the job
(:func:`add_runs`).

It turns the engine's callbacks into store writes (metrics batched, a few transactions a second at
most) and stops gracefully — finishing the step and writing a checkpoint — when asked. Each run ends
with its own status (done, diverged, stopped); the job ends stopped if a run was stopped, else done.

A job of ``world_size`` N > 1 runs this handler in each of its N processes (see
:mod:`resnet_lab.train.distributed`): all of them read the job, load the data, join the group and train;
only the leader (rank 0) writes to the store — the others get callbacks that write nothing.

Two failures are put in words a student can act on (:class:`~resnet_lab.jobs.handlers.JobFailed`): the GPU
running out of memory (which models, batch size and image size did not fit, and what to change), and a
checkpoint that could not be written, a full disk most often (which run; its previous checkpoint is intact).
A failed job whose runs' last checkpoints are intact resumes from them (:mod:`.resumable`).
"""

from __future__ import annotations

import dataclasses
import errno
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from ..data.registry import DataConfig, load_dataset
from ..jobs.handlers import Created, JobContext, JobFailed, JobKind, Outcome
from ..paths import run_dir
from ..spec import ModelSpec
from ..store import Run, Store
from ..store.runs import RunStore
from . import distributed, trajectory
from ..models.checkpoint import CheckpointNotSaved, read_manifest
from .config import TrainConfig
from .engine import Trainer
from .finetune import FinetuneConfig, adapt_data, load_base, plan
from .members import Callbacks
from .resumable import failed_job_refusal

FLUSH_EVERY_S = 0.5


class StoreCallbacks(Callbacks):
    def __init__(self, store: Store, runs: Sequence[Run], ctx: JobContext) -> None:
        self.store = store
        self.ids = [r.id for r in runs]
        self.ctx = ctx
        self.rows: list[tuple[int, int, float, str, float]] = []
        self.norms: list[tuple[int, int, list[float]]] = []
        self.last_flush = time.monotonic()
        self.best: dict[int, dict[str, float]] = {}
        self.step = 0
        self.total: int | None = None

    def flush(self, force: bool = False) -> None:
        if force or time.monotonic() - self.last_flush > FLUSH_EVERY_S:
            self.store.runs.add_metrics(self.rows)
            self.store.runs.add_grad_norms(self.norms)
            self.store.runs.set_steps(self.ids, self.step)
            self.rows, self.norms = [], []
            self.last_flush = time.monotonic()

    def on_start(self, idx: int, total_steps: int, layer_names: list[str]) -> None:
        self.total = total_steps
        self.store.runs.update(self.ids[idx], total_steps=total_steps)
        self.store.runs.set_layer_names(self.ids[idx], layer_names)
        self.ctx.progress(self.step, total_steps)

    def on_log(self, idx: int, step: int, epoch: float, metrics: dict[str, float]) -> None:
        self.step = max(self.step, step)
        self.rows += [(self.ids[idx], step, epoch, k, v) for k, v in metrics.items()]
        self.ctx.progress(self.step, self.total)
        self.flush()

    def on_eval(self, idx: int, step: int, epoch: float, metrics: dict[str, float]) -> None:
        self.step = max(self.step, step)
        self.rows += [(self.ids[idx], step, epoch, k, v) for k, v in metrics.items()]
        last = {**metrics, "epoch": epoch, "step": step}
        best = self.best.get(idx)
        if best is None or metrics["val/acc"] > best["val/acc"]:
            self.best[idx] = best = last
        self.flush(force=True)
        self.store.runs.update(self.ids[idx], last=last, best=best)

    def on_grad_norms(self, idx: int, step: int, norms: list[float]) -> None:
        self.norms.append((self.ids[idx], step, norms))

    def on_checkpoint(self, idx: int, tag: str, path: Path, metrics: dict[str, float]) -> None:
        self.flush(force=True)
        self.store.runs.update(self.ids[idx], **{f"ckpt_{tag}": str(path)})

    def on_end(self, idx: int, status: str, message: str | None) -> None:
        self.flush(force=True)

    def should_stop(self) -> bool:
        return self.ctx.should_stop()


class RankCallbacks(Callbacks):
    """A rank other than the leader: reports nothing, only passes on its own stop request (a SIGTERM)."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx

    def should_stop(self) -> bool:
        return self.ctx.should_stop()


def run_training(ctx: JobContext) -> Outcome:
    """Train the job's running runs to the end (resuming from their last checkpoints when the job was
    resumed) and give each its final status. In a group, every rank trains and the leader records.
    Raises JobFailed, with what to do, when the GPU runs out of memory or a checkpoint cannot be saved."""
    try:
        return _train(ctx)
    except torch.cuda.OutOfMemoryError:
        traceback.print_exc()  # torch's own account (what it tried to allocate) goes to the job's log
        message = out_of_memory_message(ctx)
    except CheckpointNotSaved as e:
        traceback.print_exc()
        message = checkpoint_message(ctx, e)
    # raised here, outside the except blocks: the failure's traceback, and the models and batches its frames
    # hold, are let go now, so the worker can hand their memory back before the next job starts
    raise JobFailed(message)


def _models(runs: Sequence[Run]) -> str:
    """The models a job trains, in words: "ResNet-56", or "ResNet-56 with its plain twin"."""
    names = [ModelSpec.from_dict(r.spec).describe().split(" (")[0] for r in runs]
    return names[0] + (" with its plain twin" if len(names) > 1 else "")


def out_of_memory_message(ctx: JobContext) -> str:
    """What to tell the person whose training job ran out of GPU memory: which models, batch size and image
    size did not fit where (and whether other jobs were using that GPU), and what to change."""
    store, job = ctx.store, ctx.job
    runs = store.runs.of_job(job.id)
    train = TrainConfig.from_dict(runs[0].train)
    size = DataConfig.from_dict(runs[0].data).image_size
    slot = job.slot or job.device
    batch = f"batch size {train.batch_size}"
    if job.world_size > 1:
        batch += f" ({train.batch_size // job.world_size} per GPU)"
    mine = set(slot.split(","))
    others = [j for j in store.jobs.list(statuses=["running"])
              if j.id != job.id and mine & set((j.slot or "").split(","))]
    busy = "" if not others else "; another job was using it" if len(others) == 1 else \
        f"; {len(others)} other jobs were using it"
    return (f"Out of GPU memory: run #{runs[0].id} ({_models(runs)}) at {batch} and {size}×{size} px images did not "
            f"fit on {slot}{busy}. Lower the batch size or image size, or wait for the GPU to be free, then start it "
            "again.")


def checkpoint_message(ctx: JobContext, error: CheckpointNotSaved) -> str:
    """What to tell the person whose training job could not save a checkpoint: why (a full disk, said so), which
    run and where, what to do, and that the previous checkpoint is intact (Resume continues from it)."""
    runs = ctx.store.runs.of_job(ctx.job.id)
    kept = error.directory.name == trajectory.FOLDER  # a snapshot of the weights kept along the way
    folder = error.directory.parent if kept else error.directory
    run = next((r for r in runs if run_dir(r.id) == folder), None)
    which = f"run #{run.id} ({run.name})" if run is not None else "a run"
    if kept:
        why = "No space left on device" if error.errno == errno.ENOSPC else \
            "Disk quota exceeded" if error.errno == errno.EDQUOT else error.strerror
        return (f"{why} while keeping the weights of {which} along its training ({error.tag} in {error.directory}): "
                "free some disk space, then resume it (it continues from its last checkpoint), or start it again "
                "as a new run after you lower 'Keep weights every k steps' / its budget (or turn it off). The weights "
                "kept so far and its checkpoints are intact.")
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        why = "No space left on device" if error.errno == errno.ENOSPC else "Disk quota exceeded"
        what = f"{why} while saving the checkpoint of {which} in {error.directory}: free some disk space, then"
    else:
        what = f"Could not save the checkpoint of {which} in {error.directory} ({error.strerror}): fix that, then"
    previous = error.directory / f"{error.tag}.json"
    try:
        step = read_manifest(previous).get("step", "?")
    except (OSError, ValueError):
        return f"{what} start it again. No earlier checkpoint of it was saved."
    return f"{what} resume it: it continues from its previous checkpoint (step {step}), which is intact."


def _train(ctx: JobContext) -> Outcome:
    """:func:`run_training`'s work, with every error as it was raised."""
    store, job = ctx.store, ctx.job
    runs = [r for r in store.runs.of_job(job.id) if r.status == "running"]
    if not runs:
        return Outcome("done")
    world_size = job.world_size
    data_cfg = DataConfig.from_dict(runs[0].data)
    cfg = dataclasses.replace(TrainConfig.from_dict(runs[0].train), device=ctx.device)
    data = load_dataset(data_cfg)
    specs = [ModelSpec.from_dict(r.spec) for r in runs]
    setups = None
    augment = data_cfg.augment
    if runs[0].finetune:
        ft = FinetuneConfig.from_dict(runs[0].finetune)
        base = load_base(ft, store)
        spec, setup = plan(ft, base, len(data.class_names), data.in_channels)
        if spec != specs[0]:
            raise ValueError("the fine-tuning base changed since the run was queued")
        data = adapt_data(data, spec.in_channels, base.mean, base.std)
        setups = [setup]
        augment = augment and not setup.head_only
    group = distributed.join(world_size, ctx.device)
    if group is not None and group.rank != ctx.rank:
        raise RuntimeError(f"torchrun made this process rank {group.rank}, the worker expected {ctx.rank}")
    leader = group is None or group.leader
    callbacks = StoreCallbacks(store, runs, ctx) if leader else RankCallbacks(ctx)
    meta = [{"run_id": r.id, "name": r.name, "data": r.data, "finetune": r.finetune} for r in runs]
    if world_size > 1:
        meta = [{**m, "world_size": world_size} for m in meta]
    trainer = Trainer(specs, data, cfg, callbacks=callbacks, checkpoint_dirs=[run_dir(r.id) for r in runs],
                      meta=meta, augment=augment, setups=setups, group=group)
    resuming = bool(job.resumes and all(r.ckpt_last for r in runs))
    if resuming:  # every rank loads the same checkpoint
        trainer.resume_from([Path(r.ckpt_last) for r in runs])
    if leader:
        if resuming:  # it goes on from the checkpoint: its step, and the best evaluation up to it
            callbacks.step = trainer.step
            callbacks.best = {i: dict(r.best) for i, r in enumerate(runs) if r.best and "val/acc" in r.best
                              and r.best.get("step", 0) <= trainer.step}
        for r in runs:
            store.runs.truncate_metrics(r.id, trainer.step if resuming else -1)
    results = trainer.run()
    distributed.leave(group)
    if not leader:
        return Outcome("stopped" if any(res.status == "stopped" for res in results) else "done")
    for run, res in zip(runs, results):
        store.runs.update(run.id, step=res.steps)
        store.runs.finish(run.id, res.status, error=res.message, only_if=["running"])
    ctx.progress(max(r.steps for r in results), callbacks.total)
    stopped = [res for res in results if res.status == "stopped"]
    return Outcome("stopped", stopped[0].message) if stopped else Outcome("done")


@dataclass(frozen=True)
class TrainingRuns:
    """What a training job is queued with (:attr:`resnet_lab.jobs.JobRequest.payload`): the runs it trains, as rows
    for :meth:`resnet_lab.store.runs.RunStore.add_to_job` (``name``, ``spec``, ``data``, ``train``, optionally
    ``finetune``), the first two each other's twin when ``twins``."""

    rows: tuple[Mapping[str, Any], ...]
    twins: bool = False


def add_runs(con: Any, created: Created) -> list[int]:
    """A training job's ``on_submit``: its runs (and the twin pairing), written in the transaction that queues the
    job, on its device and for its owner; returns their ids, the ResNet first."""
    runs: TrainingRuns = created.request.payload
    return RunStore.add_to_job(con, created.job_id, runs.rows, created.device, created.request.owner.owner,
                               created.created_at, partners=runs.twins)


TRAIN = JobKind("train", run_training, resumable=True, group=True, unit="steps", on_submit=add_runs,
                after_failure=failed_job_refusal)
"""Training from scratch: one model, or a ResNet and its plain twin on the same batches; runs as a group too."""
FINETUNE = JobKind("finetune", run_training, resumable=True, unit="steps", on_submit=add_runs,
                   after_failure=failed_job_refusal)
"""Fine-tuning a base (a weights file, or a lab run) on a dataset: one run, in one process."""
