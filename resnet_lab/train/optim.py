"""The optimizer and the learning-rate schedule of a model in training: :func:`make_optimizer` (SGD or AdamW,
fused on CUDA) and :func:`lr_lambda` (onecycle, cosine, step or constant, with warm-up; a pure function of
the step, so a resumed run continues on the same curve)."""

from __future__ import annotations

import bisect
import math
from typing import Callable

import torch
from torch import nn

from .config import TrainConfig


def lr_lambda(cfg: TrainConfig, steps_per_epoch: int) -> Callable[[int], float]:
    """Learning-rate multiplier per optimizer step, for every schedule (a pure function: resumable).

    The run is ``cfg.max_steps`` steps long when that is set, else ``cfg.epochs × steps_per_epoch``: one-cycle
    and cosine end where the run ends. The "step" schedule divides by 10 at each of ``cfg.milestones`` (steps
    already taken: the multiplier at step 32,000 of He et al.'s CIFAR schedule is 0.1, at 31,999 still 1),
    or, without milestones, every ``step_every_epochs`` epochs."""
    total = max(1, total_steps(cfg, steps_per_epoch))
    warm = int(round(cfg.warmup_epochs * steps_per_epoch))

    def onecycle(step: int) -> float:  # Smith & Topin 2017: up to peak in 25%, cosine down to ~0
        peak = max(1, int(0.25 * total))
        if step < peak:
            return 1 / 25 + (1 - 1 / 25) * step / peak
        t = min(1.0, (step - peak) / max(1, total - peak))
        return 1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * t))

    def warmed(f: Callable[[int], float]) -> Callable[[int], float]:
        return lambda step: (step + 1) / warm * f(step) if step < warm else f(step)

    if cfg.schedule == "onecycle":
        return onecycle
    if cfg.schedule == "cosine":
        return warmed(lambda s: 0.5 * (1 + math.cos(math.pi * min(1.0, max(0, s - warm) / max(1, total - warm)))))
    if cfg.schedule == "step" and cfg.milestones:
        return warmed(lambda s: 0.1 ** bisect.bisect_right(cfg.milestones, s))
    if cfg.schedule == "step":
        return warmed(lambda s: 0.1 ** ((s // steps_per_epoch) // cfg.step_every_epochs))
    return warmed(lambda s: 1.0)


def total_steps(cfg: TrainConfig, steps_per_epoch: int) -> int:
    """Optimizer steps in the run: ``max_steps`` when set (however many epochs that takes), else every epoch's."""
    return cfg.max_steps if cfg.max_steps is not None else cfg.epochs * steps_per_epoch


def make_optimizer(cfg: TrainConfig, model: nn.Module, backbone_lr_mult: float = 1.0) -> torch.optim.Optimizer:
    """SGD or AdamW over the trainable parameters; no weight decay on BN and biases; the backbone's
    learning rate scaled by ``backbone_lr_mult`` (discriminative fine-tuning), the head's not."""
    groups = []
    for head in (False, True):
        mult = 1.0 if head else backbone_lr_mult
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad and n.startswith("fc.") == head]
        for decay in (True, False):
            params = [p for n, p in named if (p.dim() > 1) == decay]
            if params:
                groups.append({"params": params, "weight_decay": cfg.weight_decay if decay else 0.0,
                               "lr": cfg.lr * mult})
    if not groups:
        raise ValueError("nothing to train: every parameter is frozen")
    # on CUDA the fused kernel: one launch for every parameter, and no host sync (the lr is a Python float)
    fused = all(p.is_cuda for g in groups for p in g["params"]) or None
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.momentum, 0.999), fused=fused)
    return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
                           fused=fused)
