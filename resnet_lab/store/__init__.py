"""The lab's records in one SQLite file (``$RESNET_LAB_HOME/runs.db``), shared by workers, the app and the CLI.

:class:`Store` opens the database (upgrading an older one in place, refusing a newer one) and hands out
one accessor per kind of record: ``store.runs`` (trained models and their metrics), ``store.jobs`` (the
one queue of background work), ``store.experiments``, ``store.people`` (a class's members) and ``store.datasets``
(who uploaded each imported dataset), ``store.challenges`` (a class's challenges and their entries). Open one Store
per process (or per thread).
"""

from __future__ import annotations

from pathlib import Path

from ..paths import lab_home
from .challenges import ChallengeStore
from .datasets import DatasetRecord, DatasetStore
from .db import BUSY_TIMEOUT_MS, SCHEMA_VERSION, Database, SchemaTooNew
from .experiments import ExperimentStore
from .jobs import DEDUPE_WINDOW_S, JobStore, QueueFull, slot_class
from .people import PeopleStore, Person
from .records import ACTIVE, FINISHED, JOB_STATUSES, RESUMABLE, STATUSES, Experiment, Job, Run
from .runs import RunStore, decimate

__all__ = ["ACTIVE", "BUSY_TIMEOUT_MS", "DEDUPE_WINDOW_S", "FINISHED", "JOB_STATUSES", "RESUMABLE", "SCHEMA_VERSION",
           "STATUSES", "Database", "DatasetRecord", "Experiment", "Job", "Person", "QueueFull", "Run", "SchemaTooNew",
           "Store", "decimate", "slot_class"]


class Store:
    """The database of one lab home, with ``runs``, ``jobs``, ``experiments``, ``people`` and ``datasets``."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.db = Database(Path(path) if path is not None else lab_home() / "runs.db")
        self.runs = RunStore(self.db)
        self.jobs = JobStore(self.db)
        self.experiments = ExperimentStore(self.db)
        self.people = PeopleStore(self.db)
        self.datasets = DatasetStore(self.db)
        self.challenges = ChallengeStore(self.db)

    @property
    def path(self) -> Path:
        return self.db.path

    @property
    def home(self) -> Path:
        """The lab home this database belongs to (its folder): stored paths are relative to it."""
        return self.db.home

    def close(self) -> None:
        self.db.close()
