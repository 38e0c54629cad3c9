"""Feature maps and per-layer activation statistics (the ResNet paper's "layer responses").

Both run one forward pass under ``torch.no_grad()`` with hooks scoped to the call; the model is not
changed (no parameter, buffer, mode or hook survives the call). :func:`compare_responses` puts a ResNet's
layer responses beside its plain twin's and says, from the numbers, whether He et al.'s Fig. 7 finding holds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import torch
from torch import nn

from ..models.hooks import forward_hooks
from .points import Point, resolve


def feature_maps(model: nn.Module, images: torch.Tensor, layers: str | Sequence[str]) -> dict[str, torch.Tensor]:
    """Activations at the named points (see :mod:`resnet_lab.analysis.points`) for a batch.

    ``images`` is N x C x H x W, already normalized as the model expects. Returns ``{name: tensor}``
    in the order asked, each a detached copy (N x C' x h x w for conv layers) on the model's device.
    Copies are taken inside the hook, so an in-place ReLU that runs later cannot change them.
    Raises ValueError for an unknown point, or one the forward never reached (a switched-off branch).
    """
    names = [layers] if isinstance(layers, str) else list(layers)
    points = [resolve(model, n) for n in names]
    found: dict[str, torch.Tensor] = {}
    by_module: dict[int, list[Point]] = {}
    for p in points:
        by_module.setdefault(id(p.module), []).append(p)
    modules = [(str(key), pts[0].module) for key, pts in by_module.items()]

    def hook(key: str, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        for p in by_module[int(key)]:
            if p.name not in found:  # a module called twice (a shared ReLU) keeps its first reading
                found[p.name] = p.extract(inputs, output).detach().clone()

    with torch.no_grad(), forward_hooks(modules, hook):
        model(images)
    missing = [n for n in names if n not in found]
    if missing:
        raise ValueError(f"the forward pass never reached {', '.join(missing)} (is that branch switched off?)")
    return {n: found[n] for n in names}


def top_channels(maps: torch.Tensor, k: int) -> list[int]:
    """Indices of the ``k`` most active channels of one C x h x w map (by mean absolute activation)."""
    if maps.dim() != 3:
        raise ValueError(f"expected one C x h x w map, got shape {tuple(maps.shape)}")
    score = maps.abs().flatten(1).mean(1)
    k = max(1, min(int(k), maps.shape[0]))
    return [int(i) for i in torch.topk(score, k).indices]


def map_stats(maps: torch.Tensor) -> dict[str, float]:
    """Mean, std and fraction of exact zeros of any activation tensor (the row format of activation_stats)."""
    a = maps.detach().float()
    return {"mean": float(a.mean()), "std": float(a.std()), "zero_frac": float((a == 0).float().mean())}


def activation_stats(model: nn.Module, images: torch.Tensor) -> list[dict[str, Any]]:
    """Per-layer statistics across depth, one forward pass: the stem, then every residual block.

    Each row: ``name``, ``index`` (depth position, 0 = stem), ``mean`` and ``std`` of the layer's
    output, ``zero_frac`` (fraction of outputs exactly 0: dead ReLU outputs in v1 blocks), and for
    blocks ``branch_std``: the std of the residual branch's output F(x) after its last BN and before
    the addition, which is the "layer response" He et al. 2015 plot in Fig. 7 (their figure uses each
    3x3 layer; here one value per block, at the end of its branch). Stats are over the whole batch.
    """
    named: list[tuple[str, str]] = [("stem", "stem")]
    blocks = list(getattr(model, "named_blocks", lambda: [])())
    for bname, _ in blocks:
        named.append((bname, bname))
        named.append((f"{bname}:branch", bname))
    points = [resolve(model, n) for n, _ in named]
    rows: dict[str, dict[str, Any]] = {"stem": {"name": "stem", "index": 0}}
    for i, (bname, _) in enumerate(blocks, start=1):
        rows[bname] = {"name": bname, "index": i}
    targets: dict[int, list[tuple[str, str]]] = {}
    for (pname, row), p in zip(named, points):
        targets.setdefault(id(p.module), []).append((pname, row))
    seen: set[str] = set()

    def hook(key: str, module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        for pname, row in targets[int(key)]:
            if pname in seen:
                continue
            seen.add(pname)
            a = output.detach().float()
            if pname.endswith(":branch"):
                rows[row]["branch_std"] = float(a.std())
            else:
                rows[row].update(map_stats(a))

    modules = _unique_modules(points)
    with torch.no_grad(), forward_hooks(modules, hook):
        model(images)
    return list(rows.values())


def _unique_modules(points: Iterable[Point]) -> list[tuple[str, nn.Module]]:
    out: dict[int, nn.Module] = {}
    for p in points:
        out.setdefault(id(p.module), p.module)
    return [(str(k), m) for k, m in out.items()]


SAME_RATIO = 1.1
"""Mean layer responses within 10% of each other count as "about the same": the stds are over one batch of
validation images, and a few percent move with the batch."""


@dataclass(frozen=True)
class ResponseComparison:
    """The ResNet's residual-branch responses against its plain twin's (He et al. 2015, Fig. 7), from the
    ``branch_std`` rows of :func:`activation_stats` of the two models on the same images."""

    resnet_mean: float  # mean branch_std over the blocks both models have
    plain_mean: float
    blocks: int  # blocks compared
    resnet_smaller_in: int  # blocks where the ResNet's response is the smaller one
    factor: float  # the larger mean / the smaller mean (>= 1)
    smaller: str | None  # "ResNet", "plain", or None when within SAME_RATIO

    @property
    def holds(self) -> bool:
        """The paper's finding holds here: the ResNet's responses are the smaller ones."""
        return self.smaller == "ResNet"

    @property
    def sentence(self) -> str:
        nums = (f"The std of the residual branch F(x) averages {self.resnet_mean:.3g} in the ResNet and "
                f"{self.plain_mean:.3g} in the plain net over {self.blocks} block{'s' if self.blocks != 1 else ''} "
                f"(the ResNet's is smaller in {self.resnet_smaller_in} of {self.blocks})")
        if self.smaller is None:
            return (f"{nums}: about the same (within {100 * (SAME_RATIO - 1):.0f}%), so He et al.'s finding "
                    "(2015, Fig. 7: smaller responses in ResNets) does not show here.")
        if self.holds:
            return (f"{nums}: the ResNet's responses are {self.factor:.3g}× smaller, as He et al. (2015, Fig. 7) "
                    "found — its residual functions stay closer to zero.")
        return (f"{nums}: the ResNet's responses are {self.factor:.3g}× larger, the opposite of He et al.'s "
                "finding (2015, Fig. 7).")

    def to_dict(self) -> dict[str, Any]:
        return {"resnet_mean": self.resnet_mean, "plain_mean": self.plain_mean, "blocks": self.blocks,
                "resnet_smaller_in": self.resnet_smaller_in, "factor": self.factor, "smaller": self.smaller,
                "holds": self.holds, "sentence": self.sentence}


def compare_responses(resnet_rows: Sequence[dict[str, Any]],
                      plain_rows: Sequence[dict[str, Any]]) -> ResponseComparison | None:
    """Compare two models' ``branch_std`` rows (from :func:`activation_stats`) block by block, over the blocks
    both have; None when they share no block with a finite branch_std."""
    def by_name(rows: Sequence[dict[str, Any]]) -> dict[str, float]:
        return {r["name"]: float(r["branch_std"]) for r in rows
                if r.get("branch_std") is not None and math.isfinite(float(r["branch_std"]))}

    res, plain = by_name(resnet_rows), by_name(plain_rows)
    names = [n for n in res if n in plain]
    if not names:
        return None
    r_mean = sum(res[n] for n in names) / len(names)
    p_mean = sum(plain[n] for n in names) / len(names)
    lo, hi = sorted((r_mean, p_mean))
    factor = hi / lo if lo > 0 else math.inf
    smaller = None if factor < SAME_RATIO else ("ResNet" if r_mean < p_mean else "plain")
    return ResponseComparison(resnet_mean=r_mean, plain_mean=p_mean, blocks=len(names),
                              resnet_smaller_in=sum(res[n] < plain[n] for n in names), factor=factor,
                              smaller=smaller)
