"""A protocol-level Streamlit student: one page's WebSocket conversation with the server, without a browser.

``bench/classroom.py`` measures what N students watching a live run cost the *server*. A real Chromium page
costs its own core a sixth of a core to draw a live Train page, so 30 of them cannot run beside the server on
this 2-core machine; what the server sees of a page, though, is only its messages. A :class:`ProtocolStudent`
sends the server the same messages a Chromium page sends (read from Streamlit 1.67's frontend,
``static/js/index.*.js``, and checked against what a real page sends: ``classroom.py`` compares the two every
run), and reads what the server sends back into an element tree, as far as the bench needs it:

- **Connecting** as the frontend does: ``GET /<page>?<query>`` (the HTML, which also sets the XSRF cookie),
  ``/_stcore/health`` and ``/_stcore/host-config``, then a WebSocket to ``/_stcore/stream`` with the
  subprotocols ``["streamlit", <xsrf token or PLACEHOLDER_AUTH_TOKEN>, <last session id on a reconnect>]`` and
  the page's ``Origin``. The static JavaScript and fonts are not fetched (a laptop loads them once per class).
- **The first rerun** names the page as the browser does on a multipage app's own address: ``page_name``
  (``train``) and no ``page_script_hash``, the query string (``me=<token>``), empty widget states and the
  context info (timezone, locale, url, colour scheme). Every later message carries the ``page_script_hash``
  the server announced in ``new_session``.
- **Widget states**: every rerun sends the value of every widget on the page (the browser's WidgetStateManager
  does: each mounted widget registers its value), taken from the element's ``default`` or its server-set
  ``value``; a press adds ``trigger_value=True`` for the button's id, with the button's fragment id if it
  sits in a fragment.
- **Fragment timers**: ``auto_rerun`` (fragment id, interval) starts a timer that sends ``rerun_script`` with
  ``fragment_id`` and ``is_auto_rerun=True`` every interval, whether the last run finished or not (the
  frontend's ``setInterval``); the same interval again is ignored, another replaces it; ``stop_auto_rerun``
  clears it.
- **The message cache**: a ForwardMsg marked ``cacheable`` is kept by hash, its hashes sent with each rerun
  (``cached_message_hashes``), expired after ``max_cached_message_age`` script runs, and a ``ref_hash`` is
  answered from it, as the frontend's ForwardMsgCache does.
- **Heartbeats**: none. The frontend sends ``app_heartbeat`` only when a host page (an iframe's parent) asks it
  to; a page opened on its own never does, and the bench checks the browsers send none either.

What it does not do: render anything, run plotly, or fetch media (images, downloads). It is the server's side
of a page, not the student's laptop: its own CPU (all students on one asyncio thread) is measured and reported
apart (``cpu_seconds``).
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError

CONTEXT = {"timezone": "UTC", "timezone_offset": 0, "locale": "en-US", "is_embedded": False, "color_scheme": "light"}
MAIN = 0  # delta_path[0]: the main area (1 the sidebar, 2 events, 3 bottom)


@dataclass
class Node:
    """One element or block of the page at its delta path: the proto, the script run that last wrote it, and the
    fragment that wrote it ('' for a full run)."""
    element: Any  # streamlit.proto.Element_pb2.Element, or None for a block
    run: int
    fragment: str


def element_text(element: Any) -> str:
    """The text a browser shows for one element, close enough to match the bench's patterns (PLACE_RE, "Run #")."""
    kind = element.WhichOneof("type")
    if kind in ("markdown", "text", "heading", "alert"):
        body = getattr(element, kind).body
    elif kind == "code":
        body = element.code.code_text
    elif kind == "progress":
        body = element.progress.text
    elif kind == "button":
        body = element.button.label
    elif kind == "exception":
        body = f"{element.exception.type}: {element.exception.message}"
    else:
        return ""
    return re.sub(r"\\(.)", r"\1", re.sub(r"\*\*|__", "", body))  # bold marks and markdown escapes: as shown


def widget_state(element: Any, previous: Any | None) -> Any | None:
    """The WidgetState a mounted widget registers (the browser's value for it): the server-set value when the
    element carries one, else the value it had, else its default. Buttons have none until pressed."""
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    kind = element.WhichOneof("type")
    w = getattr(element, kind) if kind else None
    if w is None or not getattr(w, "id", ""):
        return None
    set_value = getattr(w, "set_value", False)
    if previous is not None and not set_value:
        return previous
    state = WidgetState(id=w.id)
    if kind in ("selectbox", "radio"):
        if set_value or w.HasField("raw_value"):
            state.string_value = w.raw_value
        elif w.HasField("default") and 0 <= w.default < len(w.options):
            state.string_value = w.options[w.default]
        else:
            return None
    elif kind == "number_input":
        value = w.value if set_value else w.default
        if not (set_value or w.HasField("default")):
            return None
        if w.data_type == w.INT:
            state.int_value = int(value)
        else:
            state.double_value = value
    elif kind == "checkbox":
        state.bool_value = w.value if set_value else w.default
    elif kind == "text_input":
        if not (set_value or w.HasField("default")):
            return None
        state.string_value = w.value if set_value else w.default
    elif kind == "slider":
        state.double_array_value.data.extend(w.value if set_value else w.default)
    else:  # buttons (a trigger, sent only when pressed), tables, charts: nothing registered
        return None
    return state


@dataclass
class ProtocolStudent:
    """One student's page on ``path`` (``train``) with ``query`` (``me=<token>``), spoken over Streamlit's
    protocol. ``on_send(payload)`` is called with the bytes of every BackMsg as it is sent (the bench classifies
    them as it does a browser's frames). Run it on a :class:`Class`'s loop."""
    base: str  # http://127.0.0.1:PORT
    path: str
    query: str
    on_send: Callable[[bytes], None] = lambda payload: None
    sent_at: list[float] = field(default_factory=list)  # time.time() of each message sent, ms (as REPORTER_JS)
    errors: list[str] = field(default_factory=list)  # exceptions shown, connection drops, protocol surprises
    sockets: int = 0  # WebSocket connections opened
    nodes: dict[tuple[int, ...], Node] = field(default_factory=dict)
    widgets: dict[str, Any] = field(default_factory=dict)  # widget id -> WidgetState (the values it sends)
    timers: dict[str, tuple[float, asyncio.Task]] = field(default_factory=dict)  # fragment id -> (interval, task)
    cache: dict[str, list] = field(default_factory=dict)  # hash -> [ForwardMsg, run count when cached, fragment]
    page_script_hash: str = ""
    session_id: str = ""
    max_cached_age: int = 2
    run: int = 0  # script runs begun (new_session count)
    runs_finished: int = 0
    run_fragment: str = ""
    closing: bool = False
    ws: Any = None
    task: asyncio.Task | None = None
    helpers: list[asyncio.Task] = field(default_factory=list)  # the bench's tasks on this page (reports, watches)

    # --- the page as shown ---------------------------------------------------------------------------

    def text(self) -> str:
        """The main area's text, in page order (the browser's ``stMain`` textContent, roughly)."""
        return "\n".join(element_text(n.element) for path, n in sorted(self.nodes.items())
                         if path and path[0] == MAIN and n.element is not None)

    def headings(self) -> list[str]:
        return [element_text(n.element) for path, n in sorted(self.nodes.items()) if path and path[0] == MAIN
                and n.element is not None and n.element.WhichOneof("type") == "heading"]

    def exception_boxes(self) -> int:
        return sum(1 for path, n in self.nodes.items() if path and path[0] == MAIN and n.element is not None
                   and n.element.WhichOneof("type") == "exception")

    def button(self, label: str) -> tuple[str, str] | None:
        """(widget id, fragment id) of the button labelled exactly ``label`` in the main area, if shown."""
        for path, n in sorted(self.nodes.items()):
            if n.element is not None and n.element.WhichOneof("type") == "button" and path[0] == MAIN \
                    and n.element.button.label == label:
                return n.element.button.id, n.fragment
        return None

    # --- sending ------------------------------------------------------------------------------------

    async def send(self, msg: Any) -> None:
        payload = msg.SerializeToString()
        self.sent_at.append(time.time() * 1000)
        self.on_send(payload)
        await self.ws.send(payload)

    async def rerun(self, fragment: str = "", auto: bool = False, trigger: str = "", first: bool = False) -> None:
        """A ``rerun_script`` as the browser's sendRerunBackMsg builds it."""
        from streamlit.proto.BackMsg_pb2 import BackMsg

        msg = BackMsg()
        r = msg.rerun_script
        r.query_string = self.query
        if first:
            r.page_name = self.path
        else:
            r.page_script_hash = self.page_script_hash
            states = [s for s in self.widgets.values()]
            r.widget_states.widgets.extend(states)
        if trigger:
            r.widget_states.widgets.add(id=trigger, trigger_value=True)
        r.widget_states.SetInParent()
        if fragment:
            r.fragment_id = fragment
        r.is_auto_rerun = auto
        r.cached_message_hashes.extend(self.cache)
        for k, v in CONTEXT.items():
            setattr(r.context_info, k, v)
        r.context_info.url = f"{self.base}/{self.path}"
        await self.send(msg)

    async def press(self, label: str) -> None:
        """Press the button labelled ``label`` (as a click does: its trigger, with the widgets' values)."""
        found = self.button(label)
        if found is None:
            raise LookupError(f"no button {label!r} on the page")
        widget, fragment = found
        await self.rerun(fragment=fragment, trigger=widget)

    async def tick(self, fragment: str, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.rerun(fragment=fragment, auto=True)

    # --- receiving ----------------------------------------------------------------------------------

    def take(self, msg: Any) -> None:
        """Apply one ForwardMsg (after its ref_hash, if any, was resolved)."""
        kind = msg.WhichOneof("type")
        if msg.metadata.cacheable and msg.hash and kind != "ref_hash" and msg.hash not in self.cache:
            self.cache[msg.hash] = [msg, self.runs_finished, msg.delta.fragment_id if kind == "delta" else ""]
        if kind == "new_session":
            self.run += 1
            self.page_script_hash = self.page_script_hash or msg.new_session.page_script_hash
            if msg.new_session.HasField("config"):
                self.max_cached_age = msg.new_session.config.max_cached_message_age or self.max_cached_age
            self.run_fragment = ""
        elif kind == "navigation" and msg.navigation.page_script_hash:  # the page this run showed (frontend's
            self.page_script_hash = msg.navigation.page_script_hash   # currentPageScriptHash), sent with every rerun
        elif kind == "delta":
            path = tuple(msg.metadata.delta_path)
            d = msg.delta
            self.run_fragment = d.fragment_id or self.run_fragment
            which = d.WhichOneof("type")
            if which == "new_element":
                self.nodes[path] = Node(d.new_element, self.run, d.fragment_id)
                state = widget_state(d.new_element, self.widgets.get(self.widget_id(d.new_element)))
                if state is not None:
                    self.widgets[state.id] = state
            elif which == "add_block":
                self.nodes[path] = Node(None, self.run, d.fragment_id)
        elif kind == "script_finished":
            self.finished(msg.script_finished)
        elif kind == "auto_rerun":
            fragment, interval = msg.auto_rerun.fragment_id, msg.auto_rerun.interval
            if fragment and (fragment not in self.timers or self.timers[fragment][0] != interval):
                self.stop_timer(fragment)
                self.timers[fragment] = (interval, asyncio.get_running_loop().create_task(self.tick(fragment,
                                                                                                   interval)))
        elif kind == "stop_auto_rerun":
            for fragment in msg.stop_auto_rerun.fragment_ids:
                self.stop_timer(fragment)
        elif kind == "session_event" and msg.session_event.WhichOneof("type") == "script_compilation_exception":
            self.errors.append(f"script compilation error: {msg.session_event.script_compilation_exception}")

    @staticmethod
    def widget_id(element: Any) -> str:
        kind = element.WhichOneof("type")
        return getattr(getattr(element, kind), "id", "") if kind else ""

    def finished(self, status: int) -> None:
        """A script run ended: drop what it did not write again (the frontend's clearStaleNodes: the whole page
        after a full run, the fragment's own nodes after a fragment run), forget widgets no longer shown, and age
        the message cache."""
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        if status == ForwardMsg.FINISHED_EARLY_FOR_RERUN:
            return
        fragment = self.run_fragment if status == ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY else ""
        stale = [p for p, n in self.nodes.items() if n.run < self.run and (not fragment or n.fragment == fragment)]
        for p in stale:
            del self.nodes[p]
        shown = {self.widget_id(n.element) for n in self.nodes.values() if n.element is not None}
        for wid in [w for w in self.widgets if w not in shown]:
            del self.widgets[wid]
        self.runs_finished += 1
        for h in [h for h, (_, at, frag) in self.cache.items() if self.runs_finished - at > self.max_cached_age
                  and (not fragment or frag == fragment)]:
            del self.cache[h]

    def stop_timer(self, fragment: str) -> None:
        if fragment in self.timers:
            self.timers.pop(fragment)[1].cancel()

    # --- the connection -----------------------------------------------------------------------------

    async def http_get(self, path: str) -> tuple[int, dict[str, str]]:
        """One GET on the app server (HTTP/1.1, closed after): status and headers."""
        host, port = urllib.parse.urlsplit(self.base).netloc.split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            raw = await reader.read()
        finally:
            writer.close()
        head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
        headers: dict[str, str] = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            headers.setdefault(k.strip().lower(), "")
            headers[k.strip().lower()] += (";" if headers[k.strip().lower()] else "") + v.strip()
        return int(head[0].split()[1]), headers

    async def connect(self) -> None:
        """The page's loads and its WebSocket, as the frontend opens them; the first rerun once connected."""
        from websockets.asyncio.client import connect

        status, headers = await self.http_get(f"/{self.path}?{self.query}")
        if status != 200:
            self.errors.append(f"HTTP {status}: /{self.path}")
        m = re.search(r"_streamlit_xsrf=([^;]+)", headers.get("set-cookie", ""))
        for probe in ("/_stcore/health", "/_stcore/host-config"):
            if (await self.http_get(probe))[0] != 200:
                self.errors.append(f"HTTP error: {probe}")
        xsrf = m.group(1) if m else None
        protocols = ["streamlit", xsrf or "PLACEHOLDER_AUTH_TOKEN"] + ([self.session_id] if self.session_id else [])
        ws_url = self.base.replace("http", "ws", 1) + "/_stcore/stream"
        self.ws = await connect(ws_url, subprotocols=protocols, origin=self.base, max_size=None, ping_interval=None,
                                additional_headers={"Cookie": f"_streamlit_xsrf={xsrf}"} if xsrf else None)
        self.sockets += 1
        await self.rerun(first=not self.page_script_hash)

    async def serve(self) -> None:
        """Connect, then read the server's messages until closed; a dropped connection is an error, reconnected
        as the browser does (with its session id, so the server may keep the session)."""
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
        from websockets.exceptions import WebSocketException

        while not self.closing:
            try:
                await self.connect()
                async for payload in self.ws:
                    msg = ForwardMsg()
                    msg.ParseFromString(payload)
                    if msg.WhichOneof("type") == "ref_hash":
                        cached = self.cache.get(msg.ref_hash)
                        if cached is None:
                            self.errors.append(f"cached ForwardMsg miss: {msg.ref_hash}")
                            continue
                        cached[0].metadata.CopyFrom(msg.metadata)
                        msg = cached[0]
                    if msg.WhichOneof("type") == "new_session":
                        self.session_id = msg.new_session.initialize.session_id or self.session_id
                    self.take(msg)
            except (OSError, DecodeError, asyncio.TimeoutError, WebSocketException) as e:
                if self.closing:
                    break
                self.errors.append(f"connection dropped: {type(e).__name__}: {e}")
            if not self.closing:
                if self.ws is not None and getattr(self.ws, "close_code", None) is not None:
                    self.errors.append(f"connection closed by the server: {self.ws.close_code}")
                for fragment in list(self.timers):
                    self.stop_timer(fragment)
                await asyncio.sleep(1.0)

    async def close(self) -> None:
        self.closing = True
        for fragment in list(self.timers):
            self.stop_timer(fragment)
        for helper in self.helpers:
            helper.cancel()
        if self.ws is not None:
            await self.ws.close()
        if self.task is not None:
            self.task.cancel()


class Class:
    """An asyncio loop on its own thread, where every protocol student runs; :meth:`call` runs a coroutine there
    from the bench's thread. The thread inherits the cores of the thread that starts it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.tid = 0
        self.thread = threading.Thread(target=self._run, name="protocol-students", daemon=True)
        self.thread.start()
        self.ready.wait()

    def _run(self) -> None:
        self.tid = threading.get_native_id()
        asyncio.set_event_loop(self.loop)
        self.ready.set()
        self.loop.run_forever()

    def call(self, coro: Any, timeout_s: float | None = None) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def start(self, student: ProtocolStudent) -> None:
        async def go() -> None:
            student.task = asyncio.get_running_loop().create_task(student.serve())
        self.call(go())

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the students' thread: what all protocol students cost this machine."""
        import os

        fields = open(f"/proc/self/task/{self.tid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def end(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
