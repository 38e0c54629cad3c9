"""The class's people: a display name and the hash of each one's personal token (never the token itself)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .db import Database


@dataclass(frozen=True)
class Person:
    id: int
    name: str  # display name as typed (untrusted text)
    created_at: float
    last_seen: float | None


class PeopleStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, name: str, token_hash: str) -> Person:
        now = time.time()
        with self.db.tx() as con:
            pid = int(con.execute("INSERT INTO people(name, token_hash, created_at, last_seen) VALUES (?, ?, ?, ?)",
                                  (name, token_hash, now, now)).lastrowid)
        return Person(pid, name, now, now)

    def by_token_hash(self, token_hash: str) -> Person | None:
        row = self.db.con.execute("SELECT * FROM people WHERE token_hash=?", (token_hash,)).fetchone()
        return None if row is None else Person(row["id"], row["name"], row["created_at"], row["last_seen"])

    def get(self, person_id: int) -> Person:
        row = self.db.con.execute("SELECT * FROM people WHERE id=?", (person_id,)).fetchone()
        if row is None:
            raise KeyError(f"no person with id {person_id}")
        return Person(row["id"], row["name"], row["created_at"], row["last_seen"])

    def list(self) -> list[Person]:
        return [Person(r["id"], r["name"], r["created_at"], r["last_seen"])
                for r in self.db.con.execute("SELECT * FROM people ORDER BY id")]

    def touch(self, person_id: int) -> None:
        """Note that the person was seen now (at most once a minute is written)."""
        now = time.time()
        with self.db.tx(exclusive=False) as con:
            con.execute("UPDATE people SET last_seen=? WHERE id=? AND (last_seen IS NULL OR last_seen<?)",
                        (now, person_id, now - 60))
