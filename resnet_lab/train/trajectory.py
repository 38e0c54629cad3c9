"""Keeping the weights along the way: a run's training trajectory, for the loss-landscape page's training path
(Li et al. 2018, sec. 7: PCA of the saved weights) and its linear interpolations (Goodfellow et al. 2015).

With ``TrainConfig.keep_weights_every = k > 0`` the trainer saves each model's weights — its whole
``state_dict``: parameters and BatchNorm buffers, in the model's own dtype (float32 here: bf16 autocast never
changes the stored weights), no optimizer state — at step 0 (before the first update), every k steps, and at
the step training ends (the last planned step, or the step a stop came at), as
``<run dir>/trajectory/step_000120.safetensors``. Each file is written to a temporary name and renamed (the
checkpoints' all-or-nothing write), so a file under its final name is complete.

**The disk budget.** ``TrainConfig.keep_weights_budget_mb`` is what the kept weights of one *job* may take
together (a ResNet and its plain twin: both). Before the first write the trainer plans (:func:`plan`): one
snapshot of all the job's models costs ``bytes_per_snapshot`` (their state_dicts' bytes, plus a little for
each file's header), a trajectory of ``every`` k costs that × :func:`snapshot_count`. When that is over the
budget the trajectory is **thinned**: k is doubled (2k, 4k, …) until it fits; the plan (asked and kept k,
snapshots, bytes) is written beside the snapshots as ``trajectory.json``. A training is **refused at submit**
(:func:`check_budget`, called by the launcher) only when even two snapshots — the first and the last — do not
fit: then no thinning could help.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
from safetensors.torch import load_file
from safetensors.torch import save as safetensors_bytes
from torch import nn

from ..models import build_model
from ..spec import ModelSpec
from ..models.checkpoint import CheckpointNotSaved, _commit
from .config import TrainConfig

FOLDER = "trajectory"  # under the run's folder
MANIFEST = "trajectory.json"
FORMAT = 1
HEADER_BYTES_PER_TENSOR = 160  # a safetensors header entry (name, dtype, shape, offsets) is well under this
MB = 1_000_000  # the budget's megabyte: 10^6 bytes, as disks are sold
_NAME = re.compile(r"^step_(\d{6,})\.safetensors$")


class TrajectoryTooLarge(ValueError):
    """Even the first and the last weights of a job's models do not fit the budget: no thinning can help."""


# --- the plan --------------------------------------------------------------------------------------------


def snapshot_count(total_steps: int, every: int) -> int:
    """Snapshots of one model kept over ``total_steps`` steps every ``every``: step 0, every multiple of
    ``every`` up to ``total_steps``, and ``total_steps`` itself when it is not one."""
    if every < 1:
        raise ValueError(f"every must be at least 1, got {every}")
    return 1 + total_steps // every + (1 if total_steps % every else 0)


@dataclass(frozen=True)
class TrajectoryPlan:
    """How often a job keeps its models' weights, after fitting them to the budget."""

    requested_every: int  # k asked for (TrainConfig.keep_weights_every)
    every: int  # k kept: requested_every × 2^j, the smallest that fits the budget
    total_steps: int  # the job's planned steps
    snapshots: int  # per model, planned: snapshot_count(total_steps, every)
    bytes_per_snapshot: int  # all the job's models together, one snapshot each
    budget_bytes: int

    @property
    def planned_bytes(self) -> int:
        return self.snapshots * self.bytes_per_snapshot

    @property
    def thinned(self) -> bool:
        return self.every != self.requested_every

    def keeps(self, step: int) -> bool:
        """Whether the weights after ``step`` steps are kept (step 0: the initial weights)."""
        return step % self.every == 0 or step == self.total_steps

    def describe(self) -> str:
        """E.g. "every 40 steps (asked: every 10; thinned to fit 5 MB): 26 snapshots × 0.22 MB = 5.6 MB"."""
        asked = f" (asked: every {self.requested_every}; thinned to fit {self.budget_bytes / MB:g} MB)" \
            if self.thinned else ""
        return (f"every {self.every} step{'s' if self.every != 1 else ''}{asked}: {self.snapshots} snapshots × "
                f"{self.bytes_per_snapshot / MB:.3g} MB = {self.planned_bytes / MB:.3g} MB")

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "requested_every": self.requested_every, "every": self.every,
                "total_steps": self.total_steps, "snapshots": self.snapshots,
                "bytes_per_snapshot": self.bytes_per_snapshot, "budget_bytes": self.budget_bytes}


def state_bytes(model: nn.Module) -> int:
    """Bytes one snapshot of ``model`` takes on disk: its state_dict's tensors plus their header entries."""
    tensors = list(model.state_dict().values())
    return sum(t.numel() * t.element_size() for t in tensors) + HEADER_BYTES_PER_TENSOR * len(tensors)


def spec_bytes(spec: ModelSpec) -> int:
    """:func:`state_bytes` of the model ``spec`` builds, without allocating it (built on the meta device)."""
    with torch.device("meta"):
        return state_bytes(build_model(spec))


def plan(total_steps: int, every: int, budget_mb: float, bytes_per_snapshot: int) -> TrajectoryPlan:
    """The trajectory to keep: ``every`` doubled until ``snapshot_count × bytes_per_snapshot`` fits ``budget_mb``.
    Raises :class:`TrajectoryTooLarge` when even two snapshots (the first and the last) do not fit."""
    budget = int(budget_mb * MB)
    if 2 * bytes_per_snapshot > budget:
        raise TrajectoryTooLarge(too_large_message(bytes_per_snapshot, budget_mb))
    k = every
    while snapshot_count(total_steps, k) * bytes_per_snapshot > budget:
        k *= 2  # ends: once k >= total_steps there are 2 snapshots, which fit
    return TrajectoryPlan(requested_every=every, every=k, total_steps=total_steps,
                          snapshots=snapshot_count(total_steps, k), bytes_per_snapshot=bytes_per_snapshot,
                          budget_bytes=budget)


def too_large_message(bytes_per_snapshot: int, budget_mb: float) -> str:
    need = 2 * bytes_per_snapshot / MB
    return (f"Keeping the weights needs at least two snapshots (the first and the last) of "
            f"{bytes_per_snapshot / MB:.3g} MB each for this job's models, {need:.3g} MB, more than the budget of {budget_mb:g} MB: raise the "
            f"budget to at least {math.ceil(need)} MB, or turn keeping the weights off.")


def check_budget(specs: Sequence[ModelSpec], train: TrainConfig) -> None:
    """Refuse (:class:`TrajectoryTooLarge`, a ValueError) before queueing a job that keeps weights when even the
    first and last snapshots of its models do not fit its budget. Thinning (in the worker, where the exact step
    count is known) handles every other case. Nothing to check when keeping weights is off."""
    if not train.keep_weights_every:
        return
    per = sum(spec_bytes(s) for s in specs)
    if 2 * per > train.keep_weights_budget_mb * MB:
        raise TrajectoryTooLarge(too_large_message(per, train.keep_weights_budget_mb))


# --- writing and reading -----------------------------------------------------------------------------------


def folder(run_folder: Path) -> Path:
    return Path(run_folder) / FOLDER


def snapshot_name(step: int) -> str:
    return f"step_{step:06d}.safetensors"


def save_snapshot(run_folder: Path, step: int, model: nn.Module) -> Path:
    """Write ``model``'s state_dict (on the CPU, its own dtype) as ``trajectory/step_<step>.safetensors``, all or
    nothing (a temporary file, then a rename). Raises :class:`CheckpointNotSaved` when it cannot be written."""
    where = folder(run_folder)
    weights = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    name = snapshot_name(step)
    try:
        where.mkdir(parents=True, exist_ok=True)
        _commit(where, {name: safetensors_bytes(weights)})
    except OSError as e:
        raise CheckpointNotSaved(where, name, e) from e
    return where / name


def save_plan(run_folder: Path, trajectory: TrajectoryPlan) -> Path:
    where = folder(run_folder)
    try:
        where.mkdir(parents=True, exist_ok=True)
        _commit(where, {MANIFEST: json.dumps(trajectory.to_dict(), indent=2).encode()})
    except OSError as e:
        raise CheckpointNotSaved(where, MANIFEST, e) from e
    return where / MANIFEST


def read_plan(run_folder: Path) -> dict[str, Any] | None:
    """The plan written beside a run's snapshots (a dict), or None when there is none or it cannot be read."""
    path = folder(run_folder) / MANIFEST
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and doc.get("format") == FORMAT else None


def snapshots(run_folder: Path) -> list[tuple[int, Path]]:
    """The run's kept weights as (step, file), by step; [] when it kept none. Temporary files are ignored."""
    where = folder(run_folder)
    if not where.is_dir():
        return []
    found = []
    for p in where.iterdir():
        m = _NAME.match(p.name)
        if m and p.is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def load_snapshot(path: Path) -> dict[str, torch.Tensor]:
    """One kept state_dict (CPU tensors)."""
    return load_file(str(path))


def initial_weights(run_folder: Path) -> Path | None:
    """The step-0 snapshot (the weights before the first update), if the run kept it."""
    path = folder(run_folder) / snapshot_name(0)
    return path if path.is_file() else None
