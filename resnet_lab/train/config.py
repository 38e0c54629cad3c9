"""Training configuration: one frozen dataclass, validated, JSON round trip."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Mapping

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("onecycle", "cosine", "step", "constant")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 5  # passes over the training split
    batch_size: int = 128  # images per step
    optimizer: str = "sgd"  # "sgd" (momentum) or "adamw"
    lr: float = 0.1  # peak learning rate
    momentum: float = 0.9  # SGD momentum (AdamW: beta1)
    nesterov: bool = True  # Nesterov momentum (SGD only)
    weight_decay: float = 5e-4  # L2 for SGD, decoupled for AdamW
    schedule: str = "onecycle"  # learning-rate shape: onecycle, cosine, step, constant
    warmup_epochs: float = 0.0  # linear warm-up before cosine/step/constant (onecycle has its own)
    step_every_epochs: int = 2  # "step" schedule: divide lr by 10 every this many epochs
    label_smoothing: float = 0.0  # cross-entropy label smoothing, 0..0.5
    seed: int = 0  # init, batch order and augmentation; the twins share it
    log_every: int = 10  # steps between metric logs (the only host syncs in the loop)
    grad_norm_every: int = 50  # steps between per-layer gradient-norm snapshots (0: never)
    device: str = "auto"  # "auto" (CUDA when present), "cpu" or "cuda"

    def __post_init__(self) -> None:
        _int("epochs", self.epochs, 1, 1000)
        _int("batch_size", self.batch_size, 2, 8192)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("schedule", self.schedule, SCHEDULES)
        _choice("device", self.device, DEVICES)
        _num("lr", self.lr, 1e-6, 10.0)
        _num("momentum", self.momentum, 0.0, 0.999)
        _num("weight_decay", self.weight_decay, 0.0, 1.0)
        _num("warmup_epochs", self.warmup_epochs, 0.0, float(self.epochs))
        _int("step_every_epochs", self.step_every_epochs, 1, 1000)
        _num("label_smoothing", self.label_smoothing, 0.0, 0.5)
        _int("seed", self.seed, 0, 2**31 - 1)
        _int("log_every", self.log_every, 1, 100_000)
        _int("grad_norm_every", self.grad_norm_every, 0, 100_000)
        if not isinstance(self.nesterov, bool):
            raise ValueError(f"nesterov must be true or false, got {self.nesterov!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        if not isinstance(data, Mapping):
            raise ValueError("a training config must be a JSON object")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown training setting(s): {', '.join(sorted(map(str, unknown)))}")
        return cls(**data)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; choose one of {', '.join(allowed)}")


def _int(name: str, value: Any, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"{name} must be an integer in {lo}..{hi}, got {value!r}")


def _num(name: str, value: Any, lo: float, hi: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not lo <= value <= hi:
        raise ValueError(f"{name} must be a number in {lo:g}..{hi:g}, got {value!r}")
