"""The worker process: ``python -m resnet_lab.train.worker JOB_ID`` trains one job and records it.

It turns the engine's callbacks into store writes (metrics batched, a few transactions a second at
most), beats a heartbeat from a side thread, and stops gracefully — finishing the step and writing a
checkpoint — when the store says stop or it receives SIGTERM. Whatever happens, every run of the job
ends in a final status with a message, and the next queued job is started.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Sequence

from ..data.registry import DataConfig, load_dataset
from ..spec import ModelSpec
from ..store import Run, Store
from .config import TrainConfig
from .engine import Callbacks, Trainer
from .finetune import FinetuneConfig, adapt_data, load_base, plan
from .launcher import HEARTBEAT_S, pump, run_dir

FLUSH_EVERY_S = 0.5


class StoreCallbacks(Callbacks):
    def __init__(self, store: Store, runs: Sequence[Run], stop_event: threading.Event) -> None:
        self.store = store
        self.ids = [r.id for r in runs]
        self.stop_event = stop_event
        self.rows: list[tuple[int, int, float, str, float]] = []
        self.norms: list[tuple[int, int, list[float]]] = []
        self.last_flush = time.monotonic()
        self.best: dict[int, dict[str, float]] = {}

    def flush(self, force: bool = False) -> None:
        if force or time.monotonic() - self.last_flush > FLUSH_EVERY_S:
            self.store.add_metrics(self.rows)
            self.store.add_grad_norms(self.norms)
            self.rows, self.norms = [], []
            self.last_flush = time.monotonic()

    def on_start(self, idx: int, total_steps: int, layer_names: list[str]) -> None:
        self.store.update(self.ids[idx], total_steps=total_steps)
        self.store.set_layer_names(self.ids[idx], layer_names)

    def on_log(self, idx: int, step: int, epoch: float, metrics: dict[str, float]) -> None:
        self.rows += [(self.ids[idx], step, epoch, k, v) for k, v in metrics.items()]
        self.flush()

    def on_eval(self, idx: int, step: int, epoch: float, metrics: dict[str, float]) -> None:
        self.rows += [(self.ids[idx], step, epoch, k, v) for k, v in metrics.items()]
        last = {**metrics, "epoch": epoch, "step": step}
        best = self.best.get(idx)
        if best is None or metrics["val/acc"] > best["val/acc"]:
            self.best[idx] = best = last
        self.flush(force=True)
        self.store.update(self.ids[idx], last=last, best=best)

    def on_grad_norms(self, idx: int, step: int, norms: list[float]) -> None:
        self.norms.append((self.ids[idx], step, norms))

    def on_checkpoint(self, idx: int, tag: str, path: Path, metrics: dict[str, float]) -> None:
        self.flush(force=True)
        self.store.update(self.ids[idx], **{f"ckpt_{tag}": str(path)})

    def on_end(self, idx: int, status: str, message: str | None) -> None:
        self.flush(force=True)

    def should_stop(self) -> bool:
        return self.stop_event.is_set()


def _heartbeat(db: Path, job_id: int, ids: list[int], trainer_ref: list, stop_event: threading.Event,
               done: threading.Event) -> None:
    store = Store(db)  # its own connection: sqlite connections are not shared across threads
    try:
        while not done.wait(HEARTBEAT_S):
            trainer = trainer_ref[0] if trainer_ref else None
            store.heartbeat(ids, step=trainer.step if trainer is not None else None)
            if store.stop_requested(job_id):
                stop_event.set()
    finally:
        store.close()


def run_job(job_id: int, store: Store | None = None) -> list[str]:
    """Train the job's running members to the end; returns their final statuses."""
    store = store or Store()
    runs = [r for r in store.job_runs(job_id) if r.status == "running"]
    if not runs:
        return []
    ids = [r.id for r in runs]
    for rid in ids:
        store.update(rid, pid=os.getpid())
    store.heartbeat(ids)
    stop_event, done = threading.Event(), threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop_event.set())
    trainer_ref: list[Trainer] = []
    beat = threading.Thread(target=_heartbeat, args=(store.path, job_id, ids, trainer_ref, stop_event, done),
                            daemon=True)
    beat.start()
    statuses = []
    try:
        data_cfg = DataConfig.from_dict(runs[0].data)
        cfg = TrainConfig.from_dict(runs[0].train)
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
        trainer = Trainer(specs, data, cfg,
                          callbacks=StoreCallbacks(store, runs, stop_event),
                          checkpoint_dirs=[run_dir(r.id) for r in runs],
                          meta=[{"run_id": r.id, "name": r.name, "data": r.data, "finetune": r.finetune}
                                for r in runs],
                          augment=augment, setups=setups)
        if all(r.ckpt_last for r in runs) and any(r.resumes for r in runs):
            trainer.resume_from([Path(r.ckpt_last) for r in runs])
            for rid in ids:
                store.truncate_metrics(rid, trainer.step)
        else:
            for rid in ids:
                store.truncate_metrics(rid, -1)
        trainer_ref.append(trainer)
        results = trainer.run()
        for run, res in zip(runs, results):
            store.update(run.id, step=res.steps)
            store.set_status(run.id, res.status, error=res.message, only_if=["running"])
            statuses.append(res.status)
    except Exception as e:  # every failure ends the run visibly, with its reason
        traceback.print_exc()
        message = f"{type(e).__name__}: {e}"
        for rid in ids:
            store.set_status(rid, "failed", error=message, only_if=["running"])
        statuses = ["failed"] * len(ids)
    finally:
        done.set()
        beat.join(timeout=5)
    return statuses


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m resnet_lab.train.worker JOB_ID", file=sys.stderr)
        return 2
    store = Store()
    try:
        run_job(int(args[0]), store)
    finally:
        pump(store)  # hand the device to the next queued job
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
