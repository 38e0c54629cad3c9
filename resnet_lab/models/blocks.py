"""Residual blocks, as in He et al. 2015 (v1) and He et al. 2016 (pre-activation, v2).

Module names follow torchvision (``conv1, bn1, conv2, bn2[, conv3, bn3], downsample``) so that
torchvision's weights load with ``strict=True``. A block built with ``skip=False`` has no shortcut
module and its forward contains no addition: that is the plain twin, not a zeroed skip.

Every block carries two runtime switches for lesion studies (Veit et al. 2016):
``skip_enabled`` (keep the residual branch, drop the shortcut) and ``branch_enabled``
(keep the shortcut, drop the residual branch).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def conv3x3(in_planes: int, out_planes: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=bias)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=bias)


def norm_layer(kind: str, channels: int) -> nn.Module:
    return nn.BatchNorm2d(channels) if kind == "batch" else nn.Identity()


class PadShortcut(nn.Module):
    """Option A shortcut: identity that subsamples space and pads new channels with zeros.

    Parameter-free, as in the paper's CIFAR experiments (He et al. 2015, sec. 4.2).
    """

    def __init__(self, in_planes: int, out_planes: int, stride: int) -> None:
        super().__init__()
        if out_planes < in_planes:
            raise ValueError(f"option A cannot shrink channels ({in_planes} -> {out_planes})")
        self.stride = stride
        self.extra = out_planes - in_planes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra))
        return x

    def extra_repr(self) -> str:
        return f"stride={self.stride}, zero_channels={self.extra}"


class ResidualBlock(nn.Module):
    """What all blocks share: the shortcut, the final addition and the runtime switches.

    Subclasses implement ``branch(x)`` (the residual function F) and say whether they are
    pre-activation blocks. Post-activation (v1): ``relu(F(x) + shortcut(x))``.
    Pre-activation (v2): ``F(a) + shortcut`` with ``a = relu(bn1(x))``; a projection (or
    option A) shortcut reads ``a``, an identity shortcut reads ``x`` (as in the paper's code).
    """

    expansion = 1

    def __init__(self, skip: bool, preact: bool) -> None:
        super().__init__()
        self.has_skip = skip  # built with a shortcut path (False for the plain twin)
        self.skip_enabled = skip  # runtime switch: add the shortcut
        self.branch_enabled = True  # runtime switch: compute the residual branch
        self.preact = preact
        self.downsample: nn.Module | None = None

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preact:
            return self._forward_preact(x)
        if not self.has_skip:
            return self.relu(self.branch(x))
        return self.relu(self._combine(x, x))

    def _forward_preact(self, x: torch.Tensor) -> torch.Tensor:
        a = self.relu(self.bn1(x))
        if not self.has_skip:
            return self.branch(a)
        return self._combine(a, x if self.downsample is None else a)

    def _combine(self, branch_in: torch.Tensor, shortcut_in: torch.Tensor) -> torch.Tensor:
        if not (self.branch_enabled or self.skip_enabled):
            raise RuntimeError("a block needs its residual branch or its skip; both are switched off")
        if not self.skip_enabled:
            return self.branch(branch_in)
        identity = shortcut_in if self.downsample is None else self.downsample(shortcut_in)
        if not self.branch_enabled:
            return identity
        return self.branch(branch_in) + identity


class BasicBlock(ResidualBlock):
    """Two 3x3 convolutions (ResNet-18/34 and the CIFAR nets)."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int, *, norm: str, skip: bool,
                 preact: bool, downsample: nn.Module | None) -> None:
        super().__init__(skip=skip, preact=preact)
        bias = norm == "none"
        self.conv1 = conv3x3(inplanes, planes, stride, bias=bias)
        self.bn1 = norm_layer(norm, inplanes if preact else planes)
        self.relu = nn.ReLU(inplace=not preact)  # pre-activation must not overwrite its input x
        self.conv2 = conv3x3(planes, planes, bias=bias)
        self.bn2 = norm_layer(norm, planes)
        self.downsample = downsample
        self.stride = stride

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        if self.preact:  # x is already relu(bn1(input))
            out = self.conv1(x)
            out = self.bn2(out)
            out = self.relu(out)
            out = self.conv2(out)
            return out
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        return out

    def last_layer(self) -> nn.Module:
        """The branch's final weighted layer: its last BN, or its last conv (pre-activation or no norm)."""
        return self.bn2 if isinstance(self.bn2, nn.BatchNorm2d) and not self.preact else self.conv2


class Bottleneck(ResidualBlock):
    """1x1 reduce, 3x3, 1x1 expand (x4). Stride sits on the 3x3 conv, as in torchvision (v1.5)."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int, *, norm: str, skip: bool,
                 preact: bool, downsample: nn.Module | None) -> None:
        super().__init__(skip=skip, preact=preact)
        bias = norm == "none"
        self.conv1 = conv1x1(inplanes, planes, bias=bias)
        self.bn1 = norm_layer(norm, inplanes if preact else planes)
        self.conv2 = conv3x3(planes, planes, stride, bias=bias)
        self.bn2 = norm_layer(norm, planes)
        self.conv3 = conv1x1(planes, planes * self.expansion, bias=bias)
        self.bn3 = norm_layer(norm, planes if preact else planes * self.expansion)
        self.relu = nn.ReLU(inplace=not preact)  # pre-activation must not overwrite its input x
        self.downsample = downsample
        self.stride = stride

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        if self.preact:  # x is already relu(bn1(input))
            out = self.conv1(x)
            out = self.bn2(out)
            out = self.relu(out)
            out = self.conv2(out)
            out = self.bn3(out)
            out = self.relu(out)
            out = self.conv3(out)
            return out
        out = self.conv1(x)
        out = self.bn1(out)
        out = self.relu(out)
        out = self.conv2(out)
        out = self.bn2(out)
        out = self.relu(out)
        out = self.conv3(out)
        out = self.bn3(out)
        return out

    def last_layer(self) -> nn.Module:
        """The branch's final weighted layer: its last BN, or its last conv (pre-activation or no norm)."""
        return self.bn3 if isinstance(self.bn3, nn.BatchNorm2d) and not self.preact else self.conv3
