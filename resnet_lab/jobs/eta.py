"""Where a job stands in the queue, and when it should start and end.

A running job's remaining time comes from its own progress (elapsed / done × left) or, before it has
made any, from its estimate (learned seconds per unit of work × its units, see ``JobStore.speed``).
Queued jobs are then laid onto the slots of their kind of device in queue order, each on the slot
that frees first — the same first-come-first-served rule the scheduler follows — so every queued job
gets a place, and a start and end time where the jobs before it have known durations. A job of
``world_size`` N holds N lanes and starts when the N-th of them frees.
"""

from __future__ import annotations

import heapq
import math
import time
from dataclasses import dataclass
from typing import Iterable, Mapping

from ..store import Job, Store, slot_class
from . import slots


@dataclass(frozen=True)
class Forecast:
    job_id: int | None  # None: a job not queued yet (what pressing the button would give)
    status: str
    ahead: int  # jobs queued before it for the same kind of device
    start_in_s: float | None  # seconds from now until it starts (0: it runs, or would start at once); None: unknown
    end_in_s: float | None  # seconds from now until it ends; None: unknown

    @property
    def starts_now(self) -> bool:
        return self.status == "running" or (self.ahead == 0 and self.start_in_s == 0)

    def describe(self) -> str:
        """"starts now", "running · about 3 min left", "3 jobs ahead, starts in about 4 min" …"""
        if self.status == "running":
            return "running" + (f" · about {format_duration(self.end_in_s)} left" if self.end_in_s is not None
                                else "")
        if self.starts_now:
            text = "starts now"
        else:
            ahead = f"{self.ahead} job{'s' if self.ahead != 1 else ''} ahead" if self.ahead else "next in line"
            text = ahead + (f", starts in about {format_duration(self.start_in_s)}" if self.start_in_s is not None
                            else ", waiting for a free slot")
        if self.end_in_s is not None:
            text += f" · done in about {format_duration(self.end_in_s)}"
        return text

    def to_dict(self) -> dict:
        return {"job": self.job_id, "status": self.status, "ahead": self.ahead, "start_in_s": self.start_in_s,
                "end_in_s": self.end_in_s, "text": self.describe()}


def format_duration(s: float | None) -> str:
    if s is None:
        return "?"
    if s < 60:
        return f"{max(1, round(s))} s"
    if s < 5400:
        return f"{round(s / 60)} min"
    return f"{s / 3600:.1f} h"


def remaining_s(job: Job, now: float) -> float | None:
    """Seconds a running job still needs: from its progress once it has some, else its estimate."""
    if job.total and job.progress and job.started_at:
        elapsed = max(0.0, now - job.started_at)
        return elapsed / job.progress * max(0, job.total - job.progress)
    if job.estimate_s is not None:
        spent = max(0.0, now - job.started_at) if job.started_at else 0.0
        return max(0.0, job.estimate_s - spent)
    return None


def forecast(store: Store, capacity: Mapping[str, int] | None = None, now: float | None = None,
             new: Mapping[str, float | None] | None = None) -> dict[int | None, Forecast]:
    """A forecast for every running and queued job, by id. With ``new`` = {"device": ..., "estimate_s": ...}
    also the forecast of a job not queued yet, under the key None (what the page shows before the button)."""
    capacity = dict(capacity if capacity is not None else slots.capacity())
    now = time.time() if now is None else now
    running = store.jobs.list(statuses=["running"], oldest_first=True)
    queued = store.jobs.list(statuses=["queued"], oldest_first=True)
    return plan(running, queued, capacity, now, new)


def plan(running: Iterable[Job], queued: Iterable[Job], capacity: Mapping[str, int], now: float,
         new: Mapping[str, float | None] | None = None) -> dict[int | None, Forecast]:
    """The forecast itself, from the jobs (pure: no store)."""
    out: dict[int | None, Forecast] = {}
    lanes: dict[str, list[float]] = {}  # device kind -> heap of times (s from now) when a lane frees
    for slot, n in capacity.items():
        lanes.setdefault(slot_class(slot), []).extend([0.0] * n)
    busy: dict[str, list[float]] = {}
    for job in running:
        left = remaining_s(job, now)
        out[job.id] = Forecast(job.id, "running", 0, 0.0, left)
        busy.setdefault(slot_class(job.slot or job.device), []).extend(
            [math.inf if left is None else left] * max(1, len(job.slots)))
    for kind, heap in lanes.items():
        for i, left in enumerate(sorted(busy.get(kind, []))[: len(heap)]):
            heap[i] = left
        heapq.heapify(heap)
    ahead: dict[str, int] = {}
    pending = [(j.id, j.device, j.estimate_s, j.world_size) for j in queued]
    if new is not None:
        pending.append((None, str(new["device"]), new.get("estimate_s"), int(new.get("world_size") or 1)))
    for job_id, device, estimate, n in pending:
        heap = lanes.get(device)
        k = ahead.get(device, 0)
        ahead[device] = k + 1
        if not heap or len(heap) < n:
            out[job_id] = Forecast(job_id, "queued", k, None, None)
            continue
        start = max(heapq.heappop(heap) for _ in range(n))
        end = start + estimate if estimate is not None and math.isfinite(start) else math.inf
        for _ in range(n):
            heapq.heappush(heap, end)
        out[job_id] = Forecast(job_id, "queued", k, start if math.isfinite(start) else None,
                               end if math.isfinite(end) else None)
    return out
