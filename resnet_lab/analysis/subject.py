"""What the Inspect views look at: a model together with the preprocessing it was trained with.

A :class:`Subject` is built from a finished run's checkpoint (:func:`from_checkpoint`,
:func:`from_run`) or from a spec with fresh weights (:func:`from_spec`). Its :meth:`Subject.load_image`
is the path every outside image takes: the safe door (:func:`resnet_lab.data.images.decode_image`),
then exactly the checkpoint's preprocessing: shorter side resized to the training size and centre
cropped, grey conversion for 1-channel models, and the training mean/std.

Subjects are shared between browser sessions (cached), so their model is read-only: analysis
functions never change it, and callers that attach hooks hold :attr:`Subject.lock` while they run.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from ..data.images import ImageSource, decode_image, resize_square
from ..data.registry import DataConfig, Dataset
from ..models import build_model
from ..spec import ModelSpec, kind_of
from ..models.checkpoint import load_checkpoint

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601 weights, as Pillow's "L" conversion


@dataclass(frozen=True)
class Subject:
    label: str  # what a person reads, e.g. "run 12 · resnet20 (ResNet)"
    model: torch.nn.Module  # in eval mode, never mutated
    spec: ModelSpec
    class_names: tuple[str, ...]  # label i is class_names[i]
    mean: tuple[float, ...]  # per-channel normalization the model was trained with
    std: tuple[float, ...]
    image_size: int  # side of the square input, px
    data: DataConfig | None  # the dataset it was trained on (None: unknown)
    run_id: int | None = None
    ink_on_dark: bool = False  # trained on bright strokes on black (digits): light photos get inverted
    key: str = ""  # stable identity of the weights, for caches (see from_checkpoint, from_spec); never id(model)
    lock: threading.RLock = field(default_factory=threading.RLock, compare=False, repr=False)

    @property
    def in_channels(self) -> int:
        return self.spec.in_channels

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def class_name(self, i: int) -> str:
        return self.class_names[i] if 0 <= i < len(self.class_names) else f"class {i}"

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """(N x) C x S x S images in [0, 1] -> normalized, on the model's device."""
        mean = torch.tensor(self.mean, dtype=torch.float32).view(-1, 1, 1)
        std = torch.tensor(self.std, dtype=torch.float32).view(-1, 1, 1)
        return ((x.float() - mean) / std).to(self.device)

    def prepare(self, img: torch.Tensor) -> torch.Tensor:
        """A decoded 3 x H x W RGB image in [0, 1] -> C x S x S in [0, 1], as the model's training images."""
        x = resize_square(img, self.image_size)
        if self.in_channels == 1:
            w = torch.tensor(LUMA, dtype=x.dtype).view(3, 1, 1)
            x = (x * w).sum(0, keepdim=True)
            if self.ink_on_dark and float(x.mean()) > 0.5:  # dark ink on white paper -> bright on black
                x = 1.0 - x
        elif self.in_channels != 3:
            raise ValueError(f"images cannot be fed to a model with {self.in_channels} input channels")
        return x.clamp(0.0, 1.0).contiguous()

    def load_image(self, source: ImageSource) -> torch.Tensor:
        """Untrusted image bytes (or a path) -> C x S x S in [0, 1]; raises ImageRejected with a clear message."""
        return self.prepare(decode_image(source, shrink_to=self.image_size))


def from_checkpoint(path: str | Path, label: str | None = None, run_id: int | None = None) -> Subject:
    """A subject from a checkpoint manifest written by the trainer (weights loaded strictly)."""
    path = Path(path)
    stamp = path.stat().st_mtime_ns  # taken before the load: a checkpoint rewritten meanwhile gets a newer key
    ckpt = load_checkpoint(path)
    meta = ckpt.meta
    data_dict: Any = meta.get("data")
    data = DataConfig.from_dict(data_dict) if isinstance(data_dict, dict) else None
    size = data.image_size if data is not None else 32
    names = tuple(ckpt.class_names) or tuple(f"class {i}" for i in range(ckpt.spec.num_classes))
    rid = run_id if run_id is not None else meta.get("run_id")
    key = f"run {rid} · {path.resolve()} · {stamp}"  # the run, which checkpoint file, and that file's version
    default = f"run {rid} · {meta.get('name', ckpt.spec.describe())}" if rid is not None else ckpt.spec.describe()
    return Subject(label or default, ckpt.model, ckpt.spec, names, tuple(meta["mean"]), tuple(meta["std"]), size,
                   data, rid if isinstance(rid, int) else None, ink_on_dark=data is not None and data.name == "digits",
                   key=key)


def checkpoint_of(run: Any) -> str | None:
    """The checkpoint to inspect for a run (its best, else its last), or None."""
    for path in (run.ckpt_best, run.ckpt_last):
        if path and Path(path).is_file():
            return path
    return None


def require_checkpoint(run: Any, needs: str = "") -> str:
    """:func:`checkpoint_of` ``run``, or a ValueError that says so: "run 3 has no checkpoint yet (status running)",
    followed by ``needs`` when given ("; a landscape needs trained weights")."""
    path = checkpoint_of(run)
    if path is None:
        raise ValueError(f"run {run.id} has no checkpoint yet (status {run.status})" + (f"; {needs}" if needs else ""))
    return path


def run_and_twin(run: Any, partner: Callable[[Any], Any | None] | None = None, needs: str = "",
                 alone: str = "train it with its plain twin") -> list[Any]:
    """``[run]``, or with ``partner`` (how the store finds a run's twin, e.g. ``store.runs.partner``)
    ``[run, its twin]``: each checked to have a checkpoint (:func:`require_checkpoint`, ``needs`` said for the
    run), or a ValueError that says which run and why. A run trained alone is refused, ``alone`` saying what to do:
    "run 3 has no twin: it was trained alone (train it with its plain twin)"."""
    require_checkpoint(run, needs)
    if partner is None:
        return [run]
    mate = partner(run)
    if mate is None:
        raise ValueError(f"run {run.id} has no twin: it was trained alone ({alone})")
    if checkpoint_of(mate) is None:
        raise ValueError(f"run {mate.id} (the twin of run {run.id}) has no checkpoint yet (status {mate.status})")
    return [run, mate]


def from_run(run: Any) -> Subject:
    """A subject from a run in the store (its best checkpoint); a ValueError when it has none."""
    path = require_checkpoint(run)
    return from_checkpoint(path, label=f"run {run.id} · {run.name} ({kind_of(run.spec.get('skip', True))})",
                           run_id=run.id)


def from_spec(spec: ModelSpec, dataset: Dataset, data: DataConfig, seed: int = 0, label: str | None = None) -> Subject:
    """An untrained model built from ``spec`` (seeded weights), fed like ``dataset``'s images."""
    if spec.in_channels != dataset.in_channels:
        spec = spec.replace(in_channels=dataset.in_channels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(spec).eval()
    names = tuple(dataset.class_names) if len(dataset.class_names) == spec.num_classes else tuple(
        f"class {i}" for i in range(spec.num_classes))
    digest = hashlib.sha1(spec.to_json(indent=None).encode()).hexdigest()[:16]
    return Subject(label or f"untrained {spec.describe()}", model, spec, names, tuple(dataset.mean),
                   tuple(dataset.std), dataset.image_size, data, None, ink_on_dark=data.name == "digits",
                   key=f"untrained {digest} · seed {seed} · {json.dumps(data.to_dict(), sort_keys=True)}")
