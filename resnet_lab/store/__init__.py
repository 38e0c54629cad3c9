"""The lab's records in one SQLite file (``$RESNET_LAB_HOME/runs.db``), shared by workers, the app and the CLI; or,
with ``RESNET_LAB_DB=postgresql://...``, in a PostgreSQL database several servers share.

:class:`Store` opens the database (upgrading an older one in place, refusing a newer one) and hands out
one accessor per kind of record: ``store.runs`` (trained models and their metrics), ``store.jobs`` (the
one queue of background work), ``store.experiments``, ``store.people`` (a class's members) and ``store.datasets``
(who uploaded each imported dataset), ``store.challenges`` (a class's challenges and their entries),
``store.model_speeds`` (each preset's measured speed, per device). Open one Store per process (or per thread).
"""

from __future__ import annotations

import os
from pathlib import Path

from ..paths import lab_home
from . import dialect
from .challenges import ChallengeStore
from .datasets import DatasetRecord, DatasetStore
from .db import BUSY_TIMEOUT_MS, SCHEMA_VERSION, Database, SchemaTooNew
from .experiments import ExperimentStore
from .jobs import DEDUPE_WINDOW_S, JobStore, QueueFull, slot_class
from .model_speeds import ModelSpeedStore, Speed
from .people import PeopleStore, Person
from .records import ACTIVE, FINISHED, JOB_STATUSES, RESUMABLE, STATUSES, Experiment, Job, Run
from .runs import RunStore, decimate

__all__ = ["ACTIVE", "BUSY_TIMEOUT_MS", "DB_ENV", "DEDUPE_WINDOW_S", "FINISHED", "JOB_STATUSES", "RESUMABLE",
           "SCHEMA_VERSION", "STATUSES", "Database", "DatasetRecord", "Experiment", "Job", "Person", "QueueFull", "Run",
           "SchemaTooNew", "Speed", "Store", "database_url", "decimate", "slot_class"]


DB_ENV = "RESNET_LAB_DB"
"""The environment variable naming a server database (``postgresql://user:password@host:port/name``) that the lab
uses instead of the home's SQLite file; unset (or empty): SQLite."""


def database_url() -> str | None:
    """The PostgreSQL URL in ``RESNET_LAB_DB``, or None (the lab home's SQLite file); anything else set there is
    refused with a clear error rather than ignored."""
    url = os.environ.get(DB_ENV, "").strip()
    if not url:
        return None
    if not dialect.is_url(url):
        raise ValueError(f"{DB_ENV} must be a PostgreSQL URL (postgresql://user:password@host:port/database), got "
                         f"{dialect.shown_url(url)!r}; unset it to use the lab home's SQLite file")
    return url


class Store:
    """The database of one lab home, with ``runs``, ``jobs``, ``experiments``, ``people`` and ``datasets``.

    ``Store()``: the server database in ``RESNET_LAB_DB`` when set, else ``$RESNET_LAB_HOME/runs.db``.
    ``Store(path)``: that SQLite file (its folder is the lab home). ``Store("postgresql://...")``: that PostgreSQL
    database, its lab home ``home`` (default ``$RESNET_LAB_HOME``: stored checkpoint paths are relative to it)."""

    def __init__(self, path: str | Path | None = None, *, home: str | Path | None = None) -> None:
        url = path if dialect.is_url(path) else (database_url() if path is None else None)
        if url is not None:
            self.db = Database(url=str(url), home=Path(home) if home is not None else lab_home())
        else:
            self.db = Database(Path(path) if path is not None else lab_home() / "runs.db")
        self.runs = RunStore(self.db)
        self.jobs = JobStore(self.db)
        self.experiments = ExperimentStore(self.db)
        self.people = PeopleStore(self.db)
        self.datasets = DatasetStore(self.db)
        self.challenges = ChallengeStore(self.db)
        self.model_speeds = ModelSpeedStore(self.db)

    @property
    def path(self) -> Path | str:
        """What opens this store again (``Store(store.path)``): the SQLite file, or the PostgreSQL URL."""
        return self.db.location

    @property
    def home(self) -> Path:
        """The lab home this database belongs to (its folder): stored paths are relative to it."""
        return self.db.home

    def close(self) -> None:
        self.db.close()
