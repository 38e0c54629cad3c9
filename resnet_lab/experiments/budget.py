"""The budget question: "at most X ms per image on this device, Y MB of weights, Z minutes of training" -> the
presets that fit, each with what the published tables and this lab's own runs say it reaches.

The size is the preset's float32 weights (parameters × 4 bytes, in MB of 2^20 bytes, as torchvision states its
files' sizes), known for every preset. The milliseconds and minutes come from the speeds measured on the lab's
device (``speeds``: preset -> an object with ``latency_ms``, batch-1 inference, and ``train_images_per_s``, the
recipe's batch — the speed job's records; this module never measures and never imports that job). A preset with
no measured speed is never dropped and never passed on a time limit: its verdict is "not measured" (unless the
size alone already rules it out, which is then the verdict). Training minutes are ``train_images`` (epochs ×
training images: what the student means to train on) divided by the measured images/s.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any, Mapping, Sequence

import torch

from ..models.presets import PRESETS
from ..models.published import best_published, table6_row
from ..models.resnet import ResNet
from .choose import RunPoint

FITS, TOO_BIG, NOT_MEASURED = "fits", "does not fit", "not measured"
VERDICT_ORDER = (FITS, NOT_MEASURED, TOO_BIG)
MB = 2 ** 20
DEFAULT_TRAIN_IMAGES = 10 * 50_000  # ten epochs of CIFAR-10's training set


@dataclass(frozen=True)
class Budget:
    max_ms: float | None = None  # batch-1 inference per image on this device, ms (None: no limit)
    max_mb: float | None = None  # float32 weights, MB
    max_minutes: float | None = None  # training time on this device, minutes
    train_images: int = DEFAULT_TRAIN_IMAGES  # images the training sees (epochs × training-set size)

    def __post_init__(self) -> None:
        for name in ("max_ms", "max_mb", "max_minutes"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0):
                raise ValueError(f"{name} must be a positive number or empty (no limit), got {v!r}")
        if isinstance(self.train_images, bool) or not isinstance(self.train_images, int) or self.train_images < 1:
            raise ValueError(f"train_images must be a positive whole number, got {self.train_images!r}")


@dataclass(frozen=True)
class Fit:
    preset: str
    verdict: str  # FITS, NOT_MEASURED or TOO_BIG
    why: str  # the limits it breaks, or the ones that could not be checked ("" when it fits)
    params: int
    size_mb: float
    latency_ms: float | None  # measured on this device, batch 1
    train_minutes: float | None  # train_images at the measured training speed
    published: str  # what the published tables say it reaches ("" when they do not list it)
    lab: str  # what this lab's runs say ("" without runs of it)
    lab_best: float | None = None  # the best validation accuracy of its runs, a fraction
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@lru_cache(maxsize=None)
def preset_params(name: str) -> int:
    """Parameters of a preset, counted on PyTorch's meta device (no weights allocated)."""
    with torch.device("meta"):
        model = ResNet(PRESETS[name])
    return sum(p.numel() for p in model.parameters())


def published_says(preset: str) -> str:
    """"ImageNet top-1 80.9% (torchvision V2)", "CIFAR-10 93.0% (He et al. Table 6)", or "" — for a plain twin
    nothing is published."""
    row = best_published(preset)
    if row is not None:
        return f"ImageNet top-1 {row.top1:.1f}% (torchvision {row.version})"
    paper = table6_row(preset)
    if paper is not None:
        return f"CIFAR-10 {100 * paper.accuracy:.2f}% (He et al. 2015, Table 6)"
    return ""


def _lab_says(preset: str, runs: Sequence[RunPoint]) -> tuple[str, float | None]:
    mine = [p for p in runs if p.model == preset]
    if not mine:
        return "", None
    best = max(mine, key=lambda p: p.accuracy)
    n = len(mine)
    return f"{100 * best.accuracy:.1f}% best of {n} run{'s' if n != 1 else ''} ({best.dataset})", best.accuracy


def fit(budget: Budget, preset: str, speed: Any | None, runs: Sequence[RunPoint] = ()) -> Fit:
    """One preset against the budget (see the module docstring)."""
    params = preset_params(preset)
    size = params * 4 / MB
    latency = getattr(speed, "latency_ms", None) if speed is not None else None
    ips = getattr(speed, "train_images_per_s", None) if speed is not None else None
    minutes = budget.train_images / ips / 60 if ips else None
    broken, unknown = [], []
    if budget.max_mb is not None and size > budget.max_mb:
        broken.append(f"{size:.1f} MB > {budget.max_mb:g} MB")
    for limit, value, unit, what in ((budget.max_ms, latency, "ms", "inference time"),
                                     (budget.max_minutes, minutes, "min", "training time")):
        if limit is None:
            continue
        if value is None:
            unknown.append(f"{what} not measured on this device")
        elif value > limit:
            broken.append(f"{value:.3g} {unit} > {limit:g} {unit}")
    verdict = TOO_BIG if broken else NOT_MEASURED if unknown else FITS
    lab, lab_best = _lab_says(preset, runs)
    return Fit(preset=preset, verdict=verdict, why="; ".join(broken or unknown), params=params, size_mb=size,
               latency_ms=latency, train_minutes=minutes, published=published_says(preset), lab=lab,
               lab_best=lab_best)


def answer(budget: Budget, speeds: Mapping[str, Any], runs: Sequence[RunPoint] = (),
           presets: Sequence[str] | None = None) -> list[Fit]:
    """Every preset (or those of ``presets``) against ``budget``: those that fit first, then those not measured,
    then those that do not fit; within each, the smallest first (a ResNet before its plain twin). ``speeds``:
    preset -> its measured speed on this device (any object with ``latency_ms`` and ``train_images_per_s``);
    ``runs``: the lab's points."""
    names = list(PRESETS) if presets is None else list(presets)
    for n in names:
        if n not in PRESETS:
            raise ValueError(f"unknown preset {n!r}")
    fits = [fit(budget, n, speeds.get(n), runs) for n in names]
    return sorted(fits, key=lambda f: (VERDICT_ORDER.index(f.verdict), f.params, not PRESETS[f.preset].skip, f.preset))


def answer_sentence(fits: Sequence[Fit]) -> str:
    """"4 presets fit, 12 are not measured on this device yet, 7 do not fit." (only the counts that are not 0)."""
    counts = {v: sum(f.verdict == v for f in fits) for v in VERDICT_ORDER}
    parts = []
    if counts[FITS]:
        parts.append(f"{counts[FITS]} preset{'s fit' if counts[FITS] != 1 else ' fits'}")
    if counts[NOT_MEASURED]:
        n = counts[NOT_MEASURED]
        parts.append(f"{n} {'are' if n != 1 else 'is'} not measured on this device yet")
    if counts[TOO_BIG]:
        n = counts[TOO_BIG]
        parts.append(f"{n} {'do' if n != 1 else 'does'} not fit")
    if not parts:
        return "No preset to weigh."
    if not counts[FITS]:
        parts.insert(0, "no preset fits for sure")
    said = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
    return said[0].upper() + said[1:] + "."


__all__ = ["Budget", "DEFAULT_TRAIN_IMAGES", "FITS", "Fit", "NOT_MEASURED", "TOO_BIG", "answer", "answer_sentence",
           "fit", "preset_params", "published_says"]
