"""Measured model speeds: each preset's training images/s, batch-1 latency and batch-64 images/s on one device.

Kept per device *name* ("CPU: AMD EPYC 7763 (2 threads)", "NVIDIA H100 80GB HBM3") and preset, one row each: a new
measurement of the same pair replaces the old one, and a lab whose workers run on several machines keeps each
machine's figures apart. What is measured and how: :mod:`resnet_lab.experiments.speed`; this module only keeps it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from .db import Database


@dataclass(frozen=True)
class Speed:
    """One preset's speed on one device, as measured (:mod:`resnet_lab.experiments.speed.measure`)."""

    preset: str  # a model preset's name (resnet_lab.models.presets)
    device: str  # the kind of device: "cpu" or "cuda"
    device_name: str  # which one: "CPU: <model name> (<N> threads)" or the GPU's name
    train_images_per_s: float  # training images per second at ``batch`` (forward, backward, optimizer step)
    latency_ms: float  # median forward of one image, eval mode, ms
    images_per_s: float  # inference images per second at ``infer_batch``
    batch: int  # the training batch (the preset's recipe's)
    measured_at: float  # unix time, s
    infer_batch: int = 64  # the batch of ``images_per_s``
    image_size: int = 32  # input side, px
    job_id: int | None = None  # the job that measured it (None: measured in a command's own process)
    detail: dict[str, Any] = field(default_factory=dict, compare=False)  # how: timed runs, plan, torch version

    def to_dict(self) -> dict[str, Any]:
        return {"preset": self.preset, "device": self.device, "device_name": self.device_name,
                "train_images_per_s": self.train_images_per_s, "latency_ms": self.latency_ms,
                "images_per_s": self.images_per_s, "batch": self.batch, "infer_batch": self.infer_batch,
                "image_size": self.image_size, "measured_at": self.measured_at, "job_id": self.job_id,
                "detail": self.detail}


def _check(s: Speed) -> None:
    if s.device not in ("cpu", "cuda"):
        raise ValueError(f"a speed's device is 'cpu' or 'cuda', got {s.device!r}")
    if not s.device_name or not s.preset:
        raise ValueError("a speed needs its preset and its device's name")
    for name in ("train_images_per_s", "latency_ms", "images_per_s"):
        v = getattr(s, name)
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v) or v <= 0:
            raise ValueError(f"{name} must be a positive finite number, got {v!r}")
    for name in ("batch", "infer_batch", "image_size"):
        v = getattr(s, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a whole number of at least 1, got {v!r}")


def _speed(row: Any) -> Speed:
    return Speed(preset=row["preset"], device=row["device"], device_name=row["device_name"],
                 train_images_per_s=float(row["train_images_per_s"]), latency_ms=float(row["latency_ms"]),
                 images_per_s=float(row["images_per_s"]), batch=int(row["batch"]),
                 measured_at=float(row["measured_at"]), infer_batch=int(row["infer_batch"]),
                 image_size=int(row["image_size"]), job_id=None if row["job_id"] is None else int(row["job_id"]),
                 detail=json.loads(row["detail_json"]))


class ModelSpeedStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, speed: Speed) -> Speed:
        """Keep ``speed``, replacing an earlier measurement of the same preset on the same device."""
        _check(speed)
        with self.db.tx() as con:
            con.execute(
                "INSERT INTO model_speeds(device_name, preset, device, train_images_per_s, latency_ms, images_per_s,"
                " batch, infer_batch, image_size, detail_json, job_id, measured_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(device_name, preset) DO UPDATE SET"
                " device=excluded.device, train_images_per_s=excluded.train_images_per_s,"
                " latency_ms=excluded.latency_ms, images_per_s=excluded.images_per_s, batch=excluded.batch,"
                " infer_batch=excluded.infer_batch, image_size=excluded.image_size,"
                " detail_json=excluded.detail_json, job_id=excluded.job_id, measured_at=excluded.measured_at",
                (speed.device_name, speed.preset, speed.device, float(speed.train_images_per_s),
                 float(speed.latency_ms), float(speed.images_per_s), speed.batch, speed.infer_batch,
                 speed.image_size, json.dumps(speed.detail, sort_keys=True), speed.job_id, speed.measured_at))
        return speed

    def of_device(self, device_name: str) -> dict[str, Speed]:
        """{preset: its speed} measured on the device called ``device_name``."""
        rows = self.db.con.execute("SELECT * FROM model_speeds WHERE device_name=? ORDER BY preset", (device_name,))
        return {r["preset"]: _speed(r) for r in rows}

    def devices(self) -> dict[str, str]:
        """{device name: its kind ("cpu" or "cuda")} of every device with a measurement, by name."""
        rows = self.db.con.execute("SELECT DISTINCT device_name, device FROM model_speeds ORDER BY device_name")
        return {r["device_name"]: r["device"] for r in rows}

    def forget(self, device_name: str, presets: list[str] | None = None) -> int:
        """Delete the measurements of ``device_name`` (of ``presets`` only, when given); how many were deleted."""
        with self.db.tx() as con:
            if presets is None:
                return con.execute("DELETE FROM model_speeds WHERE device_name=?", (device_name,)).rowcount
            marks = ", ".join("?" for _ in presets) or "NULL"
            return con.execute(f"DELETE FROM model_speeds WHERE device_name=? AND preset IN ({marks})",
                               (device_name, *presets)).rowcount
