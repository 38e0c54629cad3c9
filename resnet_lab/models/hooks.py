"""Scoped forward hooks: attached on entry, always removed on exit (even when the forward raises)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterable, Iterator

import torch
from torch import nn

ForwardHook = Callable[[str, nn.Module, tuple[torch.Tensor, ...], torch.Tensor], None]


@contextmanager
def forward_hooks(named_modules: Iterable[tuple[str, nn.Module]], fn: ForwardHook) -> Iterator[None]:
    """Call ``fn(name, module, inputs, output)`` after each listed module's forward, inside the block."""
    handles = []
    try:
        for name, module in named_modules:
            handles.append(module.register_forward_hook(
                lambda m, inp, out, _name=name: fn(_name, m, inp, out)))
        yield
    finally:
        for h in handles:
            h.remove()


def leaf_modules(model: nn.Module) -> Iterator[tuple[str, nn.Module]]:
    """Modules without children (convs, norms, activations, pools, linears), in registration order."""
    for name, module in model.named_modules():
        if name and next(module.children(), None) is None:
            yield name, module
