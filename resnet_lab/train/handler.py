"""The training job handler: trains a job's runs (one model, or a ResNet and its plain twin on the very
same batches) and records them. Called by the one worker harness (:mod:`resnet_lab.jobs.worker`) for
jobs of kind ``train`` and ``finetune``.

It turns the engine's callbacks into store writes (metrics batched, a few transactions a second at
most) and stops gracefully — finishing the step and writing a checkpoint — when asked. Each run ends
with its own status (done, diverged, stopped); the job ends stopped if a run was stopped, else done.

A job of ``world_size`` N > 1 runs this handler in each of its N processes (see
:mod:`resnet_lab.train.distributed`): all of them read the job, load the data, join the group and train;
only the leader (rank 0) writes to the store — the others get callbacks that write nothing.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Sequence

from ..data.registry import DataConfig, load_dataset
from ..jobs.handlers import JobContext, Outcome
from ..paths import run_dir
from ..spec import ModelSpec
from ..store import Run, Store
from . import distributed
from .config import TrainConfig
from .engine import Callbacks, Trainer
from .finetune import FinetuneConfig, adapt_data, load_base, plan

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
    resumed) and give each its final status. In a group, every rank trains and the leader records."""
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
        if resuming:
            callbacks.step = trainer.step
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
