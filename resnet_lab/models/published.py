"""What others measured: accuracy against cost, as published, for choosing a ResNet before training one.

Two sources, each named (the strings below go on every chart and table that shows their numbers):

* **torchvision's weights metadata** — ``ResNet18_Weights`` … ``ResNet152_Weights``, every ``IMAGENET1K_V1`` and
  ``IMAGENET1K_V2`` entry: ImageNet-1K validation top-1 and top-5 (``meta["_metrics"]["ImageNet-1K"]``, single
  224-px centre crop), ``meta["_ops"]`` (torchvision calls it GFLOPS; it counts multiply-adds, 4.09 for ResNet-50,
  the lab's ``ModelSummary.macs`` / 1e9), ``meta["num_params"]`` and ``meta["_file_size"]`` (MB of the ``.pth``).
  Read from the installed torchvision, offline: no weights file is opened or downloaded, and no copy of those
  numbers lives here, so a newer torchvision's numbers show as they are.
* **He et al. 2015, Table 6** — the CIFAR-10 ResNets (3×3 stem, three stages of 6n+2 layers, option A): test error
  and parameters as printed. ResNet-110's 6.43% is the best of 5 runs (their mean: 6.61 ± 0.16). This is the one
  home of those numbers; the paper experiment (:mod:`resnet_lab.experiments.paper_cifar`) reads them here.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torchvision
import torchvision.models as tvm

TORCHVISION_SOURCE = (f"torchvision {torchvision.__version__.split('+')[0]} weights metadata "
                      "(ImageNet-1K validation, 224 px centre crop)")
TABLE6_SOURCE = "He et al. 2015, Deep Residual Learning, Table 6 (CIFAR-10 test error)"
IMAGENET_MODELS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


@dataclass(frozen=True)
class PublishedRow:
    """One torchvision weights entry: a model trained on ImageNet by one recipe."""

    model: str  # "resnet50": the lab's preset of the same architecture
    weights: str  # "IMAGENET1K_V2": the enum member's name
    version: str  # "V1" (the original recipe) or "V2" (torchvision's 2021 recipe, longer and stronger)
    top1: float  # ImageNet-1K validation top-1 accuracy, percent
    top5: float  # top-5 accuracy, percent
    gflops: float  # torchvision's "_ops": billions of multiply-adds per 224-px image
    params: int  # parameters
    file_mb: float  # size of the weights file, MB as torchvision states it
    recipe: str  # where the recipe is described (a URL)


@dataclass(frozen=True)
class PaperRow:
    """One CIFAR-10 ResNet of He et al. 2015, Table 6."""

    model: str  # "resnet20": the lab's preset of the same architecture
    depth: int  # weighted layers, 6n+2
    error: float  # CIFAR-10 test error, a fraction (0.0875 is 8.75%)
    params_m: float  # parameters in millions, as printed (0.27)

    @property
    def accuracy(self) -> float:
        return 1.0 - self.error


_TABLE6 = ((20, 0.0875, 0.27), (32, 0.0751, 0.46), (44, 0.0717, 0.66), (56, 0.0697, 0.85), (110, 0.0643, 1.7),
           (1202, 0.0793, 19.4))  # (depth, test error, params in millions), Table 6 as printed
TABLE6: tuple[PaperRow, ...] = tuple(PaperRow(f"resnet{d}", d, e, p) for d, e, p in _TABLE6)
TABLE6_ERROR: dict[int, float] = {r.depth: r.error for r in TABLE6}
"""Depth -> CIFAR-10 test error of the ResNet, He et al. 2015, Table 6."""


def _weights_enum(model: str) -> type:
    """torchvision's weights enum of a model name: "resnet50" -> ``ResNet50_Weights``."""
    return getattr(tvm, f"ResNet{model.removeprefix('resnet')}_Weights")


@lru_cache(maxsize=1)
def imagenet_rows() -> tuple[PublishedRow, ...]:
    """Every ImageNet-1K weights entry of torchvision's ResNet-18…152, in model order then V1 before V2, read from
    the enums' metadata (nothing downloaded). A ValueError names an entry whose metadata lacks a field."""
    rows = []
    for model in IMAGENET_MODELS:
        for w in _weights_enum(model):
            if not w.name.startswith("IMAGENET1K_"):
                continue
            meta = w.meta
            try:
                acc = meta["_metrics"]["ImageNet-1K"]
                rows.append(PublishedRow(model=model, weights=w.name, version=w.name.removeprefix("IMAGENET1K_"),
                                         top1=float(acc["acc@1"]), top5=float(acc["acc@5"]),
                                         gflops=float(meta["_ops"]), params=int(meta["num_params"]),
                                         file_mb=float(meta["_file_size"]), recipe=str(meta.get("recipe", ""))))
            except KeyError as e:
                raise ValueError(f"torchvision {torchvision.__version__}: {model} {w.name} has no {e.args[0]!r} "
                                 "in its metadata") from e
    return tuple(rows)


def best_published(model: str) -> PublishedRow | None:
    """The highest top-1 torchvision publishes for ``model`` (its V2 weights where there are some), or None."""
    rows = [r for r in imagenet_rows() if r.model == model]
    return max(rows, key=lambda r: r.top1) if rows else None


def table6_row(model: str) -> PaperRow | None:
    """Table 6's row of a CIFAR preset ("resnet56"), or None for a model the table does not list."""
    return next((r for r in TABLE6 if r.model == model), None)


__all__ = ["IMAGENET_MODELS", "PaperRow", "PublishedRow", "TABLE6", "TABLE6_ERROR", "TABLE6_SOURCE",
           "TORCHVISION_SOURCE", "best_published", "imagenet_rows", "table6_row"]
