"""Imported datasets' records: who uploaded each one (by its name) and how many bytes the upload was.

The files are :mod:`resnet_lab.data.folders`' (a dataset placed by hand has files and no record: it is the
machine's, ``local``); who may delete one, and what a per-person upload cap counts, is
:mod:`resnet_lab.classroom.uploads`, which writes a record when it imports a dataset and deletes it with the files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable

from ..identity import LOCAL, Identity
from .db import Database


@dataclass(frozen=True)
class DatasetRecord:
    name: str  # the dataset's name (its folder in $RESNET_LAB_HOME/datasets)
    owner: str  # who uploaded it: an Identity.owner key
    owner_name: str  # their display name then (untrusted text)
    upload_bytes: int  # the upload's size, what a per-person cap counts
    created_at: float


def _record(row: object) -> DatasetRecord:
    return DatasetRecord(row["name"], row["owner"], row["owner_name"], int(row["upload_bytes"]),  # type: ignore[index]
                         row["created_at"])  # type: ignore[index]


class DatasetStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, name: str, owner: Identity, upload_bytes: int) -> DatasetRecord:
        """Keep that ``owner`` uploaded the dataset ``name`` (``upload_bytes`` long), replacing any older record of
        that name (a dataset deleted by hand and uploaded again)."""
        if not isinstance(owner, Identity):
            raise TypeError(f"owner must be an Identity, got {type(owner).__name__}")
        if isinstance(upload_bytes, bool) or not isinstance(upload_bytes, int) or upload_bytes < 0:
            raise ValueError(f"upload_bytes must be a whole number of bytes, got {upload_bytes!r}")
        now = time.time()
        with self.db.tx() as con:
            con.execute("INSERT INTO datasets(name, owner, owner_name, upload_bytes, created_at) VALUES (?, ?, ?, ?, ?)"
                        " ON CONFLICT(name) DO UPDATE SET owner=excluded.owner, owner_name=excluded.owner_name,"
                        " upload_bytes=excluded.upload_bytes, created_at=excluded.created_at",
                        (name, owner.owner, owner.name, upload_bytes, now))
        return DatasetRecord(name, owner.owner, owner.name, upload_bytes, now)

    def get(self, name: str) -> DatasetRecord | None:
        row = self.db.con.execute("SELECT * FROM datasets WHERE name=?", (name,)).fetchone()
        return None if row is None else _record(row)

    def list(self) -> list[DatasetRecord]:
        return [_record(r) for r in self.db.con.execute("SELECT * FROM datasets ORDER BY name")]

    def owner_of(self, name: str) -> tuple[str, str]:
        """(owner key, owner's display name) of the dataset ``name``; ``("local", "")`` (the machine's) for one
        without a record."""
        rec = self.get(name)
        return (LOCAL, "") if rec is None else (rec.owner, rec.owner_name)

    def bytes_per_owner(self, names: Iterable[str] | None = None) -> dict[str, int]:
        """Upload bytes each owner keeps: of every recorded dataset, or of those in ``names`` only (the datasets
        whose files are still there)."""
        wanted = None if names is None else set(names)
        out: dict[str, int] = {}
        for name, owner, size in self.db.con.execute("SELECT name, owner, upload_bytes FROM datasets"):
            if wanted is None or name in wanted:
                out[owner] = out.get(owner, 0) + int(size)
        return out

    def delete(self, name: str) -> bool:
        """Forget the dataset ``name`` (its files deleted); whether there was a record."""
        with self.db.tx() as con:
            return con.execute("DELETE FROM datasets WHERE name=?", (name,)).rowcount > 0
