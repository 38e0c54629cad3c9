"""The live run panel and the runs table, shared by the Train and Fine-tune pages, and what every live view
of the lab uses to stay cheap.

Live views are fragments that read what worker processes write to the store: a page never computes. A
class keeps thirty of them open, so what one costs the server when nothing changes is the design:

- **a cheap heap** — Streamlit runs a full garbage collection after every script and fragment run unless told
  not to (``runner.postScriptGC = false`` in ``.streamlit/config.toml``: 2 ms a tick here). With torch, pandas
  and plotly loaded that walked some 400,000 long-lived objects: ~100 ms a tick, nearly all of what an idle
  Train tab cost (23% of a core on a busy machine). Python's own collections still run, and
  :func:`settle_heap` keeps them cheap too: it moves what is alive out of the collector's sight
  (``gc.freeze``) now and then, so a collection takes a millisecond or two; the caches below stay small for
  the same reason;
- **pace** — a view refreshes fast only while a job it shows is running (:data:`FAST_S`), slower while it
  waits in the queue (:data:`QUEUED_S`), and with nothing active it only looks every :data:`IDLE_S` for a
  job started elsewhere (another tab, the CLI). A fragment's ``run_every`` is fixed by a full run of the
  page, so when a tick sees a job start or end it reruns the page once, which sets the new pace
  (:func:`live_fragment`);
- **new data only** — the curves figure is built when its runs have new data, once for every tab of this
  server (at most once a :data:`FIGURE_EVERY_S` while they train), with its numbers rounded to what the
  chart shows (half the bytes to send), as the finished dict ``st.plotly_chart`` sends (:class:`ReadyFigure`:
  about a millisecond to build, nothing copied or validated again on a tick); the runs table is rebuilt only
  when one cheap query says a run changed. (A fragment's tick sends all it draws again — Streamlit has no
  "unchanged" — so what is saved is the building, and the pace decides how often anything is sent);
- **shared chores** — pumping the queue (reap + start queued jobs) and forecasting it are done at most
  about once a second per server process, however many tabs ask. A worker pumps as it ends, so a freed
  slot never waits for a tab; a worker that died is reaped by the next tab that looks.

:func:`queue_preview` says where a job would stand before its button is pressed.
"""

from __future__ import annotations

import gc
import json
import sys
import threading
import time
import uuid
from collections import OrderedDict
from typing import Any, Callable, Hashable, Iterable, Sequence, TypeVar

import pandas as pd
import streamlit as st
from plotly.basedatatypes import BaseFigure

from .. import jobs
from ..identity import Identity, NotAllowed
from ..jobs.eta import Forecast, forecast
from ..jobs.slots import resolve_device
from ..spec import describe_spec
from ..store import RESUMABLE, Job, Run, Store
from ..viz.training import RunCurves, curves_spec
from .common import plain
from .widgets import ACCURACY_COLUMN

MAX_POINTS = 200  # per curve and chart update (a panel of the chart is ~300 px wide): long runs are decimated
FAST_S = 1.5  # a job shown is running: its curves grow
QUEUED_S = 3.0  # a job shown waits in the queue: its place changes only as other jobs start and end
IDLE_S = 20.0  # nothing shown is active: a slow look for a job started elsewhere
TABLE_S = 10.0  # the runs table while some run is active
FIGURE_EVERY_S = 1.0  # a running job's curves are built at most this often per server (its worker writes every 0.5 s)
SHARED_EVERY_S = 1.0  # pump and queue forecast: at most this often per lab and server process
TABLE_LIMIT = 500
RUNS_COLUMNS = {"best val acc": ACCURACY_COLUMN,
                "took": st.column_config.NumberColumn(format="%.1f s", help="Training time, in seconds")}
STATUS_ICON = {"queued": ":material/schedule:", "running": ":material/directions_run:",
               "done": ":material/check_circle:", "stopped": ":material/stop_circle:", "failed": ":material/error:",
               "diverged": ":material/trending_up:", "interrupted": ":material/warning:"}

T = TypeVar("T")


def store() -> Store:
    """This browser session's connection to the run database."""
    settle_heap()
    if "lab_store" not in st.session_state:
        st.session_state["lab_store"] = Store()
    return st.session_state["lab_store"]


def session_token() -> str:
    return st.session_state.setdefault("lab_session", uuid.uuid4().hex)


def me() -> Identity:
    """Who acts in this session (:mod:`resnet_lab.ui.identity` decides; this module only asks)."""
    from .identity import current_identity  # imported here: that module imports this one

    return current_identity()


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


class _Shared:
    """A small process-wide cache (every tab of this server): key -> value, least recently used out first.
    ``get`` builds a missing value under the lock, so tabs asking at once build it once."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def peek(self, key: Hashable) -> Any:
        with self._lock:
            return self._items.get(key)

    def put(self, key: Hashable, value: Any) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get(self, key: Hashable, make: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            value = make()
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
            return value


# Kept small: what a cache holds is walked by the garbage collection after every run until the heap is settled
_figures = _Shared(64)  # (lab, run ids) -> (built when, runs' progress, curves figure): the newest of those runs
_views = _Shared(8)  # a page's key -> what it computed from the store (see cached_view)
_tables = _Shared(2)  # (lab, runs' signature) -> the runs table's rows (older signatures are of no use)
_build_lock = threading.Lock()
_chores_lock = threading.Lock()
_pumped: dict[str, float] = {}  # lab -> when it was last pumped (monotonic)
_forecasts: dict[str, tuple[float, dict]] = {}  # lab -> (when, its queue forecast)


def cached_view(key: Hashable, make: Callable[[], T]) -> T:
    """What ``make`` computes from the store for a live view, shared by every tab of this server: ``key`` must
    hold everything it depends on (the lab's path, and the progress of the jobs and runs it reads — say, with
    :func:`progress_key`), and the value must never be changed by whoever gets it."""
    return _views.get(key, make)


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


def poll_every(statuses: Iterable[str]) -> float:
    """How often a live view refreshes, from the statuses of the jobs it shows: fast while one runs, slower
    while one waits, rarely with none active."""
    shown = set(statuses)
    if "running" in shown:
        return FAST_S
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

    def tick(*a: Any) -> None:
        shown = list(view(*a))
        if pace(shown) != every:
            st.rerun(scope="app")

    tick.__qualname__ = f"live_fragment.{getattr(view, '__qualname__', 'view')}"  # one fragment id per view
    st.fragment(run_every=every)(tick)(*args)


# --- curves ----------------------------------------------------------------------------------------------


def _rounded(points: list[tuple[int, float, float]]) -> list[tuple[int, float, float]]:
    """Points as the chart shows them (hover: 4 significant digits) with a digit to spare: the JSON sent to
    every tab on every update shrinks by half."""
    return [(step, round(epoch, 4), float(f"{value:.5g}")) for step, epoch, value in points]


def _curves(s: Store, runs: Sequence[Run]) -> list[RunCurves]:
    # colour from identity, the same in the live panel and the compare view: a plain twin takes its
    # ResNet's id and is drawn in a darker shade of that colour
    return [RunCurves(label=f"#{r.id} {r.name}", plain=r.kind == "plain",
                      key=r.partner_id if r.kind == "plain" and r.partner_id is not None else r.id,
                      metrics={k: _rounded(v) for k, v in s.runs.metrics(r.id, max_points=MAX_POINTS).items()})
            for r in runs]


def progress_key(runs: Sequence[Run]) -> tuple:
    """What the curves of ``runs`` depend on. A worker writes a batch of metrics, then the runs' step; an
    evaluation also updates ``last``; a resumed run truncates its metrics and steps back."""
    return tuple((r.id, r.name, r.kind, r.partner_id, r.status, r.step, r.total_steps,
                  json.dumps(r.last, sort_keys=True)) for r in runs)


class ReadyFigure(BaseFigure):
    """A figure already in the form ``st.plotly_chart`` sends: a plotly figure dict that is never changed.
    ``st.plotly_chart`` takes a Figure's ``to_dict()`` — for a real one a deep copy of every point, ~3 ms — and
    validates a plain dict anew (~50 ms): this one hands over its dict as it is, so a tick that draws the same
    curves again costs the JSON only. (Not a full Figure: it is only drawn.)"""

    def __init__(self, spec: dict) -> None:  # noqa: D107 — BaseFigure.__init__ would validate the whole figure
        self._spec = spec

    def to_dict(self) -> dict:
        return self._spec


def curves_for(s: Store, runs: Sequence[Run]) -> ReadyFigure:
    """The training curves of ``runs`` (:func:`resnet_lab.viz.training.curves_spec`): built once per new data
    and shared by every tab of this server. While they train, at most once a :data:`FIGURE_EVERY_S`: a tab
    looks every :data:`FAST_S` anyway, and the worker writes twice a second, so thirty tabs would otherwise
    each find new data. A run that changes status is drawn anew at once."""
    which, key = (str(s.path), tuple(r.id for r in runs)), progress_key(runs)

    def fresh() -> ReadyFigure | None:
        newest = _figures.peek(which)
        if newest is None:
            return None
        built, newest_key, figure = newest
        same_statuses = [k[4] for k in newest_key] == [k[4] for k in key]
        return figure if newest_key == key or (same_statuses and time.monotonic() - built < FIGURE_EVERY_S) else None

    figure = fresh()
    if figure is None:
        with _build_lock:  # tabs asking at once: one builds, the others take its figure
            figure = fresh()
            if figure is None:
                figure = ReadyFigure(curves_spec(_curves(s, runs)))
                _figures.put(which, (time.monotonic(), key, figure))
    return figure


# --- queue ---------------------------------------------------------------------------------------------


def queue_preview(device: str, estimate_s: float | None, what: str = "A new run") -> None:
    """Before the button is pressed: where a job for ``device`` would stand in the queue now."""
    try:
        where = resolve_device(device)
    except ValueError as e:
        st.caption(f":material/warning: {e}")
        return
    f = forecast(store(), new={"device": where, "estimate_s": estimate_s, "owner": me().owner})[None]
    st.caption(f":material/schedule: {what} on {where}: {f.describe()}.")


# --- owners --------------------------------------------------------------------------------------------


def owner_text(owner: str | None, name: str | None, who: Identity) -> str:
    """How an owner is named to ``who`` (plain text: "you", the machine, or the name they gave)."""
    from .gallery import owner_label  # imported here: that module imports this one

    return owner_label(owner, name, who)


def not_yours(job: Job, who: Identity) -> str | None:
    """Why ``who`` may not stop, resume or delete ``job`` (None: they may). The jobs layer refuses anyway."""
    if who.may_manage(job.owner):
        return None
    return f"Only {owner_text(job.owner, job.owner_name, who)} (whose job it is) or a teacher may change it."


def act(action: Callable[..., Any], job_id: int, s: Store, who: Identity, error_key: str) -> bool:
    """Do one of ``jobs.stop/resume/delete`` as ``who``; a refusal is kept under ``error_key`` for
    :func:`show_error` (the page reruns after an action)."""
    try:
        action(job_id, s, by=who)
    except (NotAllowed, ValueError, KeyError) as e:
        st.session_state[error_key] = (f"Job {job_id}: {e}", time.monotonic())
        return False
    st.session_state.pop(error_key, None)
    return True


def show_error(error_key: str, for_s: float = 10.0) -> None:
    """The refusal :func:`act` kept, for ``for_s`` seconds (a live view redraws itself meanwhile)."""
    kept = st.session_state.get(error_key)
    if not isinstance(kept, tuple) or time.monotonic() - kept[1] > for_s:
        st.session_state.pop(error_key, None)
        return
    st.error(kept[0], icon=":material/error:")


# --- the live panel ------------------------------------------------------------------------------------


def _default_job(s: Store, kinds: tuple[str, ...], who: Identity) -> Job | None:
    """The newest job of this page's kinds (not one an experiment launched): this person's own, or when they
    have none, anyone's — what the class is training now."""
    for owner in (who.owner, None):
        found = [j for j in s.jobs.list(kinds=kinds, owner=owner, limit=50) if j.origin is None]
        if found:
            return found[0]
    return None


def _groups(s: Store, watch_key: str, kinds: tuple[str, ...], who: Identity) -> list[tuple[Job, list[Run]]]:
    """The jobs the panel shows, each with its runs: those of the watched runs, else the default job."""
    job_ids: list[int] = []
    watched = st.session_state.get(watch_key)
    for rid in watched or []:
        try:
            job_id = s.runs.get(rid).job_id
        except (KeyError, TypeError):
            continue
        if job_id is not None and job_id not in job_ids:
            job_ids.append(job_id)
    if not watched:
        job = _default_job(s, kinds, who)
        job_ids = [job.id] if job is not None else []
    groups = []
    for job_id in job_ids:
        try:
            job = s.jobs.get(job_id)
        except KeyError:
            continue
        runs = s.runs.of_job(job_id)
        if runs:
            groups.append((job, runs))
    if watched and not groups:  # the watched runs are gone: back to the default
        st.session_state.pop(watch_key, None)
        return _groups(s, watch_key, kinds, who)
    return groups


def _job_controls(s: Store, job: Job, who: Identity, error_key: str) -> None:
    """Stop (or Resume) for whoever may; someone else's job shows whose it is instead of a button."""
    why = not_yours(job, who)
    if why is not None:
        if job.active or job.status in RESUMABLE:
            st.caption(f":material/lock: {plain(why)}")
        return
    cols = st.columns([1, 4])
    if job.active:
        if cols[0].button("Stop", icon=":material/stop:", key=f"stop_{job.id}", disabled=job.stop_requested):
            act(jobs.stop, job.id, s, who, error_key)
            st.rerun(scope="fragment")
        if job.stop_requested:
            cols[1].caption("Stopping: finishing the step and saving a checkpoint…")
    elif job.status in RESUMABLE:
        if cols[0].button("Resume", icon=":material/replay:", key=f"resume_{job.id}"):
            act(jobs.resume, job.id, s, who, error_key)
            st.rerun(scope="fragment")


def _panel(watch_key: str, empty_text: str, title: str, kinds: tuple[str, ...]) -> list[str]:
    """One tick of the live panel; returns the statuses of the jobs it showed."""
    s = store()
    pump(s)
    who = me()
    groups = _groups(s, watch_key, kinds, who)
    if not groups:
        n = len(_table_rows(s)[0])  # runs of other kinds (an experiment's, a fine-tuning's) are runs too
        st.info(empty_text if not n else f"Nothing started from this page to follow yet. The {n} run"
                f"{'s' if n != 1 else ''} below came from elsewhere (an experiment, another page): select "
                "rows there and press **Watch** to follow them here, or start one above.", icon=":material/info:")
        return []
    error_key = f"{watch_key}_error"
    show_error(error_key)
    if len(groups) == 1:
        job, runs = groups[0]
        whose = "" if job.owner == who.owner else f" — {plain(owner_text(job.owner, job.owner_name, who))}'s"
        st.subheader(f"{title}Run #{runs[0].id}: {plain(runs[0].name)}"
                     + (" and its plain twin" if len(runs) > 1 else "") + whose)
    else:
        st.subheader(f"{title}{len(groups)} runs side by side")
    all_runs = [r for _, runs in groups for r in runs]
    for job, runs in groups:
        st.markdown(" · ".join(f"{STATUS_ICON.get(r.status, '')} #{r.id} {plain(r.name)}: **{r.status}**"
                               for r in runs))
        f = queue_place(s, job)
        place = f.describe() if f is not None else ""
        of = f" of {job.total}" if job.total else ""
        st.progress(job.fraction, text=f"step {job.progress}{of}" + (f" · {place}" if place else ""))
        _job_controls(s, job, who, error_key)
        for r in runs:
            if r.error:
                (st.warning if r.status in RESUMABLE else st.error)(f"{plain(r.name)}: {plain(r.error, 2000)}")
    best = [f"{plain(r.name)}: best val acc **{r.best['val/acc']:.1%}**" for r in all_runs if "val/acc" in r.best]
    if best:
        st.markdown(" · ".join(best))
    st.plotly_chart(curves_for(s, all_runs), key=f"live_curves_{watch_key}", width="stretch")
    return [job.status for job, _ in groups]


def live_panel(watch_key: str, empty_text: str, title: str = "", kinds: tuple[str, ...] = ("train",)) -> None:
    """Progress, queue place, controls and curves of the watched runs' jobs (``st.session_state[watch_key]``:
    run ids), or of the newest job of this page's ``kinds`` (this person's own first); ``empty_text`` when the
    server has no run at all (with runs of other kinds only, a line pointing at the table). Refreshes itself at
    the pace of what it shows (:func:`live_fragment`)."""
    s = store()
    pump(s)  # a job left queued (say, by the CLI) starts now, and the pace below sees it running
    statuses = [job.status for job, _ in _groups(s, watch_key, kinds, me())]
    live_fragment(_panel, statuses, watch_key, empty_text, title, kinds)


# --- the runs table ------------------------------------------------------------------------------------

_SIGNATURE_SQL = ("SELECT id, job_id, partner_id, name, status, step, total_steps, best_json, device, started_at,"
                  " finished_at, owner FROM runs ORDER BY id DESC LIMIT ?")


def runs_signature(s: Store, limit: int = TABLE_LIMIT) -> int:
    """A fingerprint of what the runs table shows: one indexed read of small columns (about a millisecond
    for 500 runs), so the table (and its JSON, model descriptions, owners) is rebuilt only when it changed."""
    return hash(tuple(tuple(row) for row in s.db.con.execute(_SIGNATURE_SQL, (limit,))))


def owner_names(s: Store, limit: int = 10 * TABLE_LIMIT) -> dict[int, str]:
    """{job id: the display name its owner gave when it was queued} of the newest ``limit`` training and
    fine-tuning jobs: a run's owner name is its job's (the runs table and the gallery both ask here)."""
    return {j.id: j.owner_name for j in s.jobs.list(kinds=("train", "finetune"), limit=limit)}


def _table_rows(s: Store) -> tuple[list[Run], list[dict], list[str]]:
    """(runs, their table rows, their owners' names), newest first; shared by every tab of this server."""
    def build() -> tuple[list[Run], list[dict], list[str]]:
        runs = s.runs.list(limit=TABLE_LIMIT)
        names = owner_names(s)
        rows = [{"id": r.id, "status": r.status, "name": r.name, "model": describe_spec(r.spec),
                 "data": f"{r.data.get('name')} {r.data.get('image_size')}px",
                 "best val acc": r.best.get("val/acc"), "step": f"{r.step}/{r.total_steps}" if r.total_steps else f"{r.step}",
                 "took": round(r.duration_s, 1) if r.duration_s is not None else None, "device": r.device,
                 "twin": r.partner_id} for r in runs]
        return runs, rows, [names.get(r.job_id, "") if r.job_id is not None else "" for r in runs]

    return _tables.get((str(s.path), runs_signature(s)), build)


def _table(watch_key: str) -> list[str]:
    """One tick of the runs table; returns the statuses of the runs it lists."""
    s = store()
    who = me()
    runs, rows, names = _table_rows(s)
    st.subheader("Runs")
    if not runs:
        st.caption("Runs you and others launch on this server appear here.")
        return []
    shared = who.source != "local" or any(r.owner != who.owner for r in runs)
    shown = list(range(len(runs)))
    if shared:
        if st.toggle("Mine only", key=f"runs_mine_{watch_key}", help="Only the runs you launched."):
            shown = [i for i in shown if runs[i].owner == who.owner]
        if not shown:
            st.caption("You have no runs yet: press Train above.")
            return [r.status for r in runs]
    table = [{**rows[i], **({"owner": owner_text(runs[i].owner, names[i], who)} if shared else {})} for i in shown]
    devices = sorted({row["device"] for row in table if row["device"]})
    one_device = len(devices) <= 1  # a column that says the same on every row is left out, and said once below
    order = ["id", "status", "name", *(["owner"] if shared else []), "model", "data", "best val acc", "step",
             "took", *([] if one_device else ["device"]), "twin"]
    event = st.dataframe(pd.DataFrame(table, columns=order), key=f"runs_table_{watch_key}", on_select="rerun",
                         selection_mode="multi-row", hide_index=True, width="stretch", placeholder="—",
                         column_config=RUNS_COLUMNS)
    if devices and one_device:
        st.caption(f"Every run listed ran on {devices[0]}.")
    picked = [i for i in (event.selection.rows if event and event.selection else []) if 0 <= i < len(shown)]
    chosen = [runs[shown[i]] for i in picked]
    if not chosen:
        st.caption("Select rows to compare their curves, watch, resume or delete them.")
        return [r.status for r in runs]
    chosen_jobs = sorted({r.job_id for r in chosen if r.job_id is not None})
    theirs = [r for r in chosen if not who.may_manage(r.owner)]
    why = "Only their owner or a teacher may change runs that are not yours." if theirs else None
    error_key = f"runs_table_error_{watch_key}"
    a = st.columns(4)
    if a[0].button("Watch", key=f"act_watch_{watch_key}"):
        st.session_state[watch_key] = [r.id for r in chosen]
        st.rerun()
    if a[1].button("Resume", key=f"act_resume_{watch_key}", help=why,
                   disabled=bool(theirs) or not all(r.status in RESUMABLE for r in chosen)):
        for job_id in chosen_jobs:
            act(jobs.resume, job_id, s, who, error_key)
        st.rerun()
    if a[2].button("Delete", key=f"act_delete_{watch_key}", help=why,
                   disabled=bool(theirs) or any(r.active for r in chosen)):
        for job_id in chosen_jobs:
            act(jobs.delete, job_id, s, who, error_key)
        st.session_state.pop(watch_key, None)
        st.rerun()
    show_error(error_key)
    st.markdown("**Compare**")
    st.plotly_chart(curves_for(s, chosen), key=f"compare_curves_{watch_key}", width="stretch")
    return [r.status for r in runs]


def runs_table(watch_key: str) -> None:
    """Every run on this server, newest first (with whose it is, and a "Mine only" filter when the lab is
    shared); select rows to compare, watch, resume or delete. Refreshes every :data:`TABLE_S` while a run is
    active, every :data:`IDLE_S` otherwise, and rebuilds only when a run changed."""
    runs, _, _ = _table_rows(store())
    every = TABLE_S if any(r.active for r in runs) else IDLE_S
    st.fragment(run_every=every)(_table)(watch_key)
