"""A local HTTP server for download tests: bytes the test provides, served on 127.0.0.1 with faults on demand.

``with FaultServer() as srv:`` starts a ``ThreadingHTTPServer`` on a free port in a thread; ``srv.serve(path,
data)`` publishes bytes at ``srv.url(path)``; ``srv.faults[path]`` (a :class:`Faults`) makes that path misbehave:

* ``drop_after=N``: the next answer sends its headers (the full Content-Length) and N bytes, then closes the
  connection — once, unless ``drop_times`` says more;
* ``status=503`` (or any code): answer that instead, ``status_times`` times (None: always);
* ``wrong=True``: serve other bytes of the same length (a mirror with a damaged copy);
* ``slow_s=0.05`` with ``chunk=1024``: sleep that long before each chunk;
* ``ignore_range=True``: answer 200 with the whole file even when a ``Range`` is asked.

``Range: bytes=N-`` is honoured with 206 and ``Content-Range``. Every request is logged in ``srv.requests`` as
``(path, range header or None)``; ``srv.count(path)`` counts them. A request whose target is an absolute URL
(what a client sends to a proxy) is served by its path, so the server also stands in for an HTTP proxy.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


@dataclass
class Faults:
    drop_after: int | None = None  # bytes sent before the connection is dropped
    drop_times: int = 1  # how many answers drop (then it serves normally)
    status: int | None = None  # an error status to answer instead
    status_times: int | None = None  # how many times (None: every time)
    wrong: bool = False  # serve different bytes of the same length
    slow_s: float = 0.0  # sleep before each chunk, seconds
    chunk: int = 64 * 1024  # bytes per write
    ignore_range: bool = False  # always answer 200 with everything


class FaultServer:
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.faults: dict[str, Faults] = {}
        self.requests: list[tuple[str, str | None]] = []
        self.proxied: list[str] = []  # absolute-URL targets seen (the server acting as a proxy)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def serve(self, path: str, data: bytes, faults: Faults | None = None) -> str:
        """Publish ``data`` at ``/path``; return its URL."""
        path = "/" + path.lstrip("/")
        self.files[path] = data
        if faults is not None:
            self.faults[path] = faults
        return self.url(path)

    def count(self, path: str) -> int:
        path = "/" + path.lstrip("/")
        return sum(1 for p, _ in self.requests if p == path)

    def ranges(self, path: str) -> list[str]:
        path = "/" + path.lstrip("/")
        return [r for p, r in self.requests if p == path and r]

    def __enter__(self) -> "FaultServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler(srv: FaultServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output quiet
            return

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            target = self.path
            if "://" in target:
                srv.proxied.append(target)
            path = urlsplit(target).path
            rng = self.headers.get("Range")
            with srv._lock:
                srv.requests.append((path, rng))
                fault = srv.faults.get(path, Faults())
                status = None
                if fault.status is not None and (fault.status_times is None or fault.status_times > 0):
                    status = fault.status
                    if fault.status_times is not None:
                        fault.status_times -= 1
                drop = None
                if fault.drop_after is not None and fault.drop_times > 0:
                    drop, fault.drop_times = fault.drop_after, fault.drop_times - 1
            data = srv.files.get(path)
            if status is not None or data is None:
                code = status or 404
                body = f"error {code}\n".encode()
                self.send_response(code)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)
                return
            if fault.wrong:
                data = bytes((b + 1) % 256 for b in data)
            start = 0
            if rng and not fault.ignore_range and rng.startswith("bytes=") and rng.endswith("-"):
                start = int(rng[len("bytes="):-1])
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            else:
                self.send_response(200)
            body = data[start:]
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            sent = 0
            try:
                for i in range(0, len(body), fault.chunk):
                    piece = body[i: i + fault.chunk]
                    if drop is not None and sent + len(piece) > drop:
                        self.wfile.write(piece[: drop - sent])
                        self.wfile.flush()
                        self.close_connection = True
                        return
                    if fault.slow_s:
                        time.sleep(fault.slow_s)
                    self.wfile.write(piece)
                    self.wfile.flush()
                    sent += len(piece)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (a stopped download)
                self.close_connection = True

    return Handler
