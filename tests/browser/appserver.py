"""A real app server (``streamlit run app.py`` on a free localhost port) and the system Chromium's settings, for
the browser tests and for ``bench/classroom.py`` (plain Python: no pytest here)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterable, Mapping

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-dev-shm-usage"]
# how the lab decides who you are: a server started for one mode must not inherit another's from this shell
IDENTITY_SETTINGS = ("RESNET_LAB_CLASS_CODE", "RESNET_LAB_TEACHER_TOKEN", "RESNET_LAB_TEACHERS",
                     "RESNET_LAB_PROXY_HEADER", "RESNET_LAB_SETTINGS")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium_path() -> str | None:
    """The system Chromium (or RESNET_LAB_CHROMIUM); None means Playwright's own install is used."""
    return os.environ.get("RESNET_LAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


class AppServer:
    """``streamlit run app.py`` for the lab home ``home``, in its own process group; returns once it answers its
    health check. ``env`` is added to this process's environment, without ``drop`` (names); ``cpus`` pins it
    (and the workers it starts) to those cores. Workers outlive the server by design: :meth:`end` ends only
    the server."""

    def __init__(self, home: Path, env: Mapping[str, str] | None = None, *, log_name: str = "server.log",
                 drop: Iterable[str] = (), cpus: set[int] | None = None, timeout_s: float = 90.0) -> None:
        self.home = Path(home)
        self.log_path = self.home / log_name
        port = free_port()
        full_env = {k: v for k, v in os.environ.items() if k not in set(drop)}
        full_env.update(RESNET_LAB_HOME=str(self.home), PYTHONUNBUFFERED="1", **dict(env or {}))
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
                 "--server.address", "127.0.0.1", "--server.headless", "true"],
                cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.time() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the app server exited early: {self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            if time.time() > deadline:
                self.end(signal.SIGKILL)
                raise RuntimeError(f"the app server did not become healthy within {timeout_s:.0f} s")
            time.sleep(0.3)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def end(self, sig: int = signal.SIGTERM) -> None:
        """Send ``sig`` to the server's process group (what a terminal or a supervisor ends), and wait."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=20)
