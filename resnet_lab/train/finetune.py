"""Fine-tuning: where a model starts (ImageNet weights, a lab run, scratch) and what it may change.

Strategies, each a ``MemberSetup`` for the ordinary training engine:

- ``linear`` (linear probe): the backbone is frozen and run once over the data to cache its pooled
  features; only the new head trains, on those features, so an epoch takes milliseconds. No
  augmentation (the features are fixed), BatchNorm statistics untouched.
- ``last:N``: the stem and all but the last N stages are frozen, weights *and* BatchNorm statistics
  (frozen BN layers stay in eval mode, so a small new dataset cannot drift the statistics the frozen
  convolutions were trained with); the last N stages and the head train.
- ``full``: everything trains, the backbone at ``backbone_lr_mult`` × the head's learning rate
  (discriminative fine-tuning); BatchNorm adapts to the new data.

The head is swapped when the class count differs. The data is shown to the model the way it was
trained: the base's normalization (ImageNet's or the lab run's), its number of input channels
(grey images are repeated to RGB, RGB averaged to grey).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch

from ..data.registry import Dataset, channel_stats
from ..models.presets import PRESETS, get_preset
from ..spec import ModelSpec
from ..models.checkpoint import load_checkpoint
from .members import MemberSetup

MIN_STEPS = 100
"""Optimizer steps below which a fine-tuning barely leaves its starting point (a new head starts at chance):
the defaults are sized to make at least this many (:func:`sized_schedule`) and the page warns below it."""
DEFAULT_EPOCHS = 3  # the fewest epochs a sized default asks for (a large dataset makes its steps in these)
DEFAULT_BATCH = 64  # the largest batch a sized default asks for
MIN_BATCH = 4  # the smallest batch a sized default asks for: BatchNorm statistics of fewer images are noise
MAX_SIZED_EPOCHS = 60  # a sized default never asks for more epochs than this (a few images: seconds each)

STRATEGY_HELP = {"linear": "linear probe: frozen backbone, cached features, only the head trains",
                 "last:N": "freeze all but the last N stages (frozen BatchNorm stays in eval mode)",
                 "full": "train everything, the backbone at a smaller learning rate"}


@dataclass(frozen=True)
class FinetuneConfig:
    source: str = "imagenet:resnet18"  # "imagenet:NAME", "run:ID" or "scratch:PRESET"
    strategy: str = "full"  # "linear", "last:N" or "full"
    backbone_lr_mult: float = 0.1  # backbone lr = this × lr ("full" and "last:N")

    def __post_init__(self) -> None:
        kind, _, arg = str(self.source).partition(":")
        if kind not in ("imagenet", "run", "scratch") or not arg:
            raise ValueError(f"source={self.source!r}: use imagenet:resnet18|resnet34|resnet50, run:ID or "
                             "scratch:PRESET")
        if kind == "run" and not arg.isdigit():
            raise ValueError(f"source={self.source!r}: a run id is a number, e.g. run:12")
        if kind == "imagenet" and arg not in ("resnet18", "resnet34", "resnet50"):
            raise ValueError(f"source={self.source!r}: ImageNet weights exist for resnet18, resnet34, resnet50")
        if kind == "scratch":
            get_preset(arg)
        parse_strategy(self.strategy)
        m = self.backbone_lr_mult
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not 0 < m <= 1:
            raise ValueError(f"backbone_lr_mult must be a number in (0, 1], got {m!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FinetuneConfig":
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown fine-tuning setting(s): {', '.join(sorted(map(str, unknown)))}")
        return cls(**data)


def parse_strategy(strategy: str) -> tuple[str, int]:
    """("linear", 0), ("last", N) or ("full", 0); ValueError otherwise."""
    if strategy in ("linear", "full"):
        return strategy, 0
    kind, _, n = str(strategy).partition(":")
    if kind == "last" and n.isdigit() and 1 <= int(n) <= 6:
        return "last", int(n)
    raise ValueError(f"strategy={strategy!r}: use linear, last:N (N = 1..6 stages) or full")


@dataclass(frozen=True)
class Base:
    spec: ModelSpec  # the starting architecture (its own classes and input channels)
    state_dict: dict[str, torch.Tensor] | None  # starting weights (None: scratch)
    mean: tuple[float, ...] | None  # normalization the weights expect (None: the new data's own)
    std: tuple[float, ...] | None
    label: str  # for run names, e.g. "imagenet resnet18" or "run 12"


def load_base(cfg: FinetuneConfig, store=None) -> Base:
    kind, _, arg = cfg.source.partition(":")
    if kind == "imagenet":
        from ..models.pretrained import load_imagenet

        p = load_imagenet(arg)
        return Base(PRESETS[arg], p.model.state_dict(), p.mean, p.std, f"imagenet {arg}")
    if kind == "run":
        from ..store import Store

        run = (store or Store()).runs.get(int(arg))
        path = run.ckpt_best or run.ckpt_last
        if not path or not Path(path).is_file():
            raise ValueError(f"run {arg} has no checkpoint to start from (status {run.status})")
        ckpt = load_checkpoint(Path(path))
        return Base(ckpt.spec, ckpt.model.state_dict(), tuple(ckpt.meta["mean"]), tuple(ckpt.meta["std"]),
                    f"run {arg}")
    return Base(get_preset(arg), None, None, None, f"scratch {arg}")


def plan(cfg: FinetuneConfig, base: Base, num_classes: int, data_channels: int) -> tuple[ModelSpec, MemberSetup]:
    """The spec to train (head swapped to ``num_classes``) and the engine setup for the strategy."""
    in_channels = base.spec.in_channels if base.state_dict is not None else data_channels
    spec = base.spec.replace(num_classes=num_classes, in_channels=in_channels)
    state = base.state_dict
    if state is not None and spec.num_classes != base.spec.num_classes:
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}  # head swap: a fresh fc
    kind, n = parse_strategy(cfg.strategy)
    if kind == "linear":
        return spec, MemberSetup(state_dict=state, head_only=True)
    if kind == "last":
        stages = [f"layer{i + 1}" for i in range(len(spec.depths))]
        if n > len(stages):
            raise ValueError(f"strategy last:{n}, but the model has only {len(stages)} stages")
        frozen = ("conv1", "bn1", *stages[:-n])
        return spec, MemberSetup(state_dict=state, frozen=frozen, backbone_lr_mult=cfg.backbone_lr_mult)
    mult = cfg.backbone_lr_mult if state is not None else 1.0
    return spec, MemberSetup(state_dict=state, backbone_lr_mult=mult)


def adapt_data(data: Dataset, in_channels: int, mean: tuple[float, ...] | None,
               std: tuple[float, ...] | None) -> Dataset:
    """The data as the base model expects it: its channel count and its normalization."""
    def convert(x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == in_channels:
            return x
        if x.shape[1] == 1:
            return x.expand(-1, in_channels, -1, -1).contiguous()
        if in_channels == 1:
            return x.mean(1, keepdim=True)
        raise ValueError(f"cannot show {x.shape[1]}-channel images to a {in_channels}-channel model")

    x_train, x_val = convert(data.x_train), convert(data.x_val)
    if mean is None or std is None:
        mean, std = channel_stats(x_train) if x_train is not data.x_train else (data.mean, data.std)
    if len(mean) != in_channels:
        raise ValueError(f"the base model's normalization has {len(mean)} channels, its input {in_channels}")
    return dataclasses.replace(data, x_train=x_train, x_val=x_val, in_channels=in_channels,
                               mean=tuple(mean), std=tuple(std))


def optimizer_steps(n_images: int, epochs: int, batch_size: int) -> int:
    """Optimizer steps a training of ``epochs`` over ``n_images`` training images makes at ``batch_size``,
    counted as the engine counts them: the batch is at most the data, and the ragged last batch is dropped."""
    for name, v in (("n_images", n_images), ("epochs", epochs), ("batch_size", batch_size)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {v!r}")
    return epochs * max(1, n_images // min(batch_size, n_images))


def sized_schedule(n_images: int, max_epochs: int = MAX_SIZED_EPOCHS, max_batch: int = DEFAULT_BATCH,
                   min_steps: int = MIN_STEPS) -> tuple[int, int]:
    """Default (epochs, batch size) for fine-tuning on ``n_images`` training images, so that a small dataset
    gets enough optimizer steps to learn (at least ``min_steps`` where the caps allow it).

    The batch is the largest power of two up to a quarter of the images (so an epoch is at least about four
    steps), between :data:`MIN_BATCH` and ``max_batch`` (and never more than the images). The epochs are
    :data:`DEFAULT_EPOCHS`, or as many more as ``min_steps`` needs, up to ``max_epochs``; when that cap still
    leaves fewer steps, the batch is halved (down to :data:`MIN_BATCH`) for more steps per epoch. 45 images:
    batch 8, 5 steps an epoch, 20 epochs (100 steps); 50,000 images: batch 64, 3 epochs (2,343 steps)."""
    for name, v in (("n_images", n_images), ("max_epochs", max_epochs), ("max_batch", max_batch),
                    ("min_steps", min_steps)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a whole number >= 1, got {v!r}")
    top = min(DEFAULT_BATCH, max_batch, n_images)
    batch = 1
    while batch * 2 <= min(top, max(MIN_BATCH, n_images // 4)):
        batch *= 2
    batch = min(max(batch, min(MIN_BATCH, top)), top)
    cap = min(max_epochs, MAX_SIZED_EPOCHS)

    def epochs_for(b: int) -> int:
        per_epoch = optimizer_steps(n_images, 1, b)
        return min(cap, max(DEFAULT_EPOCHS, -(-min_steps // per_epoch)))

    epochs = epochs_for(batch)
    while optimizer_steps(n_images, epochs, batch) < min_steps and batch // 2 >= MIN_BATCH:
        batch //= 2
        epochs = epochs_for(batch)
    return epochs, batch
