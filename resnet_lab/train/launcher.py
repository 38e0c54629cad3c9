"""Queueing training and fine-tuning jobs: the spec fitted to the data, the data checked, a name, the work
described for queue estimates, and the job's fingerprint — so that the same job finished earlier (by anyone
in the class) can be offered instead of training a copy (:func:`shared_result`). The queue itself (placing,
spawning, reaping, stopping) is :mod:`resnet_lab.jobs`; who may stop, resume or delete a run is decided there
(``by``: the person asking)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

from ..data.registry import DataConfig, dataset_info
from ..data.types import FOLDER_PREFIX
from ..identity import MACHINE, Identity
from ..jobs import JobRequest, scheduler, slots
from ..models.presets import preset_name
from ..paths import data_root
from ..spec import ModelSpec
from ..store import Job, Store
from .config import TrainConfig
from .finetune import FinetuneConfig, load_base, plan
from .handler import FINETUNE, TRAIN, TrainingRuns
from .trajectory import check_budget

NOMINAL_TRAIN_IMAGES = 10_000
"""Training images assumed for a dataset used whole, when estimating work before it is loaded. The same
figure is used when a job's speed is learned and when it is applied, so it cancels for the same data."""


def fit_spec_to_data(spec: ModelSpec, data: DataConfig) -> ModelSpec:
    """The spec with its input channels and classes set to the dataset's."""
    return dataset_info(data.name).fit(spec)


def check_data_available(data: DataConfig) -> None:
    """Raise DatasetMissing (a ValueError saying what to put where) before queueing a run that would fail."""
    if dataset_info(data.name).needs_files:
        from ..data.torchvision_sets import check_files

        check_files(data.name, data_root())


def missing_data(name: str) -> str | None:
    """What the dataset ``name`` lacks on this machine before it can train — the :class:`DatasetMissing`
    message: which files, where they go, where to download them — or None when nothing is missing. A presence
    check only (no file is read), cheap enough for a page to ask whenever a dataset is picked."""
    if not dataset_info(name).needs_files:
        return None
    from ..data.torchvision_sets import DatasetMissing, check_files

    try:
        check_files(name, data_root())
    except DatasetMissing as e:
        return str(e)
    return None


def default_name(spec: ModelSpec, data: DataConfig) -> str:
    name = preset_name(spec) or spec.describe().split(" (")[0]
    return f"{name} · {data.name}"


def training_work(kind: str, specs: list[dict[str, Any]], data: DataConfig, train: TrainConfig,
                  world_size: int = 1) -> dict[str, Any]:
    """What a training job computes, for learned speeds: the models, the data and its image size, and the
    training images it will see (epochs × images × models; a run that stops after ``max_steps``: steps × batch ×
    models). A job on several devices learns its own speed."""
    signature = hashlib.sha1(json.dumps([specs, data.name, data.image_size, train.batch_size],
                                        sort_keys=True).encode()).hexdigest()[:16]
    images = data.train_subset or NOMINAL_TRAIN_IMAGES
    group = f"@{world_size}" if world_size > 1 else ""
    seen = train.epochs * images if train.max_steps is None else min(train.epochs * images,
                                                                       train.max_steps * train.batch_size)
    return {"key": f"{kind}:{signature}{group}", "units": seen * len(specs)}


def training_rows(spec: ModelSpec, data: DataConfig, train: TrainConfig, twin: bool = False,
                  name: str | None = None) -> list[dict[str, Any]]:
    """The run records of a training job: the model, and its plain twin when asked."""
    chosen = [spec, spec.twin()] if twin else [spec]
    names = [name or default_name(chosen[0], data)] + [default_name(s, data) for s in chosen[1:]]
    return [{"name": n, "spec": fit_spec_to_data(s, data).to_dict(), "data": data.to_dict(), "train": train.to_dict()}
            for n, s in zip(names, chosen)]


def fingerprint(spec: ModelSpec | None, data: DataConfig, train: TrainConfig, twin: bool = False, world_size: int = 1,
                kind: str = "train", finetune: FinetuneConfig | None = None) -> str:
    """A stable hash of everything that decides what a job computes: its kind, the models as trained (fitted to
    the data; with ``twin`` the plain twin too), the data settings, every training setting with the seed,
    and the number of devices. The device setting counts as the kind of device it resolves to here ("auto"
    on a GPU machine is "cuda"); the keep-weights settings count only when on (:meth:`TrainConfig.fingerprint_dict`).
    A user dataset counts by what its images are too (:func:`resnet_lab.data.folders.dataset_contents`), not
    only by its name. A fine-tuning job (``finetune``) counts its fine-tuning settings instead of
    ``spec``: its model follows from its source and the data. Names do not count: the same job has the
    same fingerprint whoever queues it and whatever they call it."""
    try:
        device = slots.resolve_device(train.device)
    except ValueError:  # a device this machine does not have: the job is refused at submission anyway
        device = train.device
    if finetune is not None:
        kind, specs = "finetune", []
    elif spec is None:
        raise ValueError("a training job's fingerprint needs its spec")
    else:
        specs = [row["spec"] for row in training_rows(spec, data, train, twin)]
    payload = {"kind": kind, "specs": specs, "data": data.to_dict(),
               "train": {**train.fingerprint_dict(), "device": device},
               "twin": bool(twin), "world_size": int(world_size),
               "finetune": finetune.to_dict() if finetune is not None else None}
    contents = _dataset_contents(data)
    if contents is not None:  # (a built-in dataset's name says it all: its fingerprints stay as they were)
        payload["data_contents"] = contents
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _dataset_contents(data: DataConfig) -> str | None:
    """What an imported dataset's images are (None for a built-in one, or one that is not there: submitting
    refuses it anyway)."""
    if not data.name.startswith(FOLDER_PREFIX):
        return None
    from ..data.folders import dataset_contents

    try:
        return dataset_contents(data.name[len(FOLDER_PREFIX):])
    except ValueError:
        return None


def _has_checkpoint(path: str | None) -> bool:
    return bool(path) and Path(str(path)).is_file()


def shared_result(store: Store, spec: ModelSpec | None, data: DataConfig, train: TrainConfig, twin: bool = False,
                  world_size: int = 1, finetune: FinetuneConfig | None = None) -> Job | None:
    """The newest finished (``done``) job with exactly these settings (see :func:`fingerprint`) whose runs all
    have a checkpoint on disk, whoever queued it — offered instead of training a copy — or None."""
    fp = fingerprint(spec, data, train, twin, world_size, finetune=finetune)
    for job in store.jobs.done_by_fingerprint(fp):
        runs = store.runs.of_job(job.id)
        if runs and all(_has_checkpoint(r.ckpt_best) or _has_checkpoint(r.ckpt_last) for r in runs):
            return job
    return None


def check_bounds(owner: Identity, spec: ModelSpec, data: DataConfig, train: TrainConfig,
                 lesson: Any = None) -> None:
    """Refuse (:class:`resnet_lab.classroom.bounds.OutOfBounds`, a ValueError naming each bound and its allowed
    range) a training request outside the bounds that apply to ``owner``: the class's settings file for a
    student (none for a teacher or the machine), made stricter by the open ``lesson``'s. Every submit calls it,
    so a page that forgets to check, or a crafted request, is still refused."""
    from ..classroom.lessons import effective_bounds
    from ..classroom.settings import load_settings

    effective_bounds(owner, load_settings(), lesson).check_training(spec, data, train)


def submit(spec: ModelSpec, data: DataConfig, train: TrainConfig, twin: bool = False, name: str | None = None,
           request_key: str | None = None, store: Store | None = None, origin: str | None = None,
           world_size: int = 1, owner: Identity = MACHINE, lesson: Any = None) -> list[int]:
    """Queue a run (or a run and its plain twin, trained together) and start it if there is room.

    The spec is fitted to the dataset (input channels, classes); a dataset whose files are missing is
    refused here, with what to put where, rather than failing later in the worker. ``origin`` marks a
    job launched by an experiment (say "degradation"). ``world_size`` N > 1 trains on N devices at once
    (N GPUs, or N lanes of the cpu slot) with DistributedDataParallel: the batch size stays the global
    batch, split evenly (so it must divide by N), and the result is the one-device run's up to rounding.
    ``owner``: who queues it (the class's caps apply: :class:`resnet_lab.jobs.QueueFull`; its bounds, and the
    open ``lesson``'s: :func:`check_bounds`). Keeping the weights (``train.keep_weights_every``) is refused here
    when even their first and last snapshots exceed the budget (:func:`resnet_lab.train.trajectory.check_budget`).
    The job's :func:`fingerprint` is stored with it. Returns the run
    ids, the ResNet first.
    """
    if world_size > 1 and train.batch_size % world_size:
        raise ValueError(f"batch size {train.batch_size} does not split evenly over {world_size} devices; "
                         f"choose a multiple of {world_size}")
    check_bounds(owner, fit_spec_to_data(spec, data), data, train, lesson)
    check_data_available(data)
    rows = training_rows(spec, data, train, twin, name)
    check_budget([ModelSpec.from_dict(r["spec"]) for r in rows], train)  # kept weights: refused only if 2 won't fit
    store = store or Store()
    _, ids = scheduler.submit(store, JobRequest(
        TRAIN, rows[0]["name"], train.device, payload=TrainingRuns(tuple(rows), twins=twin), origin=origin,
        request_key=request_key, world_size=world_size, owner=owner,
        work=training_work("train", [r["spec"] for r in rows], data, train, world_size),
        fingerprint=fingerprint(spec, data, train, twin, world_size)))
    return ids


def submit_finetune(ft: FinetuneConfig, data: DataConfig, train: TrainConfig, name: str | None = None,
                    request_key: str | None = None, store: Store | None = None,
                    owner: Identity = MACHINE, lesson: Any = None) -> list[int]:
    """Queue a fine-tuning run for ``owner`` (within the bounds that apply: :func:`check_bounds`). The base
    (weights file, lab run checkpoint) is checked now, so a missing file is a message at once, not a failed
    run later. Returns [the run id]."""
    check_data_available(data)
    store = store or Store()
    base = load_base(ft, store)
    info = dataset_info(data.name)
    spec, _ = plan(ft, base, info.num_classes, info.in_channels)
    check_bounds(owner, spec, data, train, lesson)
    check_budget([spec], train)
    row = {"name": name or f"{base.label} → {data.name} · {ft.strategy}", "spec": spec.to_dict(),
           "data": data.to_dict(), "train": train.to_dict(), "finetune": ft.to_dict()}
    _, ids = scheduler.submit(store, JobRequest(
        FINETUNE, row["name"], train.device, payload=TrainingRuns((row,)), request_key=request_key, owner=owner,
        work=training_work(f"finetune:{ft.strategy}", [row["spec"]], data, train),
        fingerprint=fingerprint(None, data, train, finetune=ft)))
    return ids


def job_of(run_id: int, store: Store) -> int:
    """The id of the job that trains a run (KeyError for an unknown run, ValueError for an orphan)."""
    run = store.runs.get(run_id)
    if run.job_id is None:
        raise ValueError(f"run {run_id} has no job record any more")
    return run.job_id


def stop(run_id: int, store: Store | None = None, *, by: Identity) -> str:
    """Stop the job that trains run ``run_id`` (and its twin) as ``by``: see :func:`resnet_lab.jobs.stop`."""
    store = store or Store()
    return scheduler.stop(job_of(run_id, store), store, by=by)


def resume(run_id: int, store: Store | None = None, *, by: Identity) -> None:
    """Resume the job that trains run ``run_id`` from its last checkpoint, as ``by``."""
    store = store or Store()
    scheduler.resume(job_of(run_id, store), store, by=by)


def delete_run(run_id: int, store: Store | None = None, *, by: Identity) -> list[int]:
    """Delete run ``run_id`` as ``by``: the job that trained it, with its twin, their metrics, the analyses of
    them (:meth:`resnet_lab.store.jobs.JobStore.delete`: only the owner or a teacher may, and only once
    nothing of it is queued or running), then their files — checkpoints, results, worker logs. Returns the
    ids of the runs deleted."""
    store = store or Store()
    job_id = job_of(run_id, store)
    runs = [r.id for r in store.runs.of_job(job_id)]
    jobs = [job_id, *(j.id for j in store.jobs.list(run_ids=runs, limit=1_000_000))]
    store.jobs.delete(job_id, by=by)
    for folder in [store.home / "runs" / str(r) for r in runs] + [store.home / "jobs" / str(j) for j in jobs]:
        if folder.is_dir():
            shutil.rmtree(folder)
    return runs


def estimate(store: Store, spec: ModelSpec, data: DataConfig, train: TrainConfig, twin: bool = False,
             kind: str = "train", world_size: int = 1) -> float | None:
    """Seconds the job would take, from the speed learned on earlier jobs of the same models, data and image
    size on this kind of device (and number of devices); None before any such job finished."""
    from ..jobs.slots import resolve_device

    rows = training_rows(spec, data, train, twin)
    work = training_work(kind, [r["spec"] for r in rows], data, train, world_size)
    per = store.jobs.speed(resolve_device(train.device), work["key"])
    return None if per is None else per * work["units"]
