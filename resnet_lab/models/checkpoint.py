"""Checkpoints: weights as safetensors, a JSON manifest, and (for resuming) the optimizer state.

``<tag>.safetensors`` holds the weights, ``<tag>.state.pt`` the optimizer/scheduler/RNG state (plain
tensors and numbers, read back with ``torch.load(weights_only=True)``), and ``<tag>.json`` the
manifest: spec, training and data settings, class names and normalization — enough to rebuild the
exact model and its preprocessing from the checkpoint alone.

A save is all or nothing. Every file of it is first written in full to a temporary name (and flushed to
the disk); only then are they renamed into place, the manifest last. A write that fails part-way — a full
disk (``ENOSPC``) is the usual cause — leaves the previous checkpoint of that tag exactly as it was (weights,
training state and manifest still belong together) and no temporary file behind, and raises
:class:`CheckpointNotSaved` saying which folder and why.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from torch import nn

from . import build_model
from ..paths import write_files_atomic, write_synced
from ..spec import ModelSpec

FORMAT = 1
MAX_MANIFEST_BYTES = 1_000_000


class CheckpointNotSaved(OSError):
    """A checkpoint could not be written (say, the disk is full). Nothing of it was kept: the previous checkpoint
    with that tag, if any, is untouched. ``errno``/``strerror`` are the operating system's; ``directory`` and ``tag``
    say which checkpoint."""

    def __init__(self, directory: Path, tag: str, error: OSError) -> None:
        super().__init__(error.errno, error.strerror or str(error))
        self.directory = Path(directory)
        self.tag = tag

    def __str__(self) -> str:
        return f"the {self.tag!r} checkpoint in {self.directory} was not saved: {self.strerror}"


_write = write_synced  # how each staged file reaches the disk; the full-disk tests replace it here


def _commit(directory: Path, files: Mapping[str, bytes]) -> None:
    """Write ``files`` ({name: content}) into ``directory`` all or nothing (:func:`resnet_lab.paths.write_files_atomic`
    with this module's ``_write``): a failure before the renames leaves the directory as it was."""
    write_files_atomic(directory, files, write=_write)


def save_checkpoint(directory: Path, tag: str, model: nn.Module, meta: dict[str, Any],
                    train_state: dict[str, Any] | None = None) -> Path:
    """Write ``directory/<tag>.{safetensors,state.pt,json}`` all or nothing; return the manifest path.
    Raises :class:`CheckpointNotSaved` when a file cannot be written (the previous checkpoint stays as it was)."""
    directory = Path(directory)
    weights = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    files = {f"{tag}.safetensors": safetensors_bytes(weights)}
    manifest = {"format": FORMAT, "weights": f"{tag}.safetensors", **meta}
    if train_state is not None:
        buffer = io.BytesIO()
        torch.save(train_state, buffer)
        files[f"{tag}.state.pt"] = buffer.getvalue()
        manifest["train_state"] = f"{tag}.state.pt"
    files[f"{tag}.json"] = json.dumps(manifest, indent=2).encode()  # last: it names the others
    try:
        directory.mkdir(parents=True, exist_ok=True)
        _commit(directory, files)
    except OSError as e:
        raise CheckpointNotSaved(directory, tag, e) from e
    return directory / f"{tag}.json"


@dataclass(frozen=True)
class Checkpoint:
    model: nn.Module  # rebuilt from the spec, weights loaded strictly, in eval mode
    spec: ModelSpec
    meta: dict[str, Any]  # the manifest: train/data settings, class names, mean/std, metrics

    @property
    def class_names(self) -> list[str]:
        return list(self.meta.get("class_names", []))


def read_manifest(path: Path) -> dict[str, Any]:
    path = Path(path)
    if path.stat().st_size > MAX_MANIFEST_BYTES:
        raise ValueError(f"{path.name} is too large to be a checkpoint manifest")
    try:
        meta = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path.name} is not a checkpoint manifest: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{path.name} is not a ResNet Lab checkpoint (format {FORMAT})")
    return meta


def _sibling(manifest: Path, name: Any) -> Path:
    """A file named in the manifest, which must sit beside it (no paths, no traversal)."""
    if not isinstance(name, str) or Path(name).name != name or name.startswith("."):
        raise ValueError(f"checkpoint manifest names a bad file: {name!r}")
    return manifest.parent / name


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Rebuild the model a manifest describes and load its weights (strict)."""
    path = Path(path)
    meta = read_manifest(path)
    spec = ModelSpec.from_dict(meta["spec"])
    model = build_model(spec)
    model.load_state_dict(load_file(str(_sibling(path, meta["weights"]))), strict=True)
    return Checkpoint(model=model.to(device).eval(), spec=spec, meta=meta)


def load_train_state(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(optimizer/scheduler/RNG state, weights) of a resumable checkpoint."""
    path = Path(path)
    meta = read_manifest(path)
    if "train_state" not in meta:
        raise ValueError(f"{path.name} has no training state to resume from")
    state = torch.load(_sibling(path, meta["train_state"]), map_location="cpu", weights_only=True)
    return state, load_file(str(_sibling(path, meta["weights"])))
