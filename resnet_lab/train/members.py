"""The models a :class:`~resnet_lab.train.engine.Trainer` trains, and what it tells the world about them:
:class:`MemberSetup` (how a model starts and what it may change: the fine-tuning strategies are settings of
it), :class:`Member` (one model's state inside the loop: optimizer, schedule, accumulated metrics; the
Trainer's own), :class:`MemberResult` (how each ended) and :class:`Callbacks` (what the loop reports)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from ..spec import ModelSpec


class Callbacks:
    """Override what you need. Indices refer to the order of the specs given to the Trainer."""

    def on_start(self, idx: int, total_steps: int, layer_names: list[str]) -> None: ...
    def on_log(self, idx: int, step: int, epoch: float, metrics: dict[str, float]) -> None: ...
    def on_eval(self, idx: int, step: int, epoch: float, metrics: dict[str, float]) -> None: ...
    def on_grad_norms(self, idx: int, step: int, norms: list[float]) -> None: ...
    def on_checkpoint(self, idx: int, tag: str, path: Path, metrics: dict[str, float]) -> None: ...
    def on_end(self, idx: int, status: str, message: str | None) -> None: ...
    def should_stop(self) -> bool:
        return False


@dataclass(frozen=True)
class MemberSetup:
    """How a model starts and what it may change: the fine-tuning strategies are settings of this."""

    state_dict: dict[str, torch.Tensor] | None = None  # starting weights; a swapped head's keys may be absent
    frozen: tuple[str, ...] = ()  # top-level modules kept fixed: weights frozen, BatchNorm in eval mode
    backbone_lr_mult: float = 1.0  # learning-rate multiplier for trainable parameters outside the head (fc)
    head_only: bool = False  # linear probe: backbone features computed once, only fc trains on them

    def frozen_in(self, model: nn.Module) -> tuple[str, ...]:
        """The top-level modules of ``model`` kept fixed: ``frozen``, or for a linear probe all but the classifier."""
        if not self.head_only:
            return self.frozen
        head = model.get_classifier()
        return tuple(name for name, module in model.named_children() if module is not head)


@dataclass
class Member:
    spec: ModelSpec
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    norm_params: list[torch.Tensor]
    norm_names: list[str]  # the layers of norm_params (a plain twin has no projection shortcuts: fewer layers)
    ckpt_dir: Path | None
    setup: MemberSetup = MemberSetup()
    frozen: tuple[str, ...] = ()  # top-level modules kept fixed (setup.frozen_in(model))
    forward: nn.Module | None = None  # what a training step calls: the model, or it wrapped (DDP) / compiled
    status: str = "running"
    message: str | None = None
    kept_step: int = -1  # the last step whose weights were kept (trajectory), -1: none yet
    best_val_acc: float = -1.0
    last_metrics: dict[str, float] = field(default_factory=dict)
    loss_sum: torch.Tensor | None = None
    correct: torch.Tensor | None = None
    seen: int = 0
    pending_norms: list[tuple[int, torch.Tensor]] = field(default_factory=list)


@dataclass(frozen=True)
class MemberResult:
    status: str  # done, stopped or diverged
    message: str | None
    steps: int
    best_val_acc: float
    last: dict[str, float]

