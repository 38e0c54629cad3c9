"""The ResNet, built from a ModelSpec.

One class covers torchvision's ImageNet ResNets, the CIFAR ResNets of He et al. 2015 (sec. 4.2),
pre-activation ResNets (He et al. 2016) and all their plain twins. Names match torchvision
(``conv1, bn1, relu, maxpool, layer1..N, avgpool, fc``) and every model has the same face
(``forward_features``, ``forward_head``, ``get_classifier``, ``stages``, ``blocks()``), as timm's
models do, so analysis and training code never reach into internals.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch import nn

from ..spec import ModelSpec
from .blocks import BasicBlock, Bottleneck, PadShortcut, ResidualBlock, conv1x1, norm_layer


class ResNet(nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        block_cls = Bottleneck if spec.block == "bottleneck" else BasicBlock
        bias = spec.norm == "none"
        stem_width = spec.widths[0]

        if spec.stem == "imagenet":
            self.conv1 = nn.Conv2d(spec.in_channels, stem_width, kernel_size=7, stride=2, padding=3, bias=bias)
            self.bn1 = norm_layer(spec.norm, stem_width)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        else:
            self.conv1 = nn.Conv2d(spec.in_channels, stem_width, kernel_size=3, stride=1, padding=1, bias=bias)
            # a pre-activation net starts its first block with BN-ReLU, so the CIFAR stem is a bare conv
            self.bn1 = nn.Identity() if spec.preact else norm_layer(spec.norm, stem_width)
            self.relu = nn.Identity() if spec.preact else nn.ReLU(inplace=True)
            self.maxpool = nn.Identity()

        self.inplanes = stem_width
        self.stages: list[str] = []
        for i, (depth, width) in enumerate(zip(spec.depths, spec.widths)):
            name = f"layer{i + 1}"
            setattr(self, name, self._make_layer(block_cls, width, depth, stride=1 if i == 0 else 2))
            self.stages.append(name)

        self.num_features = spec.widths[-1] * block_cls.expansion
        if spec.preact:  # v2 nets end with BN-ReLU before pooling (He et al. 2016, fig. 4)
            self.bn_final = norm_layer(spec.norm, self.num_features)
            self.relu_final = nn.ReLU(inplace=True)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(self.num_features, spec.num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if spec.zero_init_residual:
            # zero-init the last layer of each residual branch, arXiv:1706.02677
            for block in self.blocks():
                nn.init.zeros_(block.last_layer().weight)

    def _make_layer(self, block_cls: type[ResidualBlock], planes: int, blocks: int, stride: int) -> nn.Sequential:
        spec = self.spec
        layers = []
        for i in range(blocks):
            s = stride if i == 0 else 1
            out = planes * block_cls.expansion
            layers.append(
                block_cls(self.inplanes, planes, s, norm=spec.norm, skip=spec.skip, preact=spec.preact,
                          downsample=self._shortcut(self.inplanes, out, s))
            )
            self.inplanes = out
        return nn.Sequential(*layers)

    def _shortcut(self, inplanes: int, out: int, stride: int) -> nn.Module | None:
        """The shortcut module for one block, or None for a pure identity (or no skip at all)."""
        spec = self.spec
        if not spec.skip:
            return None
        reshapes = stride != 1 or inplanes != out
        if spec.shortcut == "A":
            return PadShortcut(inplanes, out, stride) if reshapes else None
        if spec.shortcut == "B" and not reshapes:
            return None
        conv = conv1x1(inplanes, out, stride, bias=spec.norm == "none")
        # a pre-activation shortcut reads an already normalised input, so its projection is a bare conv
        return nn.Sequential(conv, nn.Identity() if spec.preact else norm_layer(spec.norm, out))

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.maxpool(x)
        return x

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for name in self.stages:
            x = getattr(self, name)(x)
        if self.spec.preact:
            x = self.relu_final(self.bn_final(x))
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Global average pool and flatten (N x ``num_features``), then the classifier unless ``pre_logits``."""
        x = self.avgpool(x)
        x = torch.flatten(x, 1)
        if pre_logits:
            return x
        x = self.fc(x)
        return x

    def get_classifier(self) -> nn.Module:
        """The final linear layer: ``get_classifier()(forward_head(f, pre_logits=True))`` are the logits."""
        return self.fc

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def blocks(self) -> Iterator[ResidualBlock]:
        """All residual blocks, in depth order."""
        for name in self.stages:
            yield from getattr(self, name)

    def named_blocks(self) -> Iterator[tuple[str, ResidualBlock]]:
        """(``"layer2.3"``, block) pairs in depth order."""
        for name in self.stages:
            for i, block in enumerate(getattr(self, name)):
                yield f"{name}.{i}", block


def _select(model: ResNet, blocks: list[str] | None) -> list[tuple[str, ResidualBlock]]:
    named = list(model.named_blocks())
    if blocks is None:
        return named
    known = {n for n, _ in named}
    missing = [b for b in blocks if b not in known]
    if missing:
        raise ValueError(f"unknown block(s) {', '.join(missing)}; this model has {named[0][0]}..{named[-1][0]}")
    wanted = set(blocks)
    return [(n, b) for n, b in named if n in wanted]


def set_skip(model: ResNet, enabled: bool, blocks: list[str] | None = None) -> ResNet:
    """Switch the shortcuts of some (default: all) blocks on or off at run time.

    Off, a block computes only its residual branch, like the plain twin but with the trained weights.
    A model built with ``skip=False`` has no shortcut to switch on.
    """
    for name, block in _select(model, blocks):
        if enabled and not block.has_skip:
            raise ValueError(f"block {name} was built without a skip connection; build with skip=True")
        block.skip_enabled = bool(enabled)
    return model


def set_branch(model: ResNet, enabled: bool, blocks: list[str] | None = None) -> ResNet:
    """Switch the residual branches of some (default: all) blocks on or off (lesion study)."""
    for name, block in _select(model, blocks):
        if not enabled and not block.has_skip:
            raise ValueError(f"block {name} has no skip connection; dropping its branch would cut the network")
        block.branch_enabled = bool(enabled)
    return model
