"""A real PostgreSQL server for the tests (tests/helpers/pg.sh), and a fresh lab on it for each test.

``make test`` and ``make test-fast`` start one server for the whole run and pass its URL in ``RESNET_LAB_TEST_PG``;
each pytest process makes its own database there, and each test its own schema in it (nothing shared between tests
or pytest-xdist workers);
pytest started by hand without it starts its own (one per pytest process) when Debian's ``postgresql`` package is
installed, and otherwise the PostgreSQL half of the tests is skipped with the reason shown.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

SCRIPT = Path(__file__).with_name("pg.sh")
ENV = "RESNET_LAB_TEST_PG"


class NoServer(RuntimeError):
    """No PostgreSQL server could be started here (the reason is the message)."""


@contextmanager
def server() -> Iterator[str]:
    """The URL of a PostgreSQL server: ``RESNET_LAB_TEST_PG``'s, or one started here and stopped at the end."""
    url = os.environ.get(ENV, "").strip()
    if url:
        yield url
        return
    folder = tempfile.mkdtemp(prefix="resnet_lab_pg_")
    done = subprocess.run([str(SCRIPT), "start", folder], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise NoServer(f"{ENV} is unset and no PostgreSQL server could be started here: "
                       f"{(done.stderr or done.stdout).strip()[-300:]}")
    try:
        yield done.stdout.strip()
    finally:
        subprocess.run([str(SCRIPT), "stop", folder], capture_output=True, timeout=120, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def with_database(url: str, name: str) -> str:
    """``url`` with its database name replaced by ``name``."""
    base, _, _ = url.partition("?")[0].rpartition("/")
    return f"{base}/{name}"


@contextmanager
def own_database(url: str) -> Iterator[str]:
    """A new database on the server at ``url`` for one pytest process (its URL), dropped afterwards: pytest-xdist
    workers never share one."""
    import psycopg

    name = f"w_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(url, name)
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def fresh_schema(url: str) -> Iterator[str]:
    """A new, empty schema in the database at ``url`` for one test: the URL of a lab stored there (its connections'
    ``search_path`` is that schema alone). Dropped afterwards, with the connections the test left open. A schema
    costs a millisecond where a database costs half a second on a busy machine."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield f"{url}?options=-csearch_path%3D{name}&application_name={name}"
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name=%s"
                          " AND pid<>pg_backend_pid()", (name,))
            admin.execute(f'DROP SCHEMA "{name}" CASCADE')


@contextmanager
def own_server() -> Iterator[tuple[str, Path]]:
    """A PostgreSQL server of the caller's own, never the run's shared one (a test that restarts or stops its
    server): (its URL, its folder for ``pg.sh restart|halt FOLDER``). Raises :class:`NoServer` where none starts."""
    folder = Path(tempfile.mkdtemp(prefix="resnet_lab_pg_own_"))
    done = subprocess.run([str(SCRIPT), "start", str(folder)], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise NoServer(f"no PostgreSQL server could be started here: {(done.stderr or done.stdout).strip()[-300:]}")
    try:
        yield done.stdout.strip(), folder
    finally:
        subprocess.run([str(SCRIPT), "stop", str(folder)], capture_output=True, timeout=120, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def control(folder: Path, action: str) -> None:
    """``pg.sh ACTION FOLDER`` (restart, halt) on a server of :func:`own_server`; raises with its output on failure."""
    done = subprocess.run([str(SCRIPT), action, str(folder)], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"pg.sh {action} failed: {(done.stderr or done.stdout).strip()[-500:]}")
