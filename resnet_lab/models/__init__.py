"""Model building: blocks, the ResNet, presets, and summaries."""

from __future__ import annotations

from typing import Any, Mapping

from ..spec import ModelSpec
from .blocks import BasicBlock, Bottleneck, PadShortcut, ResidualBlock
from .presets import PRESET_GROUPS, PRESETS, get_preset, plain_name, preset_name
from .resnet import ResNet, set_branch, set_skip


def resolve_spec(name_or_spec: str | ModelSpec | Mapping[str, Any], **overrides: Any) -> ModelSpec:
    """A preset name, a spec or a spec dict, with field overrides applied and validated."""
    if isinstance(name_or_spec, ModelSpec):
        spec = name_or_spec
    elif isinstance(name_or_spec, str):
        spec = get_preset(name_or_spec)
    elif isinstance(name_or_spec, Mapping):
        spec = ModelSpec.from_dict(name_or_spec)
    else:
        raise ValueError(f"expected a preset name, a ModelSpec or a dict, got {type(name_or_spec).__name__}")
    return spec.replace(**overrides) if overrides else spec


def build_model(name_or_spec: str | ModelSpec | Mapping[str, Any], **overrides: Any) -> ResNet:
    """Build a ResNet (or plain twin) from a preset name or spec, e.g. ``build_model("resnet56", skip=False)``."""
    return ResNet(resolve_spec(name_or_spec, **overrides))


__all__ = [
    "BasicBlock", "Bottleneck", "PadShortcut", "ResidualBlock", "ResNet", "ModelSpec",
    "PRESETS", "PRESET_GROUPS", "build_model", "resolve_spec", "get_preset", "plain_name", "preset_name",
    "set_skip", "set_branch",
]
