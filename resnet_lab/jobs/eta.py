"""Where a job stands in the queue, and when it should start and end.

A running job's remaining time comes from its own progress (elapsed / done × left) or, before it has
made any, from its estimate (learned seconds per unit of work × its units, see ``JobStore.speed``).
The queue is then played forward: each time a lane frees, the jobs that would start are chosen by the
very functions the scheduler's claim uses (:func:`resnet_lab.store.jobs.turn_order` and
:func:`~resnet_lab.store.jobs.pick`: owners' fair turns, per-owner running caps, a job that does not fit
holding back the ones behind it), so the place and times shown are what will happen if nothing else is
queued and the estimates hold. A job whose duration is unknown holds its lanes to the end of the
forecast; the jobs that would need them get no time. A job's ``ahead`` is its place in the turn order now.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Iterable, Literal, Mapping

from ..identity import LOCAL
from ..store import Job, Store, Waiting, pick, turn_order
from . import slots
from .scheduler import FROM_SETTINGS, queue_caps


@dataclass(frozen=True)
class Forecast:
    job_id: int | None  # None: a job not queued yet (what pressing the button would give)
    status: str
    ahead: int  # jobs before it in the turn order for the same kind of device (see store.jobs.turn_order)
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
             new: Mapping[str, float | str | None] | None = None,
             max_running_per_owner: int | None | Literal["settings"] = FROM_SETTINGS) -> dict[int | None, Forecast]:
    """A forecast for every running and queued job, by id. With ``new`` = {"device": ..., "estimate_s": ...,
    "world_size": ..., "owner": ...} also the forecast of a job not queued yet, under the key None (what the page
    shows before the button; ``owner``, an ``Identity.owner`` key, default the machine's: whose turn it takes).
    ``max_running_per_owner``: default the class's settings, as :func:`resnet_lab.jobs.pump` uses."""
    capacity = dict(capacity if capacity is not None else slots.capacity())
    now = time.time() if now is None else now
    if max_running_per_owner == FROM_SETTINGS:
        max_running_per_owner = queue_caps()[1]
    running = store.jobs.list(statuses=["running"], oldest_first=True, limit=1_000_000)
    queued = store.jobs.list(statuses=["queued"], oldest_first=True, limit=1_000_000)
    return plan(running, queued, capacity, now, new, turns=store.jobs.turns(),
                max_running_per_owner=max_running_per_owner)


def plan(running: Iterable[Job], queued: Iterable[Job], capacity: Mapping[str, int], now: float,
         new: Mapping[str, float | str | None] | None = None, *, turns: Mapping[tuple[str, str], int] | None = None,
         max_running_per_owner: int | None = None) -> dict[int | None, Forecast]:
    """The forecast itself, from the jobs (pure: no store). ``turns``: :meth:`JobStore.turns`. A job not queued
    yet (``new``) is forecast in a second pass, so it changes none of the others' forecasts."""
    running, queued = list(running), [Waiting.of(j) for j in queued]
    turns = dict(turns or {})
    out = _play(running, queued, capacity, now, turns, max_running_per_owner)
    if new is not None:
        probe = Waiting(None, str(new.get("owner") or LOCAL), str(new["device"]), int(new.get("world_size") or 1),
                        math.inf, estimate_s=new.get("estimate_s"))  # type: ignore[arg-type]
        out[None] = _play(running, [*queued, probe], capacity, now, turns, max_running_per_owner)[None]
    return out


def _play(running: list[Job], queued: list[Waiting], capacity: Mapping[str, int], now: float,
          turns: dict[tuple[str, str], int], cap: int | None) -> dict[int | None, Forecast]:
    """Play the queue forward from ``now`` (time 0): at each moment a lane frees, start what a claim would."""
    out: dict[int | None, Forecast] = {}
    ends: dict[str, list[float]] = {slot: [] for slot in capacity}  # slot -> when each process on it ends
    owner_ends: dict[str, list[float]] = {}  # owner -> when each of their jobs ends
    for job in running:
        left = remaining_s(job, now)
        out[job.id] = Forecast(job.id, "running", 0, 0.0, left)
        end = math.inf if left is None else left
        for slot in job.slots:
            ends.setdefault(slot, []).append(end)
        owner_ends.setdefault(job.owner, []).append(end)
    ahead: dict[int | None, int] = {}
    place_of: dict[str, int] = {}
    for w in turn_order(queued, turns):
        ahead[w.id] = place_of.get(w.device, 0)
        place_of[w.device] = ahead[w.id] + 1
    served = dict(turns)
    seq = max(served.values(), default=0)
    times: dict[int | None, tuple[float, float]] = {}
    waiting = list(queued)
    t = 0.0
    while waiting:
        free = {slot: n - sum(1 for e in ends.get(slot, ()) if e > t) for slot, n in capacity.items()}
        busy = {o: sum(1 for e in es if e > t) for o, es in owner_ends.items()}
        for w, chosen in pick(turn_order(waiting, served), capacity, free, busy, cap):
            end = t + w.estimate_s if w.estimate_s is not None else math.inf
            times[w.id] = (t, end)
            for slot in chosen:
                ends[slot].append(end)
            owner_ends.setdefault(w.owner, []).append(end)
            seq += 1
            served[(w.device, w.owner)] = seq
        waiting = [w for w in waiting if w.id not in times]
        later = [e for es in ends.values() for e in es if t < e < math.inf]
        if not later:
            break
        t = min(later)
    for w in queued:
        start, end = times.get(w.id, (None, None))
        known_end = end if end is not None and math.isfinite(end) else None
        out[w.id] = Forecast(w.id, "queued", ahead[w.id], start, known_end)
    return out
