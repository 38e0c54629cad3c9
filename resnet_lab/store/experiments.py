"""Experiments: named groups of jobs launched together (the degradation experiment's two twin jobs)."""

from __future__ import annotations

import json
import time
from typing import Any, Sequence

from .db import Database
from .records import Experiment, experiment_from_row


class ExperimentStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, kind: str, name: str, params: dict[str, Any], job_ids: Sequence[int]) -> int:
        """Group jobs into an experiment. The same kind over the same jobs (in the same order) is one experiment:
        asking again — a second process racing the first included — returns the first one's id."""
        jobs_json = json.dumps([int(j) for j in job_ids])
        with self.db.tx() as con:
            row = con.execute("SELECT id FROM experiments WHERE kind=? AND job_ids_json=? ORDER BY id LIMIT 1",
                              (kind, jobs_json)).fetchone()
            if row is not None:
                return int(row["id"])
            return int(con.execute("INSERT INTO experiments(kind, name, params_json, job_ids_json, created_at)"
                                   " VALUES (?, ?, ?, ?, ?)",
                                   (kind, name, json.dumps(params), jobs_json, time.time())).lastrowid)

    def get(self, experiment_id: int) -> Experiment:
        row = self.db.con.execute("SELECT * FROM experiments WHERE id=?", (experiment_id,)).fetchone()
        if row is None:
            raise KeyError(f"no experiment with id {experiment_id}")
        return experiment_from_row(row)

    def list(self, kind: str | None = None, limit: int = 100) -> list[Experiment]:
        """Experiments, newest first."""
        if kind is None:
            rows = self.db.con.execute("SELECT * FROM experiments ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        else:
            rows = self.db.con.execute("SELECT * FROM experiments WHERE kind=? ORDER BY id DESC LIMIT ?",
                                       (kind, limit)).fetchall()
        return [experiment_from_row(r) for r in rows]
