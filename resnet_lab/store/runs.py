"""Runs and what their workers log: metrics, gradient norms, layer names, checkpoints."""

from __future__ import annotations

import json
import time
from typing import Any, Iterable, Mapping, Sequence

from .db import Database
from .records import ACTIVE, FINISHED, STATUSES, Run, placeholders, run_from_row

_UPDATABLE = {"name", "step", "total_steps", "best_json", "last_json", "ckpt_best", "ckpt_last", "started_at"}


class RunStore:
    """Trained models. Runs are created with their job (:meth:`store.jobs.JobStore.create`)."""

    @staticmethod
    def add_to_job(con: Any, job_id: int, rows: Sequence[Mapping[str, Any]], device: str, owner: str, now: float,
                   partners: bool = False) -> list[int]:
        """Insert ``rows`` as the queued runs of job ``job_id`` on the caller's connection ``con`` (inside its
        transaction); returns their ids, in order. Each row holds ``name``, ``spec``, ``data``, ``train`` (and
        optionally ``finetune``); with ``partners`` the first two are each other's twin."""
        if partners and len(rows) < 2:
            raise ValueError("twins need two runs")
        ids = [int(con.execute(
            "INSERT INTO runs(job_id, name, status, spec_json, data_json, train_json, finetune_json, device,"
            " created_at, owner) VALUES (?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?)",
            (job_id, r["name"], json.dumps(r["spec"]), json.dumps(r["data"]), json.dumps(r["train"]),
             json.dumps(r["finetune"]) if r.get("finetune") else None, device, now, owner)).lastrowid) for r in rows]
        if partners:
            con.execute("UPDATE runs SET partner_id=? WHERE id=?", (ids[1], ids[0]))
            con.execute("UPDATE runs SET partner_id=? WHERE id=?", (ids[0], ids[1]))
        return ids

    def __init__(self, db: Database) -> None:
        self.db = db

    def _run(self, row: Any) -> Run:
        return run_from_row(row, self.db.abs)

    def get(self, run_id: int) -> Run:
        row = self.db.con.execute("SELECT * FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(f"no run with id {run_id}")
        return self._run(row)

    def list(self, statuses: Iterable[str] | None = None, limit: int = 500, owner: str | None = None) -> list[Run]:
        """Runs, newest first; optionally in some statuses, of one owner (an ``Identity.owner`` key: "mine")."""
        where, args = [], []
        if statuses is not None:
            st = tuple(statuses)
            where.append(f"status IN ({placeholders(st)})")
            args += list(st)
        if owner is not None:
            where.append("owner=?")
            args.append(owner)
        rows = self.db.con.execute("SELECT * FROM runs" + (f" WHERE {' AND '.join(where)}" if where else "")
                                   + " ORDER BY id DESC LIMIT ?", (*args, limit)).fetchall()
        return [self._run(r) for r in rows]

    def of_job(self, job_id: int) -> list[Run]:
        """The runs a job trains, in creation order (the ResNet before its plain twin)."""
        rows = self.db.con.execute("SELECT * FROM runs WHERE job_id=? ORDER BY id", (job_id,)).fetchall()
        return [self._run(r) for r in rows]

    def partner(self, run: Run | int) -> Run | None:
        """The run's twin (its plain net, or the ResNet it is the plain net of), or None for a run trained alone."""
        run = self.get(run) if isinstance(run, int) else run
        if run.partner_id is None:
            return None
        try:
            return self.get(run.partner_id)
        except KeyError:
            return None

    def update(self, run_id: int, **fields: Any) -> None:
        """Set columns of one run (``best``/``last`` dicts as JSON, checkpoint paths relative to the home)."""
        cols, vals = [], []
        for key, value in fields.items():
            if key in ("best", "last"):
                key, value = key + "_json", json.dumps(value)
            if key not in _UPDATABLE:
                raise ValueError(f"cannot update column {key!r}")
            if key.startswith("ckpt_"):
                value = self.db.rel(value)
            cols.append(f"{key}=?")
            vals.append(value)
        with self.db.tx(exclusive=False) as con:
            con.execute(f"UPDATE runs SET {', '.join(cols)} WHERE id=?", (*vals, run_id))

    def set_steps(self, run_ids: Sequence[int], step: int) -> None:
        if run_ids:
            with self.db.tx(exclusive=False) as con:
                con.execute(f"UPDATE runs SET step=? WHERE id IN ({placeholders(run_ids)})", (step, *run_ids))

    def finish(self, run_id: int, status: str, error: str | None = None, only_if: Sequence[str] = ACTIVE) -> bool:
        """End a run with ``status`` (only from the given statuses). Returns whether it moved."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        with self.db.tx() as con:
            return con.execute(
                f"UPDATE runs SET status=?, error=COALESCE(?, error), finished_at=? WHERE id=? AND status IN "
                f"({placeholders(only_if)})",
                (status, error, time.time() if status in FINISHED else None, run_id, *only_if)).rowcount > 0

    # --- metrics ----------------------------------------------------------------------------------

    def add_metrics(self, rows: Iterable[tuple[int, int, float, str, float]]) -> None:
        """Append (run_id, step, epoch, key, value) rows in one transaction."""
        rows = list(rows)
        if rows:
            with self.db.tx(exclusive=False) as con:
                con.executemany("INSERT INTO metrics(run_id, step, epoch, key, value) VALUES (?, ?, ?, ?, ?)", rows)

    def metrics(self, run_id: int, keys: Sequence[str] | None = None, max_points: int | None = None,
                ) -> dict[str, list[tuple[int, float, float]]]:
        """{key: [(step, epoch, value), ...]} ordered by step; each series decimated to ``max_points``."""
        if keys:
            rows = self.db.con.execute(
                f"SELECT key, step, epoch, value FROM metrics WHERE run_id=? AND key IN ({placeholders(keys)})"
                " ORDER BY key, step", (run_id, *keys)).fetchall()
        else:
            rows = self.db.con.execute("SELECT key, step, epoch, value FROM metrics WHERE run_id=? ORDER BY key, step",
                                       (run_id,)).fetchall()
        out: dict[str, list[tuple[int, float, float]]] = {}
        for r in rows:
            out.setdefault(r["key"], []).append((r["step"], r["epoch"], r["value"]))
        if max_points:
            out = {k: decimate(v, max_points) for k, v in out.items()}
        return out

    def last_values(self, run_ids: Sequence[int], key: str) -> dict[int, float]:
        """{run id: the value of ``key`` at the run's last logged step}, for the runs that logged it."""
        if not run_ids:
            return {}
        rows = self.db.con.execute(
            f"SELECT run_id, value FROM metrics AS m WHERE key=? AND run_id IN ({placeholders(run_ids)}) AND step="
            " (SELECT MAX(step) FROM metrics WHERE run_id=m.run_id AND key=m.key)", (key, *run_ids)).fetchall()
        return {r["run_id"]: r["value"] for r in rows}

    def truncate_metrics(self, run_id: int, after_step: int) -> None:
        """Forget metrics logged after ``after_step`` (a resumed run replays those steps)."""
        with self.db.tx(exclusive=False) as con:
            con.execute("DELETE FROM metrics WHERE run_id=? AND step>?", (run_id, after_step))
            con.execute("DELETE FROM grad_norms WHERE run_id=? AND step>=?", (run_id, after_step))

    def set_layer_names(self, run_id: int, names: Sequence[str]) -> None:
        with self.db.tx(exclusive=False) as con:
            con.execute("INSERT INTO run_layers(run_id, names_json) VALUES (?, ?)"
                        " ON CONFLICT(run_id) DO UPDATE SET names_json=excluded.names_json",
                        (run_id, json.dumps(list(names))))

    def add_grad_norms(self, rows: Iterable[tuple[int, int, Sequence[float]]]) -> None:
        rows = [(rid, step, json.dumps([float(v) for v in norms])) for rid, step, norms in rows]
        if rows:
            with self.db.tx(exclusive=False) as con:
                con.executemany("INSERT INTO grad_norms(run_id, step, norms_json) VALUES (?, ?, ?)", rows)

    def grad_norms(self, run_id: int) -> tuple[list[str], list[int], list[list[float]]]:
        """(layer names, steps, norms per step) logged during training."""
        row = self.db.con.execute("SELECT names_json FROM run_layers WHERE run_id=?", (run_id,)).fetchone()
        names = json.loads(row["names_json"]) if row else []
        rows = self.db.con.execute("SELECT step, norms_json FROM grad_norms WHERE run_id=? ORDER BY step",
                                   (run_id,)).fetchall()
        return names, [r["step"] for r in rows], [json.loads(r["norms_json"]) for r in rows]


def decimate(points: list, max_points: int) -> list:
    """Keep at most ``max_points`` evenly spread points, always including the first and the last."""
    n = len(points)
    if n <= max_points or max_points < 2:
        return points
    stride = (n - 1) / (max_points - 1)
    return [points[round(i * stride)] for i in range(max_points)]
