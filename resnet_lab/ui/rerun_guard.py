"""A server-side guard on the timer reruns of live views: a tick that arrives sooner than its fragment's pace is
dropped before it costs the server anything.

A live view is a fragment with ``run_every`` (:func:`resnet_lab.ui.session.live_fragment`, the runs table, the
Teacher page's panels). The browser keeps one timer per fragment and sends a rerun at each beat, whatever the
server is doing; under load the beats arrive bunched (a page's main thread starved on a laptop, a WebSocket
that delivered several at once after a pause, a tab that woke up), and every one of them used to start a
script run: the store read, the figures rebuilt and sent. The guard sits where the server receives a rerun
request (``AppSession.request_rerun``), before any script runner is involved:

- it learns each fragment's pace from the ``auto_rerun`` message the server sends the browser when the fragment
  is drawn (so it covers every ``run_every`` fragment, the lab's and any other);
- a timer rerun (``is_auto_rerun``) of a fragment whose previous accepted timer rerun came less than
  :data:`EARLY_FRACTION` of its pace ago is dropped: no thread, no store read, nothing sent back;
- a timer rerun of a fragment this session no longer has (a full rerun of the page drew it under another id) is
  answered with ``stop_auto_rerun`` for that id, so the browser stops that stale timer at its source (Streamlit
  itself only ignores such requests, and the browser keeps sending them until the page is left).

Clicks, widget changes and full reruns are never touched. The counts per session (timer reruns accepted and
dropped, stale timers stopped, full reruns, paces announced) are kept for ``bench/classroom.py``, which reads
them from the JSON file named by ``RESNET_LAB_RERUN_STATS`` when that is set (written at most once a second).

The guard wraps two methods of Streamlit's ``AppSession`` (``request_rerun``, ``_enqueue_forward_msg`` and ``shutdown``) of the
pinned Streamlit; :func:`install` says whether it could, and a test fails when a Streamlit upgrade moves them.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

EARLY_FRACTION = 0.5  # a timer rerun sooner than this share of its fragment's pace after the last one is dropped
STATS_ENV = "RESNET_LAB_RERUN_STATS"
STATS_EVERY_S = 1.0

_lock = threading.Lock()
_paces: dict[tuple[str, str], float] = {}  # (session id, fragment id) -> run_every, s
_last: dict[tuple[str, str], float] = {}  # (session id, fragment id) -> when its last timer rerun was accepted
_stats: dict[str, dict[str, int]] = {}  # session id -> counts
_written = {"at": 0.0}
_installed: dict[str, bool] = {}

COUNTS = ("ticks", "ticks_dropped", "stale_stopped", "full_reruns", "paces_announced")


def _count(session_id: str, what: str) -> None:
    row = _stats.setdefault(session_id, dict.fromkeys(COUNTS, 0))
    row[what] += 1


def admit(session_id: str, fragment_id: str, now: float | None = None) -> bool:
    """Whether a timer rerun of ``fragment_id`` in ``session_id`` arriving at ``now`` (monotonic) should run;
    notes it when it does. Unknown paces always run."""
    now = time.monotonic() if now is None else now
    key = (session_id, fragment_id)
    with _lock:
        pace = _paces.get(key)
        last = _last.get(key)
        if pace is not None and last is not None and now - last < EARLY_FRACTION * pace:
            _count(session_id, "ticks_dropped")
            return False
        _last[key] = now
        _count(session_id, "ticks")
        return True


def decide(session_id: str, client_state: Any, has_fragment: Any) -> str:
    """What to do with a rerun request of session ``session_id`` (``client_state``: its ``ClientState``, or None;
    ``has_fragment(id)``: whether the session still has that fragment): "run", "drop" (a timer rerun sooner than
    its pace allows) or "stop" (a timer rerun of a fragment the session no longer has: tell the browser to stop
    that timer)."""
    fragment_id = getattr(client_state, "fragment_id", "") if client_state is not None else ""
    if not fragment_id:
        with _lock:
            _count(session_id, "full_reruns")
        return "run"
    if not getattr(client_state, "is_auto_rerun", False):
        return "run"  # a click or a widget inside the fragment
    if not has_fragment(fragment_id):
        with _lock:
            _count(session_id, "stale_stopped")
        return "stop"
    return "run" if admit(session_id, fragment_id) else "drop"


def live_sessions(within_s: float = 10.0, now: float | None = None) -> int:
    """How many sessions of this server had a timer rerun accepted in the last ``within_s`` seconds: the live
    views open now (what :func:`resnet_lab.ui.session.fast_pace` shares the server's ticks among)."""
    now = time.monotonic() if now is None else now
    with _lock:
        return len({sid for (sid, _), at in _last.items() if now - at <= within_s})


def note_pace(session_id: str, fragment_id: str, every: float) -> None:
    """The server told the browser to rerun ``fragment_id`` every ``every`` seconds."""
    with _lock:
        if _paces.get((session_id, fragment_id)) != every:
            _paces[(session_id, fragment_id)] = every
        _count(session_id, "paces_announced")


def forget(session_id: str) -> None:
    """A session ended: its paces and times go (its counts stay for the bench)."""
    with _lock:
        for d in (_paces, _last):
            for key in [k for k in d if k[0] == session_id]:
                del d[key]


def stats() -> dict[str, dict[str, int]]:
    """The counts per session id so far (a copy)."""
    with _lock:
        return {sid: dict(row) for sid, row in _stats.items()}


def _write_stats() -> None:
    path = os.environ.get(STATS_ENV)
    now = time.monotonic()
    if not path or now - _written["at"] < STATS_EVERY_S:
        return
    _written["at"] = now
    from ..paths import write_atomic

    write_atomic(Path(path), json.dumps(stats()))


def install() -> bool:
    """Wrap Streamlit's ``AppSession`` once per process; False when this Streamlit has not the methods the guard
    needs (then nothing is changed)."""
    if "done" in _installed:
        return _installed["done"]
    try:
        from streamlit.runtime.app_session import AppSession
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
    except ImportError:
        _installed["done"] = False
        return False
    request_rerun = getattr(AppSession, "request_rerun", None)
    enqueue = getattr(AppSession, "_enqueue_forward_msg", None)
    has_fragment = getattr(AppSession, "has_fragment", None)
    shutdown = getattr(AppSession, "shutdown", None)
    if not all(callable(f) for f in (request_rerun, enqueue, has_fragment, shutdown)):
        _installed["done"] = False
        return False

    def guarded_request_rerun(self: Any, client_state: Any) -> None:
        verdict = decide(self.id, client_state, self.has_fragment)
        if verdict == "stop":
            stop = ForwardMsg()
            stop.stop_auto_rerun.fragment_ids.append(client_state.fragment_id)
            enqueue(self, stop)
        _write_stats()
        if verdict == "run":
            return request_rerun(self, client_state)
        return None

    def noting_enqueue(self: Any, msg: Any) -> None:
        if msg.WhichOneof("type") == "auto_rerun" and msg.auto_rerun.fragment_id:
            note_pace(self.id, msg.auto_rerun.fragment_id, float(msg.auto_rerun.interval))
        return enqueue(self, msg)

    def forgetting_shutdown(self: Any) -> None:
        forget(self.id)
        return shutdown(self)

    AppSession.shutdown = forgetting_shutdown  # type: ignore[method-assign]
    AppSession.request_rerun = guarded_request_rerun  # type: ignore[method-assign]
    AppSession._enqueue_forward_msg = noting_enqueue  # type: ignore[method-assign]
    _installed["done"] = True
    return True
