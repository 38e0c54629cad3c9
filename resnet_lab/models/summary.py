"""What a spec costs: parameters, FLOPs / multiply-adds, per-layer and per-stage tables, activation memory.

The model is built on PyTorch's ``meta`` device, so summarising ResNet-152 (or a 1202-layer net)
allocates no weights and takes about a second. FLOPs come from ``torch.utils.flop_counter``, which
counts convolutions and matrix multiplies as 2 FLOPs per multiply-add; papers (and torchvision's
``_ops`` metadata) quote multiply-adds, so both are reported. Norms, ReLUs, pooling and the residual
additions are not counted, as in the paper's Table 1.

:func:`shape_break` says where a spec stops making sense at an input size that is too small, and
:func:`smallest_input_size` which size is enough (see there for what "too small" means: PyTorch itself
never refuses, it pads a 1-pixel map back to 1 pixel). :func:`min_input_size` is the one smallest size the lab
uses a spec at — Build's checks and fix, Train's size widget and the launcher's check, share links, gradient
flow: that number and no other.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Protocol

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..fmt import format_bytes, format_count  # noqa: F401  (re-exported: callers import them from here)
from ..spec import ModelSpec
from .blocks import PadShortcut, ResidualBlock
from .hooks import forward_hooks, leaf_modules
from .resnet import ResNet

MIN_INPUT_SIZE = 8
MAX_INPUT_SIZE = 2048
MAX_BATCH = 4096
BYTES_PER_FLOAT = 4


@dataclass(frozen=True)
class LayerRow:
    name: str  # module path, e.g. "layer2.0.conv1"
    type: str  # module class, e.g. "Conv2d"
    output_shape: tuple[int, ...]  # per image (C, H, W) or (features,)
    params: int  # parameters owned by this layer
    macs: int  # multiply-adds per image


@dataclass(frozen=True)
class StageRow:
    name: str  # "stem", "layer1".., "head"
    blocks: int  # residual blocks in the stage (0 for stem and head)
    output_shape: tuple[int, ...]  # per image
    params: int
    macs: int  # multiply-adds per image


@dataclass(frozen=True)
class BlockRow:
    name: str  # "layer1.0"
    in_shape: tuple[int, ...]  # per image
    out_shape: tuple[int, ...]  # per image
    shortcut: str  # "identity", "projection", "zero-pad" or "none" (plain)


@dataclass(frozen=True)
class ModelSummary:
    spec: ModelSpec
    input_size: int  # image side in pixels
    batch_size: int  # used for the memory estimate only
    params: int
    trainable_params: int
    macs: int  # multiply-adds per image
    flops: int  # FLOPs per image (2 per multiply-add, as torch.utils.flop_counter counts)
    depth: int  # weighted layers on the main path, as the paper counts
    feature_shape: tuple[int, ...]  # output of forward_features, per image
    activation_bytes: int  # float32 outputs of every layer for the whole batch (what training keeps)
    param_bytes: int  # float32 weights
    layers: tuple[LayerRow, ...]
    stages: tuple[StageRow, ...]
    blocks: tuple[BlockRow, ...]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["spec"] = self.spec.to_dict()
        return d


def check_input_size(spec: ModelSpec, input_size: int) -> None:
    """Refuse an input size this lab does not summarise for ``spec``: not an integer, outside
    ``MIN_INPUT_SIZE..MAX_INPUT_SIZE``, or so small that a downsampling layer gets a 1-pixel map
    (the message then names that layer, see :func:`shape_break`)."""
    if isinstance(input_size, bool) or not isinstance(input_size, int):
        raise ValueError(f"input size must be an integer, got {input_size!r}")
    lo = min_input_size(spec)
    if not lo <= input_size <= MAX_INPUT_SIZE:
        brk = shape_break(spec, input_size) if 1 <= input_size < lo else None
        why = f" — {brk.message()}" if brk is not None else ""
        raise ValueError(f"input size {input_size} is out of range for this model; allowed {lo}..{MAX_INPUT_SIZE}"
                         + why)


def summarize(spec: ModelSpec, input_size: int | None = None, batch_size: int = 1) -> ModelSummary:
    """Summarise ``spec`` for square images of side ``input_size`` (default: the stem's own size)."""
    input_size = spec.default_input_size if input_size is None else input_size
    check_input_size(spec, input_size)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or not 1 <= batch_size <= MAX_BATCH:
        raise ValueError(f"batch size must be an integer in 1..{MAX_BATCH}, got {batch_size!r}")

    with torch.device("meta"):
        model = ResNet(spec)
        x = torch.empty(1, spec.in_channels, input_size, input_size)
    model.eval()

    shapes: dict[str, tuple[int, ...]] = {}
    act_elems = 0

    def record(name: str, module: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        nonlocal act_elems
        shapes[name] = tuple(out.shape[1:])
        if not getattr(module, "inplace", False) and not isinstance(module, nn.Identity):
            act_elems += out[0].numel()

    block_io: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}

    def record_block(name: str, module: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        block_io[name] = (tuple(inputs[0].shape[1:]), tuple(out.shape[1:]))

    # A stage's output is what its Sequential returns, not the last-registered leaf: a reused module (a
    # pre-activation bottleneck's relu runs before conv3) keeps the shape of its last call, not the block's.
    stage_io: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}

    def record_stage(name: str, module: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        stage_io[name] = (tuple(inputs[0].shape[1:]), tuple(out.shape[1:]))

    leaves = list(leaf_modules(model))
    stage_modules = [(name, getattr(model, name)) for name in model.stages]
    with torch.no_grad(), forward_hooks(leaves, record), forward_hooks(model.named_blocks(), record_block), \
            forward_hooks(stage_modules, record_stage), FlopCounterMode(display=False) as counter:
        logits = model(x)  # call the model itself: the counter names modules from the outermost call

    flops_by_module = {k.removeprefix("ResNet.") if k != "ResNet" else "": sum(v.values())
                       for k, v in counter.get_flop_counts().items()}
    total_flops = int(counter.get_total_flops())

    layers = tuple(
        LayerRow(name=name, type=type(m).__name__, output_shape=shapes.get(name, ()),
                 params=sum(p.numel() for p in m.parameters(recurse=False)),
                 macs=int(flops_by_module.get(name, 0)) // 2)
        for name, m in leaves if name in shapes
    )

    first = model.stages[0]
    stage_rows = [_stage_row("stem", 0, [r for r in layers if "." not in r.name and r.name in _STEM_NAMES],
                             stage_io[first][0])]
    for stage in model.stages:
        rows = [r for r in layers if r.name.startswith(stage + ".")]
        stage_rows.append(_stage_row(stage, len(getattr(model, stage)), rows, stage_io[stage][1]))
    stage_rows.append(_stage_row("head", 0, [r for r in layers if r.name in _HEAD_NAMES], tuple(logits.shape[1:])))

    blocks = tuple(
        BlockRow(name=name, in_shape=block_io[name][0], out_shape=block_io[name][1], shortcut=_shortcut_kind(block))
        for name, block in model.named_blocks()
    )
    params = sum(p.numel() for p in model.parameters())
    return ModelSummary(
        spec=spec, input_size=input_size, batch_size=batch_size,
        params=params, trainable_params=sum(p.numel() for p in model.parameters() if p.requires_grad),
        macs=total_flops // 2, flops=total_flops, depth=spec.depth, feature_shape=stage_rows[-2].output_shape,
        activation_bytes=act_elems * batch_size * BYTES_PER_FLOAT, param_bytes=params * BYTES_PER_FLOAT,
        layers=layers, stages=tuple(stage_rows), blocks=blocks,
    )


_STEM_NAMES = ("conv1", "bn1", "relu", "maxpool")
_HEAD_NAMES = ("bn_final", "relu_final", "avgpool", "fc")


def _stage_row(name: str, n_blocks: int, rows: list[LayerRow], output_shape: tuple[int, ...]) -> StageRow:
    """One stage's row: its layers' parameters and multiply-adds summed, and the shape the stage hands on."""
    return StageRow(name=name, blocks=n_blocks, output_shape=output_shape,
                    params=sum(r.params for r in rows), macs=sum(r.macs for r in rows))


def _shortcut_kind(block: nn.Module) -> str:
    if not block.has_skip:
        return "none"
    if block.downsample is None:
        return "identity"
    return "zero-pad" if isinstance(block.downsample, PadShortcut) else "projection"


# --- where a too-small input stops making sense -------------------------------------------------

@dataclass(frozen=True)
class ShapeStep:
    name: str  # a stem layer ("conv1", "maxpool"), a block ("layer2.0"), or the layer that breaks
    type: str  # module class, e.g. "MaxPool2d", "BasicBlock"
    in_shape: tuple[int, ...]  # per image (C, H, W)
    out_shape: tuple[int, ...]  # per image (C, H, W)
    stride: int  # how many times it means to shrink the side (1: keeps it)


@dataclass(frozen=True)
class ShapeBreak:
    """The first downsampling layer that is handed a 1-pixel map at ``input_size``, and what would work."""

    spec: ModelSpec
    input_size: int  # the image side asked for, px
    layer: str  # module path of the layer that breaks, e.g. "layer4.0.conv1"
    type: str  # its class, e.g. "Conv2d"
    kernel: int  # its kernel side (3 for a 3x3 conv or max-pool)
    in_shape: tuple[int, ...]  # what it gets, per image (C, 1, 1) or (C, 1, W)
    out_shape: tuple[int, ...]  # what it gives: the same 1-pixel side again
    halved_by: tuple[str, ...]  # the downsampling layers before it, in order
    min_input_size: int  # the smallest side the lab uses the spec at (:func:`min_input_size`): none breaks there
    max_stages: int  # most stages (same stem, same first stages) that work at ``input_size``; 0: none
    steps: tuple[ShapeStep, ...]  # stem layers and whole blocks before it, then the layer itself

    def message(self) -> str:
        """One paragraph for a person: the layer, its shapes, why, and the two ways out."""
        shape = " × ".join(map(str, self.in_shape))
        out = " × ".join(map(str, self.out_shape))
        what = "window" if "Pool" in self.type else "kernel"
        before = (f"the {self.input_size} px input is down to 1 px after {len(self.halved_by)} "
                  f"halving{'s' if len(self.halved_by) != 1 else ''} ({', '.join(self.halved_by)})"
                  if self.halved_by else f"the input is only {self.input_size} px")
        fix = f"use at least {self.min_input_size} px"
        if 0 < self.max_stages < len(self.spec.depths):
            fix += f", or at most {self.max_stages} stage{'s' if self.max_stages != 1 else ''}"
        return (f"{self.layer}: gets {shape} and has nothing left to halve — it returns {out} again, each "
                f"{self.kernel}×{self.kernel} {what} seeing one pixel and padding. {before[0].upper()}{before[1:]}; "
                f"{fix}.")


def _stride(module: nn.Module) -> int:
    s = getattr(module, "stride", 1)
    return int(max(s)) if isinstance(s, tuple) else int(s)


def _kernel(module: nn.Module) -> int:
    k = getattr(module, "kernel_size", 1)
    return int(max(k)) if isinstance(k, tuple) else int(k)


_Call = tuple[str, nn.Module, tuple[int, ...], tuple[int, ...]]  # (name, module, input shape, output shape)


def _trace(spec: ModelSpec, input_size: int, with_blocks: bool = False) -> list[_Call]:
    """Every leaf module (and block) call of one forward pass of ``spec``'s model on the ``meta`` device (no
    weights allocated), in the order they finish (a block finishes after its layers): PyTorch's own shapes."""
    with torch.device("meta"):
        model = ResNet(spec)
        x = torch.empty(1, spec.in_channels, input_size, input_size)
    model.eval()  # train-mode BatchNorm refuses one value per channel; the shapes are the same either way
    calls: list[_Call] = []

    def record(name: str, module: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        calls.append((name, module, tuple(inputs[0].shape[1:]), tuple(out.shape[1:])))

    named = list(leaf_modules(model)) + (list(model.named_blocks()) if with_blocks else [])
    with torch.no_grad(), forward_hooks(named, record):
        model(x)
    return calls


def _halves(name: str, module: nn.Module) -> bool:
    """A downsampling layer on the main path (a shortcut's downsampling runs beside it, not after it)."""
    return ".downsample" not in name and not isinstance(module, ResidualBlock) and _stride(module) > 1


def _collapse(calls: list[_Call]) -> int | None:
    """Index of the first main-path downsampling layer handed a 1-pixel side, or None."""
    return next((i for i, (name, m, shape_in, _) in enumerate(calls)
                 if _halves(name, m) and min(shape_in[1:]) < 2), None)


def shape_break(spec: ModelSpec, input_size: int) -> ShapeBreak | None:
    """Where ``spec`` stops making sense for square images of side ``input_size``, or None when it does not.

    Every downsampling layer of these nets (the stem's 7×7/2 conv and 3×3/2 max-pool, the strided conv of
    each later stage's first block, its projection or option-A shortcut) pads, so PyTorch halves a side
    *rounding up*: ⌊(h + 2p − k)/2⌋ + 1 = ⌈h/2⌉. A map never shrinks to 0 pixels and the model runs at any
    size; what breaks is the meaning. The first downsampling layer on the main path that is handed a 1-pixel
    side cannot halve it: it returns 1 pixel again, its kernel seeing one real pixel and padding, and from
    there on the network sees no spatial layout at all (every later 3×3 conv acts as a 1×1 conv). That layer
    is what this reports. Where the paper's arithmetic says "16 px halved 5 times is half a pixel", PyTorch
    says "1 px from the 4th halving on": the shapes here are PyTorch's, from a forward pass on the ``meta``
    device (no weights), not arithmetic of our own.
    """
    check_size_range(input_size)
    if not _collapses(_chain(_skeleton(spec)), input_size):  # the cheap answer first: most sizes are fine
        return None
    calls = _trace(spec, input_size, with_blocks=True)
    at = _collapse(calls)
    if at is None:
        return None
    name, module, shape_in, shape_out = calls[at]
    steps = [ShapeStep(n, type(m).__name__, i, o, max(_stride(c) for c in m.modules()))
             for n, m, i, o in calls[:at]
             if isinstance(m, ResidualBlock) or n in _STEM_NAMES and not isinstance(m, nn.Identity)]
    steps.append(ShapeStep(name, type(module).__name__, shape_in, shape_out, _stride(module)))
    return ShapeBreak(spec=spec, input_size=input_size, layer=name, type=type(module).__name__, kernel=_kernel(module),
                      in_shape=shape_in, out_shape=shape_out,
                      halved_by=tuple(n for n, m, _, _ in calls[:at] if _halves(n, m)),
                      min_input_size=min_input_size(spec), max_stages=_max_stages(spec, input_size),
                      steps=tuple(steps))


def check_size_range(input_size: int) -> None:
    """An image side that can be traced at all: an integer in 1..MAX_INPUT_SIZE."""
    if isinstance(input_size, bool) or not isinstance(input_size, int) or not 1 <= input_size <= MAX_INPUT_SIZE:
        raise ValueError(f"input size must be an integer in 1..{MAX_INPUT_SIZE}, got {input_size!r}")


def _skeleton(spec: ModelSpec, stages: int | None = None) -> ModelSpec:
    """The same stem and (first ``stages``) stages, one block each, one channel wide. Only a stage's first
    block downsamples and channels never change a side, so every downsampling layer sees the sides it sees in
    ``spec``, for a fraction of the cost (and few distinct skeletons to cache)."""
    n = len(spec.depths) if stages is None else stages
    return spec.replace(depths=(1,) * n, widths=(1,) * n, in_channels=1, num_classes=1)


@dataclass(frozen=True)
class _SideOp:
    """A main-path conv or pool, as far as the side of its input is concerned."""

    stride: int
    kernel: int
    padding: int
    dilation: int
    ceil_mode: bool

    def side(self, h: int) -> int:
        """PyTorch's documented output side (``nn.Conv2d``, ``nn.MaxPool2d``): ⌊(h + 2p − d(k − 1) − 1)/s⌋ + 1
        (rounded up instead with ``ceil_mode``)."""
        span = h + 2 * self.padding - self.dilation * (self.kernel - 1) - 1
        return (-(-span // self.stride) if self.ceil_mode else span // self.stride) + 1


def _first(v: Any) -> int:
    return int(v[0]) if isinstance(v, tuple) else int(v)


@lru_cache(maxsize=256)
def _chain(skeleton: ModelSpec) -> tuple[_SideOp, ...]:
    """The convs and pools a side goes through on the main path, in order (traced once, on ``meta``)."""
    return tuple(_SideOp(_first(m.stride), _first(m.kernel_size), _first(m.padding), _first(m.dilation),
                         bool(getattr(m, "ceil_mode", False)))
                 for name, m, _, _ in _trace(skeleton, 64)
                 if ".downsample" not in name and isinstance(m, (nn.Conv2d, nn.MaxPool2d)))


def _collapses(chain: tuple[_SideOp, ...], side: int) -> bool:
    """Whether a downsampling op of ``chain`` is handed a 1-pixel side when the input has ``side`` px."""
    for op in chain:
        if op.stride > 1 and side < 2:
            return True
        side = op.side(side)
    return False


@lru_cache(maxsize=512)
def smallest_input_size(spec: ModelSpec) -> int:
    """The smallest image side at which no downsampling layer of ``spec`` is handed a 1-pixel map
    (:func:`shape_break` finds nothing). With ⌈h/2⌉ halving and d downsampling layers that is 2^(d−1) + 1:
    17 px for ResNet-18, whose 4th halving leaves 2 px for its 5th.

    This is less than ``ModelSpec.min_input_size`` (2^d, the paper's "every stage keeps a whole pixel" count,
    which rounds down where PyTorch rounds up)."""
    chain = _chain(_skeleton(spec))
    return next(side for side in range(1, MAX_INPUT_SIZE + 1) if not _collapses(chain, side))


class HasMinSize(Protocol):
    """What :func:`min_input_size` reads of a dataset (a ``data.types.DatasetInfo``: models/ does not import data/)."""

    min_size: int  # the dataset's smallest image_size, px


def min_input_size(spec: ModelSpec, dataset: HasMinSize | None = None) -> int:
    """THE smallest image side the lab uses ``spec`` at, px: the lab's floor (``MIN_INPUT_SIZE``), and the
    model's own (:func:`smallest_input_size`: no downsampling layer is handed a 1-pixel map), and with ``dataset``
    (a ``DatasetInfo``) that dataset's smallest ``image_size``. Build (its checks and "Use N px"), Train (the size
    widget and the check every training request passes), share links and gradient flow all use this number.

    ResNet-20 (CIFAR stem): 8 (the floor); ResNet-18: 17; on shapes (16 px and up) ResNet-20 takes 16.
    ``ModelSpec.min_input_size`` (2^d, the paper's count) is larger and is not what the lab checks."""
    lo = max(MIN_INPUT_SIZE, smallest_input_size(spec))
    if dataset is None:
        return lo
    floor = getattr(dataset, "min_size", None)
    if isinstance(floor, bool) or not isinstance(floor, int):
        raise TypeError(f"min_input_size needs a dataset's info (with min_size), got {type(dataset).__name__}")
    return max(lo, floor)


def _max_stages(spec: ModelSpec, input_size: int) -> int:
    """The most leading stages of ``spec`` that work at ``input_size`` (0: not even one)."""
    return next((n for n in range(len(spec.depths), 0, -1)
                 if not _collapses(_chain(_skeleton(spec, n)), input_size)), 0)
