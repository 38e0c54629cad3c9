"""What a class costs the lab's server: N students watching a run train live, then N pressing Train at once.

It starts its own server (``streamlit run app.py`` on a free port, a temporary lab home, class mode with a
class code), lets N students join the class (``resnet_lab.classroom.people.join_class``: one personal link
each), and queues one long training run as the machine (the teacher's demo). Then:

1. **Watching.** Windows side by side in one run: no page open; N Chromium pages open on the Train page (each
   as its student, ``/train?me=<token>``: the live panel shows the class's newest run), the server on its own
   cores (the run's) and then moved to the browsers' cores, alternating ``--rounds`` times; none open again.
   For each window: the server's CPU (% of one core, ``utime + stime`` from ``/proc/<pid>/stat`` of the
   server process only — its workers are other processes), its memory (RSS), and the run's training
   images/s (from the job's progress, sampled every 0.2 s). Two figures of merit: the run's images/s with N
   watchers over the mean of the two windows without (the issue's figure: on one machine it also holds the
   browsers' pull on the caches and memory the cores share), and the server's own cost — the same N
   watchers with the server on the run's core over with the server off it. Every page also reports its
   errors (uncaught exceptions, console errors, Streamlit exception boxes), whether its step count moved
   while watched, and the messages it sent the server (a live tick sends one), timed by the page's own clock.
   The pages report these themselves, every two seconds, to a collector this script runs on 127.0.0.1
   (``Reports``): asked one after another, 30 pages sharing one busy core took longer to answer than the bench.
2. **Pressing Train.** Each student presses *Train* and then *Train with plain twin* (two jobs each), page
   after page, while the demo run still holds the CPU slot, so every job queues. Reported: every job
   recorded once (none lost, none doubled), how long until each student's page showed their job's place
   ("3 jobs ahead, …"), and the order the jobs start in once the demo run is stopped — the first few
   observed (each stopped as soon as its worker said hello, to make room for the next), the rest as the
   scheduler will take them (``jobs.turns.queue_order``). Fair turns: every student's first job before anyone's
   second, where a first-come-first-served queue would give one student's two jobs back to back.

Students of two kinds (``--browsers K``, default min(N, 3)): K real Chromium pages, and N − K **protocol
students** (``bench/st_client.py``): each a WebSocket to the server's ``/_stcore/stream`` that sends exactly the
messages a Chromium page sends (the first rerun naming the page, the widgets' values, every fragment's timer ticks
at the pace the server asked, a button's trigger) and keeps the elements the server sends back (headings, text,
buttons, exception boxes), without rendering anything. The server cannot tell them apart; what they save is the
browser's own work — a live Train page costs Chromium a sixth of a core here, so 30 pages cannot share one core,
where 30 protocol students cost a few percent of one. They report what a page reports (the step shown, the messages
sent and when, their place, exception boxes, connection drops) into the same figures, and the two kinds are compared
over the same ``--compare-s`` seconds once every page ticks (``browsers_vs_protocol``: the same kinds of message,
the same fragments, the same pace). A protocol student is not a browser test: it proves nothing about drawing,
plotly, the page's JavaScript or a laptop's CPU — the K real pages beside it keep that path honest.

Where the processes run: with two or more cores the server and the run's worker share the first half of the
cores and the browsers (and this script) the rest (``--server-cpus``, ``--worker-cpus``, ``--browser-cpus``),
so the browsers' own work is not the server's, and what the server spends is taken from the training run. The
protocol students run on one thread of this script, on the browsers' cores; its CPU is reported per window.

    .venv/bin/python bench/classroom.py [--students 30] [--browsers 3] [--window-s 30] [--json]
    .venv/bin/python bench/classroom.py --quick --json     # 1 page + 1 protocol student, short windows

Targets with N = 30 (the issue): the server uses at most half a core for 30 watchers, the run keeps >= 0.9 of
its throughput, zero page errors, 30 of 30 jobs recorded (here: 60 of 60, two per student). Exit code 0
unless --strict is given and a target is missed (then 1).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "browser"))
from appserver import CHROMIUM_ARGS, IDENTITY_SETTINGS, AppServer, chromium_path  # noqa: E402  (the tests' server)

sys.path.insert(0, str(ROOT / "bench"))
from st_client import Class, ProtocolStudent  # noqa: E402  (the protocol students, beside this script)

CODE = "bench-class-code-4242"
RERUN_STATS = "rerun_stats.json"  # in the lab home: the server's rerun counts (RESNET_LAB_RERUN_STATS)
TICK = os.sysconf("SC_CLK_TCK")
TARGETS = {"server_cpu_pct": 50.0, "throughput_ratio": 0.9, "page_errors": 0}
# the throughput target is checked twice: with N watchers over none (the browsers' pull on this machine's shared
# caches included), and the server's own cost (the same watchers, the server on the run's core over off it)
# the place a queued job's live panel shows in its progress text (Forecast.describe)
PLACE_RE = r"step [\d,]+(?: of [\d,?]+)? · ((\d+) jobs? ahead|next in line|starts now|running)"
# installed in every page before its own scripts: notes when (Date.now(), ms) it sends each WebSocket message, and
# every REPORT_MS sends this script (a collector on 127.0.0.1, see Reports) what it shows: its step count, the
# place of the run it watches for, its exception boxes, and the send times noted since its last report. The pages
# report themselves, all at once: asking 30 CPU-starved pages one after another (page.evaluate) took minutes a page
REPORT_MS = 2000
OPEN_S_PER_PAGE = 20.0  # opening N pages at once may take this long a page on one busy core (30: 7 minutes here)
REPORTER_JS = """(() => {
  const send = WebSocket.prototype.send; window.__sentAt = []; window.__place = null;
  WebSocket.prototype.send = function (data) { window.__sentAt.push(Date.now()); return send.call(this, data); };
  let reported = 0;
  setInterval(() => {
    const main = document.querySelector('[data-testid="stMain"]');
    const text = main ? main.textContent : '';
    const m = text.match(/step ([\\d,]+) of/);
    const sent = window.__sentAt.slice(reported);
    const body = JSON.stringify({page: %(tag)s, at: Date.now(), step: m ? parseInt(m[1].replace(/,/g, '')) : -1,
      from: reported, sent: sent, place: window.__place,
      boxes: main ? main.querySelectorAll('[data-testid="stException"]').length : 0});
    if (navigator.sendBeacon(%(url)s, new Blob([body], {type: 'text/plain'}))) reported += sent.length;
  }, %(every)d);
})()"""
# installed in a page right after its press: notes when (Date.now(), ms) the page first shows run ``rid``'s place
WATCH_PLACE_JS = ("(rid) => { window.__place = null; const look = () => {"
                  " const t = (document.querySelector('[data-testid=\"stMain\"]') || document.body).innerText;"
                  " const m = t.includes('Run #' + rid + ':') ? t.match(/" + PLACE_RE + "/) : null;"
                  " if (m) { window.__place = [Date.now(), m[1]]; clearInterval(window.__placeTimer); } };"
                  " window.__placeTimer = setInterval(look, 50); look(); }")


def say(what: str) -> None:
    """Progress on stderr (a full run takes a quarter of an hour): what starts now, and when."""
    print(f"[{time.strftime('%H:%M:%S')}] {what}", file=sys.stderr, flush=True)


# --- processes -----------------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process (not its children)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def browsers_cpu_seconds() -> float:
    """User + system CPU seconds of every Chromium process this script started (its descendants named so): the
    pages' own work, which a class does on 30 laptops and this bench on the browsers' cores."""
    parent: dict[int, int] = {}
    name: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError):
                head, rest = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)
                parent[int(entry)], name[int(entry)] = int(rest.split()[1]), head.split("(", 1)[1]
    mine, todo = set(), [os.getpid()]
    while todo:
        pid = todo.pop()
        kids = [k for k, p in parent.items() if p == pid and k not in mine]
        mine.update(kids)
        todo += kids
    total = 0.0
    for pid in mine:
        if name.get(pid, "").startswith("chrom"):
            with contextlib.suppress(OSError):  # one that ended meanwhile took its seconds with it
                total += cpu_seconds(pid)
    return total


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def cpu_sets(args: argparse.Namespace) -> tuple[set[int] | None, set[int] | None, set[int] | None]:
    """(server, worker, browsers) core sets; None: not pinned (one core, or not allowed here)."""
    def parse(text: str) -> set[int]:
        return {int(x) for x in text.split(",") if x.strip()}

    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2 and not (args.server_cpus or args.browser_cpus):
        return None, None, None
    half = max(1, len(cores) // 2)
    server = parse(args.server_cpus) if args.server_cpus else set(cores[:half])
    browsers = parse(args.browser_cpus) if args.browser_cpus else set(cores[half:])
    worker = parse(args.worker_cpus) if args.worker_cpus else server
    return server, worker, browsers


# --- pages ---------------------------------------------------------------------------------------------


@dataclass
class Student:
    index: int
    name: str
    owner: str
    token: str
    context: Any = None
    page: Any = None
    errors: list[str] = field(default_factory=list)  # uncaught exceptions, console errors, the lab's own failed loads
    elsewhere: list[str] = field(default_factory=list)  # failed loads from other hosts, Streamlit's base-path probe
    sent: list[tuple[str, str | None]] = field(default_factory=list)  # (kind, fragment id) of every message the
    # page sent the server, in order (see sent_message); the page itself notes when it sent each (REPORTER_JS)
    sockets: int = 0  # WebSocket connections the page opened (1 unless it lost its connection and reconnected)
    protocol: bool = False  # a protocol student (st_client.py: Streamlit's messages, no browser), not a page
    client: ProtocolStudent | None = None  # its connection, once opened
    place: list | None = None  # a protocol student's [clock ms, place text] once it showed its run's place

    @property
    def kind(self) -> str:
        return "protocol" if self.protocol else "browser"

    @property
    def connections(self) -> int:
        return self.client.sockets if self.client is not None else self.sockets

    def all_errors(self) -> list[str]:
        return self.errors + (self.client.errors if self.client is not None else [])

    @property
    def tag(self) -> str:
        return f"S{self.index + 1:02d}"

    def failed_load(self, url: str, why: str, base: str) -> None:
        """A resource that did not load. Not the lab's fault: another host (fonts.gstatic.com for the page icon;
        a machine without internet), Streamlit's probe of ``/<page>/_stcore/`` for a base path (a page opened by
        its own address tries that first, then the root), or a connection check the page itself dropped
        (``ERR_ABORTED``: it had its answer another way). Anything else of the lab's own is an error."""
        own = url.startswith(base)
        path = url[len(base):] if own else ""
        probe = re.fullmatch(r"/[^/]+/_stcore/(health|host-config)", path) is not None
        dropped = why == "net::ERR_ABORTED" and re.fullmatch(r"/_stcore/(health|host-config)", path) is not None
        (self.elsewhere if probe or dropped or not own else self.errors).append(f"{why}: {url}")


def sent_message(payload: bytes | str) -> tuple[str, str | None]:
    """What a message from a page asks the server — "tick" (a fragment's own timer), "rerun" (a click, a page
    opened, a widget), "heartbeat", or another BackMsg type — and, for a tick, the fragment's id."""
    from google.protobuf.message import DecodeError
    from streamlit.proto.BackMsg_pb2 import BackMsg

    msg = BackMsg()
    try:
        msg.ParseFromString(payload if isinstance(payload, bytes) else payload.encode("latin-1"))
    except DecodeError:
        return "unparsed", None
    kind = msg.WhichOneof("type") or "empty"
    if kind == "rerun_script":
        auto = msg.rerun_script.is_auto_rerun
        return ("tick", msg.rerun_script.fragment_id) if auto else ("rerun", None)
    return ("heartbeat" if kind == "app_heartbeat" else kind), None


def note_sent(student: Student, payload: bytes | str) -> None:
    student.sent.append(sent_message(payload))


class Reports:
    """What the pages report themselves (REPORTER_JS): a collector on 127.0.0.1 that keeps, per page tag, every
    (time, step) it showed, the last place and exception-box count, and its send times in order. It runs on a
    thread of this script; the pages' beacons reach it whatever this script is waiting on."""

    def __init__(self) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from threading import Lock, Thread

        self.lock = Lock()
        self.steps: dict[str, list[tuple[float, int]]] = {}  # tag -> [(page clock, s; step shown or -1)]
        self.sent_at: dict[str, list[float]] = {}  # tag -> the page's own clock of each message it sent, ms
        self.place: dict[str, list] = {}  # tag -> [page clock ms, the place text] once the watched run showed it
        self.boxes: dict[str, int] = {}
        reports = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802  (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.send_response(204)
                self.send_header("Access-Control-Allow-Origin", "*")
                self.end_headers()
                reports.take(json.loads(body))

            def log_message(self, *args: Any) -> None:  # quiet: one beacon a page every two seconds
                return None

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/report"
        Thread(target=self.http.serve_forever, daemon=True).start()

    def script(self, tag: str) -> str:
        return REPORTER_JS % {"tag": json.dumps(tag), "url": json.dumps(self.url), "every": REPORT_MS}

    def take(self, r: dict) -> None:
        tag = r["page"]
        with self.lock:
            self.steps.setdefault(tag, []).append((r["at"] / 1000, r["step"]))
            sent = self.sent_at.setdefault(tag, [])
            if r["from"] == len(sent):  # a beacon lost or late would otherwise shift the rest
                sent.extend(r["sent"])
            if r["place"] and tag not in self.place:
                self.place[tag] = r["place"]
            self.boxes[tag] = r["boxes"]

    def live(self, tag: str, t0: float, t1: float) -> bool:
        """Whether the page's step count moved between ``t0`` and ``t1`` (time.time()), give or take a report:
        a page reports every REPORT_MS when its main thread is free, and on a busy core that is a while later."""
        slack = 2 * REPORT_MS / 1000
        with self.lock:
            shown = [step for at, step in self.steps.get(tag, []) if t0 - slack <= at <= t1 + slack and step >= 0]
        return len(shown) >= 2 and max(shown) > min(shown)

    def heard_since(self, tags: list[str], t: float) -> bool:
        with self.lock:
            return all(self.steps.get(tag) and self.steps[tag][-1][0] >= t for tag in tags)

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()


def open_pages(browser: Any, url: str, students: list[Student], demo_run: int, timeout_s: float,
               reports: Reports, clients: Class) -> None:
    """The Train page as each student, all loading at once (a Chromium page, or a protocol student on
    ``clients``' loop); returns when each shows the demo run (the class's newest). Their errors are collected
    from here on."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for student in students:
        if student.protocol:
            open_protocol(clients, url, student, reports)
            continue
        student.context = browser.new_context(viewport={"width": 1280, "height": 900})
        student.context.add_init_script(reports.script(student.tag))
        page = student.context.new_page()
        page.set_default_timeout(timeout_s * 1000)
        page.on("pageerror", lambda e, s=student: s.errors.append(f"exception: {e}"))
        page.on("console", lambda m, s=student: s.errors.append(f"console: {m.text}")
                if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
        page.on("requestfailed", lambda r, s=student: s.failed_load(r.url, r.failure or "failed", url))
        page.on("response", lambda r, s=student: s.failed_load(r.url, f"HTTP {r.status}", url)
                if r.status >= 400 else None)
        page.on("websocket", lambda ws, s=student: (setattr(s, "sockets", s.sockets + 1),
                                                     ws.on("framesent", lambda payload, s=s: note_sent(s, payload))))
        page.goto(f"{url}/train?me={student.token}", wait_until="commit")
        student.page = page
    # all pages load at once on the browsers' cores: the last one waits for the others, so the wait is the
    # page timeout plus OPEN_S_PER_PAGE for each page; one that shows nothing by then is reported, not waited for
    deadline = time.monotonic() + timeout_s + OPEN_S_PER_PAGE * len(students)
    for student in students:
        try:
            if student.protocol:
                wait_for(lambda s=student: shows_run(s, demo_run), max(1.0, deadline - time.monotonic()),
                         f"{student.tag} to show run {demo_run}")
            else:
                student.page.get_by_role("heading", name=re.compile(rf"^Run #{demo_run}: ")).wait_for(
                    timeout=max(1.0, deadline - time.monotonic()) * 1000)
        except (PlaywrightTimeout, TimeoutError):
            student.errors.append(f"the page did not show run {demo_run} within "
                                  f"{timeout_s + OPEN_S_PER_PAGE * len(students):.0f} s of opening")


def open_protocol(clients: Class, url: str, student: Student, reports: Reports) -> None:
    """A protocol student on the Train page (st_client.py), and its reports to ``reports`` every REPORT_MS, as
    REPORTER_JS has a page report: the step shown, its send times, its place once shown, its exception boxes."""
    import asyncio

    student.client = ProtocolStudent(url, "train", f"me={student.token}",
                                     on_send=lambda payload, s=student: note_sent(s, payload))

    async def report() -> None:
        client, reported = student.client, 0
        while not client.closing:
            await asyncio.sleep(REPORT_MS / 1000)
            m = re.search(r"step ([\d,]+) of", client.text())
            sent = client.sent_at[reported:]
            reports.take({"page": student.tag, "at": time.time() * 1000, "from": reported, "sent": sent,
                          "step": int(m.group(1).replace(",", "")) if m else -1, "place": student.place,
                          "boxes": client.exception_boxes()})
            reported += len(sent)

    async def start() -> None:
        loop = asyncio.get_running_loop()
        student.client.task = loop.create_task(student.client.serve())
        student.client.helpers.append(loop.create_task(report()))

    clients.call(start())


def shows_run(student: Student, rid: int) -> bool:
    """Whether a protocol student's page shows run ``rid``'s heading (the live panel or a job's)."""
    return any(re.match(rf"Run #{rid}: ", h) for h in student.client.headings())


async def watch_place(student: Student, rid: int) -> None:
    """WATCH_PLACE_JS for a protocol student: notes when its page first shows run ``rid``'s place."""
    import asyncio

    student.place = None
    while student.client is not None and not student.client.closing:
        text = student.client.text()
        m = re.search(PLACE_RE, text) if f"Run #{rid}:" in text else None
        if m:
            student.place = [time.time() * 1000, m.group(1)]
            return
        await asyncio.sleep(0.05)


def pause(students: list[Student], ms: float) -> None:
    """Wait ``ms``; through a browser page when there is one, so Playwright hands this script its events."""
    page = next((s.page for s in students if s.page is not None), None)
    if page is not None:
        page.wait_for_timeout(ms)
    else:
        time.sleep(ms / 1000)


def warm_up(browser: Any, url: str, student: Student, timeout_s: float) -> None:
    """One Train page opened and closed before anything is measured: the server imports what the pages need
    once (torch, plotly, pandas: seconds on a busy core), which no window should count."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(f"{url}/train?me={student.token}")
        page.get_by_role("heading", name="Runs", exact=True).wait_for(timeout=timeout_s * 1000)
    finally:
        context.close()


def close_page(student: Student, clients: Class | None = None) -> None:
    if student.client is not None and clients is not None:
        clients.call(student.client.close(), 10)
    if student.context is not None:
        student.context.close()
    student.context = student.page = None


# --- measuring -----------------------------------------------------------------------------------------


def window(server: AppServer, store: Any, rid: int, seconds: float, clients: Class) -> dict:
    """Server CPU and RSS over ``seconds``, and the run's training images/s: the harmonic mean of the
    ``images_per_s`` the engine logged in the window (each timed over ``log_every`` steps, evaluation and
    checkpoints left out), i.e. images trained over the time spent training them. Also what the browsers and
    the protocol students (``clients``' thread) spent meanwhile."""
    step0 = store.runs.get(rid).step
    c0, r0, b0, t0 = cpu_seconds(server.pid), rss_mb(server.pid), browsers_cpu_seconds(), time.monotonic()
    p0 = clients.cpu_seconds()
    time.sleep(seconds)
    c1, r1, b1, t1 = cpu_seconds(server.pid), rss_mb(server.pid), browsers_cpu_seconds(), time.monotonic()
    p1 = clients.cpu_seconds()
    step1 = store.runs.get(rid).step
    rates = [v for step, _, v in store.runs.metrics(rid, ["images_per_s"]).get("images_per_s", [])
             if step0 < step <= step1 and v > 0]
    return {"seconds": round(t1 - t0, 1), "server_cpu_pct": round(100 * (c1 - c0) / (t1 - t0), 2),
            "browsers_cpu_pct": round(100 * (b1 - b0) / (t1 - t0), 1),
            "protocol_students_cpu_pct": round(100 * (p1 - p0) / (t1 - t0), 1),
            "server_rss_mb": round(r1, 1), "server_rss_growth_mb": round(r1 - r0, 1),
            "images_per_s": round(statistics.harmonic_mean(rates), 1) if rates else None, "logs": len(rates)}


def rerun_stats(server: AppServer) -> dict[str, dict[str, int]]:
    """The server's counts per browser session so far (resnet_lab/ui/rerun_guard.py, written at most once a
    second to the file named by RESNET_LAB_RERUN_STATS): timer reruns run and dropped, stale timers stopped, full
    reruns, paces announced."""
    path = server.home / RERUN_STATS
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def rerun_figures(before: dict[str, dict[str, int]], after: dict[str, dict[str, int]], seconds: float) -> dict:
    """What the server saw of the pages' reruns between two :func:`rerun_stats` (a window of ``seconds``): per
    session, timer reruns run and dropped a second, stale timers stopped and full reruns (sorted lists, one
    number per session), and the share of timer reruns the guard dropped."""
    zero = {}
    diff = {sid: {k: v - before.get(sid, zero).get(k, 0) for k, v in row.items()} for sid, row in after.items()}
    live = [d for d in diff.values() if d.get("ticks", 0) or d.get("ticks_dropped", 0)]
    ran = sum(d.get("ticks", 0) for d in live)
    dropped = sum(d.get("ticks_dropped", 0) for d in live)
    return {"sessions_ticking": len(live),
            "ticks_run_per_s_per_session": sorted(round(d.get("ticks", 0) / seconds, 2) for d in live),
            "ticks_dropped_per_s_per_session": sorted(round(d.get("ticks_dropped", 0) / seconds, 2) for d in live),
            "stale_timers_stopped": sum(d.get("stale_stopped", 0) for d in diff.values()),
            "full_reruns": sum(d.get("full_reruns", 0) for d in diff.values()),
            "dropped_share": round(dropped / (ran + dropped), 3) if ran + dropped else 0.0}


def wait_for(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")


# --- the bench -----------------------------------------------------------------------------------------


def demo_run(store: Any, quick: bool) -> tuple[int, int]:
    """Queue the machine's (the teacher's) long run and start it from this process: (job id, run id)."""
    from resnet_lab.data.registry import DataConfig
    from resnet_lab.identity import MACHINE
    from resnet_lab.models.presets import PRESETS
    from resnet_lab.train import launcher
    from resnet_lab.train.config import TrainConfig

    data = DataConfig(name="shapes", image_size=16 if quick else 32, train_subset=2000, augment=False)
    train = TrainConfig(epochs=1000, batch_size=32, lr=0.05, eval_points=0, log_every=5, device="cpu")
    (rid,) = launcher.submit(PRESETS["resnet20"], data, train, twin=False, name="the teacher's demo", store=store,
                             owner=MACHINE)
    return store.runs.get(rid).job_id, rid


def join_students(store: Any, n: int) -> list[Student]:
    from resnet_lab.classroom.people import join_class
    from resnet_lab.classroom.settings import load_settings

    settings = load_settings()
    out = []
    for i in range(n):
        who, token = join_class(store, f"Student {i + 1:02d}", CODE, settings)
        out.append(Student(i, who.name, who.owner, token))
    return out


def move(pid: int, cores: set[int]) -> None:
    """Pin every thread of process ``pid`` to ``cores`` (threads it starts later inherit it)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):  # a thread that ended meanwhile has no place to move
            os.sched_setaffinity(int(tid), cores)


def pooled(windows: list[dict]) -> dict:
    """Several windows of one kind as one: CPU and images/s weighted by time and by the logs in each."""
    seconds = sum(w["seconds"] for w in windows)
    rated = [w for w in windows if w["images_per_s"]]
    return {"seconds": round(seconds, 1),
            "server_cpu_pct": round(sum(w["server_cpu_pct"] * w["seconds"] for w in windows) / seconds, 2),
            "browsers_cpu_pct": round(sum(w["browsers_cpu_pct"] * w["seconds"] for w in windows) / seconds, 1),
            "protocol_students_cpu_pct": round(sum(w["protocol_students_cpu_pct"] * w["seconds"] for w in windows)
                                               / seconds, 1),
            "server_rss_mb": windows[-1]["server_rss_mb"],
            "server_rss_growth_mb": round(sum(w["server_rss_growth_mb"] for w in windows), 1),
            "images_per_s": round(sum(w["images_per_s"] * w["logs"] for w in rated) / sum(w["logs"] for w in rated), 1)
            if rated else None, "logs": sum(w["logs"] for w in windows), "windows": len(windows)}


def page_traffic(students: list[Student], sent_at: list[list[float]], where: dict[tuple[float, float], str]
                 ) -> dict[str, dict]:
    """What the pages sent in the windows ``where`` ((t0, t1) in time.time() -> where the server was), pooled by
    that place: messages/s by kind, and per page the fragments that ticked and its ticks/s (the design: 2
    fragments, 1/fast_pace(N) + 1/TABLE_S a second). ``sent_at``: each page's own clock of its sends (REPORTER_JS), in
    ms: Playwright hands this script a page's events only during its calls, late under load, so counting them as
    they arrive would put a window's messages in the next."""
    places = sorted(set(where.values()))
    seconds = {p: sum(t1 - t0 for (t0, t1), q in where.items() if q == p) for p in places}
    out = {p: {"page_messages_per_s": {}, "ticking_fragments_per_page": [], "ticks_per_s_per_page": []}
           for p in places}
    for s, times in zip(students, sent_at):
        for p in places:
            mine = [span for span, q in where.items() if q == p]
            sent = [m for at, m in zip(times, s.sent) if any(t0 * 1000 <= at <= t1 * 1000 for t0, t1 in mine)]
            kinds = out[p]["page_messages_per_s"]
            for kind, _ in sent:
                kinds[kind] = kinds.get(kind, 0) + 1
            ticks = [fragment for kind, fragment in sent if kind == "tick"]
            out[p]["ticking_fragments_per_page"].append(len(set(ticks)))
            out[p]["ticks_per_s_per_page"].append(round(len(ticks) / seconds[p], 2))
    for p in places:
        out[p]["page_messages_per_s"] = {k: round(n / seconds[p], 2) for k, n in
                                         sorted(out[p]["page_messages_per_s"].items())}
        for key in ("ticking_fragments_per_page", "ticks_per_s_per_page"):
            out[p][key].sort()
    return out


def compare_kinds(students: list[Student], sent_at: list[list[float]], span: tuple[float, float]) -> dict:
    """Is a protocol student faithful? What the Chromium pages and the protocol students sent over the same
    ``span`` (time.time()), per page of each kind: messages/s by kind, ticks/s by fragment (its id's first 8
    characters) and the median time between two ticks of a fragment on one page. ``faithful``: both kinds sent
    the same kinds of message, ticked the same fragments, and at the same pace: the median interval within 15%
    (where a page ticked a fragment twice or more), else the count within one tick. The median, not the count,
    because a Chromium page whose main thread is busy drawing (on this machine's shared core) skips timer ticks
    now and then (setInterval does not catch up): its count falls below the pace while its timer keeps it."""
    t0, t1 = span
    seconds = t1 - t0
    out: dict[str, Any] = {"seconds": round(seconds, 1)}
    gaps: dict[str, dict[str, list[float]]] = {}
    for kind in ("browser", "protocol"):
        mine = [(s, times) for s, times in zip(students, sent_at) if s.kind == kind]
        if not mine:
            continue
        kinds: dict[str, int] = {}
        fragments: dict[str, int] = {}
        gaps[kind] = {}
        for s, times in mine:
            last: dict[str, float] = {}
            for at, (what, fragment) in zip(times, s.sent):
                if t0 * 1000 <= at <= t1 * 1000:
                    kinds[what] = kinds.get(what, 0) + 1
                    if what == "tick":
                        f = (fragment or "")[:8]
                        fragments[f] = fragments.get(f, 0) + 1
                        if f in last:
                            gaps[kind].setdefault(f, []).append((at - last[f]) / 1000)
                        last[f] = at
        n = len(mine)
        out[kind] = {"pages": n,
                     "messages_per_s_per_page": {k: round(v / n / seconds, 3) for k, v in sorted(kinds.items())},
                     "ticks_per_s_per_page_by_fragment": {f: round(v / n / seconds, 3)
                                                          for f, v in sorted(fragments.items())},
                     "median_tick_interval_s_by_fragment": {f: round(statistics.median(g), 2)
                                                            for f, g in sorted(gaps[kind].items())}}
    if "browser" in out and "protocol" in out:
        b, p = out["browser"], out["protocol"]
        fb, fp = b["ticks_per_s_per_page_by_fragment"], p["ticks_per_s_per_page_by_fragment"]
        mb, mp = b["median_tick_interval_s_by_fragment"], p["median_tick_interval_s_by_fragment"]

        def same(f: str) -> bool:
            if f in mb and f in mp:
                return abs(mp[f] - mb[f]) <= 0.15 * mb[f]
            return abs(fp[f] - fb[f]) * seconds <= 1.01

        out["same_kinds"] = set(b["messages_per_s_per_page"]) == set(p["messages_per_s_per_page"])
        out["same_fragments"] = set(fb) == set(fp)
        out["same_pace"] = out["same_fragments"] and all(same(f) for f in fb)
        out["faithful"] = out["same_kinds"] and out["same_pace"] and bool(fb)
    return out


def ticking_since(students: list[Student], reports: Reports, since: float, timeout_s: float) -> float:
    """When (time.time()) the last of the pages sent its first tick after ``since``, as the pages report it;
    waits for their reports at most ``timeout_s`` (then: now, and the comparison shows who did not tick)."""
    deadline = time.monotonic() + timeout_s
    while True:
        with reports.lock:
            firsts = [next((at / 1000 for at, (kind, _) in zip(reports.sent_at.get(s.tag, []), s.sent)
                            if kind == "tick" and at >= since * 1000), None) for s in students]
        if all(f is not None for f in firsts) or time.monotonic() > deadline:
            return max([f for f in firsts if f is not None], default=time.time())
        pause(students, 500)


def hear_from(students: list[Student], reports: Reports, since: float, timeout_s: float) -> int:
    """Wait until every page has reported after ``since`` (time.time()), at most ``timeout_s``; meanwhile
    Playwright hands this script the pages' events (the messages they sent) it held while this script slept.
    Returns how many pages were heard from."""
    tags = [s.tag for s in students]
    deadline = time.monotonic() + timeout_s
    while not reports.heard_since(tags, since) and time.monotonic() < deadline:
        pause(students, 500)
    pause(students, 500)
    with reports.lock:
        return sum(bool(reports.steps.get(tag)) and reports.steps[tag][-1][0] >= since for tag in tags)


def watching(args: argparse.Namespace, server: AppServer, store: Any, browser: Any, students: list[Student],
             rid: int, cores: tuple[set[int] | None, set[int] | None], reports: Reports, clients: Class
             ) -> tuple[dict, dict]:
    """Part 1, the windows with no page and with N pages (the pages stay open for part 2). With the pages
    open, windows alternate (``--rounds`` times) between the server on its own cores — the run's, where all
    it spends is the run's loss — and the server moved to the browsers' cores: the same pages, the same
    browsers, only the server's work taken off the run's core. What the first loses against the second is
    the server's cost to the run; what the second loses against no pages at all is the browsers' (on another
    core, yet sharing the caches and memory of this machine: they are students' laptops in a class).
    Returns this part's figures and the state the last window needs (RSS before the pages)."""
    from streamlit.logger import set_log_level

    set_log_level("error")  # imported outside a server, Streamlit's caches warn that there is no runtime
    from resnet_lab.ui import session as live  # the pace the pages are meant to keep
    own, apart = cores
    time.sleep(args.settle_s)
    say("window: no page open")
    before = window(server, store, rid, args.window_s, clients)
    rss_before = rss_mb(server.pid)
    say(f"opening {len(students)} pages")
    t, c, t_open = time.monotonic(), cpu_seconds(server.pid), time.time()
    open_pages(browser, server.url, students, rid, args.page_timeout_s, reports, clients)
    open_s, open_cpu = time.monotonic() - t, cpu_seconds(server.pid) - c
    time.sleep(args.settle_s)
    windows: dict[str, list[dict]] = {"own": [], "apart": []}
    where: dict[tuple[float, float], str] = {}  # each window's span -> where the server was
    reruns0, clock0 = rerun_stats(server), time.monotonic()
    for _ in range(args.rounds):
        for place in ("own", "apart") if own and apart else ("own",):
            move(server.pid, own if place == "own" else apart)
            say(f"window: {len(students)} pages, the server on cores {sorted(own if place == 'own' else apart)}")
            time.sleep(min(args.settle_s, 3.0))
            t0 = time.time()
            windows[place].append(window(server, store, rid, args.window_s, clients))
            where[t0, time.time()] = place
    # the two kinds compared over compare_s from when every page ticks (a Chromium page on a busy core starts its
    # timers seconds after it shows the run: its first run's charts are drawn first)
    first = max(min(t0 for t0, _ in where), ticking_since(students, reports, t_open, args.page_timeout_s))
    time.sleep(max(0.0, first + args.compare_s - time.time()))
    compared = (first, first + args.compare_s)
    if own:
        move(server.pid, own)
    time.sleep(1.2)  # the server writes its counts at most once a second
    reruns = rerun_figures(reruns0, rerun_stats(server), time.monotonic() - clock0)
    say("waiting for every page's report of the windows")
    end = compared[1]
    heard = hear_from(students, reports, end, args.page_timeout_s)
    traffic = page_traffic(students, [reports.sent_at.get(s.tag, []) for s in students], where)
    span = (min(t0 for t0, _ in where), end)
    watched = pooled(windows["own"])
    return {"no_pages_before": before, "pages_open": watched,
            "pages_open_server_apart": pooled(windows["apart"]) if windows["apart"] else None,
            "windows": {place: [w["images_per_s"] for w in ws] for place, ws in windows.items()},
            "open_pages_s": round(open_s, 1),
            "server_cpu_s_per_page_opened": round(open_cpu / len(students), 3),
            "rss_growth_with_pages_mb": round(watched["server_rss_mb"] - rss_before, 1),
            "pages_live": sum(reports.live(s.tag, *span) for s in students),
            "pages_live_by_kind": {kind: sum(reports.live(s.tag, *span) for s in students if s.kind == kind)
                                   for kind in ("browser", "protocol")},
            "browsers_vs_protocol": compare_kinds(students, [reports.sent_at.get(s.tag, []) for s in students],
                                                  compared),
            "pages_reporting": heard,
            **traffic["own"],
            "ticks_per_s_per_page_server_apart": traffic["apart"]["ticks_per_s_per_page"] if "apart" in traffic
            else None,
            "expected_ticks_per_s": round(len(students) / live.fast_pace(len(students)) + len(students) / live.TABLE_S,
                                          2),
            "exception_boxes": sum(reports.boxes.get(s.tag, 0) for s in students),
            "websocket_connections_per_page": sorted(s.connections for s in students),
            "websocket_connections_by_kind": {kind: sorted(s.connections for s in students if s.kind == kind)
                                              for kind in ("browser", "protocol")},
            "server_saw": reruns}, {"rss_before": rss_before}


def closed_again(args: argparse.Namespace, server: AppServer, store: Any, students: list[Student], rid: int,
                 part1: dict, rss_before: float, clients: Class) -> None:
    """Part 1's last window: every page closed, the demo run still training (the students' jobs wait)."""
    for s in students:
        close_page(s, clients)
    time.sleep(args.settle_s)
    say("window: every page closed again")
    after = window(server, store, rid, args.window_s, clients)
    part1["no_pages_after"] = after
    part1["rss_kept_after_close_mb"] = round(after["server_rss_mb"] - rss_before, 1)
    base = [w["images_per_s"] for w in (part1["no_pages_before"], after) if w["images_per_s"]]
    watched = part1["pages_open"]["images_per_s"]
    apart = (part1["pages_open_server_apart"] or {}).get("images_per_s")
    part1["throughput_ratio"] = round(watched / statistics.mean(base), 3) if base and watched else None
    # the server's own cost: the same pages and browsers, the server on the run's core over off it
    part1["server_cost_ratio"] = round(watched / apart, 3) if watched and apart else None
    part1["browsers_ratio"] = round(apart / statistics.mean(base), 3) if base and apart else None


def pressing(args: argparse.Namespace, store: Any, students: list[Student], reports: Reports,
             clients: Class) -> dict:
    """Part 2, on the open pages: every student presses Train, then (once the page shows that run) Train with
    plain twin, while the demo run holds the slot (every job waits). Each page notes itself when it first shows
    its job's place, so the time from a press to the place is each student's own, whatever the others do."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    pressed_at: dict[str, float] = {}
    say(f"{len(students)} students press Train, then Train with plain twin")
    t0 = time.monotonic()
    for s in students:
        if s.protocol:
            press_protocol(args, store, s, clients, pressed_at)
            continue
        try:
            s.page.get_by_role("button", name="Train", exact=True).click()
            first = wait_for(lambda: store.jobs.list(owner=s.owner), args.page_timeout_s, f"{s.tag}'s first job")[0]
            # as a person does, the second press waits for the page to show the first run: a click into a page
            # that is redrawing itself may land on whatever moved under the pointer
            s.page.get_by_role("heading", name=re.compile(rf"^Run #{store.runs.of_job(first.id)[0].id}: ")).wait_for()
            s.page.get_by_role("button", name="Train with plain twin", exact=True).click()
            pressed_at[s.owner] = time.time()
            second = wait_for(lambda: (lambda j: j[0] if len(j) >= 2 else None)(store.jobs.list(owner=s.owner)),
                              args.page_timeout_s, f"{s.tag}'s second job")  # newest first: the one it watches
            s.page.evaluate(WATCH_PLACE_JS, store.runs.of_job(second.id)[0].id)
        except (TimeoutError, PlaywrightTimeout) as e:  # reported (its jobs missing), the class goes on
            s.errors.append(f"pressing Train: {str(e).splitlines()[0]}")
    presses_s = time.monotonic() - t0
    deadline = time.monotonic() + args.page_timeout_s  # each page reports the place once it showed it
    while len(reports.place) < len(students) and time.monotonic() < deadline:
        pause(students, 500)
    hear_from(students, reports, time.time(), args.page_timeout_s)  # and then its exception boxes
    seen = {s.owner: reports.place[s.tag] for s in students if s.tag in reports.place}
    return {"presses_s": round(presses_s, 1), "jobs_pressed": 2 * len(students),
            "queue_seen_s": [round(max(0.0, seen[s.owner][0] / 1000 - pressed_at[s.owner]), 2)
                             if s.owner in seen and s.owner in pressed_at else None for s in students],
            "places_shown": [seen[s.owner][1] if s.owner in seen else None for s in students],
            "exception_boxes": sum(reports.boxes.get(s.tag, 0) for s in students)}


def press_protocol(args: argparse.Namespace, store: Any, s: Student, clients: Class,
                   pressed_at: dict[str, float]) -> None:
    """Part 2 for a protocol student: the same two presses as a page's, each sent once the button is shown
    (the second once the page shows the first run), then it watches for its second run's place."""
    import asyncio

    try:
        wait_for(lambda: s.client.button("Train"), args.page_timeout_s, f"{s.tag}'s Train button")
        clients.call(s.client.press("Train"), args.page_timeout_s)
        first = wait_for(lambda: store.jobs.list(owner=s.owner), args.page_timeout_s, f"{s.tag}'s first job")[0]
        first_run = store.runs.of_job(first.id)[0].id
        wait_for(lambda: shows_run(s, first_run) and s.client.button("Train with plain twin"), args.page_timeout_s,
                 f"{s.tag} to show run {first_run}")
        clients.call(s.client.press("Train with plain twin"), args.page_timeout_s)
        pressed_at[s.owner] = time.time()
        second = wait_for(lambda: (lambda j: j[0] if len(j) >= 2 else None)(store.jobs.list(owner=s.owner)),
                          args.page_timeout_s, f"{s.tag}'s second job")

        async def watch(rid: int) -> None:
            s.client.helpers.append(asyncio.get_running_loop().create_task(watch_place(s, rid)))

        clients.call(watch(store.runs.of_job(second.id)[0].id))
    except (TimeoutError, LookupError) as e:  # reported (its jobs missing), the class goes on
        s.errors.append(f"pressing Train: {str(e).splitlines()[0]}")


def turns(args: argparse.Namespace, store: Any, students: list[Student], job_id: int, part2: dict) -> None:
    """Part 2's end: what was recorded, and the order the jobs start in once the demo run is stopped — the first
    few observed (each stopped as soon as its worker said hello, to make room for the next), the rest as the
    scheduler will take them."""
    from resnet_lab.identity import MACHINE
    from resnet_lab.jobs.turns import queue_order

    tag = {s.owner: s.tag for s in students}
    every = [j for j in store.jobs.list(limit=100_000) if j.owner in tag]
    per_owner = {s.owner: [j for j in every if j.owner == s.owner] for s in students}
    store.jobs.stop(job_id, by=MACHINE)
    say("the demo run stopped: watching the queue start the students' jobs")
    started: list[int] = []
    deadline = time.monotonic() + args.observe_s
    while len(started) < args.observe and time.monotonic() < deadline:
        for j in store.jobs.list(statuses=["running"]):
            if j.owner in tag and j.id not in started:
                started.append(j.id)
            if j.owner in tag and j.pid is not None and not j.stop_requested and len(started) < args.observe:
                store.jobs.stop(j.id, by=MACHINE)  # said hello: make room for the next turn
        time.sleep(0.1)
    observed = sorted((j for j in store.jobs.list(limit=100_000) if j.started_at is not None and j.owner in tag),
                      key=lambda j: (j.started_at, j.id))
    try:
        planned = [j for j in queue_order(store, "cpu") if j.owner in tag]
    except AttributeError:  # pending: fair turns not in this tree
        planned = []
    firsts = {min(j.id for j in js) for js in per_owner.values() if js}
    doubled = {}  # a student with more jobs than presses: which session asked for each, when, for what
    for s in students:
        if len(per_owner[s.owner]) > 2:
            rows = store.db.con.execute("SELECT id, created_at, request_key, fingerprint FROM jobs WHERE owner=?"
                                        " ORDER BY id", (s.owner,)).fetchall()
            doubled[s.tag] = [{"job": r["id"], "at_s": round(r["created_at"] - rows[0]["created_at"], 2),
                               "session": (r["request_key"] or "")[:8], "settings": (r["fingerprint"] or "")[:8]}
                              for r in rows]
    first_round = [j.id in firsts for j in observed + planned]
    part2.update({
        "jobs_recorded": len(every), "lost": sum(max(0, 2 - len(js)) for js in per_owner.values()),
        "doubled": sum(max(0, len(js) - 2) for js in per_owner.values()), "doubled_jobs": doubled,
        "pressed_order": [tag[j.owner] for j in sorted(every, key=lambda j: j.id)],
        "start_order": [tag[j.owner] for j in observed + planned], "observed_starts": len(observed),
        "turns_alternate": bool(first_round) and first_round == sorted(first_round, reverse=True)})


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--students", type=int, default=30, help="students (identities); default 30")
    p.add_argument("--browsers", type=int, default=None,
                   help="of them, real Chromium pages (default: min(students, 3)); the rest protocol students")
    p.add_argument("--compare-s", type=float, default=20.0,
                   help="browsers and protocol students compared over at least this long, s (default 20)")
    p.add_argument("--window-s", type=float, default=20.0, help="each measuring window, s (default 20)")
    p.add_argument("--rounds", type=int, default=3,
                   help="with the pages open: windows with the server on its cores, then on the browsers' (default 3)")
    p.add_argument("--settle-s", type=float, default=8.0, help="pause before each window, s (default 8)")
    p.add_argument("--observe", type=int, default=6, help="job starts to observe in part 2 (default 6)")
    p.add_argument("--observe-s", type=float, default=120.0, help="at most this long, s (default 120)")
    p.add_argument("--page-timeout-s", type=float, default=120.0, help="a page's wait for the server, s")
    p.add_argument("--server-cpus", default="", help="cores for the server, e.g. 0 (default: the first half)")
    p.add_argument("--worker-cpus", default="", help="cores for the demo run's worker (default: the server's)")
    p.add_argument("--browser-cpus", default="", help="cores for the browsers (default: the other half)")
    p.add_argument("--quick", action="store_true", help="2 students (1 browser, 1 protocol), 2.5-s windows, one "
                   "start observed, 10 s compared (for tests)")
    p.add_argument("--keep-home", action="store_true", help="keep the temporary lab home (its server.log)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the summary")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = p.parse_args()
    if args.quick:
        args.students, args.window_s, args.settle_s, args.observe, args.observe_s, args.rounds = 2, 2.5, 1.0, 1, 30.0, 1
        args.browsers, args.compare_s = 1, 10.0
    args.browsers = min(args.students, 3) if args.browsers is None else max(0, min(args.browsers, args.students))
    from playwright.sync_api import sync_playwright

    from resnet_lab.identity import MACHINE
    from resnet_lab.jobs import pid_alive
    from resnet_lab.store import Store

    server_cpus, worker_cpus, browser_cpus = cpu_sets(args)
    home = Path(tempfile.mkdtemp(prefix="classroom_bench_"))
    for var in IDENTITY_SETTINGS:
        os.environ.pop(var, None)
    os.environ.update(RESNET_LAB_HOME=str(home), RESNET_LAB_CLASS_CODE=CODE)
    server = None
    store = Store(home / "runs.db")
    report: dict[str, Any] = {"students": args.students, "quick": args.quick, "cores": len(os.sched_getaffinity(0)),
                              "clients": {"browsers": args.browsers, "protocol": args.students - args.browsers},
                              "server_cpus": sorted(server_cpus) if server_cpus else None,
                              "worker_cpus": sorted(worker_cpus) if worker_cpus else None,
                              "browser_cpus": sorted(browser_cpus) if browser_cpus else None, "targets": TARGETS}
    students: list[Student] = []
    reports = Reports()
    clients: Class | None = None
    try:
        server = AppServer(home, {"PYTHONPATH": str(ROOT), "RESNET_LAB_RERUN_STATS": str(home / RERUN_STATS)},
                           cpus=server_cpus, timeout_s=120)  # in class mode
        students = join_students(store, args.students)
        for s in students[args.browsers:]:
            s.protocol = True
        if worker_cpus:
            os.sched_setaffinity(0, worker_cpus)  # the demo run's worker is started from here: it inherits these
        job_id, rid = demo_run(store, args.quick)
        if browser_cpus:
            os.sched_setaffinity(0, browser_cpus)  # Chromium, started from here, inherits these
        clients = Class()  # the protocol students' thread: on the browsers' cores too (it inherits this thread's)
        chromium = chromium_path()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            warm_up(browser, server.url, students[0], args.page_timeout_s)
            wait_for(lambda: store.jobs.get(job_id).progress > 0, 180, "the demo run to train")
            t = time.monotonic()
            report["watching"], state = watching(args, server, store, browser, students, rid,
                                                 (server_cpus, browser_cpus), reports, clients)
            report["pressing"] = pressing(args, store, students, reports, clients)
            closed_again(args, server, store, students, rid, report["watching"], state["rss_before"], clients)
            browser.close()
        turns(args, store, students, job_id, report["pressing"])
        report["bench_s"] = round(time.monotonic() - t, 1)
        errors = [e for s in students for e in s.all_errors()]
        report["page_errors_by_kind"] = {kind: sum(len(s.all_errors()) for s in students if s.kind == kind)
                                         for kind in ("browser", "protocol")}
        report["page_errors"] = len(errors) + report["watching"]["exception_boxes"] + report["pressing"][
            "exception_boxes"]
        report["page_error_samples"] = sorted(set(errors))[:5]
        report["not_counted"] = {"failed_loads_elsewhere": sum(len(s.elsewhere) for s in students),
                                 "samples": sorted({e.split("?")[0] for s in students for e in s.elsewhere})[:4]}
    finally:
        for job in store.jobs.list(statuses=["queued", "running"], limit=100_000):
            store.jobs.stop(job.id, by=MACHINE)
        workers = [j.pid for j in store.jobs.list(statuses=["running"]) if j.pid and pid_alive(j.pid)]
        for pid in workers:
            os.kill(pid, signal.SIGTERM)  # a worker takes it as a stop request
        deadline = time.time() + 10
        while time.time() < deadline and any(pid_alive(pid) for pid in workers):
            time.sleep(0.2)
        for pid in workers:
            if pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        reports.close()
        if clients is not None:
            for s in students:
                if s.client is not None and not s.client.closing:
                    clients.call(s.client.close(), 10)
            clients.end()
        if server is not None:
            server.end()
        store.close()
        if not args.keep_home:
            shutil.rmtree(home, ignore_errors=True)
    w = report["watching"]
    report["passed"] = {"server_cpu_pct": w["pages_open"]["server_cpu_pct"] <= TARGETS["server_cpu_pct"],
                        "throughput_ratio": (w["throughput_ratio"] or 0) >= TARGETS["throughput_ratio"],
                        "server_cost_ratio": (w["server_cost_ratio"] or 0) >= TARGETS["throughput_ratio"],
                        "page_errors": report["page_errors"] <= TARGETS["page_errors"],
                        "pages_live": w["pages_live"] >= args.students - max(1, args.students // 30),
                        "jobs_recorded": report["pressing"]["lost"] == report["pressing"]["doubled"] == 0}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_summary(report)
    return 1 if args.strict and not all(report["passed"].values()) else 0


def print_summary(r: dict) -> None:
    w, q = r["watching"], r["pressing"]
    n = r["students"]
    pin = (f"server on cores {r['server_cpus']}, demo run on {r['worker_cpus']}, browsers on {r['browser_cpus']}"
           if r["server_cpus"] else "not pinned (one core)")
    c = r["clients"]
    print(f"classroom bench: {n} students — {c['browsers']} Chromium pages, {c['protocol']} protocol students "
          f"(Streamlit's messages without a browser: bench/st_client.py) — {r['cores']} cores ({pin})")
    print("1. watching a run train live")
    rows = [("no pages", "no_pages_before"), (f"{n} pages", "pages_open"), (f"{n} pages, server apart",
                                                                            "pages_open_server_apart"),
            ("no pages again", "no_pages_after")]
    for label, key in rows:
        x = w[key]
        if x is None:
            continue
        print(f"   {label:>24}: server CPU {x['server_cpu_pct']:6.2f}% of a core · RSS {x['server_rss_mb']:.0f} MB"
              f" · run {x['images_per_s']} images/s · browsers {x['browsers_cpu_pct']:.0f}% of a core, protocol "
              f"students {x['protocol_students_cpu_pct']:.1f}% ({x['seconds']} s)")
    print(f"   the run's images/s, window by window: {w['windows']}")
    print(f"   images/s with {n} watchers over none: {w['throughput_ratio']} (target >= {TARGETS['throughput_ratio']})")
    if w["server_cost_ratio"] is not None:
        print(f"   the server's own cost: the same {n} watchers, server on the run's core over off it: "
              f"{w['server_cost_ratio']} (target >= {TARGETS['throughput_ratio']}); the browsers' (server off the "
              f"run's core, over no pages): {w['browsers_ratio']}")
    print(f"   server memory: +{w['rss_growth_with_pages_mb']} MB with the pages open, "
          f"+{w['rss_kept_after_close_mb']} MB kept after they closed")
    print(f"   pages live (step count moved while watched): {w['pages_live']} of {n} ({w['pages_reporting']} reported"
          f" after the last window); messages/s they sent: "
          f"{w['page_messages_per_s']} (live ticks at the pages' pace: {w['expected_ticks_per_s']}/s); ticks/s per "
          f"page: {w['ticks_per_s_per_page']}")
    print(f"   live by kind: {w['pages_live_by_kind']}; WebSocket connections by kind: "
          f"{w['websocket_connections_by_kind']}")
    cmp = w["browsers_vs_protocol"]
    for kind in ("browser", "protocol"):
        if kind in cmp:
            print(f"   {kind} students sent over the same {cmp['seconds']} s, per page: "
                  f"{cmp[kind]['messages_per_s_per_page']} messages/s; ticks/s by fragment "
                  f"{cmp[kind]['ticks_per_s_per_page_by_fragment']}, median interval s "
                  f"{cmp[kind]['median_tick_interval_s_by_fragment']}")
    if "faithful" in cmp:
        print(f"   protocol students faithful to the browsers: {cmp['faithful']} (same kinds {cmp['same_kinds']}, "
              f"same fragments {cmp['same_fragments']}, same pace {cmp['same_pace']})")
    sv = w["server_saw"]
    print(f"   WebSocket connections per page: {w['websocket_connections_per_page']}; the server saw "
          f"{sv['sessions_ticking']} sessions ticking: timer reruns run/s per session "
          f"{sv['ticks_run_per_s_per_session']}"
          f", dropped as too early/s {sv['ticks_dropped_per_s_per_session']} ({sv['dropped_share']:.0%} of all), "
          f"stale timers stopped {sv['stale_timers_stopped']}, full reruns {sv['full_reruns']}")
    print(f"   opening the {n} pages took {w['open_pages_s']} s; the server spent {w['server_cpu_s_per_page_opened']}"
          " s of CPU per page meanwhile (the ticks of the pages already open included)")
    print(f"   page errors: {r['page_errors']} ({r['page_errors_by_kind']} by kind, exception boxes aside)"
          + (f" — e.g. {r['page_error_samples']}" if r["page_error_samples"] else ""))
    if r["not_counted"]["failed_loads_elsewhere"]:
        print(f"   not counted: {r['not_counted']['failed_loads_elsewhere']} loads from other hosts or Streamlit's "
              f"base-path probe, e.g. {r['not_counted']['samples']}")
    print("2. every student presses Train, then Train with plain twin")
    print(f"   {q['jobs_pressed']} presses in {q['presses_s']} s: {q['jobs_recorded']} jobs recorded, "
          f"{q['lost']} lost, {q['doubled']} doubled" + (f" {q['doubled_jobs']}" if q["doubled_jobs"] else ""))
    seen = [x for x in q["queue_seen_s"] if x is not None]
    if seen:
        print(f"   place shown to every student ({len(seen)} of {n}) within {max(seen):.2f} s of their press "
              f"(median {statistics.median(seen):.2f} s), e.g. “{q['places_shown'][-1]}”")
    print(f"   pressed in the order: {' '.join(q['pressed_order'])}")
    print(f"   start order ({q['observed_starts']} observed, the rest as the scheduler will take them): "
          f"{' '.join(q['start_order'])}")
    print(f"   fair turns (every student's first job before anyone's second): {q['turns_alternate']}")
    print("targets: " + ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in r["passed"].items()))


if __name__ == "__main__":
    raise SystemExit(main())
