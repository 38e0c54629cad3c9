"""Where a job stands in the queue, and when it should start and end.

**How long a job takes** (:func:`duration`) is learned from the lab's own finished jobs of the same kind on the
same kind of device (:func:`timings`: the same ``work`` key — the same models, data, image size and batch — seconds
from its start to its end, per unit of work such as a training image). Once the lab has timed such a job the
estimate is a point; until then it is a range: the fastest and the slowest any job of that kind (``train``,
``finetune:…``) went per unit on this device, :data:`UNTIMED_SPREAD` times wider each way, since a new model may be
faster or slower per image than any timed so far. A job with no key keeps the estimate it was queued with (an
analysis measures its own cost beforehand); one with neither has no time at all.

**A running job's time left** (:func:`remaining`) comes from its own progress: elapsed / done × left. Elapsed
counts its start-up too (a process, imports, the data), so early on that is the late end of the truth; with a
timed estimate the two are blended, the job's own pace weighing as much as the share of it done; without one
the range runs from the early end (the elapsed time not matched by the share done, elapsed × (1 − done), taken as
start-up: wide at first, narrowing as the job progresses) to the late end. A resumed job's elapsed time is no
guide (its start is its first start and its progress counts earlier tries), so it gets its estimate's share of
the work left.

**The queue is then played forward** (three times: the early, central and late durations): each time a lane
frees, the jobs that would start are chosen by the very functions the scheduler's claim uses
(:func:`resnet_lab.jobs.turns.turn_order` and :func:`~resnet_lab.jobs.turns.pick`: owners' fair turns, per-owner
running caps, a job that does not fit holding back the ones behind it), so jobs run side by side on the
device's slots and a queued job starts when the first running job on its kind of device ends, not after the
sum of everything ahead. A job whose duration is unknown holds its lanes to the end of the forecast; the jobs
that would need them get no time, and the forecast says why (:attr:`Forecast.why`). A job's ``ahead`` is its
place in the turn order now.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Iterable, Literal, Mapping, Sequence

from ..fmt import format_duration
from ..identity import LOCAL
from ..store import Job, Store
from . import launch
from .scheduler import FROM_SETTINGS, queue_caps, uncapped_owners
from .turns import Uncapped, Waiting, machine_only, pick, turn_order

UNTIMED_SPREAD = 2.0  # a job of a kind timed on this device, but not this job: each end of the range stretched ×
RECENT_TIMINGS = 5  # the newest finished jobs of one key that make its estimate (the lab's speed drifts)
HISTORY_LIMIT = 300  # finished jobs read per kind of device for the estimates


@dataclass(frozen=True)
class Span:
    """A duration in seconds: a point (``lo == hi``) once the lab has timed this kind of job on this kind of
    device, a range (``lo`` < ``hi``) before."""

    lo: float
    hi: float

    @property
    def timed(self) -> bool:
        return self.lo == self.hi

    @property
    def mid(self) -> float:
        """The central value: the geometric mean of the ends (a range spans ratios, not differences)."""
        if self.timed:
            return self.lo
        return math.sqrt(self.lo * self.hi) if self.lo > 0 else (self.lo + self.hi) / 2

    def scaled(self, factor: float) -> "Span":
        return Span(self.lo * factor, self.hi * factor)

    def minus(self, seconds: float) -> "Span":
        return Span(max(0.0, self.lo - seconds), max(0.0, self.hi - seconds))


@dataclass(frozen=True)
class Forecast:
    job_id: int | None  # None: a job not queued yet (what pressing the button would give)
    status: str
    ahead: int  # jobs before it in the turn order for the same kind of device (see jobs.turns.turn_order)
    start_in_s: float | None  # seconds from now until it starts (0: it runs, or would start at once); None: unknown
    end_in_s: float | None  # seconds from now until it ends (the central estimate); None: unknown
    start_range: tuple[float, float] | None = None  # (early, late) while a duration it waits on is untimed
    end_range: tuple[float, float] | None = None  # (early, late) while its own or one ahead of it is untimed
    why: str = ""  # why a time is unknown ("" when both are known), e.g. "no job like it timed on cpu yet"

    @property
    def starts_now(self) -> bool:
        return self.status == "running" or (self.ahead == 0 and self.start_in_s == 0)

    def start_text(self) -> str:
        """"now", "about 4 min", "about 3–6 min" or "" (unknown: see :attr:`why`)."""
        if self.starts_now:
            return "now"
        return _about(self.start_in_s, self.start_range)

    def end_text(self) -> str:
        """"about 4 min", "about 3–6 min" or "" (unknown: see :attr:`why`)."""
        return _about(self.end_in_s, self.end_range)

    def describe(self) -> str:
        """"starts now", "running · about 3 min left", "3 jobs ahead, starts in about 4–7 min" …"""
        end = self.end_text()
        if self.status == "running":
            return "running" + (f" · {end} left" if end else "")
        if self.starts_now:
            text = "starts now"
        else:
            ahead = f"{self.ahead} job{'s' if self.ahead != 1 else ''} ahead" if self.ahead else "next in line"
            start = self.start_text()
            text = ahead + (f", starts in {start}" if start else f", waiting for a free slot ({self.why})" if self.why
                            else ", waiting for a free slot")
        if end:
            text += f" · done in {end}"
        return text

    def to_dict(self) -> dict:
        return {"job": self.job_id, "status": self.status, "ahead": self.ahead, "start_in_s": self.start_in_s,
                "end_in_s": self.end_in_s, "start_range": self.start_range, "end_range": self.end_range,
                "why": self.why, "text": self.describe()}


def format_span(lo: float, hi: float) -> str:
    """A range of seconds as a person says it: "10–15 min", "40 s–2 min"; a point when both ends read the same."""
    a, b = format_duration(lo), format_duration(hi)
    if a == b:
        return a
    (na, ua), (nb, ub) = a.split(" "), b.split(" ")
    return f"{na}–{nb} {ub}" if ua == ub else f"{a}–{b}"


def _about(point: float | None, span: tuple[float, float] | None) -> str:
    if point is None:
        return ""
    return "about " + (format_span(*span) if span is not None else format_duration(point))


# --- how long a job takes ------------------------------------------------------------------------------------

Timings = Mapping[str, Sequence[tuple[float, float]]]  # work key -> [(units, seconds)], the newest first


def timings(store: Store, device: str, limit: int = HISTORY_LIMIT) -> dict[str, list[tuple[float, float]]]:
    """What the lab's finished jobs on ``device`` (a kind: "cpu", "cuda") took: {work key: [(units, seconds
    from start to end)]}, the newest first. Only jobs that ran start to finish in one go count (not resumed)."""
    out: dict[str, list[tuple[float, float]]] = {}
    for job in store.jobs.list(statuses=["done"], device=device, limit=limit):
        key, units = job.work.get("key"), float(job.work.get("units") or 0)
        if key and units > 0 and not job.resumes and job.started_at and job.finished_at \
                and job.finished_at > job.started_at:
            out.setdefault(str(key), []).append((units, job.finished_at - job.started_at))
    return out


def duration(work: Mapping | None, estimate_s: float | None, history: Timings) -> Span | None:
    """How long a job of ``work`` ({"key", "units"}) takes: timed (a point) from the finished jobs of its key in
    ``history`` (:func:`timings`); else ``estimate_s`` (what it was queued with); else a range from the jobs of its
    kind; else None (unknown)."""
    key, units = (str(work.get("key") or ""), float(work.get("units") or 0)) if work else ("", 0.0)
    if key and units > 0 and history.get(key):
        return Span(*(2 * [_fit(history[key][:RECENT_TIMINGS], units)]))
    if estimate_s is not None:
        return Span(float(estimate_s), float(estimate_s))
    if not key or units <= 0:
        return None
    kind = key.split(":", 1)[0]
    rates = [s / u for k, samples in history.items() if k.split(":", 1)[0] == kind for u, s in samples]
    if not rates:
        return None
    return Span(min(rates) * units / UNTIMED_SPREAD, max(rates) * units * UNTIMED_SPREAD)


def _fit(samples: Sequence[tuple[float, float]], units: float) -> float:
    """Seconds for ``units`` from (units, seconds) samples: a line a + b·units (a: start-up, paid once a job)
    where the samples differ in size, else proportional to the mean seconds per unit."""
    if len({u for u, _ in samples}) >= 2:
        n = len(samples)
        mu, ms = sum(u for u, _ in samples) / n, sum(s for _, s in samples) / n
        b = sum((u - mu) * (s - ms) for u, s in samples) / sum((u - mu) ** 2 for u, _ in samples)
        a = ms - b * mu
        if b > 0 and a >= 0:
            return a + b * units
    return units * sum(s / u for u, s in samples) / len(samples)


def remaining(job: Job, now: float, total: Span | None) -> Span | None:
    """Seconds a running job still needs, from its own progress and its estimated ``total`` duration (see the
    module's docstring); None when neither says."""
    done = job.fraction
    elapsed = max(0.0, now - job.started_at) if job.started_at else 0.0
    if job.resumes or not job.progress or not done or elapsed <= 0:
        if total is None:
            return None
        return total.scaled(1 - done) if job.resumes else total.minus(elapsed)
    own = elapsed / done * (1 - done)  # start-up counted as work: the late end
    if total is not None and total.timed:
        left = done * own + (1 - done) * total.lo * (1 - done)
        return Span(left, left)
    return Span(own * done, own)


def remaining_s(job: Job, now: float, total: Span | None = None) -> float | None:
    """The central estimate of :func:`remaining` (``total`` default: the job's own estimate, if any)."""
    if total is None and job.estimate_s is not None:
        total = Span(job.estimate_s, job.estimate_s)
    left = remaining(job, now, total)
    return None if left is None else left.mid


# --- the queue played forward --------------------------------------------------------------------------------


def forecast(store: Store, capacity: Mapping[str, int] | None = None, now: float | None = None,
             new: Mapping[str, float | str | None] | None = None,
             max_running_per_owner: int | None | Literal["settings"] = FROM_SETTINGS) -> dict[int | None, Forecast]:
    """A forecast for every running and queued job, by id. With ``new`` = {"device": ..., "estimate_s": ...,
    "world_size": ..., "owner": ..., "work": ...} also the forecast of a job not queued yet, under the key None
    (what the page shows before the button; ``owner``, an ``Identity.owner`` key, default the machine's: whose
    turn it takes; ``work``, when given, lets its own duration be learned as a queued job's is).
    ``max_running_per_owner``: default the class's settings, as :func:`resnet_lab.jobs.pump` uses (and, as it
    does, a teacher's jobs are not held by it: :func:`resnet_lab.jobs.scheduler.uncapped_owners`)."""
    capacity = dict(capacity if capacity is not None else launch.launcher().capacity())  # the claim's lanes
    now = time.time() if now is None else now
    if max_running_per_owner == FROM_SETTINGS:
        max_running_per_owner = queue_caps()[1]
    running = store.jobs.list(statuses=["running"], oldest_first=True, limit=1_000_000)
    queued = store.jobs.list(statuses=["queued"], oldest_first=True, limit=1_000_000)
    devices = {j.device for j in running + queued} | ({str(new["device"])} if new is not None else set())
    history = {d: timings(store, d) for d in devices}
    return plan(running, queued, capacity, now, new, turns=store.jobs.turns(),
                max_running_per_owner=max_running_per_owner, history=history, uncapped=uncapped_owners())


def plan(running: Iterable[Job], queued: Iterable[Job], capacity: Mapping[str, int], now: float,
         new: Mapping | None = None, *, turns: Mapping[tuple[str, str], int] | None = None,
         max_running_per_owner: int | None = None,
         history: Mapping[str, Timings] | None = None,
         uncapped: Uncapped = machine_only) -> dict[int | None, Forecast]:
    """The forecast itself, from the jobs (pure: no store). ``turns``: :meth:`JobStore.turns`; ``history``: {kind
    of device: :func:`timings`}. A job not queued yet (``new``) is forecast in a second pass, so it changes none
    of the others' forecasts."""
    running, queued_jobs = list(running), list(queued)
    history = history or {}
    turns = dict(turns or {})
    left = {j.id: remaining(j, now, duration(j.work, j.estimate_s, history.get(j.device, {}))) for j in running}
    spans: dict[int | None, Span | None] = {
        j.id: duration(j.work, j.estimate_s, history.get(j.device, {})) for j in queued_jobs}
    waiting = [Waiting.of(j) for j in queued_jobs]
    cap = (max_running_per_owner, uncapped)
    out = _forecasts(running, left, waiting, spans, capacity, turns, cap)
    if new is not None:
        device = str(new["device"])
        probe = Waiting(None, str(new.get("owner") or LOCAL), device, int(new.get("world_size") or 1), math.inf)
        spans[None] = duration(new.get("work"), new.get("estimate_s"), history.get(device, {}))
        out[None] = _forecasts(running, left, [*waiting, probe], spans, capacity, turns, cap)[None]
    return out


def _forecasts(running: list[Job], left: Mapping[int, Span | None], queued: list[Waiting],
               spans: Mapping[int | None, Span | None], capacity: Mapping[str, int],
               turns: dict[tuple[str, str], int], cap: tuple[int | None, Uncapped]) -> dict[int | None, Forecast]:
    """The queue played with the early, central and late durations, as forecasts with ranges and reasons."""
    def pick_end(s: Span | None, end: str) -> float | None:
        return None if s is None else {"lo": s.lo, "mid": s.mid, "hi": s.hi}[end]

    passes = {end: _play(running, {i: pick_end(s, end) for i, s in left.items()}, queued,
                         {i: pick_end(s, end) for i, s in spans.items()}, capacity, turns, cap)
              for end in ("lo", "mid", "hi")}
    out: dict[int | None, Forecast] = {}
    for job in running:
        s = left.get(job.id)
        why = "" if s is not None else f"no job like it timed on {job.device} yet"
        out[job.id] = Forecast(job.id, "running", 0, 0.0, None if s is None else s.mid,
                               end_range=None if s is None or s.timed else (s.lo, s.hi), why=why)
    ahead: dict[int | None, int] = {}
    place_of: dict[str, int] = {}
    for w in turn_order(queued, turns):
        ahead[w.id] = place_of.get(w.device, 0)
        place_of[w.device] = ahead[w.id] + 1
    for w in queued:
        (lo_start, lo_end), (start, end), (hi_start, hi_end) = (passes[e].get(w.id, (None, None))
                                                                 for e in ("lo", "mid", "hi"))
        why = ""
        if start is None:
            why = (f"this lab has no {w.device} slot" if not any(s.split(":")[0] == w.device for s in capacity)
                   else "it waits for a job of unknown length")
        elif end is None:
            why = f"no job like it timed on {w.device} yet"
        start_range = (lo_start, hi_start) if start is not None and hi_start is not None and lo_start != hi_start \
            else None
        end_range = (lo_end, hi_end) if end is not None and hi_end is not None and lo_end != hi_end else None
        out[w.id] = Forecast(w.id, "queued", ahead[w.id], start, end, start_range, end_range, why)
    return out


def _play(running: list[Job], left: Mapping[int, float | None], queued: list[Waiting],
          durations: Mapping[int | None, float | None], capacity: Mapping[str, int],
          turns: dict[tuple[str, str], int],
          cap: tuple[int | None, Uncapped]) -> dict[int | None, tuple[float | None, float | None]]:
    """Play the queue forward from now (time 0): at each moment a lane frees, start what a claim would. Returns
    {queued job id: (start, end)} in seconds from now, None where unknown."""
    ends: dict[str, list[float]] = {slot: [] for slot in capacity}  # slot -> when each process on it ends
    owner_ends: dict[str, list[float]] = {}  # owner -> when each of their jobs ends
    for job in running:
        end = left.get(job.id)
        end = math.inf if end is None else end
        for slot in job.slots:
            ends.setdefault(slot, []).append(end)
        owner_ends.setdefault(job.owner, []).append(end)
    served = dict(turns)
    seq = max(served.values(), default=0)
    times: dict[int | None, tuple[float, float]] = {}
    waiting = list(queued)
    t = 0.0
    while waiting:
        free = {slot: n - sum(1 for e in ends.get(slot, ()) if e > t) for slot, n in capacity.items()}
        busy = {o: sum(1 for e in es if e > t) for o, es in owner_ends.items()}
        for w, chosen in pick(turn_order(waiting, served), capacity, free, busy, *cap):
            d = durations.get(w.id)
            end = t + d if d is not None else math.inf
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
    return {w.id: (times[w.id][0], times[w.id][1] if math.isfinite(times[w.id][1]) else None) if w.id in times
            else (None, None) for w in queued}


def pace(job: Job, now: float | None = None) -> tuple[float, float | None] | None:
    """(units per second, seconds left) of a running job, from what it did since it started (a download: bytes per
    second); the seconds left are None without a total. None for a job not running or that has done nothing yet.
    A resumed job counts what it had done before too, so its first seconds look fast."""
    if job.status != "running" or not job.started_at or job.progress <= 0:
        return None
    elapsed = max(1e-3, (time.time() if now is None else now) - job.started_at)
    rate = job.progress / elapsed
    left = max(0.0, (job.total - job.progress) / rate) if job.total else None
    return rate, left
