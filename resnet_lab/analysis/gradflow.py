"""Gradient flow: how large the gradient of each weight layer is, and how the forward signal grows with depth.

For one batch, :func:`gradient_flow` takes a single cross-entropy loss in **train mode** (BatchNorm uses the
batch statistics, exactly as the first training step does), back-propagates it and records

* ``||dL/dW||`` (Frobenius norm) of every conv and linear weight, in depth order — the same layers and the
  same quantity the trainer logs every ``grad_norm_every`` steps (``models.layers.weight_layers``), and
* the standard deviation of the stem's output and of every residual block's output in that same forward
  pass (the forward signal by depth).

A ResNet passes the gradient back through its identity shortcuts, so its early layers get about as much
gradient as its last ones; its plain twin has to push it through every layer, and the per-layer norms
drift apart exponentially with depth (He et al. 2015, "degradation"; Balduzzi et al. 2017, "shattered
gradients"). With BatchNorm, the plain net's gradient at initialization mostly *grows* towards the input
(Yang et al. 2019), so "exploding" is what deep plain nets here tend to show — the verdict is computed from
the numbers, whatever they are.

Where this differs from the papers: the norms are of a single mini-batch's gradient at one point in
training (not averaged over steps), in float32 (the trainer uses bf16 autocast on CUDA), and the verdict
thresholds below are this lab's choice, not a published criterion.

Nothing here changes the caller's model: :func:`gradient_flow` works on a ``copy.deepcopy`` (weights,
``.grad``, BatchNorm running statistics and train/eval mode of the original stay as they were).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..data.augment import normalize
from ..data.registry import DataConfig, Dataset, dataset_info, stratified_order
from ..fmt import finite_or_none
from ..models import build_model
from ..models.hooks import forward_hooks
from ..models.presets import CIFAR_DEPTHS, cifar_spec
from ..models.summary import min_input_size
from ..spec import ModelSpec
from ..models.layers import weight_layers

DEPTHS = CIFAR_DEPTHS  # offered by the depth slider
MAX_BATCH = 1024  # images in one gradient-flow batch (one fwd/bwd of a 110-layer net on a CPU stays seconds)
FLOW_SIZE = 32  # px: the side an at-initialization batch has (CIFAR's), or the model's smallest when larger
FLOW_SUBSET = 512  # training images loaded (shapes: generated) for an at-initialization batch; the batch is drawn
# from these, so the page and the CLI measure on the very same images

VANISHING_RATIO = 0.01
"""First conv layer's gradient norm / last conv layer's below this: the gradient shrinks more than 100x on its
way down to the input, so with one learning rate the early layers barely move — "vanishing"."""
EXPLODING_RATIO = 100.0
"""First / last above this: the gradient grows more than 100x on its way down — "exploding" (a learning rate that
suits the last layers is two orders of magnitude too large for the first ones). Why 100 and not 10: networks that
train without trouble are uneven by 10x or more at initialization (measured here on a 64-image shapes batch, init
seeds 0-3: ResNet-110 9x-40x, ResNet-56 11x, plain-20 8x), so a 10x line would call trainable networks broken;
plain-56 measures 660x-5,600x on the same batch and seeds."""
SPREAD_LIMIT = 1000.0
"""Even with first and last within 100x of each other, conv layers in between whose gradients differ by more than
1000x (``conv_spread``) are not healthy: the verdict then names the side the worst layer is off to."""


@dataclass(frozen=True)
class Verdict:
    word: str  # "vanishing", "exploding" or "healthy"
    sentence: str  # plain words with the numbers that led to the word


@dataclass(frozen=True)
class GradFlow:
    """One model's gradient flow on one batch (all lists in depth order, input side first)."""

    names: tuple[str, ...]  # weight layers, e.g. "conv1", "layer2.0.conv1", "fc" (no ".weight")
    kinds: tuple[str, ...]  # "conv" or "linear", one per name
    grad_norms: tuple[float, ...]  # ||dL/dW|| (Frobenius norm of the weight's gradient), one per name
    act_names: tuple[str, ...]  # "stem", then every block: "layer1.0", ..., in depth order
    act_stds: tuple[float, ...]  # std of that module's output over the whole batch (all N*C*H*W values)
    loss: float  # mean cross-entropy of the batch (train mode)

    def __post_init__(self) -> None:
        if not (len(self.names) == len(self.kinds) == len(self.grad_norms)):
            raise ValueError("names, kinds and grad_norms must have one entry per layer")
        if len(self.act_names) != len(self.act_stds):
            raise ValueError("act_names and act_stds must have the same length")
        if any(k not in ("conv", "linear") for k in self.kinds):
            raise ValueError(f"kinds must be 'conv' or 'linear', got {sorted(set(self.kinds))}")

    @property
    def conv_norms(self) -> tuple[float, ...]:
        """Gradient norms of the conv layers only (the fc layer excluded), in depth order."""
        return tuple(g for g, k in zip(self.grad_norms, self.kinds) if k == "conv")

    @property
    def conv_names(self) -> tuple[str, ...]:
        return tuple(n for n, k in zip(self.names, self.kinds) if k == "conv")

    @property
    def finite(self) -> bool:
        """True when the loss and every gradient norm are finite numbers."""
        return math.isfinite(self.loss) and all(math.isfinite(g) for g in self.grad_norms)

    @property
    def conv_spread(self) -> float:
        """max / min gradient norm over the conv layers (1 = perfectly even; inf when one got no gradient;
        nan when a norm is not finite or there are no conv layers)."""
        convs = self.conv_norms
        if not convs or not all(math.isfinite(g) for g in convs):
            return math.nan
        return _ratio(max(convs), min(convs))

    @property
    def first_last_ratio(self) -> float:
        """First conv layer's gradient norm / last conv layer's. Below 1 the gradient shrinks on its way down to
        the input, above 1 it grows (nan when there is no conv layer or a norm is not finite)."""
        convs = self.conv_norms
        if not convs or not all(math.isfinite(g) for g in (convs[0], convs[-1])):
            return math.nan
        return _ratio(convs[0], convs[-1])

    def verdict(self) -> Verdict:
        """"vanishing", "exploding" or "healthy", with a sentence that gives the numbers behind it.

        Rules, in order: a non-finite loss or gradient is "exploding"; a first/last ratio below
        ``VANISHING_RATIO`` is "vanishing", above ``EXPLODING_RATIO`` "exploding"; otherwise a ``conv_spread``
        above ``SPREAD_LIMIT`` is named by the layer furthest from the last conv ("exploding" when that
        layer's gradient is larger, "vanishing" when smaller); everything else is "healthy".
        """
        if not self.finite:
            bad = [n for n, g in zip(self.names, self.grad_norms) if not math.isfinite(g)]
            where = f"the gradient of {bad[0]}" + (f" (and {len(bad) - 1} more layers)" if len(bad) > 1 else "") \
                if bad else "the loss"
            return Verdict("exploding", f"{where[0].upper()}{where[1:]} is not a finite number (overflow): exploding.")
        convs = self.conv_norms
        if not convs:
            return Verdict("healthy", "There is no conv layer to compare: nothing to judge.")
        r, spread = self.first_last_ratio, self.conv_spread
        share = f"The first conv layer gets {_times(r)} the last conv layer's gradient"
        spread_txt = f"conv spread {_big(spread)}×"
        if r < VANISHING_RATIO:
            return Verdict("vanishing", f"{share} ({spread_txt}): vanishing.")
        if r > EXPLODING_RATIO:
            return Verdict("exploding", f"{share} ({spread_txt}): exploding.")
        if spread > SPREAD_LIMIT:
            last = convs[-1]
            lo, hi = min(convs), max(convs)
            up, down = _ratio(hi, last), _ratio(last, lo)
            if up >= down:
                name = self.conv_names[convs.index(hi)]
                return Verdict("exploding", f"{share}, but {name} gets {_big(up)}× the last conv layer's gradient "
                                            f"({spread_txt}): exploding in between.")
            name = self.conv_names[convs.index(lo)]
            return Verdict("vanishing", f"{share}, but {name} gets only {_times(_ratio(lo, last))} the last conv "
                                        "layer's gradient "
                                        f"({spread_txt}): vanishing in between.")
        return Verdict("healthy", f"{share} ({spread_txt}): healthy.")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (non-finite numbers become None, which JSON can hold)."""
        v = self.verdict()
        return {
            "layers": [{"name": n, "kind": k, "grad_norm": finite_or_none(g)}
                       for n, k, g in zip(self.names, self.kinds, self.grad_norms)],
            "activation_std": [{"name": n, "std": finite_or_none(s)} for n, s in zip(self.act_names, self.act_stds)],
            "loss": finite_or_none(self.loss),
            "conv_spread": finite_or_none(self.conv_spread),
            "first_last_ratio": finite_or_none(self.first_last_ratio),
            "verdict": {"word": v.word, "sentence": v.sentence},
        }


@dataclass(frozen=True)
class SweepPoint:
    depth: int  # weighted layers of the CIFAR net (6n+2)
    resnet: GradFlow  # the ResNet of that depth
    plain: GradFlow  # its plain twin, same initialization seed, same batch


def _ratio(a: float, b: float) -> float:
    if b == 0:
        return math.inf if a > 0 else math.nan
    return a / b


def _big(v: float) -> str:
    """A factor for people: 3.2, 41, 2,300, 1.2e+07."""
    if not math.isfinite(v):
        return "∞" if v > 0 else "?"
    if v < 10:
        return f"{v:.2g}" if v < 1 else f"{v:.2f}".rstrip("0").rstrip(".")
    if v < 1e6:
        return f"{v:,.0f}"
    return f"{v:.2g}"


def _times(r: float) -> str:
    """A ratio as "1/250 of" / "0.8×" / "37×" style words (used as '... gets X the ...')."""
    if not math.isfinite(r):
        return "an unbounded multiple of" if r > 0 else "an undefined share of"
    if r == 0:
        return "none of"
    if r < 0.5:
        return f"1/{_big(1 / r)} of"
    return f"{_big(r)}×"


# --- specs and batches ---------------------------------------------------------------------------


def flow_data(name: str = "shapes", spec: ModelSpec | None = None) -> DataConfig:
    """The data an at-initialization measurement uses: ``FLOW_SUBSET`` training images of ``name`` (no
    augmentation, data seed 0) at ``FLOW_SIZE`` (32 px), or at the smallest size the lab uses ``spec`` at on this
    dataset (:func:`resnet_lab.models.summary.min_input_size`) when that is larger."""
    info = dataset_info(name)
    size = max(FLOW_SIZE, min_input_size(spec, info) if spec is not None else info.min_size)
    if size > info.max_size:
        raise ValueError(f"{spec.describe() if spec else 'the model'} needs images of at least {size} px; {name} "
                         f"goes up to {info.max_size} px")
    return DataConfig(name=name, image_size=size, train_subset=FLOW_SUBSET, augment=False, seed=0)


def flow_batch(dataset: Dataset, n: int = 64, seed: int = 0, mean: Sequence[float] | None = None,
               std: Sequence[float] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed, class-balanced batch of ``n`` training images: (x ``n x C x H x W`` normalized, y ``n`` int64).

    The images are the first ``n`` of ``stratified_order(y_train, seed)`` (classes dealt round-robin, random
    within a class), kept in dataset order, normalized with the dataset's mean/std (or the given ones, e.g. a
    checkpoint's). Same dataset, ``n`` and ``seed``: the same batch.
    """
    total = int(dataset.y_train.shape[0])
    if isinstance(n, bool) or not isinstance(n, int) or not 2 <= n <= min(MAX_BATCH, total):
        raise ValueError(f"batch size must be an integer in 2..{min(MAX_BATCH, total)} (BatchNorm in train mode needs "
                         f"at least 2 images; the training split has {total}), got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    idx = stratified_order(dataset.y_train, seed)[:n].sort().values
    m = dataset.mean if mean is None else tuple(mean)
    s = dataset.std if std is None else tuple(std)
    return normalize(dataset.x_train[idx], m, s), dataset.y_train[idx].clone()


# --- the measurement -----------------------------------------------------------------------------


def _check_batch(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"x must be a batch N x C x H x W, got {getattr(x, 'shape', type(x).__name__)}")
    if not isinstance(y, torch.Tensor) or y.dim() != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"y must hold one class index per image ({x.shape[0]}), got {getattr(y, 'shape', y)}")
    if x.shape[0] < 2:
        raise ValueError("the batch needs at least 2 images: BatchNorm in train mode cannot normalize one")
    spec = getattr(model, "spec", None)
    if isinstance(spec, ModelSpec):
        if spec.in_channels != x.shape[1]:
            raise ValueError(f"the model takes {spec.in_channels}-channel images but the batch has {x.shape[1]}")
        lo = min_input_size(spec)
        if x.shape[-1] < lo or x.shape[-2] < lo:
            raise ValueError(f"{x.shape[-2]}x{x.shape[-1]} px images are too small for this model: it needs at "
                             f"least {lo} px")
        if int(y.max()) >= spec.num_classes or int(y.min()) < 0:
            raise ValueError(f"labels must be in 0..{spec.num_classes - 1} for a model with {spec.num_classes} "
                             f"classes, got {int(y.min())}..{int(y.max())}")


def _activation_points(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """("stem", the stem's last module) then every residual block, in depth order."""
    points: list[tuple[str, nn.Module]] = []
    if hasattr(model, "maxpool"):
        points.append(("stem", model.maxpool))  # the stem is conv1 -> bn1 -> relu -> maxpool
    if hasattr(model, "named_blocks"):
        points.extend(model.named_blocks())
    return points


def _kind(model: nn.Module, name: str) -> str:
    module = model.get_submodule(name)
    return "linear" if isinstance(module, nn.Linear) else "conv"


def _measure(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> GradFlow:
    """The measurement itself, on ``model`` in place (it is put in train mode and its .grad overwritten)."""
    _check_batch(model, x, y)
    model.train()
    model.requires_grad_(True)
    model.zero_grad(set_to_none=True)
    device = next(model.parameters()).device
    x, y = x.to(device=device, dtype=torch.float32), y.to(device)
    stds: dict[str, float] = {}

    def record(name: str, _m: nn.Module, _inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        stds[name] = float(out.detach().float().std(correction=0))

    points = _activation_points(model)
    with torch.enable_grad(), forward_hooks(points, record):
        loss = F.cross_entropy(model(x).float(), y)
    loss.backward()
    names, params = weight_layers(model)
    if params:
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
        norms = torch.stack(torch._foreach_norm(grads)).float().cpu().tolist()
    else:
        norms = []
    return GradFlow(names=tuple(names), kinds=tuple(_kind(model, n) for n in names),
                    grad_norms=tuple(float(g) for g in norms),
                    act_names=tuple(n for n, _ in points if n in stds),
                    act_stds=tuple(stds[n] for n, _ in points if n in stds),
                    loss=float(loss.detach()))


def gradient_flow(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> GradFlow:
    """Per-layer gradient norms and activation stds of ``model`` on one batch (x normalized ``N x C x H x W``,
    y ``N`` class indices, N >= 2): one cross-entropy forward/backward in train mode, as a first training step.

    Works on a deep copy: the caller's model (weights, ``.grad``, BatchNorm running statistics, train/eval mode)
    is left exactly as it was, so a shared, read-only model can be passed in.
    """
    return _measure(copy.deepcopy(model), x, y)


def init_flow(spec: ModelSpec, x: torch.Tensor, y: torch.Tensor, seed: int = 0,
              device: torch.device | str | None = None) -> GradFlow:
    """Gradient flow of a fresh ``spec`` model initialized as the trainer does it (``torch.manual_seed(seed)``
    right before ``build_model``), so a ResNet and its plain twin measured with one seed start from the same
    weights. The global RNG is left untouched (``fork_rng``). ``device``: where to compute (default: x's)."""
    if not isinstance(spec, ModelSpec):
        raise ValueError(f"init_flow needs a ModelSpec, got {type(spec).__name__}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(spec)
    return _measure(model.to(device if device is not None else x.device), x, y)


def depth_sweep(depths: Sequence[int], x: torch.Tensor, y: torch.Tensor, num_classes: int, seed: int = 0,
                width: int = 16, progress: Callable[[int, int], None] | None = None) -> list[SweepPoint]:
    """Gradient flow at initialization of the CIFAR ResNet and its plain twin at each depth (same seed, same
    batch): the data for a spread-vs-depth chart. ``progress(done, total)`` is called after each model."""
    if not depths:
        raise ValueError("give at least one depth")
    specs = [cifar_spec(d, width=width, num_classes=num_classes, in_channels=int(x.shape[1])) for d in depths]
    points = []
    for i, (d, spec) in enumerate(zip(depths, specs)):
        res = init_flow(spec, x, y, seed)
        if progress is not None:
            progress(2 * i + 1, 2 * len(specs))
        plain = init_flow(spec.twin(), x, y, seed)
        if progress is not None:
            progress(2 * i + 2, 2 * len(specs))
        points.append(SweepPoint(d, res, plain))
    return points
