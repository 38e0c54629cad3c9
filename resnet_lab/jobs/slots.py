"""Device slots: where jobs may run, and how many at once on each.

The slots are ``cpu`` and ``cuda:0`` … ``cuda:N-1`` for the GPUs this machine shows, and ``net`` for work
that waits on the network rather than a device (downloads). A GPU takes ``RESNET_LAB_JOBS_PER_GPU`` jobs at
once (default 2: a small CIFAR run leaves a big GPU mostly idle); the CPU takes ``RESNET_LAB_JOBS_PER_CPU``
(default 1: a second training job on the same cores only makes both slower); ``net`` takes
``RESNET_LAB_DOWNLOADS_AT_ONCE`` (default 2: a download never waits behind a training run, and a few share
the connection). ``RESNET_LAB_GPUS`` caps the GPUs the lab uses (say, to keep one for yourself).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

DEFAULT_JOBS_PER_GPU = 2
DEFAULT_JOBS_PER_CPU = 1
DEFAULT_DOWNLOADS_AT_ONCE = 2
NET = "net"  # the slot of work that waits on the network (a kind of job bound to it: JobKind.device)


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


def setting(name: str, default: int, lo: int) -> int:
    """A whole-number setting from the environment (``default`` when unset; ValueError below ``lo``)."""
    return _setting(name, default, lo)


def jobs_per_gpu() -> int:
    """Jobs one GPU runs at once (``RESNET_LAB_JOBS_PER_GPU``)."""
    return _setting("RESNET_LAB_JOBS_PER_GPU", DEFAULT_JOBS_PER_GPU, 1)


def gpu_count() -> int:
    """GPUs the lab may use: those visible (under Ray, ``RESNET_LAB_RAY``: the cluster's live nodes' GPUs), at
    most RESNET_LAB_GPUS."""
    if os.environ.get("RESNET_LAB_RAY", "").strip():
        from .launch import launcher  # here: Ray is asked only when configured

        visible = launcher().gpus()  # type: ignore[attr-defined]
    else:
        visible = _visible_gpus()
    cap = _setting("RESNET_LAB_GPUS", visible, 0)
    return min(visible, cap)


def capacity(gpus: int | None = None) -> dict[str, int]:
    """{slot: jobs it may run at once}, for ``gpus`` GPUs (default: :func:`gpu_count`)."""
    n = gpu_count() if gpus is None else gpus
    per_gpu = jobs_per_gpu()
    return {"cpu": _setting("RESNET_LAB_JOBS_PER_CPU", DEFAULT_JOBS_PER_CPU, 1),
            **{f"cuda:{i}": per_gpu for i in range(n)},
            NET: _setting("RESNET_LAB_DOWNLOADS_AT_ONCE", DEFAULT_DOWNLOADS_AT_ONCE, 1)}


def default_device() -> str:
    """The kind of device a job asks for when it says "auto": "cuda" when the lab has a GPU, else "cpu"."""
    return "cuda" if gpu_count() else "cpu"


def resolve_device(requested: str) -> str:
    """"auto", "cpu" or "cuda" -> the kind of device to queue on; "cuda" without a GPU is refused now, not
    left queued forever. ("net" is not asked for: a kind of job bound to it says so, see JobKind.device.)"""
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
    GPUs (``slot`` = "cuda:0,cuda:2") sees those, in that order: rank r's GPU is its cuda:r.

    Its OpenMP threads sleep when they wait (``OMP_WAIT_POLICY=PASSIVE``, unless set already) instead of spinning:
    a worker shares the cores with the app's server, the class's pages and often another worker, and spinning
    threads that lose their core make a CPU run up to ten times slower (resnet20 on shapes beside one busy core:
    209 s spinning, 37 s passive; alone, the same either way)."""
    base = _base_devices()
    env = {"RESNET_LAB_GPU_COUNT": str(_visible_gpus()), "RESNET_LAB_CUDA_DEVICES": ",".join(base or []),
           "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY") or "PASSIVE"}
    gpus = []
    for one in slot.split(","):
        if one.startswith("cuda:"):
            i = int(one.split(":", 1)[1])
            gpus.append(base[i] if base and i < len(base) else str(i))
    return {**env, "CUDA_VISIBLE_DEVICES": ",".join(gpus)}


# --- what the devices are doing (the teacher page) ------------------------------------------------------


@dataclass(frozen=True)
class DeviceStatus:
    """One slot as the teacher sees it: what it is, how busy, and how many of its lanes hold a job."""

    slot: str  # "cpu", "cuda:0", …
    name: str  # "CPU (16 cores)", "NVIDIA H200"
    utilisation: float | None  # 0..1: GPU busy time, or the CPU's 1-minute load per core (None: unknown)
    memory_used: int | None  # bytes (None: unknown)
    memory_total: int | None  # bytes
    jobs: int  # jobs running on it now
    capacity: int  # jobs it may run at once


def _nvidia_smi() -> dict[str, tuple[str, float | None, int | None, int | None]]:
    """{GPU index and UUID: (name, utilisation 0..1, memory used, memory total in bytes)} from nvidia-smi; {} when
    there is none or it fails (it never starts a CUDA context in this process, as torch would)."""
    query = "index,uuid,name,utilization.gpu,memory.used,memory.total"
    try:
        out = subprocess.run(["nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=5, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    found: dict[str, tuple[str, float | None, int | None, int | None]] = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != 6:
            continue
        index, uuid, name, util, used, total = cells

        def number(text: str, scale: float) -> float | None:
            try:
                return float(text) * scale
            except ValueError:  # "[N/A]", "[Not Supported]"
                return None

        u, m_used, m_total = number(util, 0.01), number(used, 2 ** 20), number(total, 2 ** 20)
        row = (name, u, None if m_used is None else int(m_used), None if m_total is None else int(m_total))
        found[index] = found[uuid] = row
    return found


def _cpu_memory() -> tuple[int | None, int | None]:
    """(used, total) bytes of this machine's memory, from /proc/meminfo ((None, None) elsewhere)."""
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None, None
    kb = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            kb[key] = int(parts[0]) * 1024
    total, available = kb.get("MemTotal"), kb.get("MemAvailable")
    if total is None or available is None:
        return None, total
    return total - available, total


def devices_status(running: Iterable[Any] = ()) -> list[DeviceStatus]:
    """Every slot of the lab with its utilisation, memory and occupancy. ``running``: the running jobs (anything
    with ``.slots``), to count the lanes each slot has in use."""
    lanes = capacity()
    busy: dict[str, int] = {}
    for job in running:
        for slot in job.slots:
            busy[slot] = busy.get(slot, 0) + 1
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0] / cores
    except OSError:
        load = None
    used, total = _cpu_memory()
    out = [DeviceStatus("cpu", f"CPU ({cores} core{'s' if cores != 1 else ''})", load, used, total,
                        busy.get("cpu", 0), lanes["cpu"])]
    cuda = [s for s in lanes if s.startswith("cuda:")]
    gpus = _nvidia_smi() if cuda else {}
    base = _base_devices()
    for i in range(len(cuda)):
        slot = f"cuda:{i}"
        ref = base[i] if base and i < len(base) else str(i)
        name, util, m_used, m_total = gpus.get(ref, (f"GPU {ref}", None, None, None))
        out.append(DeviceStatus(slot, name, util, m_used, m_total, busy.get(slot, 0), lanes[slot]))
    return out
