"""A challenge's leaderboard and its grades: who is ahead, and the CSV files a course system imports.

* :func:`leaderboard`: the best scored entry per student by the score asked for (ties: the earlier submission
  first), each with its run's kind (ResNet or its plain twin). Students see the PUBLIC score while the challenge is
  open and the PRIVATE one after its deadline (:meth:`Challenge.shown_score`); a teacher may see the private one
  at any time.
* :func:`grades_csv`: one row per student: display name, best private score, run id, parameters, epochs, time of
  submission (ISO 8601, UTC) — the columns Canvas and Moodle import. :func:`runs_csv`: every student's runs.
  Both go through :func:`resnet_lab.fmt.csv_text`, which neutralises a cell that begins like a formula
  (``=`` ``+`` ``-`` ``@``): a display name is whatever a student typed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from ..fmt import csv_text
from ..spec import kind_of
from .challenges import Challenge

SCORES = ("public", "private")
GRADE_COLUMNS = ("display_name", "best_private_score", "run_id", "parameters", "epochs", "submitted_at")
RUN_COLUMNS = ("display_name", "owner", "run_id", "name", "kind", "status", "dataset", "epochs", "best_val_acc",
               "created_at")


@dataclass(frozen=True)
class BoardRow:
    rank: int
    name: str  # the student's display name (untrusted text: shown as text)
    owner: str
    score: float
    run_id: int
    kind: str  # "ResNet" or "plain"
    params: int | None
    epochs: int | None
    submitted_at: float
    entries: int  # the student's scored entries


def leaderboard(entries: Iterable[Any], score: str) -> list[BoardRow]:
    """The best scored entry per owner by ``score`` ("public" or "private"), best first; equal scores rank the
    earlier submission first."""
    if score not in SCORES:
        raise ValueError(f"score must be one of {', '.join(SCORES)}, got {score!r}")
    best: dict[str, Any] = {}
    counts: dict[str, int] = {}
    for e in entries:
        value = getattr(e, f"{score}_score")
        if e.status != "scored" or value is None:
            continue
        counts[e.owner] = counts.get(e.owner, 0) + 1
        held = best.get(e.owner)
        if held is None or _key(e, score) < _key(held, score):
            best[e.owner] = e
    ordered = sorted(best.values(), key=lambda e: _key(e, score))
    return [BoardRow(rank=i, name=e.owner_name or e.owner, owner=e.owner, score=float(getattr(e, f"{score}_score")),
                     run_id=e.run_id, kind=kind_of(bool(e.skip) if e.skip is not None else True), params=e.params,
                     epochs=e.epochs, submitted_at=e.submitted_at, entries=counts[e.owner])
            for i, e in enumerate(ordered, 1)]


def _key(e: Any, score: str) -> tuple[float, float, int]:
    return (-float(getattr(e, f"{score}_score")), e.submitted_at, e.id)


def iso(t: float | None) -> str:
    """Unix time as ISO 8601 in UTC, to the second ("" for None)."""
    return "" if t is None else dt.datetime.fromtimestamp(t, dt.timezone.utc).replace(microsecond=0).isoformat()


def board_text(challenge: Challenge, rows: Sequence[BoardRow], score: str) -> str:
    """The leaderboard as lines of plain text (the command line's ``challenge board``)."""
    lines = [f"{challenge.title} — {score} {challenge.metric} ({'open' if challenge.is_open() else 'closed'}, "
             f"deadline {challenge.deadline_text})"]
    if not rows:
        lines.append("  no scored entry yet")
    for r in rows:
        lines.append(f"{r.rank:>3}. {r.name:<24} {r.score:.4f}  run {r.run_id} ({r.kind}, {r.params or 0:,} params, "
                     f"{r.epochs} epochs)  {iso(r.submitted_at)}")
    return "\n".join(lines)


def grades_csv(entries: Iterable[Any]) -> str:
    """One row per student who has a scored entry: their best by the PRIVATE score (ties: the earlier one)."""
    rows = leaderboard(entries, "private")
    return csv_text(GRADE_COLUMNS, [(r.name, round(r.score, 6), r.run_id, r.params, r.epochs, iso(r.submitted_at))
                                    for r in rows])


def runs_csv(runs: Iterable[Any], names: dict[str, str]) -> str:
    """Every run as a row (``names``: owner -> display name, where known), oldest first."""
    rows = []
    for r in sorted(runs, key=lambda r: r.id):
        rows.append((names.get(r.owner, r.owner), r.owner, r.id, r.name, r.kind, r.status, r.data.get("name"),
                     r.train.get("epochs"), r.best.get("val/acc"), iso(r.created_at)))
    return csv_text(RUN_COLUMNS, rows)


__all__ = ["BoardRow", "GRADE_COLUMNS", "RUN_COLUMNS", "SCORES", "board_text", "grades_csv", "iso", "leaderboard",
           "runs_csv"]
