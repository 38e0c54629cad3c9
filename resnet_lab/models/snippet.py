"""A short, runnable Python snippet that rebuilds a spec with the public API."""

from __future__ import annotations

from ..spec import ModelSpec
from .presets import preset_name

_DEFAULT = ModelSpec()


def python_snippet(spec: ModelSpec) -> str:
    name = preset_name(spec)
    if name is not None:
        lines = ["import torch", "from resnet_lab import PRESETS, build_model", "", f"spec = PRESETS[{name!r}]"]
    else:
        lines = ["import torch", "from resnet_lab import ModelSpec, build_model", ""]
        fields = []
        for key, value in spec.to_dict().items():
            default = getattr(_DEFAULT, key)
            if (tuple(value) if isinstance(value, list) else value) != default:
                fields.append(f"{key}={tuple(value)!r}" if isinstance(value, list) else f"{key}={value!r}")
        lines.append("spec = ModelSpec(" + ", ".join(fields) + ")")
    size = spec.default_input_size
    lines += [
        "model = build_model(spec)                # " + spec.describe(),
        "twin = build_model(spec.twin())          # " + spec.twin().describe(),
        f"x = torch.randn(2, {spec.in_channels}, {size}, {size})",
        "print(model(x).shape, twin(x).shape)",
    ]
    return "\n".join(lines) + "\n"
