"""The lab's training loop versus a bare PyTorch loop: same model, batch, data and optimizer.

Both loops keep the data on the device and gather batches by index; the lab's loop adds what it
always does (accumulated loss/accuracy, metric logs every 10 steps, per-layer gradient norms every
50 steps, the callbacks). Steady state only: each measurement skips its warm-up steps. Runs alternate
(bare, lab, bare, lab, ...) so drift on a shared machine hits both; the ratio of medians is printed.

    .venv/bin/python bench/trainer_overhead.py [--model resnet20] [--batch 64] [--steps 60] [--repeats 3]

Ratio = lab images/s ÷ bare images/s (1.0 = no overhead). Target on CPU: >= 0.90.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resnet_lab import build_model  # noqa: E402
from resnet_lab.data.registry import Dataset  # noqa: E402
from resnet_lab.device import device_description  # noqa: E402
from resnet_lab.train.config import TrainConfig  # noqa: E402
from resnet_lab.train.engine import Trainer, resolve_device  # noqa: E402
from resnet_lab.train.members import Callbacks  # noqa: E402
from resnet_lab.train.optim import lr_lambda, make_optimizer  # noqa: E402


def synthetic(n: int, size: int, classes: int = 10) -> Dataset:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, size, size, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    return Dataset(x_train=x, y_train=y, x_val=x[:256], y_val=y[:256], class_names=tuple(map(str, range(classes))),
                   mean=(0.5,) * 3, std=(0.29,) * 3, in_channels=3)


class Clock(Callbacks):
    def __init__(self, warmup: int, steps: int):
        self.warmup, self.end = warmup, warmup + steps
        self.t0 = self.t1 = None

    def on_log(self, idx, step, epoch, metrics):
        if idx == 0 and step == self.warmup:
            self.t0 = time.perf_counter()
        if idx == 0 and step == self.end:
            self.t1 = time.perf_counter()


def lab_loop(model_name: str, data: Dataset, cfg: TrainConfig, warmup: int, steps: int) -> float:
    clock = Clock(warmup, steps)
    spec = build_model(model_name).spec.replace(num_classes=len(data.class_names))
    trainer = Trainer([spec], data, cfg, clock, augment=False)
    trainer.run()
    return steps * cfg.batch_size / (clock.t1 - clock.t0)


def bare_loop(model_name: str, data: Dataset, cfg: TrainConfig, warmup: int, steps: int) -> float:
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)
    spec = build_model(model_name).spec.replace(num_classes=len(data.class_names))
    model = build_model(spec).to(device).train()
    cuda = device.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True  # as the lab's loop does (and make_optimizer fuses on CUDA for both)
        model = model.to(memory_format=torch.channels_last)
    opt = make_optimizer(cfg, model)
    spe = len(data.y_train) // cfg.batch_size
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg, spe))
    x_all, y_all = data.x_train.to(device), data.y_train.to(device)
    mean = torch.tensor(data.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(data.std, device=device).view(1, -1, 1, 1)
    perm = torch.randperm(len(y_all)).to(device)
    t0 = None
    for step in range(warmup + steps):
        if step == warmup:
            if cuda:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        b = step % spe
        idx = perm[b * cfg.batch_size:(b + 1) * cfg.batch_size]
        x = (x_all[idx] - mean) / std
        if cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cuda", dtype=torch.bfloat16) if cuda else torch.autocast("cpu", enabled=False):
            out = model(x)
        loss = F.cross_entropy(out.float(), y_all[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    float(loss.detach())  # one sync at the end, as the lab's loop syncs at its log points
    return steps * cfg.batch_size / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet20")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    if args.warmup % 10 or args.steps % 10:
        p.error("--warmup and --steps must be multiples of 10 (the lab logs every 10 steps)")
    total = args.warmup + args.steps
    data = synthetic(n=args.batch * total, size=args.size)
    # no mid-epoch validation: the timed window compares training steps (the bare loop validates nothing)
    cfg = TrainConfig(epochs=1, batch_size=args.batch, lr=0.05, log_every=10, grad_norm_every=50, eval_points=0,
                      device=args.device)
    print(f"device: {device_description()}; model {args.model}, {args.size}px, batch {args.batch}, "
          f"{args.steps} timed steps after {args.warmup} warm-up, {args.repeats} repeats")
    bare, lab = [], []
    for r in range(args.repeats):
        bare.append(bare_loop(args.model, data, cfg, args.warmup, args.steps))
        lab.append(lab_loop(args.model, data, cfg, args.warmup, args.steps))
        print(f"  repeat {r + 1}: bare {bare[-1]:8.1f} img/s   lab {lab[-1]:8.1f} img/s   ratio {lab[-1] / bare[-1]:.3f}")
    ratio = statistics.median(lab) / statistics.median(bare)
    print(f"median: bare {statistics.median(bare):.1f} img/s, lab {statistics.median(lab):.1f} img/s")
    print(f"ratio lab/bare = {ratio:.3f} (target >= 0.90)")


if __name__ == "__main__":
    main()
