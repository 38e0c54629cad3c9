"""Loss landscapes: the training loss on 1D and 2D slices through a trained model's weights.

After Li, Xu, Taylor, Studer and Goldstein 2018, "Visualizing the Loss Landscape of Neural Nets",
sec. 4, with their reference code's defaults: a random Gaussian direction δ (and η for 2D) over all
parameters, *filter-normalized* so each filter of δ has the norm of the matching filter of the weights
θ, then the loss L(θ + α·δ + β·η) on a grid of α, β in [-span, span]. Filter normalization removes the
scale invariance of ReLU+BN nets, so the slices of two networks (a ResNet and its plain twin) can be
compared side by side — the paper's figure 5 shows how skip connections keep the landscape convex
and smooth where the plain net's turns chaotic as depth grows.

Where this differs from the paper / its code:
- biases and BN weights/biases (parameters with dim <= 1) get a zero direction ("ignore biasbn", the
  reference code's default option in its scripts); BN running statistics are never perturbed and the
  model is evaluated in eval mode, so BN uses the running statistics (as the reference code does);
- the loss is averaged over the first ``batches`` batches of a seeded permutation of the training split
  (no augmentation), not over the whole training set: a slice costs grid points × batches forwards;
- the same direction seed is used for both models of a pair: where their parameters have the same
  shapes the Gaussian draws are the same.

**The training path** (``LandscapeParams.directions="pca"``; Li et al. sec. 7, "Visualizing optimization
paths"): random directions are nearly orthogonal to the path training took, so the path is drawn on the plane
of the first two principal directions of the kept weights instead. With θ_0 … θ_n the weights kept along
training (:mod:`resnet_lab.train.trajectory`) and θ_n the last, :func:`trajectory_pca` takes the matrix of
differences M = [θ_0 − θ_n; …; θ_n − θ_n], centres its rows and takes its first two right singular vectors
δ, η (unit vectors in parameter space; their share of the centred variance is the *explained variance*); the
path's coordinates are the projections (θ_i − θ_n)·δ and (θ_i − θ_n)·η, so the end of training sits at
(0, 0), and the slice L(θ_n + αδ + βη) is computed around it. As in the paper and its reference code
(``setup_PCA_directions``, sklearn's PCA, which centres): every parameter takes part (weights, biases, BN
weights and biases; BN running statistics, buffers, do not), the final snapshot is one of the rows (a zero
row), and the PCA directions are **not** filter-normalized (they are directions the weights actually moved
along, in parameter units). Where this differs: the grid is scaled to the path — each axis runs over
±span × the largest |coordinate| of the path along it, so span = 1 just covers the path — rather than a range
set by hand; and the slice's BN running statistics are the last snapshot's, never perturbed (as for random
directions).

**Linear interpolation** (:func:`interpolate`; Goodfellow, Vinyals and Saxe 2015, "Qualitatively
characterizing neural network optimization problems", sec. 2): the loss and accuracy of θ(α) = (1−α)θ_a + αθ_b
for α from −extend to 1 + extend (α = 0 and 1 on the grid), between a run's initial and trained weights or
between two runs of one architecture. Goodfellow et al. had no BatchNorm; here its running statistics are,
by default, **recomputed** at every α (reset, then a cumulative average over the same training batches the
loss is measured on, in train mode, no gradient — as ``torch.optim.swa_utils.update_bn`` does), because
interpolated weights with interpolated (or either end's) statistics normalise with statistics of other
activations and show a barrier that is an artefact of BN, not of the loss surface; ``bn="interpolate"``
interpolates the buffers along with the weights instead, to see that effect.

This module is the math (a model and batches in, a :class:`Surface` or :class:`Interpolation` out); queueing
one as a background job and keeping its result with the run is :mod:`resnet_lab.experiments.landscape`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...checks import MAX_SEED, check_int
from ...fmt import finite_or_none, format_duration

MAX_STEPS = 51
MAX_SPAN = 5.0
MAX_BATCHES = 50
BATCH_SIZE_RANGE = (8, 1024)
LOSS_FLOOR = 1e-8  # losses are clamped to this before taking logs (cross-entropy can round to 0)

Batch = tuple[torch.Tensor, torch.Tensor]  # (normalized images N x C x H x W, labels N)
Direction = dict[str, torch.Tensor]  # parameter name -> tensor of that parameter's shape
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



# --- directions ----------------------------------------------------------------------------------


def filter_normalize(direction: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """``direction`` rescaled filter by filter: each slice along dim 0 (one output channel of a conv, one row
    of a linear layer) gets the norm of the same slice of ``weight``. Same shape as ``weight``."""
    d = direction.reshape(direction.shape[0], -1)
    w = weight.detach().reshape(weight.shape[0], -1).to(d)
    scale = w.norm(dim=1, keepdim=True) / (d.norm(dim=1, keepdim=True) + 1e-10)
    return (d * scale).reshape(weight.shape)


def random_directions(model: nn.Module, seed: int, count: int) -> list[Direction]:
    """``count`` filter-normalized random directions over ``model.named_parameters()``.

    Each direction maps every parameter name to a tensor of its shape (float32, on the parameter's
    device): a standard Gaussian draw, filter-normalized (:func:`filter_normalize`) for parameters
    with dim > 1; zeros for parameters with dim <= 1 (biases, BN weight and bias). Buffers (BN running
    statistics) are not part of a direction. The draws come from a private CPU ``torch.Generator``
    seeded with ``seed``, in parameter order, direction after direction: the same seed gives the same
    directions on any device, and the global RNG is left alone.
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    g = torch.Generator().manual_seed(int(seed))
    out: list[Direction] = []
    for _ in range(count):
        d: Direction = {}
        for name, p in model.named_parameters():
            if p.dim() <= 1:
                d[name] = torch.zeros(p.shape, dtype=torch.float32, device=p.device)
                continue
            raw = torch.randn(p.shape, generator=g, dtype=torch.float32)
            d[name] = filter_normalize(raw, p.detach().float().cpu()).to(p.device)
        out.append(d)
    return out


def trajectory_pca(snapshots: Sequence[Mapping[str, torch.Tensor]], final: Mapping[str, torch.Tensor],
                   names: Sequence[str] | None = None) -> tuple[list[Direction], torch.Tensor, tuple[float, float]]:
    """The first two PCA directions of a training path, the path's coordinates along them, and their explained
    variance (Li et al. 2018, sec. 7; see the module docstring for where this follows their code).

    ``snapshots``: the kept weights θ_0 … θ_{n-1} (name -> tensor; state_dicts may hold buffers too), oldest
    first, usually ending with ``final`` itself; ``final``: θ_n, the weights the slice is centred on. ``names``:
    the tensors that take part (default: every floating tensor of ``final``; pass the model's parameter names
    to leave BN running statistics out). The differences θ_i − θ_n form the rows of M (n × P); PCA centres the
    rows and takes the top two eigenvectors of the n × n Gram matrix (float64; the P-dimensional directions are
    Mᵀu / σ, never forming M's P × P covariance), so memory stays at one parameter tensor × n at a time.

    Returns ``(directions, coords, explained)``: two :data:`Direction` dicts (float32, unit norm over all
    ``names`` together, on ``final``'s devices; not filter-normalized), ``coords`` an (n, 2) float64 tensor of
    (θ_i − θ_n)·δ and (θ_i − θ_n)·η, and the share of the centred variance along each direction (in [0, 1];
    the two sum to 1 when the path lies in a plane). Signs are fixed so the first snapshot has coordinates ≤ 0
    (the path runs from the left/bottom towards the centre). Raises ValueError for fewer than 3 snapshots, or a
    path with fewer than two directions of movement (a straight line), or non-finite weights (a diverged run).
    """
    n = len(snapshots)
    if n < 3:
        raise ValueError(f"a training path needs at least 3 kept weights for two PCA directions, got {n}")
    keys = list(names) if names is not None else [k for k, v in final.items() if torch.is_floating_point(v)]
    if not keys:
        raise ValueError("no tensors to take the PCA of")

    def centred(name: str) -> tuple[torch.Tensor, torch.Tensor]:
        ref = final[name].detach().reshape(1, -1).double().cpu()
        rows = torch.stack([s[name].detach().reshape(-1).double().cpu() for s in snapshots]) - ref
        return rows, rows - rows.mean(0, keepdim=True)

    for s in snapshots:
        missing = [k for k in keys if k not in s or s[k].shape != final[k].shape]
        if missing:
            raise ValueError(f"a kept snapshot does not match the final weights: {', '.join(missing[:3])}")
    gram = torch.zeros(n, n, dtype=torch.float64)
    for k in keys:
        rows, c = centred(k)
        if not bool(torch.isfinite(rows).all()):
            raise ValueError(f"a kept snapshot holds non-finite weights ({k}): the run diverged along its path")
        gram += c @ c.T
    evals, evecs = torch.linalg.eigh(gram)  # ascending
    evals, evecs = evals.flip(0).clamp_min(0.0), evecs.flip(1)
    total = float(evals.sum())
    if total <= 0 or float(evals[1]) <= 1e-12 * total:
        raise ValueError("the kept weights lie on a straight line (or never moved): there is no second direction")
    sigma = evals[:2].sqrt()
    directions: list[Direction] = [{}, {}]
    coords = torch.zeros(n, 2, dtype=torch.float64)
    for k in keys:
        rows, c = centred(k)
        d = (c.T @ evecs[:, :2]) / sigma  # (numel, 2): this tensor's share of the unit directions
        coords += rows @ d
        for j in range(2):
            directions[j][k] = d[:, j]
    for j in range(2):
        sign = -1.0 if float(coords[0, j]) > 0 else 1.0
        coords[:, j] *= sign
        for k in keys:
            directions[j][k] = (sign * directions[j][k]).reshape(final[k].shape).float().to(final[k].device)
    explained = (float(evals[0]) / total, float(evals[1]) / total)
    return directions, coords, explained


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


def path_axes(params: LandscapeParams, path: TrajectoryPath) -> tuple[list[float], list[float]]:
    """The grid of a PCA slice: ``params.coords()`` (in [-span, span]) times the path's largest |coordinate| along
    each axis, so span = 1 reaches just the path's farthest point on either side of the centre."""
    reach = [max(abs(v) for v in path.alphas), max(abs(v) for v in path.betas)]
    if not all(math.isfinite(r) and r > 0 for r in reach):
        raise ValueError("the path does not move along both directions")
    return tuple([c * r for c in params.coords()] for r in reach)  # type: ignore[return-value]


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
    the top-1 share. ``directions`` default to :func:`random_directions` (``params.seed``, ``dims``).
    ``axes``: the α (and β) grid values, one list of ``steps`` per direction, instead of ``params.coords()``
    (a PCA slice scaled to its path: :func:`path_axes`); ``path`` is kept with the surface.

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


SAME_RISE = 1.1
"""Two rises at half span within 10% of each other count as "about the same" basin: the loss at each grid
point is a mean over a couple of batches, and another direction seed moves the rise by a few percent."""


def basin_sentence(surfaces: Sequence[Surface]) -> str:
    """What the slices show about the basins, from their numbers: each model's rise at ½ span, and — for a
    ResNet beside its plain twin — which basin is flatter and by what factor, stated as Li et al.'s finding
    only when the ResNet's is the flatter one. "" when no rise could be computed (a stopped job).
    PCA slices (:func:`path_sentence`) are not compared: their directions are in each path's own parameter
    units, not filter-normalized, so their rises do not compare across models."""
    if any(s.path is not None for s in surfaces):
        return path_sentence(surfaces)
    rises = [(s, rise_at_half_span(s)) for s in surfaces]
    rises = [(s, r) for s, r in rises if math.isfinite(r)]
    if not rises:
        return ""
    half = surfaces[0].params.span / 2
    res = [(s, r) for s, r in rises if s.skip]
    plain = [(s, r) for s, r in rises if not s.skip]
    if len(res) != 1 or len(plain) != 1:
        said = " and ".join(f"{s.label} {r:.3g}" for s, r in rises)
        return f"At ±{half:g} along the directions the loss rises by {said}."
    r_res, r_plain = res[0][1], plain[0][1]
    out = (f"At ±{half:g} along the directions the plain net's loss rises by {r_plain:.3g} and the ResNet's by "
           f"{r_res:.3g}")
    if min(r_res, r_plain) <= 0:
        who = "the ResNet" if r_res <= 0 else "the plain net"
        return (out + f": the loss of {who} does not rise, so its trained weights are not at the bottom of this "
                "slice and there is no basin to compare.")
    lo, hi = sorted((r_res, r_plain))
    if hi / lo < SAME_RISE:
        return out + f": about the same (within {100 * (SAME_RISE - 1):.0f}%), so neither basin is the flatter here."
    if r_res < r_plain:
        return (out + f": the ResNet sits in the wider, flatter basin ({hi / lo:.3g}× smaller rise), as Li et al. "
                "found for nets with skip connections.")
    return (out + f": the plain net sits in the wider, flatter basin ({hi / lo:.3g}× smaller rise), the opposite of "
            "Li et al.'s finding.")


def path_sentence(surfaces: Sequence[Surface]) -> str:
    """What PCA slices show about the training paths: how much of each path's movement the two directions
    explain (Li et al. found descent paths lie in a very low-dimensional space). "" with no path."""
    said = [f"{s.label} {100 * sum(s.path.explained):.1f}% ({100 * s.path.explained[0]:.1f}% + "
            f"{100 * s.path.explained[1]:.1f}%, {len(s.path.steps)} kept weights)"
            for s in surfaces if s.path is not None]
    if not said:
        return ""
    return ("The first two PCA directions explain " + " and ".join(said) + " of the path's variance: the rest of "
            "the movement is off this plane, so the path drawn is its shadow on it.")


# --- linear interpolation (Goodfellow et al. 2015) ------------------------------------------------------

BN_MODES = ("recompute", "interpolate")
MAX_RESOLUTION = 50
MAX_EXTEND = 1.0


@dataclass(frozen=True)
class InterpolationParams:
    resolution: int = 10  # grid points per unit of α (α = 0 and 1 are always on the grid), 2..50
    extend: float = 0.5  # α runs from -extend to 1 + extend, 0..1
    batches: int = 2  # training batches the loss is averaged over at each α, 1..50
    batch_size: int = 128  # images per batch, 8..1024
    seed: int = 0  # seeds the choice of training images
    bn: str = "recompute"  # BatchNorm statistics at each α: "recompute" them, or "interpolate" the buffers too

    def __post_init__(self) -> None:
        check_int("resolution", self.resolution, 2, MAX_RESOLUTION)
        extend = self.extend
        if isinstance(extend, bool) or not isinstance(extend, (int, float)) or not math.isfinite(extend) \
                or not 0 <= extend <= MAX_EXTEND:
            raise ValueError(f"extend={extend!r} is out of range; allowed 0 <= extend <= {MAX_EXTEND:g}")
        object.__setattr__(self, "extend", float(extend))
        check_int("batches", self.batches, 1, MAX_BATCHES)
        check_int("batch_size", self.batch_size, *BATCH_SIZE_RANGE)
        check_int("seed", self.seed, 0, MAX_SEED)
        if self.bn not in BN_MODES:
            raise ValueError(f"bn={self.bn!r} is not allowed; choose one of {', '.join(BN_MODES)}")

    @property
    def points(self) -> int:
        return len(self.alphas())

    def alphas(self) -> list[float]:
        """α = k / resolution for k from -round(extend × resolution) to resolution + the same: 0 and 1 exactly."""
        e = round(self.extend * self.resolution)
        return [k / self.resolution for k in range(-e, self.resolution + e + 1)]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> InterpolationParams:
        """Validate an untrusted mapping (unknown keys are refused)."""
        if not isinstance(data, dict):
            raise ValueError("interpolation settings must be a JSON object")
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown interpolation setting(s): {', '.join(sorted(map(str, unknown)))}")
        return cls(**data)

    def describe(self) -> str:
        """E.g. "α from -0.5 to 1.5, 21 points, 2 batches of 128, BN recomputed, seed 0"."""
        a = self.alphas()
        return (f"α from {a[0]:g} to {a[-1]:g}, {len(a)} points, {self.batches} batch"
                f"{'es' if self.batches > 1 else ''} of {self.batch_size}, BN "
                f"{'recomputed' if self.bn == 'recompute' else 'interpolated'}, seed {self.seed}")


@dataclass(frozen=True)
class Interpolation:
    """One model's loss and accuracy along the line θ(α) = (1−α)θ_a + αθ_b. Points not evaluated are NaN."""

    label: str  # the model, e.g. "#12 resnet20 · shapes (ResNet)"
    run_id: int | None  # the run θ_b comes from
    skip: bool  # True for a ResNet, False for a plain twin
    params: InterpolationParams
    start: str  # what θ_a is, in words, e.g. "initial weights (kept at step 0)"
    alphas: tuple[float, ...]
    loss: tuple[float, ...]  # mean cross-entropy per image at each α
    acc: tuple[float, ...]  # top-1 accuracy at each α
    images: int  # training images behind every point
    complete: bool = True
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "run_id": self.run_id, "skip": self.skip, "params": self.params.to_dict(),
                "start": self.start, "alphas": list(self.alphas), "loss": _jsonable(self.loss),
                "acc": _jsonable(self.acc), "images": self.images, "complete": self.complete, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: Any) -> Interpolation:
        """Validate an untrusted mapping: lengths must match the parameters' grid."""
        if not isinstance(data, dict):
            raise ValueError("an interpolation must be a JSON object")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown, missing = set(data) - fields, fields - set(data) - {"complete", "seconds"}
        if unknown or missing:
            raise ValueError(f"interpolation fields: unknown {sorted(map(str, unknown))}, missing {sorted(missing)}")
        params = InterpolationParams.from_dict(data["params"])
        n = params.points
        for key in ("label", "start"):
            if not isinstance(data[key], str):
                raise ValueError(f"an interpolation's {key} must be a string")
        run_id = data["run_id"]
        if run_id is not None and (isinstance(run_id, bool) or not isinstance(run_id, int)):
            raise ValueError("an interpolation's run_id must be an integer or null")
        images = data["images"]
        if isinstance(images, bool) or not isinstance(images, int) or images < 0:
            raise ValueError("an interpolation's images must be a non-negative integer")
        return cls(label=data["label"], run_id=run_id, skip=bool(data["skip"]), params=params, start=data["start"],
                   alphas=_floats(data["alphas"], n, "alphas"), loss=_floats(data["loss"], n, "loss"),
                   acc=_floats(data["acc"], n, "acc"), images=images, complete=bool(data.get("complete", True)),
                   seconds=_float(data.get("seconds", 0.0)))

    def at(self, alpha: float) -> float:
        """The loss at the grid point ``alpha`` (NaN when it was not evaluated)."""
        return self.loss[min(range(len(self.alphas)), key=lambda i: abs(self.alphas[i] - alpha))]


def _batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


def recompute_bn(model: nn.Module, batches: Sequence[Batch]) -> None:
    """Reset every BatchNorm's running statistics and set them to the exact (cumulative, ``momentum=None``)
    average over ``batches``, as ``torch.optim.swa_utils.update_bn`` does: BN layers in train mode, no gradient,
    the rest of the model as it is. Leaves the model in eval mode with each BN's momentum as it was."""
    bns = _batchnorms(model)
    if not bns:
        model.eval()
        return
    momenta = [bn.momentum for bn in bns]
    model.eval()
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None
        bn.train()
    with torch.no_grad():
        for x, _ in batches:
            model(x)
    for bn, m in zip(bns, momenta):
        bn.momentum = m
    model.eval()


def interpolate(model: nn.Module, start: Mapping[str, torch.Tensor], end: Mapping[str, torch.Tensor],
                batches: Sequence[Batch], params: InterpolationParams, *, label: str = "model",
                run_id: int | None = None, start_label: str = "start",
                progress: Callable[[int, int], None] | None = None,
                should_stop: Callable[[], bool] | None = None) -> Interpolation:
    """Loss and accuracy of θ(α) = (1−α)·``start`` + α·``end`` at every α of ``params.alphas()`` (Goodfellow et
    al. 2015, sec. 2).

    ``model`` gives the architecture only: the work is done on a ``copy.deepcopy`` of it (moved nowhere: the
    states are put on its device), so the caller's model is never changed. ``start`` and ``end`` are full
    state_dicts of it (parameters and buffers). Every floating parameter is interpolated; BatchNorm running
    statistics are recomputed at each α over ``batches`` (:func:`recompute_bn`; ``params.bn == "recompute"``)
    or interpolated like the weights (``"interpolate"``); integer buffers (BN's batch counters) are ``end``'s.
    The loss is then measured in eval mode over ``batches`` (mean cross-entropy per image, top-1 accuracy).
    ``progress(done, total)`` after every α; ``should_stop()`` ends early with a partial result (NaN beyond).
    """
    if not batches:
        raise ValueError("the loss needs at least one batch of images")
    started = time.perf_counter()
    work = copy.deepcopy(model).eval()
    target = work.state_dict()
    for name, state in (("start", start), ("end", end)):
        if set(state) != set(target) or any(state[k].shape != target[k].shape for k in target):
            raise ValueError(f"the {name} weights do not fit this model (another architecture?)")
    device = next(work.parameters()).device
    a = {k: v.detach().to(device) for k, v in start.items()}
    b = {k: v.detach().to(device) for k, v in end.items()}
    buffers = {k for k, _ in work.named_buffers()}
    alphas = params.alphas()
    loss = [math.nan] * len(alphas)
    acc = [math.nan] * len(alphas)
    complete = True
    with torch.no_grad():
        for i, alpha in enumerate(alphas):
            if should_stop is not None and should_stop():
                complete = False
                break
            mixed = {}
            for k, t in target.items():
                if not torch.is_floating_point(t) or (k in buffers and params.bn == "recompute"):
                    mixed[k] = b[k]  # counters; statistics that recompute_bn replaces anyway
                else:
                    mixed[k] = torch.lerp(a[k].to(t.dtype), b[k].to(t.dtype), alpha)
            work.load_state_dict(mixed, strict=True)
            if params.bn == "recompute":
                recompute_bn(work, batches)
            loss[i], acc[i] = _evaluate(work.eval(), batches)
            if progress is not None:
                progress(i + 1, len(alphas))
    skip = bool(getattr(getattr(model, "spec", None), "skip", True))
    return Interpolation(label=label, run_id=run_id, skip=skip, params=params, start=start_label,
                         alphas=tuple(alphas), loss=tuple(loss), acc=tuple(acc),
                         images=sum(int(y.numel()) for _, y in batches), complete=complete,
                         seconds=time.perf_counter() - started)


def interpolation_summary(curve: Interpolation) -> dict[str, Any]:
    """The numbers a page or the CLI reports about one interpolation, all on 0 ≤ α ≤ 1:

    - ``loss_start``, ``loss_end``: the loss at α = 0 (θ_a) and α = 1 (θ_b);
    - ``climb``: the largest rise of the loss on the way from α = 0 to α = 1 (max over α of L(α) minus the lowest
      loss before it); 0 exactly when the loss only falls — Goodfellow et al.'s "monotonically decreasing" from
      the initial to the trained weights (``monotonic``);
    - ``barrier``: the largest excess of the loss over the straight line between its two ends,
      max_α L(α) − ((1−α)L(0) + αL(1)), the loss barrier of Entezari et al. 2022 (used between two trained runs,
      "linear mode connectivity"); a curve that falls slowly at first is above the line without climbing.

    NaN / None where points are missing (a stopped job)."""
    alphas = curve.alphas
    inner = [(a, v) for a, v in zip(alphas, curve.loss) if -1e-9 <= a <= 1 + 1e-9]
    l0, l1 = curve.at(0.0), curve.at(1.0)
    ok = all(math.isfinite(v) for _, v in inner)
    barrier = max(v - ((1 - a) * l0 + a * l1) for a, v in inner) if ok else math.nan
    climb, lowest = 0.0, math.inf
    for _, v in inner:
        lowest = min(lowest, v)
        climb = max(climb, v - lowest)
    return {"label": curve.label, "run": curve.run_id, "skip": curve.skip, "start": curve.start,
            "loss_start": l0, "loss_end": l1, "acc_start": curve.acc[alphas.index(0.0)],
            "acc_end": curve.acc[alphas.index(1.0)], "climb": climb if ok else math.nan,
            "monotonic": (climb == 0.0) if ok else None, "barrier": barrier,
            "min_loss": min((v for v in curve.loss if math.isfinite(v)), default=math.nan),
            "images": curve.images, "complete": curve.complete}


def interpolation_sentence(curves: Sequence[Interpolation]) -> str:
    """What the curves show, from their numbers: for each model whether the loss falls all the way from its start
    to its trained weights — said to agree with Goodfellow et al. only for a start at the initial weights — or how
    far it climbs on the way, and how far above the straight line between the ends it gets. "" when a curve is
    incomplete."""
    parts = []
    for c in curves:
        row = interpolation_summary(c)
        if row["monotonic"] is None:
            return ""
        if row["monotonic"]:
            seen = " (as Goodfellow et al. saw for the nets they studied)" if "initial weights" in c.start else ""
            parts.append(f"{c.label}: the loss falls all the way from {c.start} to the trained weights{seen}")
        else:
            above = (f", at most {row['barrier']:.3g} above the straight line between the two ends"
                     if row["barrier"] > 0 else ", never above the straight line between the two ends")
            parts.append(f"{c.label}: the loss does not fall all the way from {c.start}: it climbs by up to "
                         f"{row['climb']:.3g} on the way{above}")
    return "; ".join(parts) + "."


# --- cost ----------------------------------------------------------------------------------------


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
