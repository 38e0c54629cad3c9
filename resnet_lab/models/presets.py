"""Named model specs: torchvision's ImageNet ResNets, the paper's CIFAR ResNets, and their plain twins."""

from __future__ import annotations

import difflib
from types import MappingProxyType
from typing import Mapping

from typing import Any

from ..spec import MAX_STAGE_DEPTH, ModelSpec

_IMAGENET = {  # torchvision layouts (He et al. 2015, Table 1), option B, 1000 classes
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
    "resnet101": ("bottleneck", (3, 4, 23, 3)),
    "resnet152": ("bottleneck", (3, 8, 36, 3)),
}
_CIFAR_N = {20: 3, 32: 5, 44: 7, 56: 9, 110: 18, 1202: 200}  # depth 6n+2 (He et al. 2015, sec. 4.2)
# Plain-1202's first-layer gradient at initialisation is ~1e85 (measured in float64), beyond float32:
# it cannot take a single finite training step, so it is not offered as a preset. It can still be
# built with build_model("resnet1202", skip=False) for gradient-flow demonstrations.
_UNTRAINABLE_PLAIN = {"resnet1202"}


CIFAR_DEPTHS = (8, 14, 20, 32, 44, 56, 110)  # 6n+2 depths the experiment pages offer (He et al. use 20..110)
MAX_CIFAR_DEPTH = 6 * MAX_STAGE_DEPTH + 2  # the deepest 6n+2 net a spec can describe (1202)


def cifar_blocks(depth: Any, name: str = "depth") -> int:
    """n for a CIFAR ResNet depth 6n+2 (8 -> 1, 20 -> 3, 56 -> 9); a ValueError naming ``name`` otherwise."""
    if isinstance(depth, bool) or not isinstance(depth, int):
        raise ValueError(f"{name} must be an integer of the form 6n+2 (8, 14, 20, 32, 44, 56, 110, ...), "
                         f"got {depth!r}")
    if not 8 <= depth <= MAX_CIFAR_DEPTH or (depth - 2) % 6:
        raise ValueError(f"{name}={depth} is not a CIFAR ResNet depth: it must be 6n+2 between 8 and "
                         f"{MAX_CIFAR_DEPTH} (8, 14, 20, 32, 44, 56, 110, ...)")
    return (depth - 2) // 6


def cifar_spec(depth: int, skip: bool = True, width: int = 16, num_classes: int = 10, in_channels: int = 3
               ) -> ModelSpec:
    """He et al.'s CIFAR network of ``depth`` = 6n+2 weighted layers (sec. 4.2): a 3x3 stem conv, three stages of
    n basic blocks with ``width``, 2x and 4x channels, option-A (zero-padding) shortcuts and an fc layer.
    ``cifar_spec(56)`` is the ``resnet56`` preset; ``skip=False`` gives its plain twin."""
    n = cifar_blocks(depth)
    if not isinstance(skip, bool):
        raise ValueError(f"skip must be true or false, got {skip!r}")
    return ModelSpec(stem="cifar", block="basic", depths=(n, n, n), widths=(width, 2 * width, 4 * width),
                     shortcut="A", skip=skip, num_classes=num_classes, in_channels=in_channels)


def _build_presets() -> dict[str, ModelSpec]:
    presets: dict[str, ModelSpec] = {}
    for name, (block, depths) in _IMAGENET.items():
        presets[name] = ModelSpec(stem="imagenet", block=block, depths=depths, widths=(64, 128, 256, 512),
                                  shortcut="B", num_classes=1000)
    for depth in _CIFAR_N:
        presets[f"resnet{depth}"] = cifar_spec(depth)
    presets["preact_resnet18"] = ModelSpec(stem="cifar", block="basic", depths=(2, 2, 2, 2),
                                           widths=(64, 128, 256, 512), shortcut="B", preact=True, num_classes=10)
    for name, spec in list(presets.items()):
        if name not in _UNTRAINABLE_PLAIN:
            presets[plain_name(name)] = spec.replace(skip=False)
    return presets


def plain_name(name: str) -> str:
    """'resnet56' -> 'plain56', 'preact_resnet18' -> 'preact_plain18'."""
    return name.replace("resnet", "plain")


PRESETS: Mapping[str, ModelSpec] = MappingProxyType(_build_presets())

PRESET_GROUPS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "ImageNet (torchvision)": tuple(_IMAGENET),
    "CIFAR (He et al. 2015)": tuple(f"resnet{d}" for d in _CIFAR_N),
    "Pre-activation (He et al. 2016)": ("preact_resnet18",),
})


def get_preset(name: str) -> ModelSpec:
    """The preset of that name, or a ValueError that suggests the nearest names."""
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), PRESETS.keys(), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(PRESETS)}"
        raise ValueError(f"unknown model preset {name!r}{hint}") from None


def matching_presets(spec: ModelSpec) -> list[str]:
    """Names of the presets ``spec`` is, whatever its classes and input channels (they follow the dataset)."""
    return [name for name, p in PRESETS.items()
            if p.replace(num_classes=spec.num_classes, in_channels=spec.in_channels) == spec]


def model_label(spec: dict) -> str:
    """A stored spec in a few words for a table: its preset's name (``resnet20``) when it is one, whatever its classes
    and channels, else the description Build gives (``ModelSpec.describe``); "?" when this lab cannot read it."""
    try:
        model = ModelSpec.from_dict(spec)
    except ValueError:
        return "?"
    return next(iter(matching_presets(model)), None) or model.describe()


def preset_name(spec: ModelSpec) -> str | None:
    """The preset name of a spec that equals a preset exactly, else None."""
    for name, preset in PRESETS.items():
        if preset == spec:
            return name
    return None
