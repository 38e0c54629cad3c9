"""Speed as background work: the ``speed`` job (:data:`SPEED_JOB`) measures presets one after another on its slot's
device and keeps each figure in the store as soon as it is measured (``store.model_speeds``), so a stopped job keeps
what it measured and the next request measures only the rest.

Cached per device and preset: :func:`submit_speed` queues a job only for presets not yet measured on the device (all
of them with ``remeasure``), and returns None when there is nothing to measure; a request whose presets an active
speed job of the same device already covers is that job. A page only reads :func:`measured`; it never times
anything itself (tests/experiments/test_speed_pages.py holds it to that).
"""

from __future__ import annotations

import functools
import time
from typing import Sequence

from ...identity import MACHINE, Identity
from ...jobs import JobRequest, scheduler, slots
from ...jobs.handlers import JobContext, JobFailed, JobKind, Outcome
from ...store import Speed, Store
from .measure import DEFAULT_PLAN, Plan, check_presets, cpu_name, device_kind, device_name, measure_preset

KIND = "speed"


@functools.lru_cache(maxsize=None)
def _gpu_name() -> str:
    """The lab's first GPU by name, as nvidia-smi says it (no CUDA context in this process); torch's name when
    nvidia-smi cannot tell."""
    named = [d.name for d in slots.devices_status() if d.slot == "cuda:0" and not d.name.startswith("GPU ")]
    return named[0] if named else device_name("cuda")


def lab_device_name(device: str | None = "auto") -> str:
    """The name speeds on ``device`` are kept under, for a page or the command line: "auto" (or None) is the lab's
    default device (:func:`resnet_lab.jobs.slots.default_device`), "cpu" this machine's CPU, "cuda" its first GPU.
    Never starts CUDA in the asking process."""
    kind = slots.default_device() if device in (None, "auto") else device
    if kind == "cpu":
        return cpu_name()
    if kind == "cuda":
        return _gpu_name()
    raise ValueError(f"unknown device {device!r}; one of auto, cpu, cuda (or a device's name)")


def measured(store: Store, device: str | None = None) -> dict[str, Speed]:
    """{preset: its :class:`Speed`} measured on one device: the lab's default device (``None`` or "auto"), "cpu",
    "cuda", or any other string as a device's name (:meth:`~resnet_lab.store.model_speeds.ModelSpeedStore.devices`
    lists those measured). A read of the store only: nothing is timed."""
    name = lab_device_name(device) if device in (None, "auto", "cpu", "cuda") else device
    return store.model_speeds.of_device(name)


def _active_covering(store: Store, name: str, presets: Sequence[str], remeasure: bool) -> int | None:
    """An active speed job on the device ``name`` that measures all of ``presets`` (and re-measures, if asked)."""
    for job in store.jobs.list(kinds=[KIND], limit=1000):
        p = job.params
        if job.active and p.get("device_name") == name and set(presets) <= set(p.get("presets", ())) \
                and (p.get("remeasure") or not remeasure):
            return job.id
    return None


def submit_speed(store: Store, presets: Sequence[str] | None = None, device: str = "auto", owner: Identity = MACHINE,
                 remeasure: bool = False, plan: Plan = DEFAULT_PLAN, start: bool = True) -> int | None:
    """Queue the measurement of ``presets`` (None: every preset the device measures by default) on ``device``
    ("auto", "cpu" or "cuda") for ``owner``; returns the job's id, or None when every one is measured on that
    device already (and ``remeasure`` is off). An unknown preset, or CUDA without a GPU, is refused now."""
    kind = slots.resolve_device(device)
    names = check_presets(list(presets) if presets is not None else None, kind)
    name = lab_device_name(kind)
    todo = names if remeasure else [p for p in names if p not in store.model_speeds.of_device(name)]
    if not todo:
        return None
    active = _active_covering(store, name, todo, remeasure)
    if active is not None:
        return active
    label = todo[0] if len(todo) == 1 else f"{len(todo)} presets"
    job_id, _ = scheduler.submit(store, JobRequest(
        SPEED_JOB, f"speed of {label} on {name}", kind,
        params={"presets": todo, "remeasure": remeasure, "device_name": name, "plan": plan.to_dict()},
        owner=owner, work={"key": KIND, "units": len(todo)}, start=start))
    return job_id


def measure_into(store: Store, preset: str, kind: str, plan: Plan = DEFAULT_PLAN, job_id: int | None = None,
                 name: str | None = None) -> Speed:
    """Measure ``preset`` on ``kind`` ("cpu" or "cuda") in this process and keep it; returns what was kept."""
    import torch

    t = measure_preset(preset, kind, plan)
    return store.model_speeds.record(Speed(
        preset=preset, device=kind, device_name=name or device_name(kind), train_images_per_s=t.train_images_per_s,
        latency_ms=t.latency_ms, images_per_s=t.images_per_s, batch=t.batch, measured_at=time.time(),
        infer_batch=t.infer_batch, image_size=t.image_size, job_id=job_id,
        detail={"train_steps": t.train_steps, "latency_runs": t.latency_runs, "infer_runs": t.infer_runs,
                "seconds": round(t.seconds, 3), "plan": plan.to_dict(), "torch": torch.__version__,
                "threads": torch.get_num_threads()}))


def _run(ctx: JobContext) -> Outcome:
    """The handler: each preset of ``params["presets"]`` measured and kept, one unit of progress each; a preset
    measured on this device meanwhile (another job) is skipped unless the job re-measures."""
    params = ctx.job.params
    presets = params.get("presets")
    if not isinstance(presets, list) or not presets:
        raise JobFailed("this speed job names no preset to measure")
    kind = device_kind(ctx.device)
    name = device_name(kind)
    plan = Plan.from_dict(params.get("plan") or {})
    remeasure = bool(params.get("remeasure"))
    done = 0
    ctx.progress(0, len(presets))
    for i, preset in enumerate(presets):
        if ctx.should_stop():
            return Outcome("stopped", f"Stopped after {done} of {len(presets)} presets; their speeds are kept, "
                                      "and asking again measures only the rest.")
        if remeasure or preset not in ctx.store.model_speeds.of_device(name):
            measure_into(ctx.store, str(preset), kind, plan, ctx.job.id, name)
            done += 1
        ctx.progress(i + 1, len(presets))
    return Outcome("done", f"Measured {done} preset{'s' if done != 1 else ''} on {name}.")


SPEED_JOB = JobKind(KIND, _run, unit="presets")
"""Measuring presets' training and inference speed on the device of its slot, one preset a unit of progress."""
