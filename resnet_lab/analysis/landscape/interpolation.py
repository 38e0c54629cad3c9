"""Linear interpolation between two sets of weights (Goodfellow, Vinyals and Saxe 2015, "Qualitatively
characterizing neural network optimization problems", sec. 2).

The loss and accuracy of θ(α) = (1−α)θ_a + αθ_b for α from −extend to 1 + extend (α = 0 and 1 on the grid),
between a run's initial and trained weights or between two runs of one architecture (:func:`interpolate`).
Goodfellow et al. had no BatchNorm; here its running statistics are, by default, **recomputed** at every α
(reset, then a cumulative average over the same training batches the loss is measured on, in train mode, no
gradient — as ``torch.optim.swa_utils.update_bn`` does: :func:`recompute_bn`), because interpolated weights with
interpolated (or either end's) statistics normalise with statistics of other activations and show a barrier that
is an artefact of BN, not of the loss surface; ``bn="interpolate"`` interpolates the buffers along with the
weights instead, to see that effect.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import nn

from ...checks import MAX_SEED, check_int
from .surface import BATCH_SIZE_RANGE, MAX_BATCHES, Batch, _evaluate, _float, _floats, _jsonable

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

