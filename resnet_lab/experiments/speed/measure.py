"""How fast each model preset runs on one device: training images/s, batch-1 latency and batch-64 images/s.

This module needs torch and the lab's model code only (no store, no queue, no streamlit, plotly or captum), so the
same measurement runs in a job's worker, in ``python -m resnet_lab models speed --here`` and in ``bench/speed.py``
on a bare GPU machine.

What is timed, per preset (:func:`measure`), on random images and labels of the preset's input size:

- **training**: one optimizer step = zero the gradients, forward, cross-entropy, backward, SGD step (Nesterov
  momentum 0.9, weight decay 5e-4: the recipes' optimizer), at the batch of the preset's recipe
  (:func:`setup_for`); reported as images per second over the timed steps;
- **latency**: one forward of a single image in eval mode under ``torch.no_grad``; the median over the timed runs,
  in milliseconds (the median, not the mean: one preempted run on a shared machine does not move it);
- **inference throughput**: one forward of a batch of 64 in eval mode under ``torch.no_grad``; images per second over
  the timed runs.

Each of the three first runs :attr:`Plan.warmup` untimed steps (allocations, cuDNN's algorithm search, oneDNN's
kernel caches), then timed ones until :attr:`Plan.budget_s` seconds were timed or its maximum count is reached,
at least one. On CUDA the clock stops only after ``torch.cuda.synchronize()`` (it sees finished work, not queued
launches), and the model runs as the lab trains it there: channels-last, bf16 autocast, ``cudnn.benchmark``; on the
CPU in float32 with the threads torch has, and denormal floats flushed to zero meanwhile: an untrained plain net's
vanishing activations and gradients are denormals, which an x86 core computes many times slower (plain20 trained at
43 images/s with them where resnet20 made 498, on the same 2 cores), a cost of random weights that a trained net does
not pay. Only the model's own cost is timed: no data loading, no augmentation, no logging (the lab's trainer adds
little to it: ``bench/trainer_overhead.py``).

The input size and batch are the lab's recipe for the preset's family (:func:`setup_for`): a CIFAR-stem preset at
CIFAR-10's recipe (32 px, batch 64), an ImageNet-stem one at Imagenette's (64 px, batch 64: a CPU run's size, where
torchvision's published figures are at 224 px). The figures are the machine's as it was at that moment: on a
machine shared with other work they are lower than on a quiet one.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F

from ...models import build_model
from ...models.presets import PRESETS, get_preset
from ...spec import ModelSpec

INFER_BATCH = 64  # the batch of the inference-throughput figure
RECIPE_DATASET = {"cifar": "cifar10", "imagenet": "imagenette"}  # a stem's family -> the recipe its sizes come from


@dataclass(frozen=True)
class Plan:
    """How many runs a measurement takes: enough to be stable, few enough that all presets fit in about two minutes
    on a 2-core CPU (the heavy presets get one or two timed steps there, the light ones their maximum)."""

    warmup: int = 1  # untimed steps (or forwards) before each of the three timings
    train_steps: int = 5  # timed training steps, at most
    latency_runs: int = 30  # timed batch-1 forwards, at most
    infer_runs: int = 5  # timed batch-64 forwards, at most
    budget_s: float = 1.0  # stop taking timed runs of one timing once this many seconds were timed (at least one)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Plan":
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})


DEFAULT_PLAN = Plan()
QUICK_PLAN = Plan(warmup=1, train_steps=1, latency_runs=3, infer_runs=1, budget_s=0.0)  # a check that it runs


@dataclass(frozen=True)
class Setup:
    """What one preset is measured at."""

    preset: str  # a name of resnet_lab.models.presets.PRESETS
    image_size: int  # input side, px
    batch: int  # training batch (the recipe's)
    infer_batch: int = INFER_BATCH  # batch of the inference-throughput figure


@dataclass(frozen=True)
class Timing:
    """One preset's figures on one device, and how many timed runs each rests on."""

    train_images_per_s: float  # training images per second at ``batch``
    latency_ms: float  # median batch-1 forward, ms
    images_per_s: float  # inference images per second at ``infer_batch``
    batch: int
    infer_batch: int
    image_size: int
    train_steps: int  # timed training steps
    latency_runs: int  # timed batch-1 forwards
    infer_runs: int  # timed batch-64 forwards
    seconds: float  # wall time of the whole measurement, warm-ups included

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def setup_for(preset: str, image_size: int | None = None, batch: int | None = None) -> Setup:
    """The input size and training batch ``preset`` is measured at: its family's recipe
    (:func:`resnet_lab.train.recipes.recipe_for` on :data:`RECIPE_DATASET`), unless given."""
    from ...train.recipes import recipe_for

    spec = get_preset(preset)
    recipe = recipe_for(RECIPE_DATASET[spec.stem], spec)
    size = recipe.image_size if image_size is None else image_size
    b = recipe.batch_size if batch is None else batch
    for name, value in (("image_size", size), ("batch", b)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a whole number of at least 1, got {value!r}")
    return Setup(preset, size, b)


CPU_LEFT_OUT = ("resnet1202",)  # not in a CPU's default set: one training step of it at batch 64 takes longer there
# than all the other presets together; name it to measure it


def default_presets(device: str = "cuda") -> list[str]:
    """The presets measured when none are named, in :data:`PRESETS`' order: all of them on a GPU, all but
    :data:`CPU_LEFT_OUT` on the CPU."""
    return [p for p in PRESETS if device != "cpu" or p not in CPU_LEFT_OUT]


def check_presets(names: list[str] | tuple[str, ...] | None, device: str = "cuda") -> list[str]:
    """``names`` checked (a ValueError suggests the nearest name for an unknown one), duplicates dropped; None: the
    :func:`default_presets` of ``device``."""
    if names is None:
        return default_presets(device)
    out: list[str] = []
    for n in names:
        get_preset(n)
        if n not in out:
            out.append(n)
    if not out:
        raise ValueError("no preset to measure: name at least one (see `python -m resnet_lab presets`)")
    return out


def device_kind(device: str = "auto") -> str:
    """"auto" -> "cuda" when torch sees a GPU, else "cpu"; "cpu" and "cuda" as they are (CUDA without a GPU is
    refused)."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for, but torch sees no GPU here; use auto or cpu")
    if device not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {device!r}; one of auto, cpu, cuda")
    return device


def _cpu_model() -> str:
    """The processor's marketing name (Linux: /proc/cpuinfo's "model name"), else what platform says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass  # not Linux: platform's answer below
    return platform.processor() or platform.machine() or "unknown processor"


def cpu_name() -> str:
    """This machine's CPU as speeds are kept under it: "CPU: <model name> (<N> cores)", N the cores this process may
    run on (a worker inherits them), since the same processor with fewer cores is another speed."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return f"CPU: {_cpu_model()} ({cores} core{'s' if cores != 1 else ''})"


def device_name(device: str = "auto") -> str:
    """The name speeds are kept under: :func:`cpu_name`, or the GPU's name as torch gives it ("NVIDIA H100 80GB
    HBM3"; this starts CUDA in the process: a page asks :func:`resnet_lab.experiments.speed.lab_device_name`)."""
    if device_kind(device) == "cuda":
        return torch.cuda.get_device_name(torch.cuda.current_device())
    return cpu_name()


def _timed(step: Callable[[], Any], sync: Callable[[], None], warmup: int, most: int, budget_s: float) -> list[float]:
    """Seconds of each timed call of ``step``, after ``warmup`` untimed ones: at least one, at most ``most``,
    and no more once ``budget_s`` seconds were timed."""
    for _ in range(warmup):
        step()
    sync()
    times: list[float] = []
    while not times or (len(times) < most and sum(times) < budget_s):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    return times


def measure(spec: ModelSpec, image_size: int, batch: int, device: str = "cpu", plan: Plan = DEFAULT_PLAN,
            infer_batch: int = INFER_BATCH, seed: int = 0) -> Timing:
    """Time ``spec`` on ``device`` ("cpu" or "cuda"): training images/s at ``batch``, the median batch-1 latency
    and inference images/s at ``infer_batch``, on random ``image_size``-px images (see the module's docstring for
    what each figure times). The global random state is left as it was."""
    kind = device_kind(device)
    dev = torch.device(kind)
    cuda = kind == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    fmt = torch.channels_last if cuda else torch.contiguous_format
    amp = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if cuda else nullcontext
    t_start = time.perf_counter()
    old_bench = torch.backends.cudnn.benchmark
    with torch.random.fork_rng(devices=[dev.index or 0] if cuda else []):
        torch.manual_seed(seed)
        torch.backends.cudnn.benchmark = cuda or old_bench
        torch.set_flush_denormal(True)  # see the module's docstring: an untrained plain net's denormals
        try:
            model = build_model(spec).to(dev, memory_format=fmt)
            shape = (spec.in_channels, image_size, image_size)
            x = torch.randn(batch, *shape, device=dev).contiguous(memory_format=fmt)
            y = torch.randint(0, spec.num_classes, (batch,), device=dev)
            opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, nesterov=True, weight_decay=5e-4,
                                  **({"fused": True} if cuda else {}))

            def train_step() -> None:
                opt.zero_grad(set_to_none=True)
                with amp():
                    loss = F.cross_entropy(model(x), y)
                loss.backward()
                opt.step()

            model.train()
            train = _timed(train_step, sync, plan.warmup, plan.train_steps, plan.budget_s)
            del opt
            model.eval()
            one = torch.randn(1, *shape, device=dev).contiguous(memory_format=fmt)
            many = torch.randn(infer_batch, *shape, device=dev).contiguous(memory_format=fmt)

            def forward(inputs: torch.Tensor) -> Callable[[], None]:
                def run() -> None:
                    with torch.no_grad(), amp():
                        model(inputs)
                return run

            latency = _timed(forward(one), sync, plan.warmup, plan.latency_runs, plan.budget_s)
            infer = _timed(forward(many), sync, plan.warmup, plan.infer_runs, plan.budget_s)
        finally:
            torch.backends.cudnn.benchmark = old_bench
            torch.set_flush_denormal(False)  # torch's default (it has no getter to restore another)
    return Timing(train_images_per_s=batch * len(train) / sum(train), latency_ms=1000 * statistics.median(latency),
                  images_per_s=infer_batch * len(infer) / sum(infer), batch=batch, infer_batch=infer_batch,
                  image_size=image_size, train_steps=len(train), latency_runs=len(latency), infer_runs=len(infer),
                  seconds=time.perf_counter() - t_start)


def measure_preset(preset: str, device: str = "cpu", plan: Plan = DEFAULT_PLAN, image_size: int | None = None,
                   batch: int | None = None) -> Timing:
    """:func:`measure` of the preset ``preset`` at its :func:`setup_for` size and batch."""
    s = setup_for(preset, image_size, batch)
    return measure(get_preset(preset), s.image_size, s.batch, device, plan, s.infer_batch)

