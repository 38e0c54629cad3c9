"""Training throughput of the lab's own loop, in images/s, on the device present — and on a GPU its FLOP utilisation.

Models: resnet20 and resnet56 at 32 px (the paper's CIFAR nets), resnet18 and resnet50 at 224 px (torchvision's
ImageNet nets), each with its skips and as its plain twin. Every figure is the lab's ``Trainer`` — the loop every
training job runs: data resident on the device, pad-crop + flip augmentation done there, and on CUDA bf16
autocast, channels-last, the fused optimizer and cudnn.benchmark — on random images and labels. A measurement
runs warm-up steps, then times the steps between two log points (each log point waits for the GPU, so the
clock sees finished work, not queued launches). Each "epoch" of the synthetic data is ``log_every`` steps, and
its validation set is empty (an untrained net's running statistics may give a NaN validation loss, which would
end the run as diverged; a validation pass is not training throughput anyway).

On CUDA it also prints the model FLOP utilisation: achieved FLOP/s over the GPU's dense bf16 peak (a table of
known GPUs below; ``--peak-tflops`` for others), counting 3 × the forward FLOPs per training image (backward ≈
twice the forward) with the forward's multiply-adds from ``resnet_lab.models.summary.summarize`` (2 FLOPs
each). And the wall time of one whole epoch of 50,000 32-px images for resnet20 plus a 10,000-image
validation (CIFAR-10's shape), as a job would run it.

    python bench/throughput.py [--device auto|cpu|cuda] [--models resnet20,resnet18] [--batch32 N] [--batch224 N]
                               [--warmup N] [--steps N] [--compile] [--epoch | --no-epoch] [--quick] [--json]

``--quick``: tiny sizes (16 and 32 px, batch 4, two timed steps) to check the script runs; its numbers mean
nothing. ``--compile``: the models are compiled (``TrainConfig.compile``); the compilation, reported apart as
``compile_s``, is not in images/s. Targets on one H200 (not asserted; printed with a verdict on CUDA):
resnet20 ≥ 50,000 images/s, resnet18 at 224 px ≥ 8,000 images/s, a 50,000-image resnet20 epoch < 2 s.
Exit code 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resnet_lab.data.registry import Dataset  # noqa: E402
from resnet_lab.device import device_description  # noqa: E402
from resnet_lab.models.presets import PRESETS  # noqa: E402
from resnet_lab.models.summary import summarize  # noqa: E402
from resnet_lab.train.config import TrainConfig  # noqa: E402
from resnet_lab.train.engine import Trainer, resolve_device  # noqa: E402
from resnet_lab.train.members import Callbacks  # noqa: E402

MODELS = {"resnet20": 32, "resnet56": 32, "resnet18": 224, "resnet50": 224}  # model -> image side, px
QUICK_SIZE = {32: 16, 224: 32}
PEAK_BF16_TFLOPS = (  # dense (no sparsity) bf16 tensor-core peaks from the vendors' data sheets; first match wins
    ("H200", 989.0), ("H100 PCIe", 756.0), ("H100 NVL", 835.0), ("H100", 989.0), ("H800", 989.0),
    ("A100", 312.0), ("A800", 312.0), ("L40S", 362.0), ("L4", 121.0), ("A10G", 70.0), ("A10", 125.0),
)
TARGETS = {"resnet20_images_per_s": 50_000, "resnet18_224_images_per_s": 8_000, "resnet20_epoch_s": 2.0}


def peak_tflops(name: str) -> float | None:
    """The dense bf16 peak of a GPU by its name (torch.cuda.get_device_name), or None if it is not in the table."""
    for key, tflops in PEAK_BF16_TFLOPS:
        if key.lower() in name.lower():
            return tflops
    return None


def synthetic(n: int, size: int, classes: int, n_val: int, seed: int = 0) -> Dataset:
    """Random images in [0, 1] and random labels: what the loop costs does not depend on what it learns."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, size, size, generator=g)
    y = torch.randint(0, classes, (n,), generator=g)
    return Dataset(x_train=x, y_train=y, x_val=x[:n_val].clone(), y_val=y[:n_val].clone(),
                   class_names=tuple(map(str, range(classes))), mean=(0.5,) * 3, std=(0.29,) * 3, in_channels=3)


class Clock(Callbacks):
    """Times the first model's steps from log point ``start`` to log point ``end``; keeps compile_s if reported."""

    def __init__(self, start: int, end: int) -> None:
        self.start, self.end = start, end
        self.t0: float | None = None
        self.t1: float | None = None
        self.compile_s: float | None = None
        self.evals: list[float] = []

    def on_log(self, idx: int, step: int, epoch: float, metrics: dict[str, float]) -> None:
        if idx:
            return
        if "compile_s" in metrics:
            self.compile_s = metrics["compile_s"]
        if step == self.start:
            self.t0 = time.perf_counter()
        if step == self.end:
            self.t1 = time.perf_counter()

    def on_eval(self, idx: int, step: int, epoch: float, metrics: dict[str, float]) -> None:
        if idx == 0:
            self.evals.append(time.perf_counter())


def measure(model: str, skip: bool, size: int, batch: int, warmup: int, steps: int, log_every: int, device: str,
            compile_: bool) -> dict:
    """Images/s of training ``model`` (or its plain twin) at ``size`` px: ``steps`` timed after ``warmup``."""
    spec = PRESETS[model] if skip else PRESETS[model].twin()
    classes = spec.num_classes
    data = synthetic(batch * log_every, size, classes, n_val=0)
    cfg = TrainConfig(epochs=(warmup + steps) // log_every, batch_size=batch, lr=0.05, log_every=log_every,
                      grad_norm_every=50, eval_points=0, device=device, compile=compile_)
    clock = Clock(warmup, warmup + steps)
    (result,) = Trainer([spec], data, cfg, clock, augment=True).run()
    if clock.t0 is None or clock.t1 is None:
        raise RuntimeError(f"{model} (skip={skip}) stopped before the clock read: {result.status}, {result.message}")
    images_per_s = steps * batch / (clock.t1 - clock.t0)
    flops = 3 * summarize(spec, input_size=size).flops  # per training image: forward + backward (2 × forward)
    return {"model": model if skip else model.replace("resnet", "plain"), "skip": skip, "image_size": size,
            "batch": batch, "timed_steps": steps, "images_per_s": images_per_s,
            "train_gflop_per_image": flops / 1e9, "tflops": images_per_s * flops / 1e12, "mfu": None,
            "compile_s": clock.compile_s}


def epoch_time(device: str, batch: int, n: int, n_val: int, compile_: bool) -> dict:
    """Seconds of resnet20's second epoch over ``n`` 32-px images plus validation of ``n_val`` (the first epoch
    warms up: cuDNN's kernel choice, compilation)."""
    data = synthetic(n, 32, 10, n_val)
    cfg = TrainConfig(epochs=2, batch_size=batch, eval_points=0, device=device, compile=compile_)
    clock = Clock(-1, -1)
    Trainer([PRESETS["resnet20"]], data, cfg, clock, augment=True).run()
    return {"model": "resnet20", "images": n, "val_images": n_val, "batch": batch,
            "seconds": clock.evals[1] - clock.evals[0]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--models", default=",".join(MODELS), help="comma-separated, from " + ", ".join(MODELS))
    p.add_argument("--batch32", type=int, help="batch at 32 px (default: 512 on CUDA, 128 on the CPU)")
    p.add_argument("--batch224", type=int, help="batch at 224 px (default: 256 on CUDA, 8 on the CPU)")
    p.add_argument("--warmup", type=int, help="steps before the clock starts (default: 20 on CUDA, 5 on the CPU)")
    p.add_argument("--steps", type=int, help="timed steps (default: 50 on CUDA, 10 on the CPU)")
    p.add_argument("--compile", action="store_true", help="torch.compile the models (compile time reported apart)")
    p.add_argument("--epoch", action=argparse.BooleanOptionalAction, default=None,
                   help="also time a 50,000-image resnet20 epoch (default: on CUDA only)")
    p.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak, if it is not in the table")
    p.add_argument("--quick", action="store_true", help="tiny sizes: checks that the script runs")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = p.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        p.error(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")

    dev = resolve_device(args.device)
    cuda = dev.type == "cuda"
    if args.quick:
        batch = {32: 4, 224: 4}
        warmup, steps, log_every = 2, 2, 2
    else:
        batch = {32: args.batch32 or (512 if cuda else 128), 224: args.batch224 or (256 if cuda else 8)}
        log_every = 10 if cuda else 5
        warmup = args.warmup if args.warmup is not None else (20 if cuda else 5)
        steps = args.steps or (50 if cuda else 10)
        if warmup % log_every or steps % log_every:
            p.error(f"--warmup and --steps must be multiples of {log_every} (the log interval: the clock reads there)")
    gpu = torch.cuda.get_device_name(dev) if cuda else None
    peak = args.peak_tflops or (peak_tflops(gpu) if gpu else None)
    if not args.json:
        print(f"device: {device_description()}; torch {torch.__version__}"
              + (f"; bf16 peak {peak:g} TFLOP/s" if peak else "") + (" (quick: sizes too small to mean anything)"
                                                                       if args.quick else ""))
        print(f"{'model':<10} {'px':>4} {'batch':>5} {'images/s':>10} {'GFLOP/img':>10} {'TFLOP/s':>8} {'MFU':>6}"
              + (f" {'compile s':>9}" if args.compile else ""))
    results = []
    for model in models:
        side = MODELS[model]
        size = QUICK_SIZE[side] if args.quick else side
        for skip in (True, False):
            r = measure(model, skip, size, batch[side], warmup, steps, log_every, dev.type, args.compile)
            if peak:
                r["mfu"] = r["tflops"] / peak
            results.append(r)
            if not args.json:
                mfu = f"{100 * r['mfu']:5.1f}%" if r["mfu"] is not None else "     -"
                print(f"{r['model']:<10} {size:>4} {r['batch']:>5} {r['images_per_s']:>10,.0f} "
                      f"{r['train_gflop_per_image']:>10.3f} {r['tflops']:>8.2f} {mfu:>6}"
                      + (f" {r['compile_s']:>9.1f}" if args.compile and r["compile_s"] is not None else ""), flush=True)
    epoch = None
    if args.epoch or (args.epoch is None and cuda and not args.quick):
        epoch = epoch_time(dev.type, 512, 50_000, 10_000, args.compile)
        if not args.json:
            print(f"resnet20, one epoch of 50,000 32-px images + 10,000 validated, batch 512: {epoch['seconds']:.2f} s")

    checks = {}
    if cuda and not args.quick:  # the targets are for one H200; elsewhere they are printed for reference
        by = {(r["model"], r["image_size"]): r["images_per_s"] for r in results}
        if ("resnet20", 32) in by:
            checks["resnet20_images_per_s"] = by[("resnet20", 32)] >= TARGETS["resnet20_images_per_s"]
        if ("resnet18", 224) in by:
            checks["resnet18_224_images_per_s"] = by[("resnet18", 224)] >= TARGETS["resnet18_224_images_per_s"]
        if epoch is not None:
            checks["resnet20_epoch_s"] = epoch["seconds"] < TARGETS["resnet20_epoch_s"]
    report = {"bench": "throughput", "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
              "device": device_description(), "device_kind": dev.type, "gpu": gpu, "torch": torch.__version__,
              "quick": args.quick, "compile": args.compile, "peak_bf16_tflops": peak, "results": results,
              "epoch": epoch, "targets": TARGETS, "checks": checks}
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        for key, ok in checks.items():
            print(f"target {key} {TARGETS[key]:,}: {'met' if ok else 'missed'}")


if __name__ == "__main__":
    main()
