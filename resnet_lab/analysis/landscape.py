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

This module is the math (a model and batches in, a :class:`Surface` out); queueing a slice as a
background job and keeping its result with the run is :mod:`resnet_lab.experiments.landscape`.
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

from ..checks import MAX_SEED, check_int
from ..fmt import finite_or_none

MAX_STEPS = 51
MAX_SPAN = 5.0
MAX_BATCHES = 50
BATCH_SIZE_RANGE = (8, 1024)
LOSS_FLOOR = 1e-8  # losses are clamped to this before taking logs (cross-entropy can round to 0)

Batch = tuple[torch.Tensor, torch.Tensor]  # (normalized images N x C x H x W, labels N)
Direction = dict[str, torch.Tensor]  # parameter name -> tensor of that parameter's shape


# --- parameters --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LandscapeParams:
    dims: int = 2  # 1: a curve along δ; 2: a surface over δ and η
    steps: int = 11  # grid points per axis, odd (so α = 0 is on the grid), 3..51
    span: float = 1.0  # coordinates run over [-span, span] (units of the filter-normalized direction)
    batches: int = 2  # training batches the loss is averaged over at each grid point, 1..50
    batch_size: int = 128  # images per batch, 8..1024
    seed: int = 0  # seeds the random directions and the choice of training images

    def __post_init__(self) -> None:
        check_int("dims", self.dims, 1, 2)
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
        """E.g. "2D, 11×11 points in [-1, 1], 2 batches of 128, seed 0"."""
        grid = f"{self.steps}×{self.steps}" if self.dims == 2 else f"{self.steps}"
        return (f"{self.dims}D, {grid} points in [-{self.span:g}, {self.span:g}], "
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
                "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: Any) -> Surface:
        """Validate an untrusted mapping: shapes must match the parameters' grid."""
        if not isinstance(data, dict):
            raise ValueError("a surface must be a JSON object")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown, missing = set(data) - fields, fields - set(data) - {"complete", "seconds"}
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
        return cls(label=label, run_id=run_id, skip=bool(data["skip"]), params=params, alphas=alphas, betas=betas,
                   loss=loss, acc=acc, center_loss=_float(data["center_loss"]), center_acc=_float(data["center_acc"]),
                   images=images, complete=bool(data.get("complete", True)), seconds=_float(data.get("seconds", 0.0)))


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
                 directions: Sequence[Direction] | None = None) -> Surface:
    """The loss of ``model`` on the slice θ + α·δ (+ β·η) over ``params``' grid.

    Works on a ``copy.deepcopy`` of the model in eval mode (BN uses its running statistics), so the
    caller's model is never changed; for every grid point the perturbed parameters are written into
    the copy from the saved originals (no copy per point). ``batches`` are (normalized images, labels)
    on the model's device; the loss is the mean cross-entropy per image over all of them, the accuracy
    the top-1 share. ``directions`` default to :func:`random_directions` (``params.seed``, ``dims``).

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
    coords = params.coords()
    rows = coords if params.dims == 2 else [0.0]
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
                   betas=tuple(coords) if params.dims == 2 else None, loss=shaped_loss, acc=shaped_acc,
                   center_loss=loss[centre[0]][centre[1]], center_acc=acc[centre[0]][centre[1]],
                   images=sum(int(y.numel()) for _, y in batches), complete=complete,
                   seconds=time.perf_counter() - started)


# --- summary numbers -----------------------------------------------------------------------------


def rise_at_half_span(surface: Surface) -> float:
    """How fast the loss climbs away from the trained weights: the mean loss at coordinate ±span/2 along
    each direction's axis (β = 0 for δ, α = 0 for η; linear interpolation between grid points) minus the
    centre loss. Small: a wide, flat basin; large: a sharp one. NaN if a needed point is missing."""
    half = surface.params.span / 2
    grid = surface.grid()
    mid = (surface.params.steps - 1) // 2
    axes = [grid] if surface.dims == 1 else [grid[mid, :], grid[:, mid]]
    xs = torch.tensor(surface.alphas, dtype=torch.float64)
    values = [_interp(t, xs, axis) for axis in axes for t in (-half, half)]
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
    only when the ResNet's is the flatter one. "" when no rise could be computed (a stopped job)."""
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


# --- cost ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cost:
    """What a landscape costs before it starts."""

    models: int  # models sliced (1, or 2 with the twin)
    points: int  # grid points per model
    batches: int  # batches per grid point (after clipping to the training split, when known)
    batch_size: int  # images per forward pass
    forwards: int  # forward passes in all: models × points × batches
    seconds: float  # estimated compute time, s (measured forward time × forwards; worker start-up not included)
    device: str  # where it was timed and will run

    def describe(self) -> str:
        """E.g. "2 models × 121 points × 2 batches = 484 forward passes of 128 images ≈ 45 s on cpu"."""
        return (f"{self.models} model{'s' if self.models > 1 else ''} × {self.points} points × {self.batches} "
                f"batch{'es' if self.batches > 1 else ''} = {self.forwards:,} forward passes of {self.batch_size} "
                f"images ≈ {format_seconds(self.seconds)} on {self.device}")


def format_seconds(s: float) -> str:
    if s < 1:
        return "under 1 s"
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def effective_batches(n_train: int | None, params: LandscapeParams) -> int:
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


def estimate_cost(models: nn.Module | Sequence[nn.Module], input_shape: Sequence[int], params: LandscapeParams,
                  device: str | torch.device = "cpu", n_train: int | None = None,
                  forward_seconds: Sequence[float] | None = None) -> Cost:
    """The cost of slicing ``models`` with ``params``: forwards = models × points × batches, and seconds =
    Σ over models of (measured forward time × points × batches). ``forward_seconds`` (one per model) skips
    the timing (e.g. a cached measurement); otherwise :func:`time_forward` times each model."""
    ms = [models] if isinstance(models, nn.Module) else list(models)
    if not ms:
        raise ValueError("estimate_cost needs at least one model")
    per = list(forward_seconds) if forward_seconds is not None else [
        time_forward(m, input_shape, params.batch_size, device) for m in ms]
    if len(per) != len(ms):
        raise ValueError("forward_seconds needs one time per model")
    batches = effective_batches(n_train, params)
    return Cost(models=len(ms), points=params.points, batches=batches, batch_size=params.batch_size,
                forwards=len(ms) * params.points * batches, seconds=sum(per) * params.points * batches,
                device=str(torch.device(device).type))


# --- data ----------------------------------------------------------------------------------------


def training_batches(subject: Any, dataset: Any, params: LandscapeParams) -> list[Batch]:
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
