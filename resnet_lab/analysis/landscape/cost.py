"""What a landscape slice or an interpolation costs before it starts, and the training images it is measured on.

:func:`estimate_cost` counts the forward passes (models × points × batches, × 2 for an interpolation that
recomputes BN statistics) and times one (:func:`time_forward`); :func:`training_batches` draws the seeded batches
of the training split that every grid point's loss is averaged over.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from ...fmt import format_duration
from .interpolation import InterpolationParams
from .surface import Batch, LandscapeParams

@dataclass(frozen=True)
class Cost:
    """What a landscape costs before it starts."""

    models: int  # models sliced (1, or 2 with the twin)
    points: int  # grid points per model
    batches: int  # batches per grid point (after clipping to the training split, when known)
    batch_size: int  # images per forward pass
    forwards: int  # forward passes in all: models × points × batches × passes
    seconds: float  # estimated compute time, s (measured forward time × forwards; worker start-up not included)
    device: str  # where it was timed and will run
    passes: int = 1  # forward passes per batch and point (2: BN statistics recomputed first)

    def describe(self) -> str:
        """E.g. "2 models × 121 points × 2 batches = 484 forward passes of 128 images ≈ 45 s on cpu"."""
        twice = " × 2 (BN statistics, then the loss)" if self.passes == 2 else ""
        return (f"{self.models} model{'s' if self.models > 1 else ''} × {self.points} points × {self.batches} "
                f"batch{'es' if self.batches > 1 else ''}{twice} = {self.forwards:,} forward passes of "
                f"{self.batch_size} images ≈ {format_duration(self.seconds)} on {self.device}")


def effective_batches(n_train: int | None, params: LandscapeParams | InterpolationParams) -> int:
    """Batches actually used: ``params.batches``, fewer when the training split has fewer images."""
    if n_train is None:
        return params.batches
    return max(1, min(params.batches, math.ceil(n_train / params.batch_size)))


def time_forward(model: nn.Module, input_shape: Sequence[int], batch_size: int, device: str | torch.device,
                 reps: int = 2) -> float:
    """Seconds for one forward pass of ``batch_size`` random inputs of ``input_shape`` (C, H, W): the best of
    ``reps`` after a warm-up, on a copy of the model moved to ``device`` in eval mode."""
    work = copy.deepcopy(model).to(device).eval()
    x = torch.randn(batch_size, *input_shape, device=device)
    best = math.inf
    with torch.no_grad():
        for r in range(reps + 1):
            if str(device).startswith("cuda"):
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            work(x)
            if str(device).startswith("cuda"):
                torch.cuda.synchronize()
            if r:  # the first pass is the warm-up
                best = min(best, time.perf_counter() - t0)
    return best


def estimate_cost(models: nn.Module | Sequence[nn.Module], input_shape: Sequence[int],
                  params: LandscapeParams | InterpolationParams,
                  device: str | torch.device = "cpu", n_train: int | None = None,
                  forward_seconds: Sequence[float] | None = None) -> Cost:
    """The cost of slicing (or interpolating) ``models`` with ``params``: forwards = models × points × batches
    (× 2 for an interpolation that recomputes BN statistics), and seconds = Σ over models of (measured forward
    time × points × batches × passes). ``forward_seconds`` (one per model) skips the timing (e.g. a cached
    measurement); otherwise :func:`time_forward` times each model. A PCA slice's own work (reading the kept
    weights, the PCA) is not counted: seconds for a short trajectory."""
    ms = [models] if isinstance(models, nn.Module) else list(models)
    if not ms:
        raise ValueError("estimate_cost needs at least one model")
    per = list(forward_seconds) if forward_seconds is not None else [
        time_forward(m, input_shape, params.batch_size, device) for m in ms]
    if len(per) != len(ms):
        raise ValueError("forward_seconds needs one time per model")
    batches = effective_batches(n_train, params)
    passes = 2 if isinstance(params, InterpolationParams) and params.bn == "recompute" else 1
    return Cost(models=len(ms), points=params.points, batches=batches, batch_size=params.batch_size,
                forwards=len(ms) * params.points * batches * passes,
                seconds=sum(per) * params.points * batches * passes, device=str(torch.device(device).type),
                passes=passes)


# --- data ----------------------------------------------------------------------------------------


def training_batches(subject: Any, dataset: Any, params: LandscapeParams | InterpolationParams) -> list[Batch]:
    """The first ``params.batches`` batches of ``params.batch_size`` images of a seeded permutation
    (``params.seed``) of ``dataset``'s training split, not augmented, normalized with ``subject``'s
    mean/std and on its model's device. The last batch is smaller, and there are fewer batches, when the
    split has fewer than batches × batch_size images."""
    n = int(dataset.y_train.shape[0])
    if n == 0:
        raise ValueError("the training split is empty")
    g = torch.Generator().manual_seed(params.seed)
    order = torch.randperm(n, generator=g)[: params.batches * params.batch_size]
    out = []
    for chunk in order.split(params.batch_size):
        x = subject.normalize(dataset.x_train[chunk])
        out.append((x, dataset.y_train[chunk].to(x.device)))
    return out
