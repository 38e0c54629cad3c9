"""What a model's trainable layers are, by name: read by the trainer (gradient-norm logging) and the gradient-flow
analysis alike, so both name the same layers."""

from __future__ import annotations

import torch
from torch import nn


def weight_layers(model: nn.Module) -> tuple[list[str], list[torch.Tensor]]:
    """Names and weights of every trainable conv and linear layer, in depth order (gradient-norm tracking)."""
    names, params = [], []
    for name, p in model.named_parameters():
        if p.dim() > 1 and p.requires_grad:
            names.append(name.removesuffix(".weight"))
            params.append(p)
    return names, params
