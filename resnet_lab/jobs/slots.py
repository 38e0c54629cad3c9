"""Device slots: where jobs may run, and how many at once on each.

The slots are ``cpu`` and ``cuda:0`` … ``cuda:N-1`` for the GPUs this machine shows. A GPU takes
``RESNET_LAB_JOBS_PER_GPU`` jobs at once (default 2: a small CIFAR run leaves a big GPU mostly idle);
the CPU takes ``RESNET_LAB_JOBS_PER_CPU`` (default 1: a second training job on the same cores only
makes both slower). ``RESNET_LAB_GPUS`` caps the GPUs the lab uses (say, to keep one for yourself).
"""

from __future__ import annotations

import os
from functools import lru_cache

DEFAULT_JOBS_PER_GPU = 2
DEFAULT_JOBS_PER_CPU = 1


def _setting(name: str, default: int, lo: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from None
    if value < lo:
        raise ValueError(f"{name} must be at least {lo}, got {value}")
    return value


@lru_cache(maxsize=1)
def _torch_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _visible_gpus() -> int:
    """GPUs of the machine as the lab was started. A worker sees only its own GPU, so what its parent saw
    comes down in RESNET_LAB_GPU_COUNT: a worker that pumps the queue as it ends places jobs on every GPU."""
    passed = os.environ.get("RESNET_LAB_GPU_COUNT")
    return int(passed) if passed and passed.isdigit() else _torch_gpus()


def _base_devices() -> list[str] | None:
    """The CUDA_VISIBLE_DEVICES the lab was started with, as a list (None: not set, GPUs by index)."""
    raw = os.environ["RESNET_LAB_CUDA_DEVICES"] if "RESNET_LAB_CUDA_DEVICES" in os.environ \
        else os.environ.get("CUDA_VISIBLE_DEVICES")
    return [d.strip() for d in raw.split(",") if d.strip()] if raw else None


def gpu_count() -> int:
    """GPUs the lab may use: those visible, at most RESNET_LAB_GPUS."""
    visible = _visible_gpus()
    cap = _setting("RESNET_LAB_GPUS", visible, 0)
    return min(visible, cap)


def capacity(gpus: int | None = None) -> dict[str, int]:
    """{slot: jobs it may run at once}, for ``gpus`` GPUs (default: :func:`gpu_count`)."""
    n = gpu_count() if gpus is None else gpus
    per_gpu = _setting("RESNET_LAB_JOBS_PER_GPU", DEFAULT_JOBS_PER_GPU, 1)
    return {"cpu": _setting("RESNET_LAB_JOBS_PER_CPU", DEFAULT_JOBS_PER_CPU, 1),
            **{f"cuda:{i}": per_gpu for i in range(n)}}


def default_device() -> str:
    """The kind of device a job asks for when it says "auto": "cuda" when the lab has a GPU, else "cpu"."""
    return "cuda" if gpu_count() else "cpu"


def resolve_device(requested: str) -> str:
    """"auto", "cpu" or "cuda" -> the kind of device to queue on; "cuda" without a GPU is refused now, not
    left queued forever."""
    if requested == "auto":
        return default_device()
    if requested == "cpu":
        return "cpu"
    if requested == "cuda":
        if not gpu_count():
            raise ValueError("device 'cuda' was asked for, but this machine shows no GPU to the lab; use auto or cpu")
        return "cuda"
    raise ValueError(f"unknown device {requested!r}; one of auto, cpu, cuda")


def check_world_size(kind: str, world_size: int) -> None:
    """Refuse, at submission, a job of ``world_size`` processes that could never be placed on ``kind``: a GPU job
    needs that many GPUs (one per process), a CPU job that many lanes of the cpu slot."""
    if isinstance(world_size, bool) or not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a whole number of at least 1, got {world_size!r}")
    if world_size == 1:
        return
    if kind == "cuda" and world_size > gpu_count():
        raise ValueError(f"world_size={world_size} needs {world_size} GPUs; the lab has {gpu_count()}")
    if kind == "cpu" and world_size > capacity(0)["cpu"]:
        raise ValueError(f"world_size={world_size} needs {world_size} lanes of the cpu slot; it has "
                         f"{capacity(0)['cpu']} (RESNET_LAB_JOBS_PER_CPU)")


def worker_env(slot: str) -> dict[str, str]:
    """Environment for a worker on ``slot``: a GPU slot sees only its GPU (as cuda:0), the CPU slot none.
    Slot ``cuda:i`` is the i-th GPU the lab was started with (the i-th entry of its CUDA_VISIBLE_DEVICES, if
    it was started with one); the machine's view is passed down for the worker's own pump. A job on several
    GPUs (``slot`` = "cuda:0,cuda:2") sees those, in that order: rank r's GPU is its cuda:r."""
    base = _base_devices()
    env = {"RESNET_LAB_GPU_COUNT": str(_visible_gpus()), "RESNET_LAB_CUDA_DEVICES": ",".join(base or [])}
    gpus = []
    for one in slot.split(","):
        if one.startswith("cuda:"):
            i = int(one.split(":", 1)[1])
            gpus.append(base[i] if base and i < len(base) else str(i))
    return {**env, "CUDA_VISIBLE_DEVICES": ",".join(gpus)}
