"""Loss-landscape slices: the training loss on 1D and 2D slices through a trained model's weights.

After Li, Xu, Taylor, Studer and Goldstein 2018, "Visualizing the Loss Landscape of Neural Nets", sec. 4: with
directions δ (and η for 2D) from :mod:`.directions` — random filter-normalized ones by default, or the training
path's PCA directions (``LandscapeParams.directions="pca"``) — the loss L(θ + α·δ + β·η) on a grid of α, β in
[-span, span] (a PCA slice's grid scaled to its path: :func:`.directions.path_axes`). The paper's figure 5 shows
how skip connections keep the landscape convex and smooth where the plain net's turns chaotic as depth grows.

Where this differs from the paper / its code: BN running statistics are never perturbed and the model is
evaluated in eval mode, so BN uses the running statistics (as the reference code does); the loss is averaged over
the first ``batches`` batches of a seeded permutation of the training split (no augmentation,
:func:`.cost.training_batches`), not over the whole training set: a slice costs grid points × batches forwards;
a PCA slice's BN running statistics are the last snapshot's, never perturbed (as for random directions).

This module holds the settings (:class:`LandscapeParams`), the result (:class:`Surface`, with its
:class:`TrajectoryPath` and the JSON readers shared with :mod:`.interpolation`), the computation
(:func:`loss_surface`) and its summary numbers (:func:`summary`, :func:`rise_at_half_span`).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...checks import MAX_SEED, check_int
from ...fmt import finite_or_none
from .directions import Direction, random_directions

MAX_STEPS = 51
MAX_SPAN = 5.0
MAX_BATCHES = 50
BATCH_SIZE_RANGE = (8, 1024)
LOSS_FLOOR = 1e-8  # losses are clamped to this before taking logs (cross-entropy can round to 0)

Batch = tuple[torch.Tensor, torch.Tensor]  # (normalized images N x C x H x W, labels N)
DIRECTIONS = ("random", "pca")  # LandscapeParams.directions


# --- parameters --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LandscapeParams:
    dims: int = 2  # 1: a curve along δ; 2: a surface over δ and η
    steps: int = 11  # grid points per axis, odd (so α = 0 is on the grid), 3..51
    span: float = 1.0  # coordinates run over [-span, span] (units of the filter-normalized direction)
    batches: int = 2  # training batches the loss is averaged over at each grid point, 1..50
    batch_size: int = 128  # images per batch, 8..1024
    seed: int = 0  # seeds the random directions and the choice of training images
    directions: str = "random"  # "random": filter-normalized Gaussian; "pca": the training path's first two PCA
    #   directions (2D only; needs kept weights), span then in units of the path's extent along each axis

    def __post_init__(self) -> None:
        check_int("dims", self.dims, 1, 2)
        if self.directions not in DIRECTIONS:
            raise ValueError(f"directions={self.directions!r} is not allowed; choose one of {', '.join(DIRECTIONS)}")
        if self.directions == "pca" and self.dims != 2:
            raise ValueError("the training path (directions='pca') is drawn on a 2D slice: use dims=2")
        check_int("steps", self.steps, 3, MAX_STEPS)
        if self.steps % 2 == 0:
            raise ValueError(f"steps={self.steps} must be odd so that the trained weights (0) are on the grid")
        span = self.span
        if isinstance(span, bool) or not isinstance(span, (int, float)) or not math.isfinite(span) \
                or not 0 < span <= MAX_SPAN:
            raise ValueError(f"span={span!r} is out of range; allowed 0 < span <= {MAX_SPAN:g}")
        object.__setattr__(self, "span", float(span))
        check_int("batches", self.batches, 1, MAX_BATCHES)
        check_int("batch_size", self.batch_size, *BATCH_SIZE_RANGE)
        check_int("seed", self.seed, 0, MAX_SEED)

    @property
    def points(self) -> int:
        """Grid points of one slice: steps (1D) or steps² (2D)."""
        return self.steps ** self.dims

    def coords(self) -> list[float]:
        """The grid coordinates along one axis: ``steps`` evenly spaced values in [-span, span]; the middle
        one is exactly 0."""
        half = (self.steps - 1) // 2
        return [self.span * (i - half) / half for i in range(self.steps)]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> LandscapeParams:
        """Validate an untrusted mapping (unknown keys are refused)."""
        if not isinstance(data, dict):
            raise ValueError("landscape settings must be a JSON object")
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown landscape setting(s): {', '.join(sorted(map(str, unknown)))}")
        return cls(**data)

    def describe(self) -> str:
        """E.g. "2D, 11×11 points in [-1, 1], 2 batches of 128, seed 0", or for the training path
        "2D along the training path's PCA directions, 11×11 points over ±1× the path, 2 batches of 128, seed 0"."""
        grid = f"{self.steps}×{self.steps}" if self.dims == 2 else f"{self.steps}"
        where = f"in [-{self.span:g}, {self.span:g}]" if self.directions == "random" else \
            f"over ±{self.span:g}× the path"
        along = " along the training path's PCA directions" if self.directions == "pca" else ""
        return (f"{self.dims}D{along}, {grid} points {where}, "
                f"{self.batches} batch{'es' if self.batches > 1 else ''} of {self.batch_size}, seed {self.seed}")


@dataclass(frozen=True)
class TrajectoryPath:
    """A training path drawn on a PCA slice: where each kept snapshot projects, and how much of the path's
    movement the two directions explain."""

    steps: tuple[int, ...]  # the training step of each kept snapshot, oldest first
    alphas: tuple[float, ...]  # (θ_i − θ_final)·δ, parameter units
    betas: tuple[float, ...]  # (θ_i − θ_final)·η
    explained: tuple[float, float]  # share of the centred variance along δ and along η, in [0, 1]

    def __post_init__(self) -> None:
        if not len(self.steps) == len(self.alphas) == len(self.betas) or len(self.steps) < 2:
            raise ValueError("a path needs one step, α and β per point, and at least two points")
        if len(self.explained) != 2 or not all(0.0 <= v <= 1.0 + 1e-9 for v in self.explained):
            raise ValueError("a path's explained variance is two shares in [0, 1]")

    def to_dict(self) -> dict[str, Any]:
        return {"steps": list(self.steps), "alphas": list(self.alphas), "betas": list(self.betas),
                "explained": list(self.explained)}

    @classmethod
    def from_dict(cls, data: Any) -> TrajectoryPath:
        if not isinstance(data, dict) or set(data) != {"steps", "alphas", "betas", "explained"}:
            raise ValueError("a path must be a JSON object with steps, alphas, betas and explained")
        steps = data["steps"]
        if not isinstance(steps, list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in steps):
            raise ValueError("a path's steps must be a list of integers")
        n = len(steps)
        return cls(steps=tuple(steps), alphas=_floats(data["alphas"], n, "path alphas"),
                   betas=_floats(data["betas"], n, "path betas"),
                   explained=_floats(data["explained"], 2, "path explained"))


# --- the surface ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Surface:
    """One model's loss (and accuracy) on a 1D or 2D slice.

    ``loss`` and ``acc`` are ``steps`` values (1D, index i ↔ alphas[i]) or ``steps`` rows of ``steps``
    values (2D, ``loss[j][i]`` at α = alphas[i], β = betas[j]: rows are β, as a plotly heat map's z).
    Points not evaluated (a stopped task) are NaN.
    """

    label: str  # the model, as a person reads it, e.g. "#12 resnet20 · shapes (ResNet)"
    run_id: int | None  # the run the weights come from (None: an unsaved model)
    skip: bool  # True for a ResNet, False for a plain twin
    params: LandscapeParams
    alphas: tuple[float, ...]  # coordinates along δ
    betas: tuple[float, ...] | None  # coordinates along η (None for 1D)
    loss: tuple  # mean cross-entropy (nats per image); 1D: (steps,), 2D: (steps, steps) nested
    acc: tuple  # top-1 accuracy in [0, 1], same layout as loss
    center_loss: float  # loss at α = β = 0: the trained weights themselves
    center_acc: float  # accuracy at the centre
    images: int  # training images behind every grid point
    complete: bool = True  # False: stopped before every point was evaluated (the rest are NaN)
    seconds: float = 0.0  # compute time, s
    path: TrajectoryPath | None = None  # the training path on a PCA slice (None: random directions)

    @property
    def dims(self) -> int:
        return 1 if self.betas is None else 2

    def grid(self) -> torch.Tensor:
        """The loss as a float64 tensor: (steps,) or (steps β, steps α)."""
        return torch.tensor(self.loss, dtype=torch.float64)

    def acc_grid(self) -> torch.Tensor:
        return torch.tensor(self.acc, dtype=torch.float64)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; NaN values (points not evaluated) become null."""
        return {"label": self.label, "run_id": self.run_id, "skip": self.skip, "params": self.params.to_dict(),
                "alphas": list(self.alphas), "betas": None if self.betas is None else list(self.betas),
                "loss": _jsonable(self.loss), "acc": _jsonable(self.acc),
                "center_loss": finite_or_none(self.center_loss), "center_acc": finite_or_none(self.center_acc),
                "images": self.images, "complete": self.complete,
                "seconds": self.seconds, "path": None if self.path is None else self.path.to_dict()}

    @classmethod
    def from_dict(cls, data: Any) -> Surface:
        """Validate an untrusted mapping: shapes must match the parameters' grid."""
        if not isinstance(data, dict):
            raise ValueError("a surface must be a JSON object")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown, missing = set(data) - fields, fields - set(data) - {"complete", "seconds", "path"}
        if unknown or missing:
            raise ValueError(f"surface fields: unknown {sorted(map(str, unknown))}, missing {sorted(missing)}")
        params = LandscapeParams.from_dict(data["params"])
        n = params.steps
        alphas = _floats(data["alphas"], n, "alphas")
        betas = None if data["betas"] is None else _floats(data["betas"], n, "betas")
        if (betas is None) != (params.dims == 1):
            raise ValueError(f"a {params.dims}D surface {'needs' if params.dims == 2 else 'has no'} betas")
        shape = (n,) if params.dims == 1 else (n, n)
        loss, acc = (_grid(data[k], shape, k) for k in ("loss", "acc"))
        label = data["label"]
        if not isinstance(label, str):
            raise ValueError("a surface's label must be a string")
        run_id = data["run_id"]
        if run_id is not None and (isinstance(run_id, bool) or not isinstance(run_id, int)):
            raise ValueError("a surface's run_id must be an integer or null")
        images = data["images"]
        if isinstance(images, bool) or not isinstance(images, int) or images < 0:
            raise ValueError("a surface's images must be a non-negative integer")
        path = None if data.get("path") is None else TrajectoryPath.from_dict(data["path"])
        if (path is not None) != (params.directions == "pca"):
            raise ValueError("a surface has a training path exactly when it was sliced along PCA directions")
        return cls(label=label, run_id=run_id, skip=bool(data["skip"]), params=params, alphas=alphas, betas=betas,
                   loss=loss, acc=acc, center_loss=_float(data["center_loss"]), center_acc=_float(data["center_acc"]),
                   images=images, complete=bool(data.get("complete", True)), seconds=_float(data.get("seconds", 0.0)),
                   path=path)


def _jsonable(values: Any) -> Any:
    if isinstance(values, (list, tuple)):
        return [_jsonable(v) for v in values]
    return finite_or_none(values)


def _float(v: Any) -> float:
    if v is None:
        return math.nan
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"expected a number or null, got {v!r}")
    return float(v)


def _floats(values: Any, n: int, what: str) -> tuple[float, ...]:
    if not isinstance(values, list) or len(values) != n:
        raise ValueError(f"{what} must be a list of {n} numbers")
    return tuple(_float(v) for v in values)


def _grid(values: Any, shape: tuple[int, ...], what: str) -> tuple:
    if len(shape) == 1:
        return _floats(values, shape[0], what)
    if not isinstance(values, list) or len(values) != shape[0]:
        raise ValueError(f"{what} must be {shape[0]} rows of {shape[1]} numbers")
    return tuple(_floats(row, shape[1], what) for row in values)


def _evaluate(model: nn.Module, batches: Sequence[Batch]) -> tuple[float, float]:
    """(mean cross-entropy per image, accuracy) of ``model`` over all images of ``batches``."""
    total, loss_sum, correct = 0, 0.0, 0
    for x, y in batches:
        logits = model(x).float()
        loss_sum += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
        total += int(y.numel())
    return loss_sum / total, correct / total


def loss_surface(model: nn.Module, batches: Sequence[Batch], params: LandscapeParams, *, label: str = "model",
                 run_id: int | None = None, progress: Callable[[int, int], None] | None = None,
                 should_stop: Callable[[], bool] | None = None,
                 directions: Sequence[Direction] | None = None,
                 axes: Sequence[Sequence[float]] | None = None, path: TrajectoryPath | None = None) -> Surface:
    """The loss of ``model`` on the slice θ + α·δ (+ β·η) over ``params``' grid.

    Works on a ``copy.deepcopy`` of the model in eval mode (BN uses its running statistics), so the
    caller's model is never changed; for every grid point the perturbed parameters are written into
    the copy from the saved originals (no copy per point). ``batches`` are (normalized images, labels)
    on the model's device; the loss is the mean cross-entropy per image over all of them, the accuracy
    the top-1 share. ``directions`` default to :func:`.directions.random_directions` (``params.seed``, ``dims``).
    ``axes``: the α (and β) grid values, one list of ``steps`` per direction, instead of ``params.coords()``
    (a PCA slice scaled to its path: :func:`.directions.path_axes`); ``path`` is kept with the surface.

    ``progress(done, total)`` is called after every grid point. When ``should_stop()`` turns true the
    slice ends early and a *partial* surface is returned (``complete=False``, the points not evaluated
    are NaN) — a stop is not an error. Points are evaluated row by row (β outer, α inner).
    Output: a :class:`Surface` with ``steps`` (1D) or ``steps × steps`` (2D) values.
    """
    if not batches:
        raise ValueError("the loss needs at least one batch of images")
    started = time.perf_counter()
    work = copy.deepcopy(model).eval()
    dirs = list(directions) if directions is not None else random_directions(work, params.seed, params.dims)
    if len(dirs) != params.dims:
        raise ValueError(f"a {params.dims}D slice needs {params.dims} directions, got {len(dirs)}")
    named = dict(work.named_parameters())
    for d in dirs:
        if set(d) != set(named):
            raise ValueError("a direction must cover exactly the model's parameters")
    moving = [n for n in named if any(bool(d[n].any()) for d in dirs)]
    originals = {n: named[n].detach().clone() for n in moving}
    grid = [list(a) for a in axes] if axes is not None else [params.coords()] * params.dims
    if len(grid) != params.dims or any(len(a) != params.steps for a in grid):
        raise ValueError(f"axes must be {params.dims} list(s) of {params.steps} coordinates")
    coords = grid[0]
    rows = grid[1] if params.dims == 2 else [0.0]
    total = params.points
    nan = math.nan
    loss = [[nan] * params.steps for _ in rows]
    acc = [[nan] * params.steps for _ in rows]
    done, complete = 0, True
    with torch.no_grad():
        for j, beta in enumerate(rows):
            for i, alpha in enumerate(coords):
                if should_stop is not None and should_stop():
                    complete = False
                    break
                for n in moving:
                    p = originals[n] + alpha * dirs[0][n].to(originals[n])
                    if params.dims == 2:
                        p = p + beta * dirs[1][n].to(originals[n])
                    named[n].copy_(p)
                loss[j][i], acc[j][i] = _evaluate(work, batches)
                done += 1
                if progress is not None:
                    progress(done, total)
            if not complete:
                break
    mid = (params.steps - 1) // 2
    centre = (0, mid) if params.dims == 1 else (mid, mid)
    shaped_loss = tuple(loss[0]) if params.dims == 1 else tuple(tuple(r) for r in loss)
    shaped_acc = tuple(acc[0]) if params.dims == 1 else tuple(tuple(r) for r in acc)
    skip = bool(getattr(getattr(model, "spec", None), "skip", True))
    return Surface(label=label, run_id=run_id, skip=skip, params=params, alphas=tuple(coords),
                   betas=tuple(rows) if params.dims == 2 else None, loss=shaped_loss, acc=shaped_acc,
                   center_loss=loss[centre[0]][centre[1]], center_acc=acc[centre[0]][centre[1]],
                   images=sum(int(y.numel()) for _, y in batches), complete=complete,
                   seconds=time.perf_counter() - started, path=path)


# --- summary numbers -----------------------------------------------------------------------------


def rise_at_half_span(surface: Surface) -> float:
    """How fast the loss climbs away from the trained weights: the mean loss at half the grid's reach (±span/2;
    on a PCA slice, half of each axis's own reach) along each direction's axis (β = 0 for δ, α = 0 for η;
    linear interpolation between grid points) minus the centre loss. Small: a wide, flat basin; large: a sharp
    one. NaN if a needed point is missing."""
    grid = surface.grid()
    mid = (surface.params.steps - 1) // 2
    axes = [(grid, surface.alphas)] if surface.dims == 1 else [(grid[mid, :], surface.alphas),
                                                                (grid[:, mid], surface.betas)]
    values = []
    for ys, coords in axes:
        xs = torch.tensor(coords, dtype=torch.float64)
        half = float(xs[-1]) / 2
        values += [_interp(t, xs, ys) for t in (-half, half)]
    return float(sum(values) / len(values) - surface.center_loss)


def _interp(t: float, xs: torch.Tensor, ys: torch.Tensor) -> float:
    k = int(torch.searchsorted(xs, torch.tensor([t], dtype=torch.float64), right=True)[0]) - 1
    k = min(max(k, 0), len(xs) - 2)
    w = (t - float(xs[k])) / float(xs[k + 1] - xs[k])
    return float(ys[k]) * (1 - w) + float(ys[k + 1]) * w


def summary(surface: Surface) -> dict[str, Any]:
    """The numbers a page or the CLI reports about one surface (NaN-free where points exist)."""
    g = surface.grid()
    finite = g[torch.isfinite(g)]
    return {"label": surface.label, "run": surface.run_id, "skip": surface.skip,
            "center_loss": surface.center_loss, "center_acc": surface.center_acc,
            "min_loss": float(finite.min()) if finite.numel() else math.nan,
            "max_loss": float(finite.max()) if finite.numel() else math.nan,
            "rise_at_half_span": rise_at_half_span(surface), "images": surface.images,
            "complete": surface.complete, "seconds": surface.seconds}
