"""What a take-home zip holds and what its ``manifest.json`` says: the file names, the manifest itself
(:func:`build_manifest`: spec, class names, input size and normalization, settings, run, versions, the
weights' hash) and whether torchvision's own ``ResNet`` can hold the weights (:func:`torchvision_match`)."""

from __future__ import annotations

import hashlib
import platform
import time
from dataclasses import dataclass
from typing import Any, Mapping

from ..spec import ModelSpec

EXPORT_FORMAT = "resnet-lab-export"
EXPORT_VERSION = 1
WEIGHTS = "model.safetensors"
MANIFEST = "manifest.json"
LAB_SNIPPET = "load_model.py"
MODEL_MODULE = "resnet_model.py"
LAB_NEEDS = ("torch", "safetensors", "numpy", "pillow")  # what load_model.py and resnet_model.py import
TORCHVISION_SNIPPET = "load_torchvision.py"
README = "README.txt"

# torchvision.models.resnetNN: (block, layers) — torchvision/models/resnet.py
TORCHVISION_NAMED = {("basic", (2, 2, 2, 2)): "resnet18", ("basic", (3, 4, 6, 3)): "resnet34",
                     ("bottleneck", (3, 4, 6, 3)): "resnet50", ("bottleneck", (3, 4, 23, 3)): "resnet101",
                     ("bottleneck", (3, 8, 36, 3)): "resnet152"}
TORCHVISION_WIDTHS = (64, 128, 256, 512)  # torchvision's stage widths are fixed (width_per_group=64)


@dataclass(frozen=True)
class TorchvisionMatch:
    """Whether torchvision's ``ResNet`` class can hold a spec's weights (``strict=True``), and how to build it."""

    ok: bool
    call: str  # e.g. "torchvision.models.resnet18(num_classes=3)"; "" when not ok
    reasons: tuple[str, ...]  # why not, one sentence each; () when ok

    def to_dict(self) -> dict[str, Any]:
        if self.ok:
            return {"loadable": True, "call": self.call, "snippet": TORCHVISION_SNIPPET}
        return {"loadable": False, "why": list(self.reasons)}


def torchvision_match(spec: ModelSpec) -> TorchvisionMatch:
    """Can ``torchvision.models.resnet.ResNet`` express ``spec``? Its stem is always the 7×7/2 conv and 3×3/2
    max-pool for 3 channels, it has exactly four stages of 64, 128, 256 and 512 base channels, a projection
    shortcut (with BatchNorm) only where the shape changes — option B — and post-activation blocks. The
    model's module names are torchvision's, so a spec that fits loads with ``strict=True`` (tested against
    torchvision in tests/models/test_resnet.py and tests/test_export.py). ``zero_init_residual`` only
    changes the initial weights, so it does not matter here."""
    reasons = []
    if spec.stem != "imagenet":
        reasons.append("torchvision's ResNet always starts with the ImageNet stem (7×7/2 conv and 3×3/2 max-pool); "
                       "this model has the CIFAR stem (one 3×3 conv)")
    if spec.in_channels != 3:
        reasons.append(f"torchvision's ResNet takes 3 input channels; this model takes {spec.in_channels}")
    if spec.widths != TORCHVISION_WIDTHS:
        reasons.append(f"torchvision's ResNet has four stages of {'-'.join(map(str, TORCHVISION_WIDTHS))} base "
                       f"channels; this model has {'-'.join(map(str, spec.widths))}")
    if not spec.skip:
        reasons.append("torchvision has no plain (no-skip) ResNet")
    elif spec.shortcut != "B":
        reasons.append(f"torchvision's shortcuts are option B (a projection only where the shape changes); this "
                       f"model uses option {spec.shortcut}")
    if spec.preact:
        reasons.append("torchvision's ResNet has post-activation blocks; this model is pre-activation")
    if spec.norm != "batch":
        reasons.append("torchvision's ResNet uses BatchNorm; this model has no normalization (its convs have biases)")
    if reasons:
        return TorchvisionMatch(False, "", tuple(reasons))
    name = TORCHVISION_NAMED.get((spec.block, spec.depths))
    if name is not None:
        return TorchvisionMatch(True, f"torchvision.models.{name}(num_classes={spec.num_classes})", ())
    block = "Bottleneck" if spec.block == "bottleneck" else "BasicBlock"
    return TorchvisionMatch(True, f"torchvision.models.resnet.ResNet(torchvision.models.resnet.{block}, "
                                  f"{list(spec.depths)}, num_classes={spec.num_classes})", ())


def _versions() -> dict[str, str]:
    import safetensors
    import torch
    import torchvision

    from .. import __version__

    return {"resnet_lab": __version__, "torch": torch.__version__, "torchvision": torchvision.__version__,
            "safetensors": safetensors.__version__, "python": platform.python_version()}


def as_number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def build_manifest(meta: Mapping[str, Any], spec: ModelSpec, params: int, weights: bytes, tag: str,
                   run: Any = None) -> dict[str, Any]:
    """The export's manifest from a checkpoint's manifest (``meta``) and, when known, its run record."""
    data = meta.get("data") if isinstance(meta.get("data"), dict) else {}
    size = data.get("image_size") if isinstance(data.get("image_size"), int) else spec.default_input_size
    checkpoint_metrics = meta.get("metrics") if isinstance(meta.get("metrics"), dict) else {}
    best = dict(run.best) if run is not None else {}
    last = dict(run.last) if run is not None else {}
    grey = spec.in_channels == 1
    run_id = run.id if run is not None else meta.get("run_id")
    return {
        "format": EXPORT_FORMAT, "version": EXPORT_VERSION,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "run": {"id": run_id if isinstance(run_id, int) else None,
                "name": run.name if run is not None else meta.get("name"),
                "status": run.status if run is not None else None,
                "kind": spec.kind, "partner_id": run.partner_id if run is not None else None,
                "created_at": run.created_at if run is not None else None,
                "finished_at": run.finished_at if run is not None else None},
        "checkpoint": {"tag": tag, "step": meta.get("step"), "epoch": meta.get("epoch")},
        "model": {"spec": spec.to_dict(), "describe": spec.describe(), "params": params},
        "class_names": list(meta.get("class_names") or [f"class {i}" for i in range(spec.num_classes)]),
        "input": {
            "size": size, "channels": spec.in_channels,
            "normalization": {"mean": list(meta["mean"]), "std": list(meta["std"])},
            "preprocess": (f"RGB in [0, 1]; shorter side resized to {size} px (bilinear, antialiased), centre crop "
                           f"{size}×{size}" + ("; grey = 0.299 R + 0.587 G + 0.114 B" if grey else "")
                           + "; then (x - mean) / std per channel"),
            "ink_on_dark": grey and data.get("name") == "digits",
        },
        "accuracy": {"best_val_acc": as_number(best.get("val/acc", meta.get("best_val_acc"))),
                     "last_val_acc": as_number(last.get("val/acc")),
                     "checkpoint_val_acc": as_number(checkpoint_metrics.get("val/acc"))},
        "metrics": {"best": best, "last": last, "checkpoint": checkpoint_metrics},
        "data": data, "train": meta.get("train") or {}, "finetune": meta.get("finetune") or {},
        "weights": {"file": WEIGHTS, "bytes": len(weights), "sha256": hashlib.sha256(weights).hexdigest()},
        "versions": _versions(),
        "torchvision": torchvision_match(spec).to_dict(),
    }
