"""The model's definition as one self-contained Python module, for code that runs where ResNet Lab is not installed.

:func:`module_source` writes the lab's own blocks and ``ResNet`` — their source, copied unchanged from
``blocks.py`` and ``resnet.py``, so what a person takes home is the code the lab trained — after a small frozen
``ModelSpec`` with the same fields and defaults as :class:`resnet_lab.spec.ModelSpec` (without its validation:
the values it is given were validated by the lab). The module imports only ``torch``; its module and parameter
names are the lab's (torchvision's), so the lab's weights load into it with ``strict=True``.
"""

from __future__ import annotations

import dataclasses
import inspect

from ..spec import ModelSpec
from . import blocks, resnet

# what ResNet(spec) needs, in the order the module defines them
_DEFINITIONS = (blocks.conv3x3, blocks.conv1x1, blocks.norm_layer, blocks.PadShortcut, blocks.ResidualBlock,
                blocks.BasicBlock, blocks.Bottleneck, resnet.ResNet)

_HEADER = '''"""{title}

``ResNet(ModelSpec(...))`` builds the network; its module and parameter names are torchvision's
(conv1, bn1, layer1..N, downsample, fc). Needs only torch.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class ModelSpec:
    """What ResNet builds (the fields of ResNet Lab's ModelSpec, without its checks)."""

{fields}

    def __post_init__(self) -> None:
        object.__setattr__(self, "depths", tuple(self.depths))  # lists from JSON are fine too
        object.__setattr__(self, "widths", tuple(self.widths))

    def replace(self, **changes) -> "ModelSpec":
        """A copy with some fields changed; ``spec.replace(skip=False)`` is the plain twin."""
        return dataclasses.replace(self, **changes)
'''


def _field_lines() -> str:
    """One line per ModelSpec field: its name, type and default, and the lab's own comment on it."""
    source = inspect.getsource(ModelSpec).splitlines()
    lines = []
    for f in dataclasses.fields(ModelSpec):
        declared = next((line for line in source if line.startswith(f"    {f.name}: ")), "")
        comment = declared.partition("  # ")[2]
        lines.append(f"    {f.name}: {f.type} = {f.default!r}" + (f"  # {comment}" if comment else ""))
    return "\n".join(lines)


def module_source(title: str = "A ResNet as built by ResNet Lab.") -> str:
    """The text of a Python module defining ``ModelSpec`` and ``ResNet`` (and its blocks), importing only torch.

    ``title`` becomes the first line of the module's docstring; it must be one line of plain text."""
    if "\n" in title or '"""' in title or "\\" in title:
        raise ValueError("the module title must be one line without quotes or backslashes")
    parts = [_HEADER.format(title=title, fields=_field_lines())]
    parts += [inspect.getsource(obj) for obj in _DEFINITIONS]
    return "\n\n".join(p.rstrip("\n") + "\n" for p in parts)


def spec_literal(spec: ModelSpec, name: str = "ModelSpec") -> str:
    """``ModelSpec(stem='cifar', block='basic', ...)`` with every field, one a line: valid Python for the module
    above (and for the lab). Every value is a validated choice, number, bool or tuple of numbers."""
    fields = []
    for key, value in spec.to_dict().items():
        fields.append(f"    {key}={tuple(value)!r}," if isinstance(value, list) else f"    {key}={value!r},")
    return f"{name}(\n" + "\n".join(fields) + "\n)"
