"""Same settings, same numbers: what the training loop guarantees about repeating a run, and the switches it sets.

Everything random in a run comes from ``TrainConfig.seed`` (and the data's own ``DataConfig.seed``): the models'
initial weights (``torch.manual_seed`` right before each is built), the order of the batches (a CPU generator
drawing one permutation per epoch) and the augmentation (a generator on the training device, drawing each batch's
crop offsets and flips). Several processes of one job draw the same global batch and keep their share: no sampler
of their own. Nothing is seeded from the clock, the process id or a hash, and a checkpoint keeps every generator's
state and the metrics gathered since the last log point, so a resumed run logs what the uninterrupted one would.

What that gives, by device (:func:`reproducibility_note` says it in one sentence for a page):

- **CPU**: bitwise the same curve, every logged loss, accuracy and gradient norm, for the same torch version and
  the same number of CPU threads. The thread count matters: torch's CPU convolution splits the weight gradient's
  sum over the threads, so 1 and 2 threads give gradients that differ in the last bits (forward and input gradient
  agree) and the curves drift apart by rounding. The thread count of a run is recorded in its checkpoints
  (:func:`conditions`, the manifest's ``reproducibility``).
- **CUDA with** ``TrainConfig(deterministic=True)``: deterministic algorithms
  (:func:`torch.use_deterministic_algorithms` with ``warn_only``: an operation that has no deterministic kernel
  warns in the job's log instead of failing the run), cuDNN's deterministic convolutions with ``benchmark`` off,
  and ``CUBLAS_WORKSPACE_CONFIG=:4096:8``. The same GPU model, driver and torch version then give the same curve
  (bf16 autocast rounds the same way each time: deterministic kernels see the same inputs).
  The price is speed: cuDNN no longer times its kernels to pick the fastest. Where an operation without a
  deterministic kernel is used (scatter/``index_add`` backward and other atomics), the curves agree to
  :data:`CUDA_TOLERANCE`.
- **CUDA without it** (the default: the fast path, ``cudnn.benchmark``): the same statistics, not the same bits; two
  runs agree to rounding at first and drift apart.

The switches are process-wide; :func:`configured` sets them for one training run and puts back what was there.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

import torch

from ..device import resolve_device

CUBLAS_WORKSPACE = ":4096:8"  # what cuBLAS needs for deterministic results (NVIDIA's documented setting)
CUDA_TOLERANCE = "bf16 rounding (2⁻⁸, about 0.4 % relative) at first, growing as training goes on"
"""How close two CUDA runs are where exact equality is out of reach (an operation without a deterministic kernel,
or deterministic algorithms off): bf16 autocast keeps 8 bits of mantissa, so the first steps' numbers agree to that,
and the difference grows with training as any rounding difference does (a bound from the format, not a measurement:
no GPU was at hand when this was written)."""


@contextlib.contextmanager
def configured(device: torch.device, deterministic: bool) -> Iterator[None]:
    """The process-wide switches of one training run on ``device``, put back afterwards.

    ``deterministic``: deterministic algorithms (warning, not failing, on an operation that has none), and on CUDA
    cuDNN's deterministic convolutions without ``benchmark`` and cuBLAS's fixed workspace (``CUBLAS_WORKSPACE_CONFIG``
    is set only where it is unset: it must be in place before cuBLAS starts, and a worker starts it here). Without
    it nothing changes: the trainer's CUDA fast path keeps ``cudnn.benchmark``, and the CPU's kernels are
    deterministic for a fixed thread count anyway."""
    cudnn = torch.backends.cudnn
    before = (torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),
              cudnn.deterministic, cudnn.benchmark)
    try:
        if deterministic:
            if device.type == "cuda":
                os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
            torch.use_deterministic_algorithms(True, warn_only=True)
            cudnn.deterministic, cudnn.benchmark = True, False
        yield
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])
        cudnn.deterministic, cudnn.benchmark = before[2], before[3]


def conditions(device: torch.device, deterministic: bool) -> dict[str, Any]:
    """What a run's numbers depend on besides its settings, as recorded in its checkpoints: the kind of device (and
    the GPU's name), the torch version, the CPU threads (the CPU's results depend on them) and whether
    deterministic algorithms were asked for."""
    out: dict[str, Any] = {"device": device.type, "torch": torch.__version__, "threads": torch.get_num_threads(),
                           "deterministic": bool(deterministic)}
    if device.type == "cuda":
        out["gpu"] = torch.cuda.get_device_name(device)
        out["cublas_workspace"] = os.environ.get("CUBLAS_WORKSPACE_CONFIG")
    return out


def reproducibility_note(device: str | torch.device = "auto", deterministic: bool = False) -> str:
    """One sentence for a page: what training the same model with the same data, settings and seed on ``device``
    ("auto", "cpu", "cuda", or a torch device) guarantees here, with ``TrainConfig.deterministic`` as given."""
    try:
        where = device if isinstance(device, torch.device) else resolve_device(str(device))
    except ValueError as e:
        return f"No note on repeating a run: {e}."
    version = torch.__version__.split("+")[0]
    if where.type == "cpu":
        threads = torch.get_num_threads()
        return (f"Same settings, same numbers: on this CPU a run with the same model, data, settings and seed gives "
                f"the same curve to the last bit, with torch {version} and {threads} CPU thread"
                f"{'s' if threads != 1 else ''} (another thread count changes the last bits, and the curves drift "
                "apart by rounding).")
    gpu = torch.cuda.get_device_name(where) if torch.cuda.is_available() else "this GPU"
    if deterministic:
        return (f"Same settings, same numbers: deterministic algorithms are on, so on {gpu} with torch {version} a "
                "run with the same model, data, settings and seed gives the same curve (an operation without a "
                f"deterministic kernel warns in the job's log; then the curves agree to {CUDA_TOLERANCE}). "
                "It trains slower than the fast path.")
    return (f"On {gpu} the fast path is on (cuDNN picks its fastest kernels, bf16 autocast): a run with the same "
            "model, data, settings and seed follows the same curve up to rounding, which grows as it trains. "
            "Turn on deterministic training for the same numbers every time, at some speed.")
