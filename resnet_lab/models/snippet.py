"""Short, runnable Python snippets that rebuild a spec with the public API."""

from __future__ import annotations

from ..spec import ModelSpec
from .presets import preset_name

_DEFAULT = ModelSpec()


def spec_code(spec: ModelSpec) -> tuple[str, str]:
    """(what to import from ``resnet_lab``, an expression for ``spec``): a preset by name, anything else as
    ``ModelSpec(...)`` with only the fields that differ from the defaults. Every value is a validated number,
    bool or choice, so the code is safe to paste anywhere."""
    name = preset_name(spec)
    if name is not None:
        return "PRESETS", f"PRESETS[{name!r}]"
    fields = []
    for key, value in spec.to_dict().items():
        default = getattr(_DEFAULT, key)
        if (tuple(value) if isinstance(value, list) else value) != default:
            fields.append(f"{key}={tuple(value)!r}" if isinstance(value, list) else f"{key}={value!r}")
    return "ModelSpec", "ModelSpec(" + ", ".join(fields) + ")"


def python_snippet(spec: ModelSpec) -> str:
    name, expr = spec_code(spec)
    lines = ["import torch", f"from resnet_lab import {name}, build_model", "", f"spec = {expr}"]
    size = spec.default_input_size
    lines += [
        "model = build_model(spec)                # " + spec.describe(),
        "twin = build_model(spec.twin())          # " + spec.twin().describe(),
        f"x = torch.randn(2, {spec.in_channels}, {size}, {size})",
        "print(model(x).shape, twin(x).shape)",
    ]
    return "\n".join(lines) + "\n"
