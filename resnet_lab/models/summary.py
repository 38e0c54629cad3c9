"""What a spec costs: parameters, FLOPs / multiply-adds, per-layer and per-stage tables, activation memory.

The model is built on PyTorch's ``meta`` device, so summarising ResNet-152 (or a 1202-layer net)
allocates no weights and takes about a second. FLOPs come from ``torch.utils.flop_counter``, which
counts convolutions and matrix multiplies as 2 FLOPs per multiply-add; papers (and torchvision's
``_ops`` metadata) quote multiply-adds, so both are reported. Norms, ReLUs, pooling and the residual
additions are not counted, as in the paper's Table 1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..fmt import format_bytes  # noqa: F401  (re-exported: callers import it from here)
from ..spec import ModelSpec
from .blocks import PadShortcut
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
    if isinstance(input_size, bool) or not isinstance(input_size, int):
        raise ValueError(f"input size must be an integer, got {input_size!r}")
    lo = max(MIN_INPUT_SIZE, spec.min_input_size)
    if not lo <= input_size <= MAX_INPUT_SIZE:
        raise ValueError(f"input size {input_size} is out of range for this model; allowed {lo}..{MAX_INPUT_SIZE}")


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

    leaves = list(leaf_modules(model))
    with torch.no_grad(), forward_hooks(leaves, record), forward_hooks(model.named_blocks(), record_block), \
            FlopCounterMode(display=False) as counter:
        model(x)  # call the model itself: the counter names modules from the outermost call

    flops_by_module = {k.removeprefix("ResNet.") if k != "ResNet" else "": sum(v.values())
                       for k, v in counter.get_flop_counts().items()}
    total_flops = int(counter.get_total_flops())

    layers = tuple(
        LayerRow(name=name, type=type(m).__name__, output_shape=shapes.get(name, ()),
                 params=sum(p.numel() for p in m.parameters(recurse=False)),
                 macs=int(flops_by_module.get(name, 0)) // 2)
        for name, m in leaves if name in shapes
    )

    stage_rows = [_stage_row("stem", 0, [r for r in layers if "." not in r.name and r.name in _STEM_NAMES])]
    for stage in model.stages:
        rows = [r for r in layers if r.name.startswith(stage + ".")]
        stage_rows.append(_stage_row(stage, len(getattr(model, stage)), rows))
    stage_rows.append(_stage_row("head", 0, [r for r in layers if r.name in _HEAD_NAMES]))

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


def _stage_row(name: str, n_blocks: int, rows: list[LayerRow]) -> StageRow:
    shaped = [r for r in rows if r.output_shape]
    return StageRow(name=name, blocks=n_blocks, output_shape=shaped[-1].output_shape if shaped else (),
                    params=sum(r.params for r in rows), macs=sum(r.macs for r in rows))


def _shortcut_kind(block: nn.Module) -> str:
    if not block.has_skip:
        return "none"
    if block.downsample is None:
        return "identity"
    return "zero-pad" if isinstance(block.downsample, PadShortcut) else "projection"


def format_count(n: float) -> str:
    """1_689_512 -> '1.69M', 4_089_184_256 -> '4.09G'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.0f}"
