"""The store's tests run on both engines: SQLite (the default) and a real PostgreSQL server (a fresh database per
test: tests/helpers/pg.py). A test takes ``engine`` (or ``open_store`` / ``store_location``, which take it) to run
twice; one that names neither is about SQLite alone (its file, its PRAGMAs, the SQLite migration fixtures)."""

from pathlib import Path

import pytest

from resnet_lab.store import DB_ENV, Store

ENGINES = ("sqlite", "postgresql")


@pytest.fixture(params=ENGINES)
def engine(request, monkeypatch):
    """"sqlite" or "postgresql"; on PostgreSQL, ``RESNET_LAB_DB`` names this test's own fresh database, so a plain
    ``Store()`` (and any process the test starts) opens it."""
    if request.param == "postgresql":
        monkeypatch.setenv(DB_ENV, request.getfixturevalue("pg_url"))
    else:
        monkeypatch.delenv(DB_ENV, raising=False)
    return request.param


@pytest.fixture
def store_location(engine, tmp_path, monkeypatch):
    """What ``Store(...)`` opens for this test: the SQLite file ``tmp_path/runs.db``, or the PostgreSQL URL."""
    import os

    return os.environ[DB_ENV] if engine == "postgresql" else tmp_path / "runs.db"


@pytest.fixture
def open_store(engine):
    """``open_store(home / "runs.db")``: the store of the lab home ``home``, on this test's engine (on PostgreSQL the
    same database whatever the home: only where stored paths are relative to changes)."""
    import os

    def open_(path: Path) -> Store:
        return Store(os.environ[DB_ENV], home=Path(path).parent) if engine == "postgresql" else Store(path)

    return open_
