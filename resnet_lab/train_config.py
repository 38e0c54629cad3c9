"""Training configuration: one frozen dataclass, validated, JSON round trip (floor 1: the classroom's bounds and the
trainer both read it)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from .checks import MAX_SEED, check_float, check_int

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("onecycle", "cosine", "step", "constant")
DEVICES = ("auto", "cpu", "cuda")
MAX_KEEP_EVERY = 1_000_000  # steps
MAX_KEEP_BUDGET_MB = 100_000.0  # 100 GB: a cap on what one job's kept weights may ask for
MAX_STEPS = 10_000_000  # optimizer steps: a cap on max_steps and on a milestone


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
    step_every_epochs: int = 2  # "step" schedule: divide lr by 10 every this many epochs (when no milestones)
    milestones: tuple[int, ...] = ()  # "step" schedule: divide lr by 10 at each of these optimizer steps, ascending
    #   (He et al. 2015, CIFAR-10: 32k and 48k); empty: every step_every_epochs epochs
    max_steps: int | None = None  # stop after this many optimizer steps, whatever ``epochs`` allows (He et al.:
    #   64k); None: ``epochs`` passes. The schedule's length is then max_steps, not epochs x steps per epoch
    label_smoothing: float = 0.0  # cross-entropy label smoothing, 0..0.5
    seed: int = 0  # init, batch order and augmentation; the twins share it
    log_every: int = 10  # steps between metric logs (the only host syncs in the loop)
    grad_norm_every: int = 50  # steps between per-layer gradient-norm snapshots (0: never)
    eval_points: int = 10  # at least this many val passes per run (every total_steps // eval_points steps and at
    #   each epoch end): a short run draws a validation curve, not two dots; 0: at epoch ends only
    device: str = "auto"  # "auto" (CUDA when present), "cpu" or "cuda"
    compile: bool = False  # torch.compile the training forward: pays back on long GPU runs; first step = compile_s
    deterministic: bool = False  # deterministic algorithms (CUDA: cuDNN's deterministic kernels, no benchmark; slower)
    #   so the same settings give the same numbers on a GPU too; the CPU gives them anyway (same thread count). See
    #   resnet_lab.train.reproducible
    keep_weights_every: int = 0  # keep the weights at step 0, every this many steps and at the end, for the
    #   landscape page's training path and interpolation (0: off; see resnet_lab.train.trajectory)
    keep_weights_budget_mb: float = 200.0  # disk the kept weights of one job (all its models) may take, MB:
    #   thinned to every 2k, 4k, … steps to fit; refused at submit if even the first and last do not fit

    def __post_init__(self) -> None:
        check_int("epochs", self.epochs, 1, 1000)
        check_int("batch_size", self.batch_size, 2, 8192)
        _choice("optimizer", self.optimizer, OPTIMIZERS)
        _choice("schedule", self.schedule, SCHEDULES)
        _choice("device", self.device, DEVICES)
        check_float("lr", self.lr, 1e-6, 10.0)
        check_float("momentum", self.momentum, 0.0, 0.999)
        check_float("weight_decay", self.weight_decay, 0.0, 1.0)
        check_float("warmup_epochs", self.warmup_epochs, 0.0, float(self.epochs))
        check_int("step_every_epochs", self.step_every_epochs, 1, 1000)
        self._check_steps()
        check_float("label_smoothing", self.label_smoothing, 0.0, 0.5)
        check_int("seed", self.seed, 0, MAX_SEED)
        check_int("log_every", self.log_every, 1, 100_000)
        check_int("grad_norm_every", self.grad_norm_every, 0, 100_000)
        check_int("eval_points", self.eval_points, 0, 1000)
        check_int("keep_weights_every", self.keep_weights_every, 0, MAX_KEEP_EVERY)
        check_float("keep_weights_budget_mb", self.keep_weights_budget_mb, 1.0, MAX_KEEP_BUDGET_MB)
        if not isinstance(self.nesterov, bool):
            raise ValueError(f"nesterov must be true or false, got {self.nesterov!r}")
        if not isinstance(self.compile, bool):
            raise ValueError(f"compile must be true or false, got {self.compile!r}")
        if not isinstance(self.deterministic, bool):
            raise ValueError(f"deterministic must be true or false, got {self.deterministic!r}")

    def _check_steps(self) -> None:
        """``max_steps`` and ``milestones`` (JSON gives a list: kept as a tuple, so a round trip is equal)."""
        if self.max_steps is not None:
            check_int("max_steps", self.max_steps, 1, MAX_STEPS, " (or None: epochs decide)")
        if isinstance(self.milestones, (str, bytes)) or not isinstance(self.milestones, (list, tuple)):
            raise ValueError(f"milestones must be a list of optimizer steps, got {self.milestones!r}")
        object.__setattr__(self, "milestones", tuple(self.milestones))
        for m in self.milestones:
            check_int("a milestone", m, 1, MAX_STEPS, " (an optimizer step)")
        if list(self.milestones) != sorted(set(self.milestones)):
            raise ValueError(f"milestones must be ascending steps, each once, got {list(self.milestones)}")
        if self.milestones and self.schedule != "step":
            raise ValueError(f"milestones apply to the step schedule only, not {self.schedule!r}")

    @property
    def schedule_steps(self) -> str:
        """The run's length and lr drops in words, e.g. "64,000 steps, lr ÷10 at 32,000 and 48,000"."""
        length = f"{self.max_steps:,} steps" if self.max_steps is not None else f"{self.epochs} epochs"
        drops = " and ".join(f"{m:,}" for m in self.milestones)
        return length + (f", lr ÷10 at steps {drops}" if drops else "")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["milestones"] = list(self.milestones)  # JSON's form: a stored config reads back equal
        return out

    def fingerprint_dict(self) -> dict[str, Any]:
        """:meth:`to_dict` for a job's fingerprint: the keep-weights settings count only when on, and the
        step-based schedule (``max_steps``, ``milestones``) and ``deterministic`` only when set, so a job that uses
        none of them has the fingerprint it had before the settings existed (old finished jobs still match)."""
        out = self.to_dict()
        if not self.keep_weights_every:
            del out["keep_weights_every"], out["keep_weights_budget_mb"]
        if self.max_steps is None:
            del out["max_steps"]
        if not self.milestones:
            del out["milestones"]
        if not self.deterministic:
            del out["deterministic"]
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "TrainConfig":
        """Validate a stored or untrusted mapping. Settings added since a config was stored (``eval_points``,
        ``keep_weights_*``, ``milestones``, ``max_steps``, ``deterministic``) take their defaults; unknown keys are
        refused."""
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
