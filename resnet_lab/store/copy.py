"""Copy every record of one lab's database into another's, empty one: SQLite to PostgreSQL (a lab outgrowing one
server) and back (a department's lab taken home, or a backup restored).

Rows are copied as stored: ids stay (experiments list job ids, runs their partner's), paths stay relative to the lab
home (the checkpoints themselves are files under the home, which the two databases share or which is copied with
them). The target's generated ids continue past the source's (SQLite's ``sqlite_sequence``, PostgreSQL's identity
sequences), so an id deleted in the source is not handed out again. The copy is one transaction on the target
(nothing is left half-copied), read from one snapshot of the source, and refused when the target holds any record.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

from .db import SCHEMA, Database, _statements
from .dialect import identity_tables

TABLES = ("jobs", "runs", "metrics", "grad_norms", "run_layers", "experiments", "people", "turns", "datasets",
          "challenges", "challenge_entries", "speeds", "model_speeds")
"""Every table of the schema, in an order that meets its foreign keys but one (``jobs.run_id`` and ``runs.job_id``
refer to each other): the keys are checked at the commit."""

BATCH = 5000  # rows written per statement batch


class TargetNotEmpty(ValueError):
    """The target lab already holds records: a copy would mix two labs (nothing was written)."""


def _check_tables() -> None:
    found = {s.split()[5] for s in _statements(SCHEMA) if s.startswith("CREATE TABLE IF NOT EXISTS")}
    if found != set(TABLES):
        raise RuntimeError(f"store.copy.TABLES is out of date with the schema: {sorted(found ^ set(TABLES))}")


def counts(db: Database) -> dict[str, int]:
    """{table: rows} of every table."""
    return {t: int(db.con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]) for t in TABLES}


def _next_ids(db: Database) -> dict[str, int]:
    """{table: the lowest id the database may still generate} of each table with a generated id."""
    out = {}
    for table in sorted(identity_tables(SCHEMA)):
        top = int(db.con.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()[0])
        if db.dialect == "sqlite":
            row = db.con.execute("SELECT seq FROM sqlite_sequence WHERE name=?", (table,)).fetchone()
        else:
            row = db.con.execute("SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM"
                                 f" {table}_id_seq").fetchone()
        out[table] = max(top, int(row[0]) if row is not None and row[0] is not None else 0) + 1
    return out


@contextmanager
def _snapshot(db: Database) -> Iterator[None]:
    """Read the source from one consistent snapshot (writers may go on meanwhile: they are not copied)."""
    db.con.execute("BEGIN" if db.dialect == "sqlite" else "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    try:
        yield
    finally:
        db.con.execute("ROLLBACK")


def _rows(db: Database, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    cur = db.con.execute(f"SELECT * FROM {table}")
    rows = [tuple(r) for r in cur.fetchall()]
    names = [d[0] for d in cur.description]
    return names, rows


def copy(source: Database, target: Database) -> dict[str, int]:
    """Copy every record of ``source`` into the empty ``target`` (both at this lab's schema version: opening them
    did that); returns {table: rows copied}. :class:`TargetNotEmpty` when the target holds any record."""
    _check_tables()
    held = {t: n for t, n in counts(target).items() if n}
    if held:
        listed = ", ".join(f"{t}: {n}" for t, n in held.items())
        raise TargetNotEmpty(f"the target {target.where} already holds records ({listed}); `store copy` fills only "
                             "an empty lab. Choose an empty database or file.")
    copied: dict[str, int] = {}
    with _snapshot(source):
        tables = {t: _rows(source, t) for t in TABLES}
        next_ids = _next_ids(source)
    with target.tx() as con:
        con.execute("PRAGMA defer_foreign_keys=ON" if target.dialect == "sqlite" else "SET CONSTRAINTS ALL DEFERRED")
        for table, (names, rows) in tables.items():
            sql = f"INSERT INTO {table}({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
            for i in range(0, len(rows), BATCH):
                con.executemany(sql, rows[i:i + BATCH])
            copied[table] = len(rows)
        for table, nxt in next_ids.items():
            if target.dialect == "sqlite":
                con.execute("DELETE FROM sqlite_sequence WHERE name=?", (table,))
                con.execute("INSERT INTO sqlite_sequence(name, seq) VALUES (?, ?)", (table, nxt - 1))
            else:
                con.execute("SELECT setval(pg_get_serial_sequence(?, 'id'), ?, false)", (table, nxt))
    return copied
