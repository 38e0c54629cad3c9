"""Linear probe on cached features versus running the frozen backbone every step.

Both train only the head of the same model on the same data and batches. The cached probe runs the
backbone once (timed separately) and then trains the head on the stored features; the other runs the
frozen backbone forward on every batch. Per-epoch time is measured between the ends of epochs 2 and
the last, so start-up is excluded.

    .venv/bin/python bench/linear_probe.py [--model resnet20] [--images 2000] [--epochs 4]

Ratio = frozen-backbone seconds per epoch ÷ cached-feature seconds per epoch. Target: >= 5.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resnet_lab import build_model  # noqa: E402
from resnet_lab.device import device_description  # noqa: E402
from resnet_lab.train.config import TrainConfig  # noqa: E402
from resnet_lab.train.engine import Trainer  # noqa: E402
from resnet_lab.train.members import Callbacks, MemberSetup  # noqa: E402

from trainer_overhead import synthetic  # noqa: E402


class EpochClock(Callbacks):
    def __init__(self):
        self.times = []

    def on_eval(self, idx, step, epoch, metrics):
        self.times.append(time.perf_counter())


def seconds_per_epoch(spec, data, cfg, setup) -> tuple[float, float]:
    clock = EpochClock()
    t0 = time.perf_counter()
    trainer = Trainer([spec], data, cfg, clock, setups=[setup], augment=False)
    trainer.run()
    per_epoch = (clock.times[-1] - clock.times[1]) / (len(clock.times) - 2)
    return per_epoch, clock.times[0] - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet20")
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    if args.epochs < 3:
        p.error("--epochs must be at least 3 (epoch 1 is warm-up)")
    data = synthetic(args.images, args.size)
    spec = build_model(args.model).spec.replace(num_classes=len(data.class_names))
    cfg = TrainConfig(epochs=args.epochs, batch_size=args.batch, lr=0.05, log_every=10, grad_norm_every=0,
                      eval_points=0, device=args.device)  # validation at epoch ends only: the clock reads there
    base = build_model(spec).state_dict()
    backbone = ("conv1", "bn1", *[f"layer{i + 1}" for i in range(len(spec.depths))])
    frozen_s, _ = seconds_per_epoch(spec, data, cfg, MemberSetup(state_dict=base, frozen=backbone))
    cached_s, first = seconds_per_epoch(spec, data, cfg, MemberSetup(state_dict=base, head_only=True))
    print(f"device: {device_description()}; {args.model}, {args.images} images at {args.size}px, batch {args.batch}")
    print(f"frozen backbone every step: {frozen_s:.3f} s/epoch")
    print(f"cached features:            {cached_s:.4f} s/epoch (features computed once, first epoch incl. {first:.2f} s)")
    print(f"ratio frozen/cached = {frozen_s / cached_s:.1f}x (target >= 5)")


if __name__ == "__main__":
    main()
