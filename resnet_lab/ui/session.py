"""This browser session's store, and what every live view of the lab uses to stay cheap.

Live views are fragments that read what worker processes write to the store: a page never computes. A
class keeps thirty of them open, so what one costs the server when nothing changes is the design:

- **a cheap heap** — Streamlit runs a full garbage collection after every script and fragment run unless told
  not to (``runner.postScriptGC = false`` in ``.streamlit/config.toml``: 2 ms a tick here). With torch, pandas
  and plotly loaded that walked some 400,000 long-lived objects: ~100 ms a tick, nearly all of what an idle
  Train tab cost. Python's own collections still run, and :func:`settle_heap` keeps them cheap too: it moves
  what is alive out of the collector's sight (``gc.freeze``) now and then, so a collection takes a millisecond
  or two; the shared caches stay small for the same reason;
- **pace** — a view refreshes fast only while a job it shows is running (:data:`FAST_S`), slower while it
  waits in the queue (:data:`QUEUED_S`), and with nothing active it only looks every :data:`IDLE_S` for a
  job started elsewhere (another tab, the CLI). "Fast" is shared: the server gives all its live views together
  about :data:`LIVE_TICKS_PER_S` fast ticks a second, so with a whole class watching each view steps down to
  2.5 s, then 4 s (:func:`fast_pace`: one page, or 18, still get 1.5 s; a training run keeps its core when 30
  watch it). A fragment's ``run_every`` is fixed by a full run of the page, so when a tick sees a job start or
  end, or the class grow past a step, it reruns the page once, which sets the new pace (:func:`live_fragment`);
- **early ticks cost nothing** — whatever a browser does (a starved laptop, a WebSocket that delivers several
  beats at once), a timer rerun that reaches the server sooner than half its fragment's pace is dropped before
  Streamlit starts a script run, and a timer of a fragment the page no longer has is stopped at the browser
  (:mod:`resnet_lab.ui.rerun_guard`, installed when this module is imported);
- **new data only** — what a view computes from the store is shared by every tab of this server, keyed by the
  progress it depends on (:func:`cached_view`; the curves: :mod:`resnet_lab.ui.curves`; the runs table:
  :mod:`resnet_lab.ui.runs_table`). (A fragment's tick sends all it draws again — Streamlit has no
  "unchanged" — so what is saved is the building, and the pace decides how often anything is sent);
- **shared chores** — pumping the queue (reap + start queued jobs) and forecasting it are done at most
  about once a second per server process, however many tabs ask. A worker pumps as it ends, so a freed
  slot never waits for a tab; a worker that died is reaped by the next tab that looks.

Who acts in this session is :mod:`resnet_lab.ui.identity`'s to say.
"""

from __future__ import annotations

import gc
import sys
import threading
import time
import uuid
from typing import Any, Callable, Hashable, Iterable, TypeVar

import streamlit as st

from .. import jobs
from ..jobs.eta import Forecast, forecast
from ..store import Job, Store
from . import rerun_guard
from .cache import SharedResults

rerun_guard.install()  # timer reruns sooner than their pace cost the server nothing (see there)

FAST_S = 1.5  # a job shown is running: its curves grow (with few views open; see fast_pace)
PACE_STEPS = (FAST_S, 2.5, 4.0)  # a running job's pace as more views share the server
LIVE_TICKS_PER_S = 12.0  # the fast ticks a second the server gives its live views together (about 7% of a core)
QUEUED_S = 3.0  # a job shown waits in the queue: its place changes only as other jobs start and end
IDLE_S = 20.0  # nothing shown is active: a slow look for a job started elsewhere
TABLE_S = 10.0  # the runs table while some run is active
SHARED_EVERY_S = 1.0  # pump and queue forecast: at most this often per lab and server process

T = TypeVar("T")


def store() -> Store:
    """This browser session's connection to the run database."""
    settle_heap()
    if "lab_store" not in st.session_state:
        st.session_state["lab_store"] = Store()
    return st.session_state["lab_store"]


def session_token() -> str:
    """A random id of this browser session (part of the request keys that make a double click submit once)."""
    return st.session_state.setdefault("lab_session", uuid.uuid4().hex)


# --- the heap ----------------------------------------------------------------------------------------

SETTLE_EVERY_S = 300.0  # the heap is settled again at least this often (see settle_heap)
_heap_lock = threading.Lock()
_heap = {"modules": 0, "at": -SETTLE_EVERY_S}  # len(sys.modules) and time.monotonic() at the last settling


def settle_heap() -> None:
    """Keep Streamlit's full garbage collection after every run cheap (see the module docstring).

    The first time, whenever modules were imported since (a page opened for the first time pulls in more), and
    every :data:`SETTLE_EVERY_S` (sessions, caches and figures made since are long-lived too): the previously
    frozen objects are handed back, everything is collected once (~0.1 s), and what is alive is frozen
    (``gc.freeze``): the collections after every run skip it. A frozen object is still freed as soon as nothing
    refers to it; only a reference cycle among frozen objects waits for the next settling, so nothing is kept
    for good.
    """
    now = time.monotonic()
    if len(sys.modules) == _heap["modules"] and now - _heap["at"] < SETTLE_EVERY_S:
        return
    with _heap_lock:
        if len(sys.modules) == _heap["modules"] and now - _heap["at"] < SETTLE_EVERY_S:
            return
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        _heap.update(modules=len(sys.modules), at=time.monotonic())


# --- shared chores -----------------------------------------------------------------------------------

# Kept small: what a cache holds is walked by the garbage collection after every run until the heap is settled
_views = SharedResults(8)  # a page's key -> what it computed from the store (see cached_view)
_chores_lock = threading.Lock()
_pumped: dict[str, float] = {}  # lab -> when it was last pumped (monotonic)
_forecasts: dict[str, tuple[float, dict]] = {}  # lab -> (when, its queue forecast)


def cached_view(key: Hashable, make: Callable[[], T]) -> T:
    """What ``make`` computes from the store for a live view, shared by every tab of this server: ``key`` must
    hold everything it depends on (the lab's path, and the progress of the jobs and runs it reads — say, with
    :func:`resnet_lab.ui.curves.progress_key`), and the value must never be changed by whoever gets it."""
    return _views.get_or_make(key, make)


def pump(s: Store) -> None:
    """Reap dead workers and start queued jobs (:func:`resnet_lab.jobs.pump`) — at most once a
    :data:`SHARED_EVERY_S` per lab in this server process, however many tabs ask: one pump serves them all.
    (A worker pumps as it ends too, so a freed slot does not wait for a tab.)"""
    now = time.monotonic()
    with _chores_lock:
        if now - _pumped.get(str(s.path), -SHARED_EVERY_S) < SHARED_EVERY_S:
            return
        _pumped[str(s.path)] = now
    jobs.pump(s)


def queue_place(s: Store, job: Job) -> Forecast | None:
    """Where an active job stands, from the queue's forecast (a running one's time left from its progress and the
    lab's timings of jobs like it), made at most once a :data:`SHARED_EVERY_S` per lab for every tab (again at
    once for a job it does not know yet: one just queued or just started)."""
    if job.status not in ("running", "queued"):
        return None
    now = time.monotonic()
    with _chores_lock:
        hit = _forecasts.get(str(s.path))
    if hit is None or now - hit[0] >= SHARED_EVERY_S or job.id not in hit[1] or hit[1][job.id].status != job.status:
        hit = (now, forecast(s))
        with _chores_lock:
            _forecasts[str(s.path)] = hit
    return hit[1].get(job.id)


# --- pace ----------------------------------------------------------------------------------------------


def fast_pace(live: int | None = None) -> float:
    """The pace of a view whose job runs, with ``live`` views open on this server (default: those that ticked in
    the last 10 s, :func:`resnet_lab.ui.rerun_guard.live_sessions`): the first step of :data:`PACE_STEPS` at which
    they all together stay within :data:`LIVE_TICKS_PER_S`."""
    live = rerun_guard.live_sessions() if live is None else live
    want = live / LIVE_TICKS_PER_S
    return next((step for step in PACE_STEPS if step >= want), PACE_STEPS[-1])


def poll_every(statuses: Iterable[str]) -> float:
    """How often a live view refreshes, from the statuses of the jobs it shows: fast while one runs (shared with
    the other live views: :func:`fast_pace`), slower while one waits, rarely with none active."""
    shown = set(statuses)
    if "running" in shown:
        return fast_pace()
    if "queued" in shown:
        return QUEUED_S
    return IDLE_S


def live_fragment(view: Callable[..., Iterable[str]], statuses: Iterable[str], *args: Any,
                  idle: float | None = IDLE_S) -> None:
    """Draw ``view(*args)`` — a function that draws a live view and returns the statuses of the jobs it
    showed — as a fragment refreshing itself at :func:`poll_every` of ``statuses`` (what the page found
    just now; ``idle``: the pace with nothing active, None for none at all). A tick whose jobs call for
    another pace reruns the page once, which sets it."""
    def pace(shown: Iterable[str]) -> float | None:
        every = poll_every(shown)
        return idle if every == IDLE_S else every

    every = pace(statuses)
    running = "running" in set(statuses)

    def tick(*a: Any) -> None:
        shown = list(view(*a))
        now = pace(shown)
        # a job started or ended (another kind of pace), or more views share the server (a slower step): the page
        # reruns once to set it; a class growing smaller speeds the views up at their next full run
        if ("running" in shown) != running or (not running and now != every) or \
                (running and now is not None and every is not None and now > every):
            st.rerun(scope="app")

    tick.__qualname__ = f"live_fragment.{getattr(view, '__qualname__', 'view')}"  # one fragment id per view
    st.fragment(run_every=every)(tick)(*args)
