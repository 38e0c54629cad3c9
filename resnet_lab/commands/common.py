"""What several commands share: a run and its twin as inspectable subjects, a class by index or name,
a PNG written atomically, and one line per run."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from ..paths import atomic_path


def run_subjects(run_id: int, twin: bool):
    """The run (and its partner, with ``twin``) from the store, each with a checkpoint, and their inspectable
    subjects; a ValueError says which run is missing or has no checkpoint."""
    from ..analysis import from_run
    from ..analysis.subject import run_and_twin
    from ..store import Store

    store = Store()
    try:
        runs = run_and_twin(store.runs.get(run_id), store.runs.partner if twin else None,
                            alone="train with --plain-twin to get one")
    finally:
        store.close()
    return runs, [from_run(r) for r in runs]


def class_index(text: str, class_names: Sequence[str]) -> int:
    """--target: a class index (an integer) or a class name (exact, else case-insensitive)."""
    names = list(class_names)
    listing = ", ".join(f"{i} {n}" for i, n in enumerate(names))
    try:
        i = int(text)
    except ValueError:
        if text in names:
            return names.index(text)
        folded = [n.casefold() for n in names]
        if text.casefold() in folded:
            return folded.index(text.casefold())
        raise ValueError(f"unknown target class {text!r}; one of: {listing}") from None
    if not 0 <= i < len(names):
        raise ValueError(f"target class {i} is out of range: the model has {len(names)} classes ({listing})")
    return i


def write_png_atomic(image: Any, out: Path) -> None:
    """Save a PIL image as PNG at ``out``, atomically (:func:`resnet_lab.paths.atomic_path`: no half-written file)."""
    with atomic_path(out) as tmp:
        image.save(tmp, format="PNG")


def run_row(r: Any, forecast: Any = None) -> dict:
    """A run as JSON: its record, and where its job stands in the queue (for queued and running runs)."""
    row = {"id": r.id, "job": r.job_id, "partner": r.partner_id, "kind": r.kind, "name": r.name, "status": r.status,
           "device": r.device, "step": r.step, "total_steps": r.total_steps, "best_val_acc": r.best.get("val/acc"),
           "last": r.last, "error": r.error, "checkpoint": r.ckpt_best, "duration_s": r.duration_s}
    if forecast is not None:
        row["queue"] = forecast.to_dict()
    return row
