"""Where to look inside a model: named points, resolved without ``eval``.

A *point* is where an activation is read. It is either a module name from ``model.named_modules()``
(``"layer4"``, ``"layer3.1"``, ``"layer3.1.conv2"``: the module's output) or one of these:

* ``"stem"``: the stem's output (the output of ``maxpool``, an ``Identity`` in the CIFAR stem);
* ``"<block>:x"``: a residual block's input ``x``;
* ``"<block>:branch"``: the residual branch ``F(x)``, read at the branch's last layer (its last BN,
  or its last conv in pre-activation and norm-free blocks), i.e. before the addition;
* ``"<block>:shortcut"``: what the shortcut adds: the projection's output, or ``x`` itself for an
  identity shortcut (plain twins have none);
* ``"<block>:out"``: the block's output, after the addition (and, in v1 blocks, the final ReLU);
  the same as ``"<block>"``.

:func:`layer_tree` lists the points a person can pick, in depth order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from ..models.blocks import ResidualBlock

BLOCK_PARTS = ("x", "branch", "shortcut", "out")
PART_LABELS = {
    "x": "input x",
    "branch": "residual branch F(x)",
    "shortcut": "shortcut",
    "out": "output (after the addition)",
}

Extract = Callable[[tuple[torch.Tensor, ...], torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Point:
    name: str  # what the caller asked for, e.g. "layer2.1:branch"
    module: nn.Module  # the module whose forward is hooked
    extract: Extract  # (inputs, output) of that module -> the activation at this point


@dataclass(frozen=True)
class TreeNode:
    name: str  # a point name, e.g. "layer2", "layer2.1", "layer2.1:branch"
    label: str  # what a person reads, e.g. "layer2.1 · residual branch F(x)"
    level: int  # 0 stem/stage, 1 block, 2 inside a block
    kind: str  # "stem", "stage", "block" or "part"


def _output(inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
    return output


def _input(inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> torch.Tensor:
    return inputs[0]


def _modules(model: nn.Module) -> dict[str, nn.Module]:
    return dict(model.named_modules())


def resolve(model: nn.Module, name: str) -> Point:
    """The module to hook and how to read the activation at point ``name`` (ValueError if unknown)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a layer name must be a non-empty string, got {name!r}")
    modules = _modules(model)
    if name == "stem":
        if "maxpool" not in modules:
            raise ValueError("this model has no stem (no 'maxpool' module)")
        return Point(name, modules["maxpool"], _output)
    base, sep, part = name.partition(":")
    if not sep:
        if name not in modules:
            raise ValueError(f"unknown layer {name!r}; try one of: {', '.join(_examples(model))}")
        return Point(name, modules[name], _output)
    block = modules.get(base)
    if not isinstance(block, ResidualBlock):
        raise ValueError(f"{base!r} is not a residual block, so it has no {part!r}")
    if part == "out":
        return Point(name, block, _output)
    if part == "x":
        return Point(name, block, _input)
    if part == "branch":
        return Point(name, block.last_layer(), _output)
    if part == "shortcut":
        if not block.has_skip:
            raise ValueError(f"{base} has no shortcut: it belongs to a plain network")
        if block.downsample is not None:
            return Point(name, block.downsample, _output)
        return Point(name, block, _input)  # identity shortcut: it adds x itself
    raise ValueError(f"unknown block part {part!r}; one of {', '.join(BLOCK_PARTS)}")


def _examples(model: nn.Module) -> list[str]:
    stages = list(getattr(model, "stages", []))
    return ["stem", *stages[:2], *(f"{s}.0" for s in stages[:1]), "layer1.0:branch"][:5]


def layer_tree(model: nn.Module) -> list[TreeNode]:
    """Stem, each stage, each block and each block's parts, in depth order (for a tree picker)."""
    nodes = [TreeNode("stem", "stem (conv1 → bn1 → relu → maxpool)", 0, "stem")]
    for stage in getattr(model, "stages", []):
        nodes.append(TreeNode(stage, f"{stage} (stage output)", 0, "stage"))
        for i, block in enumerate(getattr(model, stage)):
            bname = f"{stage}.{i}"
            nodes.append(TreeNode(bname, f"{bname} (block output)", 1, "block"))
            for part in BLOCK_PARTS:
                if part == "shortcut" and not block.has_skip:
                    continue
                nodes.append(TreeNode(f"{bname}:{part}", f"{bname} · {PART_LABELS[part]}", 2, "part"))
    return nodes


def cam_layers(model: nn.Module) -> list[str]:
    """Layers offered for Grad-CAM: every stage and every block, deepest first (layer4 is the default)."""
    names: list[str] = []
    for stage in reversed(list(getattr(model, "stages", []))):
        names.append(stage)
        names.extend(f"{stage}.{i}" for i in reversed(range(len(getattr(model, stage)))))
    return names
