"""Building the take-home zip: :func:`export_run` (a run of the lab's store, once it has finished) and
:func:`export_checkpoint` (a checkpoint's manifest) load the weights strictly, write the manifest
(:mod:`.manifest`) and the generated files (:mod:`.snippets`), and pack them as an :class:`Export`;
:func:`write_atomic` saves its bytes."""

from __future__ import annotations

import io
import json
import re
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..paths import write_atomic as write_atomic_file
from .manifest import (LAB_SNIPPET, MANIFEST, MODEL_MODULE, README, TORCHVISION_SNIPPET, WEIGHTS, build_manifest,
                       torchvision_match)
from .snippets import lab_snippet, model_module, readme, torchvision_snippet

EXPORTABLE_STATUSES = ("done", "stopped", "failed", "diverged", "interrupted")  # not while a worker still writes


class ExportError(ValueError):
    """A run that cannot be exported (still training, no checkpoint): the message says why and what to do."""


@dataclass(frozen=True)
class Export:
    """A finished export: the zip's bytes, the name to save it under, and its manifest."""

    filename: str  # e.g. "run12-tiny.zip"
    data: bytes  # the zip
    manifest: dict[str, Any]

    @property
    def files(self) -> list[str]:
        return list(self.manifest["files"])


def zip_name(run_id: int | None, name: str | None) -> str:
    """"run12-my-model.zip": the run id and a filesystem-safe slug of its name (at most 40 characters)."""
    slug = re.sub(r"[^a-z0-9]+", "-", (name or "").lower()).strip("-")[:40].strip("-")
    stem = f"run{run_id}" if run_id is not None else "model"
    return f"{stem}-{slug}.zip" if slug else f"{stem}.zip"


def export_checkpoint(manifest_path: str | Path, run: Any = None) -> Export:
    """Zip the checkpoint ``manifest_path`` (``best.json`` / ``last.json`` of a run folder) for taking home.

    The weights are loaded once into the rebuilt model with ``strict=True`` first, so a checkpoint that would
    not load at home is refused here."""
    from ..models.checkpoint import load_checkpoint

    path = Path(manifest_path)
    ckpt = load_checkpoint(path)  # rebuilds the spec, checks the weights' file name, loads strictly
    weights = (path.parent / ckpt.meta["weights"]).read_bytes()
    params = sum(p.numel() for p in ckpt.model.parameters())
    manifest = build_manifest(ckpt.meta, ckpt.spec, params, weights, path.stem, run)
    tv = torchvision_match(ckpt.spec)
    files = {WEIGHTS: weights, MODEL_MODULE: model_module(manifest).encode(),
             LAB_SNIPPET: lab_snippet(ckpt.spec, manifest).encode()}
    if tv.ok:
        files[TORCHVISION_SNIPPET] = torchvision_snippet(tv, manifest).encode()
    files[README] = readme(manifest, tv).encode()
    manifest["files"] = [MANIFEST, *files]
    files = {MANIFEST: (json.dumps(manifest, indent=2) + "\n").encode(), **files}
    return Export(filename=zip_name(manifest["run"]["id"], manifest["run"]["name"]), data=_zip(files),
                  manifest=manifest)


def _zip(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    stamp = time.gmtime()[:6]
    with zipfile.ZipFile(buffer, "w") as z:
        for name, content in files.items():
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.external_attr = 0o644 << 16
            # weights barely compress; text does
            info.compress_type = zipfile.ZIP_STORED if name.endswith(".safetensors") else zipfile.ZIP_DEFLATED
            z.writestr(info, content)
    return buffer.getvalue()


def exportable_checkpoint(run: Any) -> str:
    """The checkpoint to export for a run (best, else last), or :class:`ExportError` saying why there is none."""
    from ..analysis.subject import checkpoint_of

    if run.status not in EXPORTABLE_STATUSES:
        raise ExportError(f"run {run.id} is {run.status}: export it when it has finished")
    path = checkpoint_of(run)
    if path is None:
        raise ExportError(f"run {run.id} ({run.status}) kept no checkpoint, so there are no weights to export")
    return path


def export_run(run_id: int, store: Any = None) -> Export:
    """Zip run ``run_id`` of the lab's store (its best checkpoint) for taking home."""
    from ..store import Store

    s = store if store is not None else Store()
    try:
        run = s.runs.get(run_id)
    finally:
        if store is None:
            s.close()
    return export_checkpoint(exportable_checkpoint(run), run)


def write_atomic(data: bytes, out: str | Path, overwrite: bool = False) -> Path:
    """Write ``data`` to ``out`` atomically (:func:`resnet_lab.paths.write_atomic`); refuse to replace an existing
    file unless ``overwrite``, and a folder that does not exist."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists (pass --force to replace it)")
    if not out.parent.is_dir():
        raise FileNotFoundError(f"folder {out.parent} does not exist")
    return write_atomic_file(out, data)
