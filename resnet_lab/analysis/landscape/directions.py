"""Directions through a model's weights for a loss-landscape slice: random filter-normalized ones, and the
training path's first two PCA directions.

**Random, filter-normalized** (Li, Xu, Taylor, Studer and Goldstein 2018, "Visualizing the Loss Landscape of
Neural Nets", sec. 4, with their reference code's defaults): a Gaussian direction over all parameters, rescaled
so each filter has the norm of the matching filter of the weights θ. Filter normalization removes the scale
invariance of ReLU+BN nets, so the slices of two networks (a ResNet and its plain twin) can be compared side by
side. Where this differs from the paper / its code: biases and BN weights/biases (parameters with dim <= 1) get a
zero direction ("ignore biasbn", the reference code's default option in its scripts); the same seed is used for
both models of a pair: where their parameters have the same shapes the Gaussian draws are the same.

**The training path** (Li et al. sec. 7, "Visualizing optimization paths"): random directions are nearly
orthogonal to the path training took, so the path is drawn on the plane of the first two principal directions of
the kept weights instead. With θ_0 … θ_n the weights kept along training (:mod:`resnet_lab.train.trajectory`)
and θ_n the last, :func:`trajectory_pca` takes the matrix of differences M = [θ_0 − θ_n; …; θ_n − θ_n], centres
its rows and takes its first two right singular vectors δ, η (unit vectors in parameter space; their share of the
centred variance is the *explained variance*); the path's coordinates are the projections (θ_i − θ_n)·δ and
(θ_i − θ_n)·η, so the end of training sits at (0, 0). As in the paper and its reference code
(``setup_PCA_directions``, sklearn's PCA, which centres): every parameter takes part (weights, biases, BN weights
and biases; BN running statistics, buffers, do not), the final snapshot is one of the rows (a zero row), and the
PCA directions are **not** filter-normalized (they are directions the weights actually moved along, in parameter
units). Where this differs: the grid is scaled to the path (:func:`path_axes`) — each axis runs over ±span × the
largest |coordinate| of the path along it, so span = 1 just covers the path — rather than a range set by hand.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Mapping, Sequence

import torch
from torch import nn

if TYPE_CHECKING:
    from .surface import LandscapeParams, TrajectoryPath

Direction = dict[str, torch.Tensor]  # parameter name -> tensor of that parameter's shape


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


def path_axes(params: LandscapeParams, path: TrajectoryPath) -> tuple[list[float], list[float]]:
    """The grid of a PCA slice: ``params.coords()`` (in [-span, span]) times the path's largest |coordinate| along
    each axis, so span = 1 reaches just the path's farthest point on either side of the centre."""
    reach = [max(abs(v) for v in path.alphas), max(abs(v) for v in path.betas)]
    if not all(math.isfinite(r) and r > 0 for r in reach):
        raise ValueError("the path does not move along both directions")
    return tuple([c * r for c in params.coords()] for r in reach)  # type: ignore[return-value]
