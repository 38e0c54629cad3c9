"""Time to accuracy: how long resnet20 (and its plain twin) take to reach a stated validation accuracy
with the lab's default recipe, against a plain PyTorch script with the paper's CIFAR recipe, on the same
data, in the same run.

- **lab**: ``recipe_for(dataset, model)`` (resnet_lab/train/recipes.py) through the lab's own Trainer,
  exactly as the Train page's defaults queue it (validation ``--evals`` times per run).
- **paper**: a plain loop with He et al. 2015's CIFAR recipe (sec. 4.2): SGD, momentum 0.9, weight decay
  1e-4, batch 128, lr 0.1 divided by 10 at 50% and 75% of training, 4-px pad-crop and flips (flips only
  where the dataset allows them), for the same number of epochs as the recipe; validated as often.

Both include their validation passes in the wall time, start timing at the first step, and stop once the
target is reached (or at ``--budget-s``). Targets on a 2-core CPU: ``digits`` ≥ 97% and ``shapes`` ≥ 90%
for the ResNet within 60 s each, and the lab no slower to its accuracy than the paper script.
CIFAR-10 is added when its files are in ``$RESNET_LAB_HOME/data`` (``--datasets`` to choose).

    python bench/time_to_accuracy.py [--datasets digits,shapes] [--models resnet20,plain20] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from resnet_lab.data.augment import augment_batch, normalize  # noqa: E402
from resnet_lab.data.registry import load_dataset  # noqa: E402
from resnet_lab.models import PRESETS, build_model  # noqa: E402
from resnet_lab.train.engine import Trainer  # noqa: E402
from resnet_lab.train.members import Callbacks  # noqa: E402
from resnet_lab.train.recipes import recipe_for  # noqa: E402

TARGETS = {"digits": 0.97, "shapes": 0.90, "cifar10": 0.70, "mnist": 0.98, "fashion_mnist": 0.85}
BUDGET_S = 60.0  # the target on a 2-core CPU


@dataclass
class Reached:
    seconds: float | None  # wall time when the target was first reached (None: never)
    steps: int | None
    best: float  # best validation accuracy seen
    evals: int  # validation passes
    total_s: float  # wall time until it stopped


class _Watch(Callbacks):
    """Stops the lab's Trainer at the target or the budget; notes when the target was reached."""

    def __init__(self, target: float, budget_s: float) -> None:
        self.target, self.budget_s = target, budget_s
        self.t0: float | None = None
        self.reached: tuple[float, int] | None = None
        self.best, self.evals = 0.0, 0

    def on_start(self, idx, total_steps, layer_names) -> None:
        self.t0 = time.perf_counter()

    def on_eval(self, idx, step, epoch, metrics) -> None:
        self.evals += 1
        self.best = max(self.best, metrics["val/acc"])
        if self.reached is None and metrics["val/acc"] >= self.target:
            self.reached = (time.perf_counter() - self.t0, step)

    def should_stop(self) -> bool:
        return self.reached is not None or (self.t0 is not None and time.perf_counter() - self.t0 > self.budget_s)


def run_lab(spec, recipe, data, target: float, budget_s: float, evals: int, device: str) -> Reached:
    watch = _Watch(target, budget_s)
    cfg = recipe.train(device=device).replace(eval_points=evals, log_every=50, grad_norm_every=0)
    Trainer([spec], data, cfg, callbacks=watch, augment=recipe.augment).run()
    total = time.perf_counter() - watch.t0
    sec, steps = watch.reached if watch.reached else (None, None)
    return Reached(sec, steps, watch.best, watch.evals, total)


def run_paper(spec, epochs: int, data, target: float, budget_s: float, evals: int, device: str,
              seed: int = 0) -> Reached:
    """He et al. 2015's CIFAR recipe in a plain loop (no lab code but the model and the batch augmentation)."""
    dev = torch.device(device)
    torch.manual_seed(seed)
    model = build_model(spec).to(dev)
    batch = 128
    x_train, y_train = data.x_train.to(dev), data.y_train.to(dev)
    x_val, y_val = normalize(data.x_val.to(dev), data.mean, data.std), data.y_val.to(dev)
    n = len(y_train)
    steps_per_epoch = math.ceil(n / batch)
    total = epochs * steps_per_epoch
    every = max(1, total // evals)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [total // 2, total * 3 // 4], gamma=0.1)
    g = torch.Generator().manual_seed(seed)
    best, count, step = 0.0, 0, 0
    t0 = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(n, generator=g).to(dev)
        for i in range(steps_per_epoch):
            idx = order[i * batch:(i + 1) * batch]
            x = augment_batch(x_train[idx], 4, g, flip_p=0.5 if data.hflip else 0.0)
            model.train()
            loss = F.cross_entropy(model(normalize(x, data.mean, data.std)), y_train[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if step % every == 0 or step == total:
                model.eval()
                with torch.no_grad():
                    correct = sum(int((model(x_val[j:j + 512]).argmax(1) == y_val[j:j + 512]).sum())
                                  for j in range(0, len(y_val), 512))
                count += 1
                acc = correct / len(y_val)
                best = max(best, acc)
                now = time.perf_counter() - t0
                if acc >= target:
                    return Reached(now, step, best, count, now)
                if now > budget_s:
                    return Reached(None, None, best, count, now)
    return Reached(None, None, best, count, time.perf_counter() - t0)


def cifar_present() -> bool:
    from resnet_lab.data.torchvision_sets import check_files
    from resnet_lab.paths import data_root

    try:
        check_files("cifar10", data_root())
    except ValueError:
        return False
    return True


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default=None, help="comma separated (default: digits,shapes, and cifar10 if present)")
    p.add_argument("--models", default="resnet20,plain20")
    p.add_argument("--budget-s", type=float, default=2 * BUDGET_S, help="stop a run after this long (default 120)")
    p.add_argument("--evals", type=int, default=20, help="validation passes per run, both loops (default 20)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--quick", action="store_true", help="tiny data and budget: checks the script runs (for tests)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = args.datasets.split(",") if args.datasets else ["digits", "shapes"] + (["cifar10"] if cifar_present()
                                                                                   else [])
    rows = []
    for name in names:
        for model in args.models.split(","):
            spec0 = PRESETS[model]
            recipe = recipe_for(name, spec0)
            if args.quick:
                recipe = recipe.__class__(**{**recipe.__dict__, "train_subset": 128, "epochs": 1, "image_size": 16})
            data = load_dataset(recipe.data())
            spec = spec0.replace(in_channels=data.in_channels, num_classes=len(data.class_names))
            target = 0.0 if args.quick else TARGETS.get(name, 0.9)
            lab = run_lab(spec, recipe, data, target, args.budget_s, args.evals, args.device)
            paper = run_paper(spec, recipe.epochs, data, target, args.budget_s, args.evals, args.device)
            ratio = lab.seconds / paper.seconds if lab.seconds and paper.seconds else None
            rows.append({"dataset": name, "model": model, "target": target, "recipe": recipe.describe(),
                         "train_images": len(data.y_train), "lab": lab.__dict__, "paper": paper.__dict__,
                         "lab_over_paper_time": ratio})
    meta = {"device": args.device, "cpu": platform.processor() or platform.machine(), "threads": args.threads,
            "torch": torch.__version__, "date": time.strftime("%Y-%m-%d"), "budget_s": args.budget_s}
    if args.json:
        print(json.dumps({"meta": meta, "rows": rows}, indent=2))
        return 0
    print(f"time to accuracy on {args.device} ({args.threads} threads), torch {torch.__version__}, {meta['date']}")
    print(f"{'dataset':<9}{'model':<10}{'target':>7}  {'lab: s':>7}{'steps':>7}{'best':>7}   "
          f"{'paper: s':>9}{'steps':>7}{'best':>7}   lab/paper time")

    def fmt(v, f):
        return "—" if v is None else format(v, f)

    for r in rows:
        lab, pap = r["lab"], r["paper"]
        print(f"{r['dataset']:<9}{r['model']:<10}{r['target']:>7.0%}  {fmt(lab['seconds'], '7.1f')}"
              f"{fmt(lab['steps'], '7d')}{lab['best']:>7.1%}   {fmt(pap['seconds'], '9.1f')}{fmt(pap['steps'], '7d')}"
              f"{pap['best']:>7.1%}   {fmt(r['lab_over_paper_time'], '.2f')}")
    for r in rows:
        print(f"  {r['dataset']} / {r['model']}: recipe {r['recipe']} ({r['train_images']:,} training images)")
    print(f"targets: digits ≥ 97% and shapes ≥ 90% for the ResNet within {BUDGET_S:.0f} s; lab/paper time ≤ 1")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
