"""Challenges and their entries (SQL only; what is allowed is :mod:`resnet_lab.classroom.challenges`).

``challenges``: one row per challenge opened from the Teacher page or the command line (its definition as JSON);
challenges written as TOML files beside the lessons are read from their files and have no row.
``challenge_entries``: a student's finished run submitted to a challenge, the scoring job, and both scores on the
hidden split once scored. The SQL is plain (portable to PostgreSQL; a duplicate id is the dialect's integrity error).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .db import Database

ENTRY_STATUSES = ("queued", "scored", "failed")


class SubmissionRefused(ValueError):
    """An entry the store will not write (the per-day limit reached, or the run already entered): nothing written."""


@dataclass(frozen=True)
class ChallengeRow:
    id: str
    title: str
    definition: dict[str, Any]
    owner: str
    created_at: float


@dataclass(frozen=True)
class Entry:
    id: int
    challenge_id: str
    run_id: int
    job_id: int | None
    owner: str
    owner_name: str  # untrusted text, as typed
    day: str  # the UTC date of the submission, YYYY-MM-DD (the per-day limit counts these)
    submitted_at: float
    status: str  # one of ENTRY_STATUSES
    public_score: float | None
    private_score: float | None
    scored_at: float | None
    error: str | None
    params: int | None
    epochs: int | None
    skip: bool | None  # the run's model has skip connections (a ResNet) or not (its plain twin)


def _entry(row: Any) -> Entry:
    return Entry(id=row["id"], challenge_id=row["challenge_id"], run_id=row["run_id"], job_id=row["job_id"],
                 owner=row["owner"], owner_name=row["owner_name"], day=row["day"], submitted_at=row["submitted_at"],
                 status=row["status"], public_score=row["public_score"], private_score=row["private_score"],
                 scored_at=row["scored_at"], error=row["error"], params=row["params"], epochs=row["epochs"],
                 skip=None if row["skip"] is None else bool(row["skip"]))


class ChallengeStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- challenges ------------------------------------------------------------------------------------

    def add(self, challenge_id: str, title: str, definition: dict[str, Any], owner: str, now: float) -> None:
        """Record a challenge; one with that id recorded already raises ValueError (nothing written)."""
        try:
            with self.db.tx() as con:
                con.execute("INSERT INTO challenges(id, title, definition_json, owner, created_at)"
                            " VALUES (?, ?, ?, ?, ?)",
                            (challenge_id, title, json.dumps(definition, sort_keys=True), owner, now))
        except self.db.integrity_error:
            raise ValueError(f"a challenge with the id {challenge_id!r} exists already; choose another id") from None

    def get(self, challenge_id: str) -> ChallengeRow | None:
        row = self.db.con.execute("SELECT * FROM challenges WHERE id=?", (challenge_id,)).fetchone()
        return None if row is None else ChallengeRow(row["id"], row["title"], json.loads(row["definition_json"]),
                                                     row["owner"], row["created_at"])

    def list(self) -> list[ChallengeRow]:
        rows = self.db.con.execute("SELECT * FROM challenges ORDER BY created_at, id").fetchall()
        return [ChallengeRow(r["id"], r["title"], json.loads(r["definition_json"]), r["owner"], r["created_at"])
                for r in rows]

    # --- entries ---------------------------------------------------------------------------------------

    @staticmethod
    def add_entry(con: Any, *, challenge_id: str, run_id: int, job_id: int, owner: str, owner_name: str, day: str,
                  now: float, per_day: int, params: int, epochs: int, skip: bool) -> int:
        """Write an entry on ``con`` inside the transaction that queues its scoring job (a kind's ``on_submit``):
        refused with :class:`SubmissionRefused` when ``owner`` already has ``per_day`` entries (failed ones not
        counted) in this challenge on ``day``, or when the run was entered before. Returns the entry's id."""
        (n,) = con.execute("SELECT COUNT(*) FROM challenge_entries WHERE challenge_id=? AND owner=? AND day=?"
                           " AND status<>'failed'", (challenge_id, owner, day)).fetchone()
        if n >= per_day:
            raise SubmissionRefused(f"you have made {n} submission{'s' if n != 1 else ''} to this challenge today "
                                    f"({day}, UTC); the limit is {per_day} a day. Try again tomorrow.")
        if con.execute("SELECT 1 FROM challenge_entries WHERE challenge_id=? AND run_id=?",
                       (challenge_id, run_id)).fetchone():
            raise SubmissionRefused(f"run {run_id} was submitted to this challenge already; it is scored once")
        cur = con.execute(
            "INSERT INTO challenge_entries(challenge_id, run_id, job_id, owner, owner_name, day, submitted_at, status,"
            " params, epochs, skip) VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
            (challenge_id, run_id, job_id, owner, owner_name, day, now, params, epochs, int(skip)))
        return int(cur.lastrowid)

    def entries(self, challenge_id: str, owner: str | None = None) -> list[Entry]:
        """A challenge's entries (one owner's with ``owner``), oldest first."""
        sql = "SELECT * FROM challenge_entries WHERE challenge_id=?"
        args: list[Any] = [challenge_id]
        if owner is not None:
            sql += " AND owner=?"
            args.append(owner)
        return [_entry(r) for r in self.db.con.execute(sql + " ORDER BY submitted_at, id", args).fetchall()]

    def entry(self, entry_id: int) -> Entry:
        row = self.db.con.execute("SELECT * FROM challenge_entries WHERE id=?", (entry_id,)).fetchone()
        if row is None:
            raise KeyError(f"no challenge entry {entry_id}")
        return _entry(row)

    def entry_of_job(self, job_id: int) -> Entry:
        row = self.db.con.execute("SELECT * FROM challenge_entries WHERE job_id=?", (job_id,)).fetchone()
        if row is None:
            raise KeyError(f"job {job_id} scores no challenge entry")
        return _entry(row)

    def count_today(self, challenge_id: str, owner: str, day: str) -> int:
        (n,) = self.db.con.execute("SELECT COUNT(*) FROM challenge_entries WHERE challenge_id=? AND owner=? AND day=?"
                                   " AND status<>'failed'", (challenge_id, owner, day)).fetchone()
        return int(n)

    def set_scores(self, entry_id: int, public: float, private: float, now: float) -> bool:
        """Record both scores of a queued entry, once; False (nothing changed) when it was scored already."""
        with self.db.tx() as con:
            cur = con.execute("UPDATE challenge_entries SET status='scored', public_score=?, private_score=?,"
                              " scored_at=?, error=NULL WHERE id=? AND status='queued'",
                              (public, private, now, entry_id))
        return cur.rowcount == 1

    def set_failed(self, entry_id: int, error: str) -> None:
        with self.db.tx() as con:
            con.execute("UPDATE challenge_entries SET status='failed', error=? WHERE id=? AND status='queued'",
                        (error, entry_id))


__all__ = ["ChallengeRow", "ChallengeStore", "ENTRY_STATUSES", "Entry", "SubmissionRefused"]
