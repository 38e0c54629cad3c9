"""Which device the lab computes on: CUDA when present, CPU always."""

from __future__ import annotations

import os

import torch


def pick_device() -> torch.device:
    """CUDA if a GPU is visible, else CPU."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def resolve_device(name: str) -> torch.device:
    """The device a computation runs on: "auto" -> :func:`pick_device`; "cpu", "cuda" or "cuda:N" as named.
    "cuda" with no GPU visible to this process is refused (ValueError), not silently moved to the CPU."""
    if name == "auto":
        return pick_device()
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for, but no GPU is visible; use 'auto' or 'cpu'")
    return torch.device(name)


def device_description() -> str:
    """A one-line human description, e.g. 'GPU: NVIDIA H100 80GB HBM3 (CUDA 13.0)' or 'CPU (2 cores)'."""
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        extra = f", {torch.cuda.device_count()} GPUs" if torch.cuda.device_count() > 1 else ""
        return f"GPU: {name} (CUDA {torch.version.cuda}{extra})"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"CPU ({cores} cores, no GPU found)"
