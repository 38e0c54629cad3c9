"""Checkpoints: weights as safetensors, a JSON manifest, and (for resuming) the optimizer state.

``<tag>.safetensors`` holds the weights, ``<tag>.state.pt`` the optimizer/scheduler/RNG state (plain
tensors and numbers, read back with ``torch.load(weights_only=True)``), and ``<tag>.json`` the
manifest: spec, training and data settings, class names and normalization — enough to rebuild the
exact model and its preprocessing from the checkpoint alone. Every file is written to a temporary
name and renamed; the manifest goes last, so a manifest on disk always points at complete files.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..models import build_model
from ..spec import ModelSpec

FORMAT = 1
MAX_MANIFEST_BYTES = 1_000_000


def _atomic(path: Path, write: Callable[[Path], None]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(directory: Path, tag: str, model: nn.Module, meta: dict[str, Any],
                    train_state: dict[str, Any] | None = None) -> Path:
    """Write ``directory/<tag>.{safetensors,state.pt,json}`` atomically; return the manifest path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    _atomic(directory / f"{tag}.safetensors", lambda p: save_file(weights, str(p)))
    manifest = {"format": FORMAT, "weights": f"{tag}.safetensors", **meta}
    if train_state is not None:
        _atomic(directory / f"{tag}.state.pt", lambda p: torch.save(train_state, p))
        manifest["train_state"] = f"{tag}.state.pt"
    _atomic(directory / f"{tag}.json", lambda p: p.write_text(json.dumps(manifest, indent=2)))
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
