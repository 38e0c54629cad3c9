"""Training on several devices: one process per device, DistributedDataParallel, launched by ``torchrun``.

A training job with ``world_size`` N > 1 is started by the scheduler as
``python -m torch.distributed.run --nproc_per_node N ... -m resnet_lab.jobs.worker JOB_ID``; each of the N
worker processes (ranks) runs the same handler and the same :class:`~resnet_lab.train.engine.Trainer`,
which asks this module for what differs:

- **The batch is split, not multiplied.** Every rank draws the same global batch (same permutation, same
  augmentation of the whole batch), then keeps its own contiguous share of ``batch_size / N`` images;
  DDP averages the gradients, so a step is the step one process takes on the whole batch.
- **BatchNorm sees the global batch** (:func:`global_batchnorm`): torch's ``SyncBatchNorm`` on CUDA, and
  on the CPU — where ``SyncBatchNorm`` refuses to run — :class:`GlobalBatchNorm2d`, the same statistics
  computed with a differentiable all-reduce. DDP's default (each rank normalises with its own share's
  statistics) would make the result depend on N: per-rank statistics of 64 images are not those of 128,
  the gradients differ from the first step on, and "the same run on more GPUs" would no longer be the
  same run. The cost is one small all-reduce per BatchNorm layer forward and backward.
- **One voice.** Rank 0 (the leader) alone writes metrics, progress, heartbeat and checkpoints and sets
  the job's final status; the others compute. Metrics are all-reduced first, so the leader logs the
  global batch's loss and accuracy; validation is shared out and summed.
- **One stop.** A stop request (the store's flag, seen by the leader) or a SIGTERM on any rank is
  agreed on at the next log point (:func:`any_rank`), so every rank stops after the same step and the
  leader checkpoints it. A rank that dies ends the group (torchrun stops the others) and the job is
  ``interrupted``, resumable from its last checkpoint on every rank.

Backends: NCCL on CUDA, gloo on the CPU (how the tests run it, with two processes).
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class Group:
    """This process's place in a training group started by torchrun."""

    rank: int  # 0 .. world_size-1; rank 0 is the leader (the only one that writes)
    world_size: int  # processes in the group, one per device
    local_rank: int  # which of the GPUs this process sees is its own (CUDA_VISIBLE_DEVICES lists the group's)
    backend: str  # "nccl" (CUDA) or "gloo" (CPU)

    @property
    def leader(self) -> bool:
        return self.rank == 0

    def device(self, kind: str) -> torch.device:
        """This rank's device: its own GPU on CUDA, the CPU otherwise."""
        return torch.device("cuda", self.local_rank) if kind == "cuda" else torch.device("cpu")


def join(world_size: int, device_kind: str) -> Group | None:
    """Join the group torchrun started (rank and rendezvous from its environment); None for one process.

    The environment must agree with the job: a job of ``world_size`` N is run by N processes.
    """
    if world_size <= 1:
        return None
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched != world_size:
        raise RuntimeError(f"this job needs {world_size} processes but was started with {launched}; "
                           "the scheduler starts it with torchrun")
    rank = int(os.environ["RANK"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    if device_kind == "cuda":
        torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl", device_id=torch.device("cuda", local_rank))
    else:
        dist.init_process_group("gloo")
    return Group(rank=rank, world_size=world_size, local_rank=local_rank, backend=dist.get_backend())


def leave(group: Group | None) -> None:
    """Leave the group after a clean end (after a lost rank the process just exits: NCCL could hang here)."""
    if group is not None and dist.is_initialized():
        dist.destroy_process_group()


def share(batch: int, group: Group | None) -> slice | None:
    """This rank's contiguous share of a global batch of ``batch`` images (None: all of it)."""
    if group is None:
        return None
    if batch % group.world_size:
        raise ValueError(f"a batch of {batch} images does not split evenly over {group.world_size} processes; "
                         f"choose a batch size divisible by {group.world_size}")
    k = batch // group.world_size
    return slice(group.rank * k, (group.rank + 1) * k)


def all_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over the ranks, in place (the same bits on every rank afterwards); returns it."""
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank if ``flag`` is True on any (a host sync: call it only where one happens anyway)."""
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


class _AllSum(torch.autograd.Function):
    """Sum over the ranks, differentiable: every rank's output is the sum of every rank's input, so the
    gradient of an input is the sum over the ranks of their outputs' gradients (an all-reduce again)."""

    @staticmethod
    def forward(ctx: Any, t: torch.Tensor) -> torch.Tensor:
        return all_sum(t.clone())

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return all_sum(grad.clone())


class GlobalBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the whole global batch, on any device.

    What ``torch.nn.SyncBatchNorm`` computes, for the CPU (gloo) where that refuses to run: the per-channel
    sum and sum of squares of this rank's share are summed over the ranks with a differentiable
    all-reduce (its backward sums the gradients over the ranks, as SyncBatchNorm's does), giving the global mean
    and biased variance ``E[x²] − E[x]²`` used to normalise; the running statistics take the unbiased
    variance, as ``F.batch_norm`` does. Outside training, or alone, it is a plain BatchNorm2d. Same
    parameters and buffers as BatchNorm2d: its state dict loads into the model built without it.
    Differs from one process's BatchNorm by rounding only (one-pass variance, another summation order).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        world = dist.get_world_size()
        c = x.shape[1]
        n = x.numel() // c * world  # every rank holds an equal share
        xf = x.float()
        stats = _AllSum.apply(torch.cat([xf.sum((0, 2, 3)), (xf * xf).sum((0, 2, 3))]))
        mean = stats[:c] / n
        var = (stats[c:] / n - mean * mean).clamp_min(0)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), m)
                self.running_var.lerp_(var.detach() * (n / max(1, n - 1)), m)
        y = (xf - mean.view(1, c, 1, 1)) * torch.rsqrt(var + self.eps).view(1, c, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, c, 1, 1) + self.bias.view(1, c, 1, 1)
        return y.to(x.dtype)


def _to_global_cpu(module: nn.Module) -> nn.Module:
    """Every BatchNorm2d of ``module`` (itself included) -> GlobalBatchNorm2d with the same parameters and buffers."""
    if type(module) is nn.BatchNorm2d:
        out = GlobalBatchNorm2d(module.num_features, module.eps, module.momentum, module.affine,
                                module.track_running_stats, device=module.running_mean.device
                                if module.running_mean is not None else None)
        if module.affine:
            out.weight, out.bias = module.weight, module.bias  # the very same Parameters: optimizers keep them
        out.running_mean, out.running_var = module.running_mean, module.running_var
        out.num_batches_tracked = module.num_batches_tracked
        out.train(module.training)
        return out
    for name, child in module.named_children():
        setattr(module, name, _to_global_cpu(child))
    return module


def global_batchnorm(model: nn.Module, cuda: bool) -> nn.Module:
    """``model`` with every BatchNorm normalising over the global batch: SyncBatchNorm on CUDA,
    GlobalBatchNorm2d on the CPU. Parameters stay the same objects; call before building the optimizer."""
    return nn.SyncBatchNorm.convert_sync_batchnorm(model) if cuda else _to_global_cpu(model)


def data_parallel(model: nn.Module, group: Group, device: torch.device) -> nn.Module:
    """``model`` wrapped in DistributedDataParallel (gradients averaged over the ranks during backward).

    No buffer broadcast before each forward: with global BatchNorm every rank's running statistics are
    already the same (all-reduced inputs), so it would only cost a collective per step. (Newer torch calls
    the switch ``forward_sync_buffers``; the older name is used where it is the only one.)
    """
    from torch.nn.parallel import DistributedDataParallel

    params = inspect.signature(DistributedDataParallel.__init__).parameters
    no_sync = {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None, **no_sync)
